package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llm-platform/test/doubles/internal/httpdouble"
	"llm-platform/test/doubles/internal/selfcheck"
)

func TestServeAnswersProbesAndMetrics(t *testing.T) {
	s := &httpdouble.Server{}
	ts := httptest.NewServer(handler(s, selfcheck.Facts{UID: 65532}))
	defer ts.Close()
	for path, want := range map[string]string{
		"/healthz":     "ok",
		"/readyz":      "ok",
		"/metrics":     "llm_platform_double_uid 65532\n",
		"/debug/self":  `"uid":65532`,
		"/nonexistent": "404 page not found",
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: got %d %q, want it to contain %q", path, resp.StatusCode, b, want)
		}
		if wantOK := path != "/nonexistent"; wantOK != (resp.StatusCode == http.StatusOK) {
			t.Errorf("%s: got %d", path, resp.StatusCode)
		}
	}
}

func TestIngestWritesOneFilePerPod(t *testing.T) {
	out := filepath.Join(t.TempDir(), "raw", "day1")
	path, err := ingest("s3://bucket/x", out, "ingest-abc")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(out, "ingested-ingest-abc.json") {
		t.Errorf("path: got %s", path)
	}
	b, err := os.ReadFile(path)
	var got map[string]string
	if err != nil || json.Unmarshal(b, &got) != nil || got["source"] != "s3://bucket/x" || got["pod"] != "ingest-abc" {
		t.Errorf("content: %s, %v", b, err)
	}
	if _, err := ingest("x", "", "p"); err != nil {
		t.Errorf("no --out: want nothing written and no error, got %v", err)
	}
	blocked := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocked, nil, 0o644)
	if _, err := ingest("x", filepath.Join(blocked, "sub"), "p"); err == nil {
		t.Error("--out under a file: want an error")
	}
}
