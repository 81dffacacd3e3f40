// Command workload is the double of the stack's other images; its first
// argument chooses the role:
//
//	workload serve [--port N]              the transformation stage and the checkpoint store
//	workload run [--source X] [--out DIR]  the ingestion Job
//
// serve answers /healthz and /readyz with 200, /metrics with a few
// Prometheus series and /debug/self with its self-check, and drains on
// SIGTERM. run writes one file into DIR (created if missing) naming the
// source and the pod, and exits 0. Unknown flags are skipped.
//
// Exit codes: 2 for a bad command line, 3 when the self-check fails (uid 0
// or a writable root), 1 when serving or writing fails.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"llm-platform/test/doubles/internal/flags"
	"llm-platform/test/doubles/internal/httpdouble"
	"llm-platform/test/doubles/internal/selfcheck"
)

// usage is the command line, for errors.
const usage = "usage: workload serve [--port N] | workload run [--source X] [--out DIR]"

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "serve" && os.Args[1] != "run") {
		fmt.Fprintln(os.Stderr, "workload: "+usage)
		os.Exit(2)
	}
	role, p := os.Args[1], flags.Parse(os.Args[2:])
	program := "workload " + role
	switch role {
	case "serve":
		port, err := p.Int("port", 8080)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
			os.Exit(2)
		}
		facts := selfcheck.Enforce(program, os.Stdout)
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := serve(ctx, program, ":"+strconv.Itoa(port), facts); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
			os.Exit(1)
		}
	case "run":
		selfcheck.Enforce(program, os.Stdout)
		path, err := ingest(p.String("source", ""), p.String("out", ""), httpdouble.Pod())
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
			os.Exit(1)
		}
		fmt.Printf("%s: ingested %q into %s\n", program, p.String("source", ""), path)
	}
}

// serve answers on addr until ctx is done, then drains.
func serve(ctx context.Context, program, addr string, facts selfcheck.Facts) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	s := &httpdouble.Server{Name: program}
	s.Handler = handler(s, facts)
	return s.Serve(ctx, ln)
}

// handler answers the probes, /metrics and /debug/self.
func handler(s *httpdouble.Server, facts selfcheck.Facts) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		fmt.Fprintf(w, "# HELP llm_platform_double_requests_total HTTP requests answered by the double.\n")
		fmt.Fprintf(w, "# TYPE llm_platform_double_requests_total counter\n")
		fmt.Fprintf(w, "llm_platform_double_requests_total %d\n", s.Served())
		facts.WriteMetrics(w)
	})
	mux.Handle("GET /debug/self", s.SelfHandler(facts, ""))
	return mux
}

// ingest writes one file naming source and pod into out, creating out;
// without out it writes nothing. It returns the file's path.
func ingest(source, out, pod string) (string, error) {
	if out == "" {
		return "(nowhere: no --out)", nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("creating --out %s: %w", out, err)
	}
	if pod == "" {
		pod = "local"
	}
	b, err := json.Marshal(map[string]string{"source": source, "pod": pod})
	if err != nil {
		return "", err
	}
	// One file per pod: a Job's parallel pods must not overwrite each other.
	path := filepath.Join(out, "ingested-"+pod+".json")
	if err := os.WriteFile(path+".incomplete", b, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(path+".incomplete", path); err != nil {
		return "", errors.Join(fmt.Errorf("writing %s: %w", path, err), os.Remove(path+".incomplete"))
	}
	return path, nil
}
