// Package httpdouble serves a double's HTTP endpoints and stops them the
// way uvicorn (vLLM's server) and Go servers do on SIGTERM: the listener
// closes, in-flight requests finish, idle keep-alive connections are
// closed, then the process exits 0.
package httpdouble

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"llm-platform/test/doubles/internal/selfcheck"
)

// DefaultDrain bounds how long a shutdown waits for in-flight requests.
const DefaultDrain = 60 * time.Second

// Server answers a double's HTTP requests and counts them.
type Server struct {
	// Name is the program's name in log lines.
	Name string
	// Handler answers the requests.
	Handler http.Handler
	// Log receives the start and shutdown lines (default os.Stdout).
	Log io.Writer
	// Drain bounds the wait for in-flight requests (default DefaultDrain).
	Drain time.Duration

	inFlight, served atomic.Int64
}

// InFlight is the number of requests being answered.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// Served is the number of requests answered.
func (s *Server) Served() int64 { return s.served.Load() }

// Serve answers on ln until ctx is done, then stops accepting connections
// and waits for the requests in flight. It returns nil after a clean
// drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Log
	if log == nil {
		log = os.Stdout
	}
	drain := s.Drain
	if drain == 0 {
		drain = DefaultDrain
	}
	srv := &http.Server{Handler: s.count(s.Handler), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(log, "%s: listening on %s\n", s.Name, ln.Addr())
	select {
	case err := <-done:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	fmt.Fprintf(log, "%s: shutting down: %d request(s) in flight, no new connections\n", s.Name, s.InFlight())
	stop, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(stop); err != nil {
		return fmt.Errorf("draining after %s: %d request(s) still in flight: %w", drain, s.InFlight(), err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	fmt.Fprintf(log, "%s: drained: %d request(s) served in all\n", s.Name, s.Served())
	return nil
}

// count wraps h to count the requests in flight and served.
func (s *Server) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		// Which pod answered: a client behind a Service counts the spread.
		w.Header().Set("X-Served-By", Pod())
		defer func() {
			s.inFlight.Add(-1)
			s.served.Add(1)
		}()
		h.ServeHTTP(w, r)
	})
}

// Self is what GET /debug/self answers: the self-check's facts, the pod,
// the weights' revision (model server only) and the request counts.
type Self struct {
	selfcheck.Facts
	// Pod is $HOSTNAME, the pod's name.
	Pod string `json:"pod"`
	// Revision is the content of the weights' completion marker.
	Revision string `json:"revision,omitempty"`
	// RequestsServed and RequestsInFlight count all HTTP requests, the one
	// asking included.
	RequestsServed   int64 `json:"requests_served"`
	RequestsInFlight int64 `json:"requests_in_flight"`
}

// SelfHandler answers GET /debug/self with the facts and revision.
func (s *Server) SelfHandler(facts selfcheck.Facts, revision string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, Self{
			Facts: facts, Pod: Pod(), Revision: revision,
			RequestsServed: s.Served(), RequestsInFlight: s.InFlight(),
		})
	})
}

// Pod is the pod's name: $HOSTNAME, or the host name.
func Pod() string {
	if h := os.Getenv("HOSTNAME"); h != "" {
		return h
	}
	h, _ := os.Hostname()
	return h
}

// WriteJSON answers with v as JSON and the status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
