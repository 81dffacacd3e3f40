package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/config"
)

// Pulumi.yaml must load under the Pulumi CLI's own schema and declare every
// key the program reads; the generated binary-mode project must too.
func TestProjectFilesLoadUnderPulumisSchema(t *testing.T) {
	proj, err := workspace.LoadProject("Pulumi.yaml")
	require.NoError(t, err)
	assert.Equal(t, config.Project, string(proj.Name))
	assert.Equal(t, "go", proj.Runtime.Name())
	assert.Empty(t, proj.Runtime.Options(), "source mode: `pulumi up` always runs the code in the tree")
	// Pulumi requires every declared key that has no default: the optional
	// secrets must not be declared, or `pulumi preview` refuses a stack without them.
	var declared []string
	for k, v := range proj.Config {
		declared = append(declared, k)
		assert.NotEmpty(t, v.Description, k)
		assert.Nil(t, v.Default, "%s: a default would hide a missing key", k)
	}
	slices.Sort(declared)
	want := slices.Clone(config.RequiredKeys)
	slices.Sort(want)
	assert.Equal(t, want, declared)

	dir := t.TempDir()
	cmd := exec.Command("hack/pulumi.sh", "project")
	cmd.Env = append(os.Environ(), "PULUMI_PROJECT_DIR="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	fast, err := workspace.LoadProject(filepath.Join(dir, "Pulumi.yaml"))
	require.NoError(t, err)
	assert.Equal(t, proj.Name, fast.Name)
	abs, _ := filepath.Abs("bin/llm-platform")
	assert.Equal(t, abs, fast.Runtime.Options()["binary"])
	// Pulumi joins stackConfigDir onto the project's directory, so it must be
	// relative: an absolute path would point inside build/pulumi.
	root, _ := filepath.Abs(".")
	assert.False(t, filepath.IsAbs(fast.StackConfigDir), fast.StackConfigDir)
	assert.Equal(t, root, filepath.Join(dir, fast.StackConfigDir))
	assert.Equal(t, len(proj.Config), len(fast.Config))
}

// The count of bad stack files in docs/testing.md is the count in testdata/invalid.
func TestDocsCountTheInvalidStackFiles(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("docs", "testing.md"))
	require.NoError(t, err)
	m := regexp.MustCompile("`testdata/invalid/` holds (\\d+) small stack files").FindSubmatch(doc)
	require.NotNil(t, m, "docs/testing.md says how many bad stack files there are")
	files, err := filepath.Glob("testdata/invalid/Pulumi.*.yaml")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(len(files)), string(m[1]))
}
