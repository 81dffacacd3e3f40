//go:build e2e

package e2epulumi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/engine"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// upgradeFrom is the last version that landed before claims, runs and kept
// objects got their present identities (claims named by class and mode, the
// ingestion Job by its spec, the namespace and claims through the adopter
// provider). Stacks deployed with it must upgrade with a plain `pulumi up`.
const upgradeFrom = "987eb6a"

// A stack deployed by the last landed version, upgraded by this one: the
// serving Deployment is updated in place (never deleted and recreated), the
// namespace is the same object, the claims of the old names are kept, and
// the result has no changes left.
func TestUpgradeFromTheLastLandedVersion(t *testing.T) {
	if out, err := clone.Run(time.Minute, "git -C "+root+" cat-file -e "+upgradeFrom+"^{commit}"); err != nil {
		t.Skipf("UPGRADE TEST SKIPPED: commit %s is not in this clone (a shallow clone?): %s", upgradeFrom, out)
	}
	old := filepath.Join(root, "build", "e2e-pulumi-old")
	require.NoError(t, os.RemoveAll(old))
	require.NoError(t, os.MkdirAll(filepath.Join(old, "build"), 0o755))
	out, err := clone.Run(time.Minute, "git -C "+root+" archive "+upgradeFrom+" | tar -x -C "+old)
	require.NoError(t, err, out)
	require.NoError(t, os.Symlink(filepath.Join(root, "build", "bin"), filepath.Join(old, "build", "bin")))
	// That version declared its optional secrets in Pulumi.yaml, which Pulumi
	// then required (the first bug of the engine issue); drop them as its
	// users had to.
	project, err := os.ReadFile(filepath.Join(old, "Pulumi.yaml"))
	require.NoError(t, err)
	cut := strings.Index(string(project), "  modelRegistryToken:")
	require.Positive(t, cut)
	require.NoError(t, os.WriteFile(filepath.Join(old, "Pulumi.yaml"), project[:cut], 0o644))

	require.NoError(t, localcluster.PrepareNodes(kubectl, stackConfig(t, "dev")), "the dev pool's nodes")
	const ns = "llm-platform-upgrade"
	stackFile := strings.Replace(readFile(t, "Pulumi.dev.yaml"), "name: llm-platform-dev", "name: "+ns, 1)
	require.NoError(t, os.WriteFile(filepath.Join(old, "Pulumi.upgrade.yaml"), []byte(stackFile), 0o644))
	oldClone := &engine.Clone{Dir: old, Env: clone.Env}
	for _, line := range []string{"pulumi stack init upgrade", "pulumi up --yes --skip-preview --non-interactive --stack upgrade"} {
		out, err := oldClone.Run(15*time.Minute, line)
		require.NoError(t, err, "the old version: %s\n%s", line, out)
	}
	deploymentBefore := getDeployment(t, ns, names.Inference("llama-3-8b"))
	var nsBefore corev1.Namespace
	require.NoError(t, kubectl.GetJSON(&nsBefore, "namespace", ns))
	oldClaims := claimUIDs(t, ns)
	require.Contains(t, oldClaims, "pipeline-data")
	require.Contains(t, oldClaims, "model-cache-llama-3-8b")

	// The same stack file, with the salt the old version's stack init wrote.
	upgraded, err := os.ReadFile(filepath.Join(old, "Pulumi.upgrade.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(work, "Pulumi.upgrade.yaml"), upgraded, 0o644))
	defer os.Remove(filepath.Join(work, "Pulumi.upgrade.yaml"))
	sh(t, 15*time.Minute, "make deploy STACK=upgrade PULUMI_FLAGS='--yes --skip-preview'")

	deploymentAfter := getDeployment(t, ns, names.Inference("llama-3-8b"))
	assert.Equal(t, deploymentBefore.UID, deploymentAfter.UID, "the serving Deployment was updated in place, never deleted")
	assert.Equal(t, int32(1), deploymentAfter.Status.AvailableReplicas)
	var nsAfter corev1.Namespace
	require.NoError(t, kubectl.GetJSON(&nsAfter, "namespace", ns))
	assert.Equal(t, nsBefore.UID, nsAfter.UID, "the namespace is the same object")
	after := claimUIDs(t, ns)
	for name, uid := range oldClaims {
		assert.Equal(t, uid, after[name], "claim %s of the old name is kept", name)
	}
	assert.Contains(t, claimsOf(deploymentAfter), names.ModelCache("llama-3-8b", "", "ReadWriteOnce"))
	require.Len(t, ingestionJobs(t, ns), 1)
	pulumi(t, 5*time.Minute, "preview --stack upgrade --expect-no-changes")
	pulumi(t, 5*time.Minute, "preview --stack upgrade --refresh --expect-no-changes")
}
