// Command fetch is a double of the downloaders the stack's fetch runs call:
// installed as initializer-entrypoint (KServe's storage initializer, the
// stack's default) it does `initializer-entrypoint hf://REPO:REV DIR` or
// `initializer-entrypoint s3://BUCKET/PREFIX DIR`; installed as
// huggingface-cli it does `huggingface-cli download REPO --revision REV
// --local-dir DIR`, and as aws it does `aws s3 sync SRC DST`; unknown flags
// are skipped. It writes a few small files (config.json
// naming the source and revision, a model.safetensors of a few KiB) into the
// directory, and never the completion marker: the stack's own /bin/sh
// wrapper writes that once the downloader exits 0.
//
// When the source has an endpoint (HF_ENDPOINT, or AWS_ENDPOINT_URL or
// --endpoint-url for s3) it first asks it for the revision (10 s timeout)
// and fails if that request fails or is refused: this proves the fetch run
// reaches its source through the network policies. Without an endpoint it
// downloads nothing. FETCH_DOUBLE_SECONDS (default 1) is how long the
// download takes; config.json is written before that wait and the weights
// after it, so a run killed meanwhile leaves an incomplete directory.
//
// Exit codes: 2 for a bad command line, 3 when the self-check fails (uid 0
// or a writable root), 1 when the download fails.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"llm-platform/test/doubles/internal/flags"
	"llm-platform/test/doubles/internal/selfcheck"
)

// probeTimeout bounds the request to the source's endpoint.
const probeTimeout = 10 * time.Second

// job is one download.
type job struct {
	// Tool is what the double acts as: huggingface-cli or aws (KServe's
	// initializer-entrypoint acts as one or the other, by the URI's scheme).
	Tool string
	// Source is what is downloaded (hf: the repo; s3: the s3:// URI);
	// Revision is its revision (s3: $SOURCE_REVISION, when set).
	Source, Revision string
	// Dir receives the files.
	Dir string
	// Probe is the URL asked before downloading; empty without an endpoint.
	Probe string
	// Token is sent as a bearer token with the probe ($HF_TOKEN).
	Token string
	// Wait is how long the download takes.
	Wait time.Duration
}

// parseJob reads the command line of the tool called argv0.
func parseJob(argv0 string, args []string, getenv func(string) string) (job, error) {
	j := job{Tool: filepath.Base(argv0)}
	wait := 1.0
	if v := getenv("FETCH_DOUBLE_SECONDS"); v != "" {
		var err error
		if wait, err = strconv.ParseFloat(v, 64); err != nil {
			return j, fmt.Errorf("FETCH_DOUBLE_SECONDS: %q is not a number", v)
		}
	}
	j.Wait = time.Duration(wait * float64(time.Second))
	if j.Tool == "initializer-entrypoint" {
		return j.parseKServe(args, getenv)
	}
	if j.Tool == "aws" {
		return j.parseS3(args, getenv)
	}
	j.Tool = "huggingface-cli"
	return j.parseHub(args, getenv)
}

// parseHub reads `download REPO [FILES...] --revision REV --local-dir DIR`.
func (j job) parseHub(args []string, getenv func(string) string) (job, error) {
	p := flags.Parse(args, "quiet", "force-download", "resume-download")
	if len(p.Positional) < 2 || p.Positional[0] != "download" {
		return j, fmt.Errorf("usage: huggingface-cli download REPO --revision REV --local-dir DIR; got %q", args)
	}
	j.Source, j.Revision, j.Dir = p.Positional[1], p.String("revision", "main"), p.String("local-dir", "")
	if j.Dir == "" {
		return j, errors.New("--local-dir is required: the double writes only into a named directory")
	}
	if endpoint := strings.TrimSuffix(getenv("HF_ENDPOINT"), "/"); endpoint != "" {
		j.Probe = endpoint + "/api/models/" + j.Source + "/revision/" + url.PathEscape(j.Revision)
	}
	j.Token = getenv("HF_TOKEN")
	return j, nil
}

// parseKServe reads KServe's `SRC_URI DEST_PATH`, where a hub URI carries
// its revision after a colon (hf://org/name:rev), and turns it into the
// same download as the tool of the URI's scheme.
func (j job) parseKServe(args []string, getenv func(string) string) (job, error) {
	if len(args) != 2 {
		return j, fmt.Errorf("usage: initializer-entrypoint SRC_URI DEST_PATH; got %q", args)
	}
	src, dir := args[0], args[1]
	switch {
	case strings.HasPrefix(src, "hf://"):
		repo, rev, _ := strings.Cut(strings.TrimPrefix(src, "hf://"), ":")
		if rev == "" {
			rev = "main"
		}
		j.Tool = "huggingface-cli"
		return j.parseHub([]string{"download", repo, "--revision", rev, "--local-dir", dir}, getenv)
	case strings.HasPrefix(src, "s3://"):
		j.Tool = "aws"
		return j.parseS3([]string{"s3", "sync", src, dir}, getenv)
	}
	return j, fmt.Errorf("source %q is invalid: the double reads hf:// and s3:// URIs", src)
}

