package render_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

// BenchmarkRender20Models is the profile behind BENCHMARKS.md's scaling finding:
//
//	go test ./internal/render -run XXX -bench Render20 -cpuprofile cpu.out
func BenchmarkRender20Models(b *testing.B) {
	dir := b.TempDir()
	c := stacktest.Load(b, "prod")
	models := []any{}
	tpl := c.Values["serving"].(map[string]any)["models"].([]any)[1].(map[string]any)
	for i := range 20 {
		m := map[string]any{}
		for k, v := range tpl {
			m[k] = v
		}
		m["name"] = fmt.Sprintf("model-%02d", i)
		models = append(models, m)
	}
	c.Set(b, "serving.models", models)
	c.Set(b, "namespace.quota", map[string]any{"cpu": "10000", "memory": "100Ti", "gpus": 1000, "pods": 1000, "storage": "1000Ti"})
	cfg := map[string]any{}
	for k, v := range c.Values {
		cfg["llm-platform:"+k] = v
	}
	text, _ := yaml.Marshal(map[string]any{"config": cfg})
	os.WriteFile(filepath.Join(dir, "Pulumi.bench.yaml"), text, 0o644)
	b.ResetTimer()
	for range b.N {
		objs, err := render.Objects(dir, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := render.Manifests(objs); err != nil {
			b.Fatal(err)
		}
	}
}
