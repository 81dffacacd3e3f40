//go:build e2e

package e2epulumi

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/engine"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// upgrades are landed versions whose stacks must upgrade to this one with a
// plain `pulumi up`, each at a change of how objects are named or owned.
var upgrades = []struct {
	name, commit string
	// newObjects are the objects this version names differently from the
	// old one: they exist after the upgrade, and oldObjects no longer do.
	newObjects, oldObjects []string
}{{
	// The last version before claims, runs and kept objects got their present
	// identities (claims named by class and mode, the ingestion Job by its
	// spec, the namespace and claims through the adopter provider).
	name: "identities", commit: "987eb6a",
}, {
	// The last version before the components were reshaped (issue 14): the
	// transformation Deployment's Pulumi name changed (an alias keeps it),
	// the namespace-wide policies became per-workload ones.
	name: "components", commit: "d2e9120",
	newObjects: []string{"networkpolicy.networking.k8s.io/" + names.NetworkEgress(names.Ingestion), "networkpolicy.networking.k8s.io/" + names.NetworkIngress(names.Inference("llama-3-8b"))},
	oldObjects: []string{"networkpolicy.networking.k8s.io/allow-egress", "networkpolicy.networking.k8s.io/allow-inference-clients", "networkpolicy.networking.k8s.io/allow-platform-internal"},
}}

// A stack deployed by a landed version, upgraded by this one: the workloads
// are updated in place (never deleted and recreated) and the serving
// Deployment never falls below its rollout floor, the namespace is the same object,
// the claims are kept, and the result has no changes left.
func TestUpgradeFromLandedVersions(t *testing.T) {
	for _, u := range upgrades {
		t.Run(u.name, func(t *testing.T) {
			if out, err := clone.Run(time.Minute, "git -C "+root+" cat-file -e "+u.commit+"^{commit}"); err != nil {
				t.Skipf("UPGRADE TEST SKIPPED: commit %s is not in this clone (a shallow clone?): %s", u.commit, out)
			}
			upgradeFrom(t, u.name, u.commit, u.newObjects, u.oldObjects)
		})
	}
}

