package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"llm-platform/serving"
	"llm-platform/test/doubles/internal/selfcheck"
)

func TestParseConfigReadsVLLMsCommandLine(t *testing.T) {
	c, err := parseConfig([]string{"--model", "/models/m/abc", "--served-model-name=llama", "--tensor-parallel-size", "2",
		"--enforce-eager", "--port", "9000", "--load-seconds", "0.25", "--response-ms=5", "--max-num-seqs", "4"})
	if err != nil {
		t.Fatal(err)
	}
	want := config{Model: "/models/m/abc", Name: "llama", Host: "0.0.0.0", Port: 9000, Load: 250 * time.Millisecond, Response: 5 * time.Millisecond, MaxNumSeqs: 4,
		BlockChars: 64, CacheBlocks: 256, PrefillPerBlock: 10 * time.Millisecond}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	c, err = parseConfig([]string{"--model", "/m", "--prefix-block-chars", "16", "--prefix-cache-blocks=8", "--prefill-ms-per-block", "2.5"})
	if err != nil {
		t.Fatal(err)
	}
	if c.BlockChars != 16 || c.CacheBlocks != 8 || c.PrefillPerBlock != 2500*time.Microsecond {
		t.Errorf("the prefix cache's flags: got %+v", c)
	}
	c, err = parseConfig([]string{"serve", "/models/m/abc", "--trust-remote-code"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "/models/m/abc" || c.Name != c.Model || c.Port != 8000 || c.Load != 2*time.Second || c.Response != 20*time.Millisecond {
		t.Errorf("vllm serve form with defaults: got %+v", c)
	}
}

func TestParseConfigNamesEveryProblem(t *testing.T) {
	_, err := parseConfig([]string{"--port", "x", "--max-num-seqs", "0", "--prefix-block-chars", "0", "--prefix-cache-blocks", "-1", "--prefill-ms-per-block", "x"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, part := range []string{"--model is required", "--port", "--max-num-seqs", "--prefix-block-chars", "--prefix-cache-blocks", "--prefill-ms-per-block"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("the error does not name %q: %v", part, err)
		}
	}
}

func TestMarkerIsTheStacks(t *testing.T) {
	if marker != serving.FetchMarker {
		t.Errorf("the double checks %q but the stack's fetch run writes %q", marker, serving.FetchMarker)
	}
}

func TestCheckWeightsRefusesIncompleteWeights(t *testing.T) {
	dir := t.TempDir()
	_, err := checkWeights(dir)
	want := "refusing to start: " + filepath.Join(dir, marker) + " not found: the weights are not complete"
	if err == nil || err.Error() != want {
		t.Errorf("no marker: got %v, want %q", err, want)
	}
	if _, err := checkWeights(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory: want an error")
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := checkWeights(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file: got %v, want not a directory", err)
	}
	os.WriteFile(filepath.Join(dir, marker), []byte("abc123\n"), 0o644)
	if rev, err := checkWeights(dir); err != nil || rev != "abc123" {
		t.Errorf("complete weights: got %q, %v; want the revision abc123", rev, err)
	}
}

// testServer is a double serving model "m", loaded unless loading is set.
func testServer(t *testing.T, cfg config, loaded bool) (*server, *httptest.Server) {
	t.Helper()
	cfg.Model, cfg.Name = "/models/m", "m"
	if cfg.MaxNumSeqs == 0 {
		cfg.MaxNumSeqs = 256
	}
	if cfg.BlockChars == 0 {
		cfg.BlockChars = 64
	}
	if cfg.CacheBlocks == 0 {
		cfg.CacheBlocks = 256
	}
	s := newServer(cfg, selfcheck.Facts{UID: 65532}, "abc")
	s.ready.Store(loaded)
	ts := httptest.NewServer(s.http.Handler)
	t.Cleanup(ts.Close)
	return s, ts
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUnavailableWhileLoading(t *testing.T) {
	s, ts := testServer(t, config{}, false)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/health", ""},
		{"GET", "/v1/models", ""},
		{"POST", "/v1/completions", `{"prompt":"hi"}`},
		{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`},
	} {
		if code, body := call(t, c.method, ts.URL+c.path, c.body); code != http.StatusServiceUnavailable {
			t.Errorf("%s %s while loading: got %d %s, want 503", c.method, c.path, code, body)
		}
	}
	if code, _ := call(t, "GET", ts.URL+"/metrics", ""); code != http.StatusOK {
		t.Errorf("/metrics while loading: got %d, want 200", code)
	}
	s.ready.Store(true)
	if code, body := call(t, "GET", ts.URL+"/health", ""); code != http.StatusOK {
		t.Errorf("/health once loaded: got %d %s", code, body)
	}
	code, body := call(t, "GET", ts.URL+"/v1/models", "")
	var models struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.Unmarshal([]byte(body), &models); code != http.StatusOK || err != nil {
		t.Fatalf("/v1/models once loaded: got %d %s", code, body)
	}
	if models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "m" || models.Data[0].Object != "model" {
		t.Errorf("/v1/models: got %s", body)
	}
}

func TestCompletionsAreOpenAIShaped(t *testing.T) {
	_, ts := testServer(t, config{}, true)
	code, body := call(t, "POST", ts.URL+"/v1/completions", `{"model":"m","prompt":"one two three","max_tokens":8}`)
	var c struct {
		ID, Object, Model string
		Choices           []struct{ Text string }
		Usage             struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(body), &c); code != http.StatusOK || err != nil {
		t.Fatalf("completion: got %d %s", code, body)
	}
	if c.ID == "" || c.Object != "text_completion" || c.Model != "m" || len(c.Choices) != 1 || c.Choices[0].Text == "" || c.Usage.PromptTokens != 3 {
		t.Errorf("completion: got %s", body)
	}
	code, body = call(t, "POST", ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	var chat struct {
		Object  string
		Choices []struct {
			Message struct{ Role, Content string }
		}
	}
	if err := json.Unmarshal([]byte(body), &chat); code != http.StatusOK || err != nil {
		t.Fatalf("chat completion: got %d %s", code, body)
	}
	if chat.Object != "chat.completion" || len(chat.Choices) != 1 || chat.Choices[0].Message.Role != "assistant" || chat.Choices[0].Message.Content == "" {
		t.Errorf("chat completion: got %s", body)
	}
	if code, body := call(t, "POST", ts.URL+"/v1/completions", `{"model":"other","prompt":"x"}`); code != http.StatusNotFound || !strings.Contains(body, "does not exist") {
		t.Errorf("another model's name: got %d %s, want vLLM's 404", code, body)
	}
	if code, _ := call(t, "POST", ts.URL+"/v1/completions", `not json`); code != http.StatusBadRequest {
		t.Errorf("a body that is not JSON: got %d, want 400", code)
	}
}

// seriesLine is one sample line of the text format.
var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// scrape reads /metrics into a map from series (with labels) to value.
func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	code, body := call(t, "GET", url+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := seriesLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line of the text format: %q", line)
		}
		out[m[1]+m[2]] = m[3]
	}
	return out
}

func TestMetricsUseVLLMsSeriesNames(t *testing.T) {
	_, ts := testServer(t, config{}, true)
	call(t, "POST", ts.URL+"/v1/completions", `{"prompt":"x"}`)
	got := scrape(t, ts.URL)
	for series, want := range map[string]string{
		`vllm:num_requests_running{model_name="m"}`:  "0",
		`vllm:num_requests_waiting{model_name="m"}`:  "0",
		`vllm:gpu_cache_usage_perc{model_name="m"}`:  "0",
		`vllm:request_success_total{model_name="m"}`: "1",
		`llm_platform_double_root_writable`:          "0",
		`llm_platform_double_uid`:                    "65532",
	} {
		if got[series] != want {
			t.Errorf("%s: got %q, want %q", series, got[series], want)
		}
	}
}

// Completions beyond --max-num-seqs wait, and the queue shows in
// vllm:num_requests_waiting as it would for an autoscaler.
func TestCompletionsBeyondMaxNumSeqsWait(t *testing.T) {
	_, ts := testServer(t, config{MaxNumSeqs: 1, Response: 400 * time.Millisecond}, true)
	done := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`))
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := scrape(t, ts.URL)
		if got[`vllm:num_requests_running{model_name="m"}`] == "1" && got[`vllm:num_requests_waiting{model_name="m"}`] == "1" {
			if got[`vllm:gpu_cache_usage_perc{model_name="m"}`] != "1" {
				t.Errorf("one of one sequence slots in use: got cache usage %s", got[`vllm:gpu_cache_usage_perc{model_name="m"}`])
			}
			if got[`vllm:kv_cache_usage_perc{model_name="m"}`] != "1" {
				t.Errorf("one of one sequence slots in use: got vllm:kv_cache_usage_perc %s", got[`vllm:kv_cache_usage_perc{model_name="m"}`])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw one running and one waiting: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a queued completion: got %d, want 200", code)
		}
	}
}

// completion is the prefix-cache headers of one completion's answer.
type completion struct {
	blocks, hits, ttftMs int
}

// complete posts a completion of prompt and reads its prefix-cache headers.
func complete(t *testing.T, url, prompt string) completion {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": "m", "prompt": prompt})
	return post(t, url+"/v1/completions", string(body))
}

// post posts a completion request and reads its prefix-cache headers.
func post(t *testing.T, url, body string) completion {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("completion: got %d", resp.StatusCode)
	}
	var c completion
	for name, v := range map[string]*int{"X-Prefix-Blocks": &c.blocks, "X-Prefix-Hit-Blocks": &c.hits, "X-TTFT-Ms": &c.ttftMs} {
		n, err := strconv.Atoi(resp.Header.Get(name))
		if err != nil {
			t.Fatalf("%s: got %q, want an integer", name, resp.Header.Get(name))
		}
		*v = n
	}
	return c
}

// long is a prompt of n distinct characters.
func long(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d ", i)
	}
	return b.String()[:n]
}

func TestPrefixCacheHitsARepeatedLongPrefix(t *testing.T) {
	_, ts := testServer(t, config{BlockChars: 8}, true)
	prompt := long(100) // 12 full blocks and 4 characters not cached
	if got := complete(t, ts.URL, prompt); got.blocks != 12 || got.hits != 0 {
		t.Errorf("first time: got %d block(s), %d hit(s); want 12, 0", got.blocks, got.hits)
	}
	if got := complete(t, ts.URL, prompt); got.blocks != 12 || got.hits != 12 {
		t.Errorf("the same prompt again: got %d block(s), %d hit(s); want 12, 12", got.blocks, got.hits)
	}
	if got := complete(t, ts.URL, prompt[:64]+strings.Repeat("x", 40)); got.blocks != 13 || got.hits != 8 {
		t.Errorf("the same 64 characters then others: got %d block(s), %d hit(s); want 13, 8", got.blocks, got.hits)
	}
	// A chat's messages count as their contents concatenated in order,
	// text parts included.
	body, _ := json.Marshal(map[string]any{"messages": []any{
		map[string]any{"role": "system", "content": prompt[:30]},
		map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": prompt[30:]}}},
	}})
	if got := post(t, ts.URL+"/v1/chat/completions", string(body)); got.blocks != 12 || got.hits != 12 {
		t.Errorf("a chat of the same text: got %d block(s), %d hit(s); want 12, 12", got.blocks, got.hits)
	}
}

func TestPrefixCacheMissesADifferentPrefix(t *testing.T) {
	_, ts := testServer(t, config{BlockChars: 8}, true)
	prompt := long(96)
	complete(t, ts.URL, prompt)
	// Block keys are chained: the same blocks after a different first one
	// are not the same blocks.
	if got := complete(t, ts.URL, "X"+prompt[1:]); got.blocks != 12 || got.hits != 0 {
		t.Errorf("another first character: got %d block(s), %d hit(s); want 12, 0", got.blocks, got.hits)
	}
	if got := complete(t, ts.URL, "short"); got.blocks != 0 || got.hits != 0 {
		t.Errorf("a prompt shorter than a block: got %d block(s), %d hit(s); want 0, 0", got.blocks, got.hits)
	}
}

func TestPrefixCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	s, ts := testServer(t, config{BlockChars: 4, CacheBlocks: 4}, true)
	a, b := "aaaabbbbccccdddd", "eeeeffff"
	complete(t, ts.URL, a)
	if n := s.cache.len(); n != 4 {
		t.Fatalf("after 4 blocks: %d cached, want 4", n)
	}
	// b's 2 blocks evict a's tail, not its head.
	if got := complete(t, ts.URL, b); got.hits != 0 {
		t.Errorf("b: got %d hit(s), want 0", got.hits)
	}
	if n := s.cache.len(); n != 4 {
		t.Errorf("at capacity: %d cached, want 4", n)
	}
	if got := complete(t, ts.URL, a); got.hits != 2 {
		t.Errorf("a after b: got %d hit(s), want its 2 leading blocks", got.hits)
	}
	// a's 4 blocks are now the most recent: b's are gone.
	if got := complete(t, ts.URL, b); got.hits != 0 {
		t.Errorf("b after a again: got %d hit(s), want 0", got.hits)
	}
	// A prompt longer than the cache keeps its leading blocks.
	complete(t, ts.URL, "0000111122223333444455556666")
	if got := complete(t, ts.URL, "0000111122223333444455556666"); got.hits != 4 {
		t.Errorf("7 blocks through a cache of 4: got %d hit(s), want 4", got.hits)
	}
}

func TestTTFTReflectsPrefillOfMisses(t *testing.T) {
	_, ts := testServer(t, config{BlockChars: 8, PrefillPerBlock: 30 * time.Millisecond}, true)
	// Lower bounds are the sleeps themselves; upper bounds are relative, so
	// a loaded machine (CI runs other tiers beside) cannot fail them.
	prompt := long(80)
	cold := complete(t, ts.URL, prompt)
	if cold.hits != 0 || cold.ttftMs < 300 {
		t.Errorf("10 misses of 30ms: got %d hit(s), TTFT %dms; want 0, at least 300ms", cold.hits, cold.ttftMs)
	}
	if got := complete(t, ts.URL, prompt); got.hits != 10 || got.ttftMs >= cold.ttftMs-150 {
		t.Errorf("10 hits: got %d hit(s), TTFT %dms; want 10, at least 150ms under the cold %dms", got.hits, got.ttftMs, cold.ttftMs)
	}
	if got := complete(t, ts.URL, prompt[:40]+strings.Repeat("y", 40)); got.hits != 5 || got.ttftMs < 150 {
		t.Errorf("5 hits, 5 misses: got %d hit(s), TTFT %dms; want 5, at least 150ms", got.hits, got.ttftMs)
	}
}

// Time to first token includes the wait for a sequence slot.
func TestTTFTIncludesTheWaitForASlot(t *testing.T) {
	_, ts := testServer(t, config{MaxNumSeqs: 1, Response: 300 * time.Millisecond}, true)
	ttfts := make(chan int, 2)
	for range 2 {
		go func() {
			ttft := -1
			if resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x"}`)); err == nil {
				resp.Body.Close()
				if n, err := strconv.Atoi(resp.Header.Get("X-TTFT-Ms")); err == nil {
					ttft = n
				}
			}
			ttfts <- ttft
		}()
	}
	first, second := <-ttfts, <-ttfts
	if first < 0 || second < 300 || second-first < 250 {
		t.Errorf("two completions through one slot: got TTFTs %dms and %dms, want the second to wait the first's 300ms", first, second)
	}
}

