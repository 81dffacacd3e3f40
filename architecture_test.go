package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// components are the packages a stack is composed of. Each owns its Args;
// internal/stack alone translates configuration into them.
var components = []string{"platform", "pipeline", "serving", "checkpoint", "cron", "monitoring"}

// helpers are the internal packages components build with; like components,
// they never see configuration.
var helpers = []string{"internal/availability", "internal/intent", "internal/labels", "internal/names", "internal/podspec", "internal/rollout", "internal/run", "internal/workload"}

// No component imports internal/config or another component, and no helper
// imports internal/config: a sixth component touches only its own package
// and internal/stack.
func TestComponentsOwnTheirArgs(t *testing.T) {
	for _, dir := range append(slices.Clone(components), helpers...) {
		for _, imp := range imports(t, dir) {
			pkg, ok := strings.CutPrefix(imp, "llm-platform/")
			if !ok {
				continue
			}
			assert.NotEqual(t, "internal/config", pkg, "%s imports internal/config: take typed Args instead, filled in internal/stack", dir)
			if pkg != dir {
				assert.NotContains(t, components, pkg, "%s imports the component %s: share through an internal helper or Args", dir, pkg)
			}
		}
	}
}

// imports are the imports of a package's non-test Go files.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "package %s", dir)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range parsed.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			out = append(out, path)
		}
	}
	return out
}