func upgradeFrom(t *testing.T, name, commit string, newObjects, oldObjects []string) {
	old := filepath.Join(root, "build", "e2e-pulumi-old-"+name)
	require.NoError(t, os.RemoveAll(old))
	require.NoError(t, os.MkdirAll(filepath.Join(old, "build"), 0o755))
	out, err := clone.Run(time.Minute, "git -C "+root+" archive "+commit+" | tar -x -C "+old)
	require.NoError(t, err, out)
	require.NoError(t, os.Symlink(filepath.Join(root, "build", "bin"), filepath.Join(old, "build", "bin")))
	// The first of these versions declared its optional secrets in
	// Pulumi.yaml, which Pulumi then required (the first bug of the engine
	// issue); drop them as its users had to.
	project, err := os.ReadFile(filepath.Join(old, "Pulumi.yaml"))
	require.NoError(t, err)
	if cut := strings.Index(string(project), "  modelRegistryToken:"); cut > 0 {
		require.NoError(t, os.WriteFile(filepath.Join(old, "Pulumi.yaml"), project[:cut], 0o644))
	}

	require.NoError(t, localcluster.PrepareNodes(kubectl, stackConfig(t, "dev")), "the dev pool's nodes")
	ns := "llm-platform-up-" + name
	stack := "upgrade-" + name
	// Each version runs its own dev stack file, in a namespace of its own.
	oldFile, err := os.ReadFile(filepath.Join(old, "Pulumi.dev.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(old, "Pulumi."+stack+".yaml"), []byte(inNamespace(string(oldFile), ns)), 0o644))
	oldClone := &engine.Clone{Dir: old, Env: clone.Env}
	out, err = oldClone.Run(time.Minute, "pulumi stack init "+stack)
	require.NoError(t, err, out)
	// Whatever happens, free the dev pool's GPU for what runs next; the
	// namespace and claims stay.
	t.Cleanup(func() {
		if out, err := oldClone.Run(10*time.Minute, "pulumi destroy --yes --skip-preview --non-interactive --stack "+stack); err != nil {
			t.Errorf("destroy the upgrade stack: %v\n%s", err, out)
		}
	})
	out, err = oldClone.Run(15*time.Minute, "pulumi up --yes --skip-preview --non-interactive --stack "+stack)
	require.NoError(t, err, "the old version's pulumi up\n%s", out)
	model := names.Inference("llama-3-8b")
	servingBefore := getDeployment(t, ns, model)
	transformationBefore := getDeployment(t, ns, names.Transformation)
	var checkpointBefore appsv1.StatefulSet
	require.NoError(t, kubectl.GetJSON(&checkpointBefore, "-n", ns, "statefulset", names.Checkpoint))
	var nsBefore corev1.Namespace
	require.NoError(t, kubectl.GetJSON(&nsBefore, "namespace", ns))
	oldClaims := claimUIDs(t, ns)
	require.NotEmpty(t, oldClaims)

	// This version's stack file, with the salt the old version's stack init wrote.
	initialized, err := os.ReadFile(filepath.Join(old, "Pulumi."+stack+".yaml"))
	require.NoError(t, err)
	saltLine := regexp.MustCompile(`(?m)^encryptionsalt: .*\n`)
	salt := saltLine.Find(initialized)
	require.NotEmpty(t, salt)
	// The clone's dev file carries the dev stack's own salt: drop it.
	current := saltLine.ReplaceAllString(readFile(t, "Pulumi.dev.yaml"), "")
	require.NoError(t, os.WriteFile(filepath.Join(work, "Pulumi."+stack+".yaml"), append(salt, inNamespace(current, ns)...), 0o644))
	defer os.Remove(filepath.Join(work, "Pulumi."+stack+".yaml"))
	// The rollout rules' floor, as in the transitions: the dev pool has no
	// spare GPU, so its one replica is replaced in place (maxUnavailable 1).
	upgraded := stackConfig(t, stack)
	stop := watchAvailability(ns, availabilityFloors(upgraded, upgraded))
	sh(t, 15*time.Minute, "make deploy STACK="+stack+" PULUMI_FLAGS='--yes --skip-preview'")
	assert.Empty(t, stop(), "the model never falls below the rollout's floor during the upgrade")

	servingAfter := getDeployment(t, ns, model)
	assert.Equal(t, servingBefore.UID, servingAfter.UID, "the serving Deployment was updated in place, never deleted")
	assert.Equal(t, int32(1), servingAfter.Status.AvailableReplicas)
	assert.Equal(t, transformationBefore.UID, getDeployment(t, ns, names.Transformation).UID, "the transformation Deployment was updated in place")
	var checkpointAfter appsv1.StatefulSet
	require.NoError(t, kubectl.GetJSON(&checkpointAfter, "-n", ns, "statefulset", names.Checkpoint))
	assert.Equal(t, checkpointBefore.UID, checkpointAfter.UID, "the checkpoint StatefulSet was updated in place")
	var nsAfter corev1.Namespace
	require.NoError(t, kubectl.GetJSON(&nsAfter, "namespace", ns))
	assert.Equal(t, nsBefore.UID, nsAfter.UID, "the namespace is the same object")
	after := claimUIDs(t, ns)
	for claim, uid := range oldClaims {
		assert.Equal(t, uid, after[claim], "claim %s is kept", claim)
	}
	assert.Contains(t, claimsOf(servingAfter), names.ModelCache("llama-3-8b", "", "ReadWriteOnce"))
	require.Len(t, ingestionJobs(t, ns), 1)
	left := leftovers(t, ns)
	for _, o := range newObjects {
		assert.Contains(t, left, o)
	}
	for _, o := range oldObjects {
		assert.NotContains(t, left, o, "the old version's object is deleted")
	}
	pulumi(t, 5*time.Minute, "preview --stack "+stack+" --expect-no-changes")
	pulumi(t, 5*time.Minute, "preview --stack "+stack+" --refresh --expect-no-changes")
}

// inNamespace moves a dev stack file to the namespace ns.
func inNamespace(stackFile, ns string) string {
	return strings.Replace(stackFile, "name: llm-platform-dev", "name: "+ns, 1)
}
