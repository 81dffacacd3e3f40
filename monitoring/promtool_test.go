//go:build promtool

package monitoring_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

// Prod's PrometheusRule, as the stack renders it, checked by Prometheus'
// own tool: every expression parses (`promtool check rules`), and the rule
// unit tests of testdata/alerts_test.yaml pass (`promtool test rules`). Run
// by `make alerts`, which builds promtool first.
func TestAlertsWithPromtool(t *testing.T) {
	promtool := filepath.Join(stacktest.RepoRoot(), "build", "bin", "promtool")
	require.FileExists(t, promtool, "make alerts builds it (hack/tools.sh checks)")
	objs, err := render.Objects(stacktest.RepoRoot(), "prod")
	require.NoError(t, err)
	var spec any
	for _, o := range objs {
		if o.Kind() == "PrometheusRule" {
			spec = o.Fields["spec"]
		}
	}
	require.NotNil(t, spec, "prod renders a PrometheusRule")
	rules, err := yaml.Marshal(spec)
	require.NoError(t, err)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644))
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644))

	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		t.Logf("promtool %v:\n%s", args, out)
		require.NoError(t, err, "promtool %v", args)
	}
}
