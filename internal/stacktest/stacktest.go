// Package stacktest runs the stack program under mocks for tests: it loads a
// stack file as a baseline, lets a test change one key by path, and decodes the
// recorded objects strictly into their k8s.io/api types.
package stacktest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/mock"
	"llm-platform/internal/stack"
	"llm-platform/internal/stackfile"
)

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Config is a stack's configuration as key -> decoded JSON value, easy to change.
type Config struct {
	Stack   string
	Values  map[string]any
	Secrets []string
}

// Load reads Pulumi.<stack>.yaml from the repository root.
func Load(t testing.TB, stackName string) *Config {
	t.Helper()
	sf, err := stackfile.Load(RepoRoot(), stackName)
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{Stack: stackName, Values: map[string]any{}, Secrets: sf.SecretKeys}
	for k, v := range sf.Config {
		var decoded any
		if err := json.Unmarshal([]byte(v), &decoded); err == nil && (strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[")) {
			c.Values[strings.TrimPrefix(k, "llm-platform:")] = decoded
		} else {
			c.Values[strings.TrimPrefix(k, "llm-platform:")] = v
		}
	}
	return c
}

// Set changes the value at path, for example "serving.models[0].gpus". A nil
// value deletes the key.
func (c *Config) Set(t testing.TB, path string, value any) *Config {
	t.Helper()
	if err := set(c.Values, splitPath(path), value); err != nil {
		t.Fatalf("set %s: %v", path, err)
	}
	return c
}

func splitPath(path string) []string {
	var parts []string
	for _, p := range strings.Split(path, ".") {
		for {
			i := strings.Index(p, "[")
			if i < 0 {
				parts = append(parts, p)
				break
			}
			if i > 0 {
				parts = append(parts, p[:i])
			}
			j := strings.Index(p, "]")
			parts = append(parts, p[i:j+1])
			p = p[j+1:]
			if p == "" {
				break
			}
		}
	}
	return parts
}

func set(node any, path []string, value any) error {
	key := path[0]
	last := len(path) == 1
	if strings.HasPrefix(key, "[") {
		list, ok := node.([]any)
		if !ok {
			return fmt.Errorf("%s: not a list", key)
		}
		i, err := strconv.Atoi(strings.Trim(key, "[]"))
		if err != nil || i >= len(list) {
			return fmt.Errorf("%s: no such index", key)
		}
		if last {
			list[i] = value
			return nil
		}
		return set(list[i], path[1:], value)
	}
	m, ok := node.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: not an object", key)
	}
	if last {
		if value == nil {
			delete(m, key)
		} else {
			m[key] = value
		}
		return nil
	}
	child, ok := m[key]
	if !ok {
		child = map[string]any{}
		m[key] = child
	}
	return set(child, path[1:], value)
}

// Lookup serves the configuration as Pulumi would hand it to the program.
func (c *Config) Lookup(key string) (string, bool) {
	v, ok := c.Values[key]
	if !ok {
		return "", false
	}
	if s, isString := v.(string); isString {
		return s, true
	}
	b, _ := json.Marshal(v)
	return string(b), true
}

// PulumiConfig is the configuration in RunInfo.Config form.
func (c *Config) PulumiConfig() map[string]string {
	out := map[string]string{}
	for k := range c.Values {
		out["llm-platform:"+k], _ = c.Lookup(k)
	}
	return out
}

// Config is the configuration loaded and validated, as the program sees it.
func (c *Config) Config(t testing.TB) config.Config {
	t.Helper()
	res, err := config.Load(c.Lookup, c.IsSecret)
	if err != nil {
		t.Fatal(err)
	}
	return res.Config
}

// IsSecret reports whether key was set as a secret.
func (c *Config) IsSecret(key string) bool {
	for _, s := range c.Secrets {
		if s == "llm-platform:"+key {
			return true
		}
	}
	return false
}

// Result is what one run of the program registered.
type Result struct {
	*mock.Recorder
	Objects []mock.Object
}

// Run runs the stack program with the configuration; it fails the test on error.
func Run(t testing.TB, c *Config) *Result {
	t.Helper()
	res, err := TryRun(c)
	if err != nil {
		t.Fatalf("stack %s: %v", c.Stack, err)
	}
	return res
}

