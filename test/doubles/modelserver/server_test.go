package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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
	want := config{Model: "/models/m/abc", Name: "llama", Host: "0.0.0.0", Port: 9000, Load: 250 * time.Millisecond, Response: 5 * time.Millisecond, MaxNumSeqs: 4}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
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
	_, err := parseConfig([]string{"--port", "x", "--max-num-seqs", "0"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, part := range []string{"--model is required", "--port", "--max-num-seqs"} {
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