func TestMetricsCountPrefixCacheBlocks(t *testing.T) {
	_, ts := testServer(t, config{BlockChars: 8}, true)
	complete(t, ts.URL, long(24))
	complete(t, ts.URL, long(24))
	complete(t, ts.URL, "X"+long(24)[1:])
	got := scrape(t, ts.URL)
	for series, want := range map[string]string{
		`vllm:kv_cache_usage_perc{model_name="m"}`:        "0",
		`vllm:prefix_cache_queries_total{model_name="m"}`: "9",
		`vllm:prefix_cache_hits_total{model_name="m"}`:    "3",
		`vllm:request_success_total{model_name="m"}`:      "3",
	} {
		if got[series] != want {
			t.Errorf("%s: got %q, want %q", series, got[series], want)
		}
	}
	_, body := call(t, "GET", ts.URL+"/metrics", "")
	for _, line := range []string{
		"# TYPE vllm:kv_cache_usage_perc gauge",
		"# TYPE vllm:prefix_cache_queries_total counter",
		"# TYPE vllm:prefix_cache_hits_total counter",
		"# HELP vllm:prefix_cache_hits_total ",
	} {
		if !strings.Contains(body, "\n"+line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}
}

func TestDebugQueueAddsPhantomWaitingRequests(t *testing.T) {
	_, ts := testServer(t, config{}, true)
	waiting := func() string { return scrape(t, ts.URL)[`vllm:num_requests_waiting{model_name="m"}`] }
	if code, body := call(t, "POST", ts.URL+"/debug/queue?waiting=7", ""); code != http.StatusOK {
		t.Fatalf("POST /debug/queue?waiting=7: got %d %s", code, body)
	}
	if got := waiting(); got != "7" {
		t.Errorf("7 phantom requests: got waiting %s, want 7", got)
	}
	if got := complete(t, ts.URL, "x"); got.blocks != 0 {
		t.Errorf("a completion beside phantom requests: got %+v", got)
	}
	if code, _ := call(t, "POST", ts.URL+"/debug/queue?waiting=3", ""); code != http.StatusOK || waiting() != "3" {
		t.Errorf("waiting=3 sets, not adds: got waiting %s, want 3", waiting())
	}
	if code, _ := call(t, "POST", ts.URL+"/debug/queue?waiting=0", ""); code != http.StatusOK || waiting() != "0" {
		t.Errorf("waiting=0: got waiting %s, want 0 (cleared)", waiting())
	}
	for _, q := range []string{"", "?waiting=-1", "?waiting=x"} {
		if code, _ := call(t, "POST", ts.URL+"/debug/queue"+q, ""); code != http.StatusBadRequest {
			t.Errorf("POST /debug/queue%s: got %d, want 400", q, code)
		}
	}
}
