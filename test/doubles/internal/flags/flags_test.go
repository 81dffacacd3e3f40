package flags

import (
	"slices"
	"testing"
)

func TestParseVLLMStyleCommandLine(t *testing.T) {
	p := Parse([]string{
		"--model", "/models/llama/abc", "--served-model-name=llama-3-8b",
		"--enforce-eager", "--tensor-parallel-size", "2", "--trust-remote-code",
		"--port", "8000", "--gpu_memory_utilization=0.9", "--enable-prefix-caching",
	}, "enforce-eager")
	for name, want := range map[string]string{
		"model":                  "/models/llama/abc",
		"served-model-name":      "llama-3-8b",
		"tensor-parallel-size":   "2",
		"port":                   "8000",
		"gpu-memory-utilization": "0.9",
		"enforce-eager":          "true",
		"trust-remote-code":      "",
		"enable-prefix-caching":  "",
	} {
		if !p.Has(name) {
			t.Errorf("--%s: not found", name)
		}
		if got := p.String(name, "unset"); got != want {
			t.Errorf("--%s: got %q, want %q", name, got, want)
		}
	}
	if len(p.Positional) != 0 {
		t.Errorf("positional: got %q, want none", p.Positional)
	}
	port, err := p.Int("port", 1)
	if err != nil || port != 8000 {
		t.Errorf("Int(port): got %d, %v", port, err)
	}
}

func TestParseKeepsPositionalsAroundFlags(t *testing.T) {
	p := Parse([]string{"download", "--quiet", "org/model", "--revision", "abc", "--local-dir", "/models/x", "--", "--not-a-flag"}, "quiet")
	if want := []string{"download", "org/model", "--not-a-flag"}; !slices.Equal(p.Positional, want) {
		t.Errorf("positional: got %q, want %q", p.Positional, want)
	}
	if got := p.String("revision", ""); got != "abc" {
		t.Errorf("--revision: got %q", got)
	}
	if got := p.String("local_dir", ""); got != "/models/x" {
		t.Errorf("--local-dir read as local_dir: got %q", got)
	}
}

func TestParseDefaultsAndBadNumbers(t *testing.T) {
	p := Parse([]string{"-port", "eighty", "--load-seconds=0.5", "--last"})
	if _, err := p.Int("port", 8000); err == nil {
		t.Error("--port eighty: want an error")
	}
	if f, err := p.Float("load-seconds", 2); err != nil || f != 0.5 {
		t.Errorf("--load-seconds=0.5: got %v, %v", f, err)
	}
	if f, err := p.Float("response-ms", 20); err != nil || f != 20 {
		t.Errorf("absent --response-ms: want the default 20, got %v, %v", f, err)
	}
	if !p.Has("last") || p.String("last", "x") != "" {
		t.Errorf("a trailing unknown flag: want present and empty")
	}
}
