// Command modelserver is a double of vLLM's OpenAI-compatible server for
// the stack's tests on real kubelets: it takes vLLM's command line
// (--model, --served-model-name, --port, --host; unknown flags are
// skipped), refuses to start on incomplete weights, answers /health,
// /v1/models, /v1/completions, /v1/chat/completions and /metrics with
// vLLM's paths, codes and series names, and drains on SIGTERM as uvicorn
// does.
//
// Two flags of its own shape the simulation: --load-seconds (default 2) is
// how long loading the weights takes, during which /health and the API
// answer 503, and --response-ms (default 20) is how long one completion
// takes. vLLM's --max-num-seqs (default 256) bounds the completions
// running at once; the others wait, counted by vllm:num_requests_waiting.
//
// Each replica keeps a prefix cache, as vLLM's automatic prefix caching
// does: the prompt (or the chat messages' contents, in order) is cut into
// blocks of --prefix-block-chars characters (default 64; a trailing partial
// block is not cached), each block keyed by a hash chained over it and the
// blocks before it, and an LRU holds --prefix-cache-blocks keys (default
// 256). Once a completion has a sequence slot, its leading cached blocks
// are hits and each other full block costs --prefill-ms-per-block (default
// 10) of prefill before the --response-ms of decoding; the prompt's blocks
// are then cached. The answer carries X-Prefix-Blocks, X-Prefix-Hit-Blocks
// and X-TTFT-Ms (time to first token: from arrival, slot wait included, to
// the end of prefill), and /metrics vLLM's prefix-cache counters, in blocks.
// POST /debug/queue?waiting=N makes vllm:num_requests_waiting report N
// phantom requests more (0 clears them), for tests that want a replica to
// look saturated to an endpoint picker without loading it.
//
// Exit codes: 2 for a bad command line, 3 when the self-check fails (uid 0
// or a writable root), 4 when the weights are not complete, 1 when serving
// fails.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"llm-platform/test/doubles/internal/flags"
	"llm-platform/test/doubles/internal/selfcheck"
)

// program names the double in its log lines.
const program = "model-server"

// marker is the file a fetch run writes last into the weights' directory;
// its content is the revision. It must match serving.FetchMarker.
const marker = ".llm-platform-complete"

// config is what the command line asks for.
type config struct {
	// Model is the weights' directory (--model, or vllm serve's positional).
	Model string
	// Name is the model's name in the API (default Model).
	Name string
	// Host and Port to listen on (default 0.0.0.0:8000).
	Host string
	Port int
	// Load is how long loading the weights takes (default 2s).
	Load time.Duration
	// Response is how long one completion takes (default 20ms).
	Response time.Duration
	// MaxNumSeqs bounds the completions running at once (default 256).
	MaxNumSeqs int
	// BlockChars is the prefix cache's block size in characters (default 64).
	BlockChars int
	// CacheBlocks is how many blocks the prefix cache holds (default 256).
	CacheBlocks int
	// PrefillPerBlock is the prefill time of one block not in the prefix
	// cache (default 10ms).
	PrefillPerBlock time.Duration
}

// parseConfig reads vLLM's command line leniently.
func parseConfig(args []string) (config, error) {
	p := flags.Parse(args, "enforce-eager", "trust-remote-code", "disable-log-requests", "disable-log-stats",
		"enable-prefix-caching", "no-enable-prefix-caching", "enable-chunked-prefill", "enable-lora")
	c := config{Model: p.String("model", ""), Host: p.String("host", "0.0.0.0")}
	// `vllm serve MODEL` names the model as its first positional argument.
	if pos := p.Positional; c.Model == "" && len(pos) > 0 {
		if pos[0] == "serve" {
			pos = pos[1:]
		}
		if len(pos) > 0 {
			c.Model = pos[0]
		}
	}
	c.Name = p.String("served-model-name", c.Model)
	var errs []error
	if c.Model == "" {
		errs = append(errs, errors.New("--model is required: the weights' directory, for example --model /models/llama/abc123"))
	}
	port, err := p.Int("port", 8000)
	errs = append(errs, err)
	load, err := p.Float("load-seconds", 2)
	errs = append(errs, err)
	ms, err := p.Int("response-ms", 20)
	errs = append(errs, err)
	seqs, err := p.Int("max-num-seqs", 256)
	errs = append(errs, err)
	if err == nil && seqs < 1 {
		errs = append(errs, fmt.Errorf("--max-num-seqs: %d is invalid: must be at least 1", seqs))
	}
	blockChars, err := p.Int("prefix-block-chars", 64)
	errs = append(errs, err)
	if err == nil && blockChars < 1 {
		errs = append(errs, fmt.Errorf("--prefix-block-chars: %d is invalid: must be at least 1", blockChars))
	}
	cacheBlocks, err := p.Int("prefix-cache-blocks", 256)
	errs = append(errs, err)
	if err == nil && cacheBlocks < 0 {
		errs = append(errs, fmt.Errorf("--prefix-cache-blocks: %d is invalid: must be at least 0", cacheBlocks))
	}
	prefill, err := p.Float("prefill-ms-per-block", 10)
	errs = append(errs, err)
	if err == nil && prefill < 0 {
		errs = append(errs, fmt.Errorf("--prefill-ms-per-block: %v is invalid: must be at least 0", prefill))
	}
	c.Port, c.MaxNumSeqs = port, seqs
	c.BlockChars, c.CacheBlocks = blockChars, cacheBlocks
	c.PrefillPerBlock = time.Duration(prefill * float64(time.Millisecond))
	c.Load = time.Duration(load * float64(time.Second))
	c.Response = time.Duration(ms) * time.Millisecond
	return c, errors.Join(errs...)
}

// checkWeights returns the revision in dir's completion marker, or why the
// server must not start.
func checkWeights(dir string) (string, error) {
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		return "", fmt.Errorf("refusing to start: %s is not a directory: --model must name the weights' directory", dir)
	}
	path := filepath.Join(dir, marker)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("refusing to start: %s not found: the weights are not complete", path)
	}
	return strings.TrimSpace(string(b)), nil
}

func main() {
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(2)
	}
	facts := selfcheck.Enforce(program, os.Stdout)
	revision, err := checkWeights(cfg.Model)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(4)
	}
	fmt.Printf("%s: weights in %s are complete: revision %q; serving them as %q\n", program, cfg.Model, revision, cfg.Name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: listening on %s: %v\n", program, addr, err)
		os.Exit(1)
	}
	s := newServer(cfg, facts, revision)
	fmt.Printf("%s: loading the weights (%s)\n", program, cfg.Load)
	time.AfterFunc(cfg.Load, func() {
		s.ready.Store(true)
		fmt.Printf("%s: Application startup complete.\n", program)
	})
	if err := s.http.Serve(ctx, ln); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(1)
	}
}
