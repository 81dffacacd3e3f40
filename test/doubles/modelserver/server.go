package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"llm-platform/test/doubles/internal/httpdouble"
	"llm-platform/test/doubles/internal/selfcheck"
)

// server is the vLLM double's state.
type server struct {
	cfg      config
	facts    selfcheck.Facts
	revision string
	http     *httpdouble.Server
	// ready is set once the simulated load is over.
	ready atomic.Bool
	// seqs holds one token per completion running (at most MaxNumSeqs).
	seqs                      chan struct{}
	running, waiting, success atomic.Int64
	// phantom are requests POST /debug/queue adds to the waiting ones.
	phantom atomic.Int64
	// cache is the prefix cache; queries and hits count its lookups, in
	// blocks.
	cache         *prefixCache
	queries, hits atomic.Int64
	started       time.Time
}

// newServer is the double for cfg, still loading.
func newServer(cfg config, facts selfcheck.Facts, revision string) *server {
	s := &server{cfg: cfg, facts: facts, revision: revision, seqs: make(chan struct{}, cfg.MaxNumSeqs),
		cache: newPrefixCache(cfg.CacheBlocks), started: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("POST /v1/completions", s.complete(false))
	mux.HandleFunc("POST /v1/chat/completions", s.complete(true))
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("POST /debug/queue", s.queue)
	s.http = &httpdouble.Server{Name: program, Handler: mux}
	mux.Handle("GET /debug/self", s.http.SelfHandler(facts, revision))
	return s
}

// apiError answers as vLLM's OpenAI server does on an error.
func apiError(w http.ResponseWriter, code int, kind, message string) {
	httpdouble.WriteJSON(w, code, map[string]any{
		"object": "error", "message": message, "type": kind, "param": nil, "code": code,
	})
}

// loading answers 503 while the weights load, and says whether it did.
func (s *server) loading(w http.ResponseWriter) bool {
	if s.ready.Load() {
		return false
	}
	apiError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "the model is still loading")
	return true
}

// health is vLLM's liveness endpoint: 200 with an empty body once loaded.
func (s *server) health(w http.ResponseWriter, r *http.Request) {
	if s.loading(w) {
		return
	}
	w.WriteHeader(http.StatusOK)
}

// models lists the one model served.
func (s *server) models(w http.ResponseWriter, r *http.Request) {
	if s.loading(w) {
		return
	}
	httpdouble.WriteJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id": s.cfg.Name, "object": "model", "created": s.started.Unix(),
			"owned_by": "vllm", "root": s.cfg.Model,
		}},
	})
}

// request is the part of a completion request the double reads.
type request struct {
	Model    string `json:"model"`
	Prompt   any    `json:"prompt"`
	Messages []struct {
		Content any `json:"content"`
	} `json:"messages"`
	MaxTokens int `json:"max_tokens"`
}