// parseS3 reads `s3 sync s3://BUCKET/PREFIX DIR`.
func (j job) parseS3(args []string, getenv func(string) string) (job, error) {
	p := flags.Parse(args, "no-progress", "only-show-errors", "quiet", "delete", "dryrun", "exact-timestamps",
		"size-only", "no-sign-request", "follow-symlinks", "no-follow-symlinks", "debug", "no-verify-ssl")
	if len(p.Positional) != 4 || p.Positional[0] != "s3" || p.Positional[1] != "sync" {
		return j, fmt.Errorf("usage: aws s3 sync s3://BUCKET/PREFIX DIR; got %q", args)
	}
	j.Source, j.Dir, j.Revision = p.Positional[2], p.Positional[3], getenv("SOURCE_REVISION")
	bucket, prefix, ok := strings.Cut(strings.TrimPrefix(j.Source, "s3://"), "/")
	if !strings.HasPrefix(j.Source, "s3://") || bucket == "" {
		return j, fmt.Errorf("source %q is invalid: must be s3://BUCKET/PREFIX", j.Source)
	}
	if !ok {
		prefix = ""
	}
	endpoint := p.String("endpoint-url", getenv("AWS_ENDPOINT_URL"))
	if endpoint = strings.TrimSuffix(endpoint, "/"); endpoint != "" {
		j.Probe = endpoint + "/" + bucket + "?list-type=2&prefix=" + url.QueryEscape(prefix)
	}
	return j, nil
}

// probe asks the source's endpoint for the revision; an error or a status
// other than 2xx fails the download, as it would fail the real tool.
func (j job) probe(ctx context.Context) error {
	if j.Probe == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.Probe, nil)
	if err != nil {
		return fmt.Errorf("asking the source: %w", err)
	}
	if j.Token != "" {
		req.Header.Set("Authorization", "Bearer "+j.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the source (is egress to it allowed?): %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the source refused GET %s: %s", j.Probe, resp.Status)
	}
	return nil
}

// download writes the files into Dir, waiting Wait between the first and
// the rest, and returns their names.
func (j job) download(ctx context.Context) ([]string, error) {
	if err := os.MkdirAll(j.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", j.Dir, err)
	}
	config, err := json.MarshalIndent(map[string]string{
		"model_type": "llm-platform-double", "source": j.Source, "revision": j.Revision, "downloaded_by": j.Tool,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile(j.Dir, "config.json", config); err != nil {
		return nil, err
	}
	select {
	case <-time.After(j.Wait):
	case <-ctx.Done():
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if err := writeFile(j.Dir, "model.safetensors", safetensors(1024)); err != nil {
		return nil, err
	}
	return []string{"config.json", "model.safetensors"}, nil
}

// safetensors is a valid safetensors file holding one float32 tensor of n
// zeros: an 8-byte little-endian header length, the JSON header, the data.
func safetensors(n int) []byte {
	header := fmt.Sprintf(`{"weight":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, n, 4*n)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, make([]byte, 4*n)...)
}

// writeFile writes name in dir through a temporary file, so a reader never
// sees half of it.
func writeFile(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path+".incomplete", data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(path+".incomplete", path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func main() {
	j, err := parseJob(os.Args[0], os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s (double): %v\n", j.Tool, err)
		os.Exit(2)
	}
	selfcheck.Enforce(j.Tool+" (double)", os.Stdout)
	// The real hub client keeps its cache and locks in HF_HOME; not being
	// able to create it fails it too.
	if home := os.Getenv("HF_HOME"); home != "" && j.Tool == "huggingface-cli" {
		if err := os.MkdirAll(home, 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "%s (double): HF_HOME: %v\n", j.Tool, err)
			os.Exit(1)
		}
	}
	ctx := context.Background()
	if err := j.probe(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s (double): %s@%s: %v\n", j.Tool, j.Source, j.Revision, err)
		os.Exit(1)
	}
	if j.Probe == "" {
		fmt.Printf("%s (double): no endpoint set: nothing asked of a source\n", j.Tool)
	} else {
		fmt.Printf("%s (double): the source answered GET %s\n", j.Tool, j.Probe)
	}
	files, err := j.download(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s (double): %s@%s: %v\n", j.Tool, j.Source, j.Revision, err)
		os.Exit(1)
	}
	fmt.Printf("%s (double): downloaded %s@%s into %s: %s\n", j.Tool, j.Source, j.Revision, j.Dir, strings.Join(files, ", "))
}
