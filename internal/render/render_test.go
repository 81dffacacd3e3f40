package render_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

func TestRenderOrdersObjectsSoTheyApplyCleanly(t *testing.T) {
	for _, stack := range stacktest.Stacks() {
		objs, err := render.Objects(stacktest.RepoRoot(), stack)
		require.NoError(t, err)
		require.NotEmpty(t, objs)
		assert.Equal(t, "Namespace", objs[0].Kind(), stack)
		seen := map[string]int{} // the last position of each kind
		for i, o := range objs {
			seen[o.Kind()] = i
		}
		first := map[string]int{}
		for i := len(objs) - 1; i >= 0; i-- {
			first[objs[i].Kind()] = i
		}
		before := func(a, b string) {
			ia, okA := seen[a]
			ib, okB := first[b]
			if okA && okB {
				assert.Less(t, ia, ib, "%s: %s before %s", stack, a, b)
			}
		}
		before("PriorityClass", "ServiceAccount")
		before("PersistentVolumeClaim", "Deployment")
		before("Deployment", "HorizontalPodAutoscaler")
		before("ServiceAccount", "Job")
	}
}

func TestRenderWritesOneObjectPerDocument(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev", "manifests.yaml")
	w, err := render.WriteFile(stacktest.RepoRoot(), "dev", path)
	require.NoError(t, err)
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, w.Objects, strings.Count(string(text), "\n---\n")+1, "documents")
	assert.Equal(t, w.Objects, strings.Count(string(text), "\nkind: "))
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm(), "a GitOps tool running as another user reads the render")
}

// The render shows what `pulumi preview` shows: the program's warnings, and
// numbers as they were written (Pulumi carries them as floats).
func TestRenderKeepsWarningsAndWholeNumbers(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Pulumi.dev.yaml"))
	require.NoError(t, err)
	// Two weeks for the first run, and a value that does nothing.
	text := strings.Replace(string(good), "activeDeadlineSeconds: 14400", "activeDeadlineSeconds: 1209600", 1)
	text = strings.Replace(text, "    transformation:\n", "    transformation:\n      autoscaling:\n        maxReplicas: 4\n", 1)
	require.NotEqual(t, string(good), text)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.long.yaml"), []byte(text), 0o644))

	out := filepath.Join(dir, "manifests.yaml")
	w, err := render.WriteFile(dir, "long", out)
	require.NoError(t, err)
	assert.Contains(t, w.Warnings, "llm-platform:pipeline.transformation.autoscaling.maxReplicas: has no effect while pipeline.transformation.autoscaling.enabled is false")
	manifests, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(manifests), "activeDeadlineSeconds: 1209600\n")
	assert.NotRegexp(t, `\d\.\d+e\+\d+`, string(manifests), "no number in exponent form")
}

func TestRenderOfBadConfigWritesNothing(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Pulumi.dev.yaml"))
	require.NoError(t, err)
	bad := strings.Replace(string(good), "gpus: 1\n        replicas: 1", "gpus: -1\n        replicas: 1", 1)
	require.NotEqual(t, string(good), bad)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.broken.yaml"), []byte(bad), 0o644))
	out := filepath.Join(dir, "out", "manifests.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
	require.NoError(t, os.WriteFile(out, []byte("previous render\n"), 0o644))

	_, err = render.WriteFile(dir, "broken", out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "llm-platform:serving.models[0].gpus: -1 is invalid: must be at least 1")
	text, _ := os.ReadFile(out)
	assert.Equal(t, "previous render\n", string(text), "a failed render leaves the last good one alone")
}

func TestRenderRefusesUnknownKeysAndRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Pulumi.dev.yaml"))
	require.NoError(t, err)

	typo := string(good) + "  llm-platform:servng:\n    models: []\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.typo.yaml"), []byte(typo), 0o644))
	_, err = render.Objects(dir, "typo")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "llm-platform:servng is not a key of this project")

	secret := string(good) + "  llm-platform:modelRegistryToken:\n    secure: v1:c2FsdA==:Y2lwaGVydGV4dA==\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.secret.yaml"), []byte(secret), 0o644))
	objs, err := render.Objects(dir, "secret")
	require.NoError(t, err)
	text, err := render.Manifests(objs)
	require.NoError(t, err)
	assert.Contains(t, string(text), "token: '<secret: set with pulumi config set --secret>'")
	assert.NotContains(t, string(text), "Y2lwaGVydGV4dA==", "ciphertext is not copied either")
}
