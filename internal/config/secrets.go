package config

import (
	"fmt"
	"regexp"
	"strings"
)

// tokenPatterns are the shapes of credentials that must never be written in
// clear into a stack file: the file is committed, and args end up in the
// Pulumi state and in every pod spec. Each names what it looks like.
var tokenPatterns = []struct {
	what    string
	pattern *regexp.Regexp
}{
	{"a Hugging Face token", regexp.MustCompile(`\bhf_[A-Za-z0-9]{30,}`)},
	{"a GitHub token", regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})`)},
	{"an AWS access key", regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"an AWS secret key", regexp.MustCompile(`(?i)aws_secret_access_key\s*[=:]\s*[A-Za-z0-9/+=]{40}`)},
	{"a bearer token", regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}=*`)},
}

// secretFlag matches a flag whose value is a credential: --api-key,
// --hf-token, --password, --client-secret. A flag that names a file or an
// environment variable holding it (--token-file, --api-key-env) does not.
var secretFlag = regexp.MustCompile(`(?i)^--?[a-z0-9-]*(token|secret|password|passwd|api-key|apikey)$`)

// secretsInArgs refuses args that carry a credential in clear. The message
// never repeats the value.
func (c *checker) secretsInArgs(cfg *Config) {
	lists := []struct {
		key  string
		args []string
	}{
		{"pipeline.ingestion.args", cfg.Pipeline.Ingestion.Args},
		{"pipeline.transformation.args", cfg.Pipeline.Transformation.Args},
		{"checkpoint.args", cfg.Checkpoint.Args},
	}
	for i, m := range cfg.Serving.Models {
		lists = append(lists, struct {
			key  string
			args []string
		}{fmt.Sprintf("serving.models[%d].args", i), m.Args}, struct {
			key  string
			args []string
		}{fmt.Sprintf("serving.models[%d].source.fetch.args", i), m.Source.Fetch.Args})
	}
	for _, l := range lists {
		for i := range l.args {
			if what := credentialIn(l.args, i); what != "" {
				c.fail(fmt.Sprintf("%s[%d]", l.key, i), "<redacted>",
					"looks like "+what+": args are stored in clear in the stack file, the Pulumi state and the pod spec; "+
						"store it with `pulumi config set --secret "+SecretModelRegistryToken+"` (the server reads it from its environment) "+
						"or pass a reference such as $(HF_TOKEN)", "")
			}
		}
	}
}

// credentialIn says what args[i] looks like when it carries a credential:
// a known token shape anywhere in it, or the literal value of a secret flag
// (--api-key=abc, or --api-key abc as two args).
func credentialIn(args []string, i int) string {
	for _, p := range tokenPatterns {
		if p.pattern.MatchString(args[i]) {
			return p.what
		}
	}
	if flag, value, ok := strings.Cut(args[i], "="); ok && secretFlag.MatchString(flag) && literal(value) {
		return "a credential passed to " + flag
	}
	if i > 0 && secretFlag.MatchString(args[i-1]) && literal(args[i]) {
		return "a credential passed to " + args[i-1]
	}
	return ""
}

// literal reports whether a flag's value is written out, rather than a
// reference the container resolves ($(VAR), ${VAR}) or a path to a file.
func literal(v string) bool {
	return v != "" && !strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "-")
}
