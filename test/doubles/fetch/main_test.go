package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// huggingface-cli's command line, for a stack that writes it as its args.
func TestParseJobReadsTheHubCLIsCommand(t *testing.T) {
	j, err := parseJob("/usr/local/bin/huggingface-cli",
		[]string{"download", "org/model", "--revision", "abc123", "--local-dir", "/models/m/abc123", "--quiet"},
		env(map[string]string{"HF_ENDPOINT": "http://mirror.test:8080/", "HF_TOKEN": "t", "FETCH_DOUBLE_SECONDS": "0.5"}))
	if err != nil {
		t.Fatal(err)
	}
	want := job{Tool: "huggingface-cli", Source: "org/model", Revision: "abc123", Dir: "/models/m/abc123",
		Probe: "http://mirror.test:8080/api/models/org/model/revision/abc123", Token: "t", Wait: 500 * time.Millisecond}
	if j != want {
		t.Errorf("got %+v, want %+v", j, want)
	}
	j, err = parseJob("huggingface-cli", []string{"download", "org/model", "--local-dir=/d"}, env(nil))
	if err != nil || j.Probe != "" || j.Revision != "main" || j.Wait != time.Second {
		t.Errorf("no endpoint, defaults: got %+v, %v", j, err)
	}
	for _, args := range [][]string{{"upload", "org/model"}, {"download"}, {"download", "org/model"}} {
		if _, err := parseJob("huggingface-cli", args, env(nil)); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}

// KServe's storage initializer, the stack's default downloader, with its
// default args as the fetch run's shell expands them.
func TestParseJobReadsKServesCommand(t *testing.T) {
	j, err := parseJob("/storage-initializer/scripts/initializer-entrypoint",
		[]string{"hf://org/model:abc123", "/models/m/abc123"}, env(map[string]string{"HF_ENDPOINT": "http://mirror.test:8080", "HF_TOKEN": "t"}))
	if err != nil {
		t.Fatal(err)
	}
	want := job{Tool: "huggingface-cli", Source: "org/model", Revision: "abc123", Dir: "/models/m/abc123",
		Probe: "http://mirror.test:8080/api/models/org/model/revision/abc123", Token: "t", Wait: time.Second}
	if j != want {
		t.Errorf("got %+v, want %+v", j, want)
	}
	j, err = parseJob("initializer-entrypoint", []string{"s3://bucket/models/m", "/models/m/v1"},
		env(map[string]string{"AWS_ENDPOINT_URL": "http://minio.test:9000", "SOURCE_REVISION": "v1"}))
	if err != nil || j.Tool != "aws" || j.Source != "s3://bucket/models/m" || j.Dir != "/models/m/v1" || j.Revision != "v1" {
		t.Errorf("s3: got %+v, %v", j, err)
	}
	for _, args := range [][]string{{"hf://org/model:abc"}, {"gs://b/x", "/d"}, {"hf://org/model", "/d", "extra"}} {
		if _, err := parseJob("initializer-entrypoint", args, env(nil)); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}

func TestParseJobReadsTheStacksS3Command(t *testing.T) {
	j, err := parseJob("aws", []string{"s3", "sync", "s3://bucket/models/m", "/models/m/v1", "--no-progress"},
		env(map[string]string{"AWS_ENDPOINT_URL": "http://minio.test:9000", "SOURCE_REVISION": "v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if j.Tool != "aws" || j.Source != "s3://bucket/models/m" || j.Dir != "/models/m/v1" || j.Revision != "v1" ||
		j.Probe != "http://minio.test:9000/bucket?list-type=2&prefix=models%2Fm" {
		t.Errorf("got %+v", j)
	}
	if _, err := parseJob("aws", []string{"s3", "sync", "gs://bucket/x", "/d"}, env(nil)); err == nil {
		t.Error("a gs:// source: want an error")
	}
	if _, err := parseJob("aws", []string{"s3", "cp", "s3://b/x", "/d"}, env(nil)); err == nil {
		t.Error("s3 cp: want an error")
	}
}

func TestProbeFailsWhenTheSourceDoesNotAnswer(t *testing.T) {
	var auth string
	source := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.URL.Path != "/api/models/org/model/revision/abc" {
			http.NotFound(w, r)
		}
	}))
	defer source.Close()
	ok := job{Probe: source.URL + "/api/models/org/model/revision/abc", Token: "secret"}
	if err := ok.probe(context.Background()); err != nil {
		t.Errorf("a source that answers 200: %v", err)
	}
	if auth != "Bearer secret" {
		t.Errorf("HF_TOKEN: got Authorization %q", auth)
	}
	if err := (job{Probe: source.URL + "/api/models/org/other/revision/abc"}).probe(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a source that answers 404: got %v, want a failure naming 404", err)
	}
	source.Close()
	if err := ok.probe(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot reach the source") {
		t.Errorf("an unreachable source: got %v", err)
	}
	if err := (job{}).probe(context.Background()); err != nil {
		t.Errorf("no endpoint: want no request, got %v", err)
	}
}

// The double writes the files and never the marker, which is the wrapper's.
func TestDownloadWritesFilesButNotTheMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m", "abc")
	files, err := job{Tool: "huggingface-cli", Source: "org/model", Revision: "abc", Dir: dir}.download(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"config.json", "model.safetensors"}; !slices.Equal(names, want) || !slices.Equal(files, want) {
		t.Errorf("files: got %q (reported %q), want %q and no marker", names, files, want)
	}
	var config map[string]string
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(b, &config); err != nil || config["source"] != "org/model" || config["revision"] != "abc" {
		t.Errorf("config.json: %s, %v", b, err)
	}
	weights, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	n := binary.LittleEndian.Uint64(weights)
	var header map[string]struct {
		DataOffsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(weights[8:8+n], &header); err != nil || 8+int(n)+header["weight"].DataOffsets[1] != len(weights) {
		t.Errorf("model.safetensors is not a valid safetensors file of %d bytes: %v", len(weights), err)
	}
}
