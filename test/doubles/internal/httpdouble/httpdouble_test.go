package httpdouble

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"llm-platform/test/doubles/internal/selfcheck"
)

// A SIGTERM (here: the context) while a request is in flight closes the
// listener at once, lets the request finish with its answer, then returns.
func TestShutdownFinishesTheRequestInFlight(t *testing.T) {
	release := make(chan struct{})
	var log strings.Builder
	s := &Server{Name: "test", Log: &log, Drain: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "done")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	// A keep-alive connection left idle must not hold the shutdown up.
	client := &http.Client{Timeout: 10 * time.Second}
	if _, err := get(client, "http://"+addr+"/fast"); err != nil {
		t.Fatalf("a request before the shutdown: %v", err)
	}
	type answer struct {
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		body, err := get(&http.Client{Timeout: 10 * time.Second}, "http://"+addr+"/slow")
		slow <- answer{body, err}
	}()
	waitFor(t, "the slow request in flight", func() bool { return s.InFlight() == 1 })

	stop()
	waitFor(t, "the listener closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned before the request in flight finished: %v", err)
	default:
	}
	close(release)
	if a := <-slow; a.err != nil || a.body != "done" {
		t.Errorf("the request in flight: got %q, %v; want its answer", a.body, a.err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
	if !strings.Contains(log.String(), "1 request(s) in flight") {
		t.Errorf("the log does not say how many were in flight:\n%s", log.String())
	}
	if s.Served() != 2 {
		t.Errorf("served: got %d, want 2", s.Served())
	}
}

func TestSelfHandler(t *testing.T) {
	t.Setenv("HOSTNAME", "pod-1")
	s := &Server{}
	rec := httptest.NewRecorder()
	s.SelfHandler(selfcheck.Facts{UID: 65532, ShmBytes: 1 << 30}, "abc").ServeHTTP(rec, httptest.NewRequest("GET", "/debug/self", nil))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	for key, want := range map[string]any{"uid": 65532.0, "pod": "pod-1", "revision": "abc", "shm_bytes": float64(1 << 30), "root_writable": false, "requests_in_flight": 0.0} {
		if got[key] != want {
			t.Errorf("%s: got %v, want %v", key, got[key], want)
		}
	}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