// TryRun runs the stack program and returns its error.
func TryRun(c *Config) (*Result, error) {
	rec, err := mock.Run(stack.Program, c.Stack, c.PulumiConfig(), c.Secrets)
	return &Result{Recorder: rec, Objects: rec.Objects()}, err
}

// Find returns the object of kind and name, or fails the test.
func (r *Result) Find(t testing.TB, kind, name string) mock.Object {
	t.Helper()
	for _, o := range r.Objects {
		if o.Kind() == kind && o.Name() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among %d objects", kind, name, len(r.Objects))
	return mock.Object{}
}

// Only returns the one object of kind, failing when there is not exactly one.
func (r *Result) Only(t testing.TB, kind string) mock.Object {
	t.Helper()
	return r.OnlyNamed(t, kind, "")
}

// OnlyNamed is the one object of kind whose name starts with prefix (a Job
// named by its spec: "ingestion-", "fetch-<model>-").
func (r *Result) OnlyNamed(t testing.TB, kind, prefix string) mock.Object {
	t.Helper()
	var found []mock.Object
	for _, o := range r.Objects {
		if o.Kind() == kind && strings.HasPrefix(o.Name(), prefix) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s named %s*, want exactly one", len(found), kind, prefix)
	}
	return found[0]
}

// Has reports whether an object of kind and name exists.
func (r *Result) Has(kind, name string) bool {
	for _, o := range r.Objects {
		if o.Kind() == kind && o.Name() == name {
			return true
		}
	}
	return false
}

// Decode finds the object and decodes it strictly into out.
func (r *Result) Decode(t testing.TB, kind, name string, out any) mock.Object {
	t.Helper()
	o := r.Find(t, kind, name)
	if err := o.Decode(out); err != nil {
		t.Fatal(err)
	}
	return o
}

// Deployment returns the Deployment name.
func (r *Result) Deployment(t testing.TB, name string) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	r.Decode(t, "Deployment", name, &d)
	return d
}

// PodTemplate is a pod template with where it came from.
type PodTemplate struct {
	Owner  string // Kind/name
	Labels map[string]string
	Spec   corev1.PodSpec
}

// PodTemplates decodes every pod template of every workload kind.
func (r *Result) PodTemplates(t testing.TB) []PodTemplate {
	t.Helper()
	var out []PodTemplate
	for _, o := range r.Objects {
		var tpl *corev1.PodTemplateSpec
		switch o.Kind() {
		case "Deployment":
			var d appsv1.Deployment
			mustDecode(t, o, &d)
			tpl = &d.Spec.Template
		case "StatefulSet":
			var s appsv1.StatefulSet
			mustDecode(t, o, &s)
			tpl = &s.Spec.Template
		case "Job":
			var j batchv1.Job
			mustDecode(t, o, &j)
			tpl = &j.Spec.Template
		case "CronJob":
			var c batchv1.CronJob
			mustDecode(t, o, &c)
			tpl = &c.Spec.JobTemplate.Spec.Template
		default:
			continue
		}
		out = append(out, PodTemplate{Owner: o.Kind() + "/" + o.Name(), Labels: tpl.Labels, Spec: tpl.Spec})
	}
	return out
}

func mustDecode(t testing.TB, o mock.Object, out any) {
	t.Helper()
	if err := o.Decode(out); err != nil {
		t.Fatal(err)
	}
}

// MultiNode are the values that make prod's 70B model a model of groups of
// two 4-GPU nodes (tensor parallel within a node, pipeline parallel
// across), with a quota that holds them; set on top of prod by MultiNodeProd.
func MultiNode() map[string]any {
	return map[string]any{
		"serving.models[0].nodes": 2,
		"serving.models[0].args": []any{"--model", "$(MODEL_PATH)", "--served-model-name", "meta-llama/Meta-Llama-3-70B-Instruct",
			"--tensor-parallel-size", "4", "--pipeline-parallel-size", "2", "--port", "8000"},
		"serving.models[0].scheduling.schedulerName": "volcano",
		"namespace.quota": map[string]any{"cpu": "640", "memory": "4Ti", "gpus": 64, "pods": 64, "storage": "8Ti"},
	}
}

// MultiNodeProd is prod with MultiNode set.
func MultiNodeProd(t testing.TB) *Config {
	t.Helper()
	c := Load(t, "prod")
	for k, v := range MultiNode() {
		c.Set(t, k, v)
	}
	return c
}