// complete answers a completion (chat or not) once a sequence slot is
// free, after the prefill of the prompt's blocks not in the prefix cache
// and then Response.
func (s *server) complete(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		if s.loading(w) {
			return
		}
		var req request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			apiError(w, http.StatusBadRequest, "BadRequestError", fmt.Sprintf("the request body is not JSON: %v", err))
			return
		}
		if req.Model != "" && req.Model != s.cfg.Name {
			apiError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("The model `%s` does not exist.", req.Model))
			return
		}
		s.waiting.Add(1)
		select {
		case s.seqs <- struct{}{}:
			s.waiting.Add(-1)
		case <-r.Context().Done():
			s.waiting.Add(-1)
			return
		}
		s.running.Add(1)
		defer func() {
			s.running.Add(-1)
			<-s.seqs
		}()
		// Prefill: the leading blocks cached are hits, the others are
		// computed, then cached.
		promptText := textOf(req.Prompt)
		for _, m := range req.Messages {
			promptText += textOf(m.Content)
		}
		keys := blockKeys(promptText, s.cfg.BlockChars)
		hits := s.cache.hits(keys)
		s.queries.Add(int64(len(keys)))
		s.hits.Add(int64(hits))
		select {
		case <-time.After(time.Duration(len(keys)-hits) * s.cfg.PrefillPerBlock):
		case <-r.Context().Done():
			return
		}
		s.cache.insert(keys)
		ttft := time.Since(arrived)
		select {
		case <-time.After(s.cfg.Response):
		case <-r.Context().Done():
			return
		}
		n := s.success.Add(1)
		text := fmt.Sprintf("Answered by the llm-platform model double on %s.", httpdouble.Pod())
		prompt := words(req.Prompt)
		for _, m := range req.Messages {
			prompt += words(m.Content)
		}
		completion := len(strings.Fields(text))
		resp := map[string]any{
			"model":   s.cfg.Name,
			"created": time.Now().Unix(),
			"usage":   map[string]int{"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
		}
		if chat {
			resp["id"], resp["object"] = fmt.Sprintf("chatcmpl-%d", n), "chat.completion"
			resp["choices"] = []map[string]any{{"index": 0, "message": map[string]string{"role": "assistant", "content": text}, "finish_reason": "stop"}}
		} else {
			resp["id"], resp["object"] = fmt.Sprintf("cmpl-%d", n), "text_completion"
			resp["choices"] = []map[string]any{{"index": 0, "text": text, "logprobs": nil, "finish_reason": "stop"}}
		}
		w.Header().Set("X-Prefix-Blocks", strconv.Itoa(len(keys)))
		w.Header().Set("X-Prefix-Hit-Blocks", strconv.Itoa(hits))
		w.Header().Set("X-TTFT-Ms", strconv.FormatInt(ttft.Milliseconds(), 10))
		httpdouble.WriteJSON(w, http.StatusOK, resp)
	}
}

// queue answers POST /debug/queue?waiting=N: from now on N phantom
// requests are counted as waiting, on top of the real ones (N=0 clears
// them), so that the replica looks saturated to an endpoint picker.
func (s *server) queue(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("waiting"))
	if err != nil || n < 0 {
		apiError(w, http.StatusBadRequest, "BadRequestError", fmt.Sprintf("waiting=%q: want a number of requests, at least 0", r.URL.Query().Get("waiting")))
		return
	}
	s.phantom.Store(int64(n))
	httpdouble.WriteJSON(w, http.StatusOK, map[string]int64{"phantom_waiting": int64(n), "num_requests_waiting": s.waiting.Load() + int64(n)})
}

// words counts the words of a prompt or message, standing in for tokens.
func words(v any) int {
	switch v := v.(type) {
	case string:
		return len(strings.Fields(v))
	case []any:
		n := 0
		for _, e := range v {
			n += words(e)
		}
		return n
	case map[string]any:
		return words(v["text"])
	}
	return 0
}

// metricSeries are vLLM's series the double exports, with their type and help.
var metricSeries = []struct{ name, kind, help string }{
	{"vllm:num_requests_running", "gauge", "Number of requests currently running on GPU."},
	{"vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed."},
	{"vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage."},
	{"vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage."},
	{"vllm:request_success_total", "counter", "Count of successfully processed requests."},
	{"vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried blocks."},
	{"vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached blocks."},
}

// metrics answers with vLLM's series, labelled with the model's name, and
// the self-check's.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	running := s.running.Load()
	usage := fmt.Sprint(float64(running) / float64(s.cfg.MaxNumSeqs))
	values := map[string]string{
		"vllm:num_requests_running":       fmt.Sprint(running),
		"vllm:num_requests_waiting":       fmt.Sprint(s.waiting.Load() + s.phantom.Load()),
		"vllm:gpu_cache_usage_perc":       usage,
		"vllm:kv_cache_usage_perc":        usage,
		"vllm:request_success_total":      fmt.Sprint(s.success.Load()),
		"vllm:prefix_cache_queries_total": fmt.Sprint(s.queries.Load()),
		"vllm:prefix_cache_hits_total":    fmt.Sprint(s.hits.Load()),
	}
	label := labelEscaper.Replace(s.cfg.Name)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	for _, m := range metricSeries {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s{model_name=\"%s\"} %s\n", m.name, m.help, m.name, m.kind, m.name, label, values[m.name])
	}
	s.facts.WriteMetrics(w)
}

// labelEscaper escapes a Prometheus label value.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
