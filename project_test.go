package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	var declared []string
	for k, v := range proj.Config {
		declared = append(declared, k)
		assert.NotEmpty(t, v.Description, k)
	}
	slices.Sort(declared)
	want := slices.Clone(config.Keys)
	slices.Sort(want)
	assert.Equal(t, want, declared)
	for _, k := range []string{config.SecretModelRegistryToken, config.SecretRegistryCredentials} {
		assert.True(t, proj.Config[k].Secret, k)
	}

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
	root, _ := filepath.Abs(".")
	assert.Equal(t, root, fast.StackConfigDir)
	assert.Equal(t, len(proj.Config), len(fast.Config))
}
