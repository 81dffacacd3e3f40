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
)

// The pull-request and drift workflows' previews, run as the identity
// docs/delivery.md tells a user to give CI (deploy/ci-preview-identity.yaml)
// against the deployed stacks: both pass and show no permission error, and a
// changed stack file is previewed. The same identity cannot write (a real
// patch is refused, a dry run passes). An identity that may only read, which
// pulumi-kubernetes would let pass with a diff of inputs nobody checked,
// fails both previews, naming what it lacks.
func TestWorkflowPreviewsRunAsTheCIIdentity(t *testing.T) {
	sh(t, time.Minute, "build/bin/kubectl apply -f deploy/ci-preview-identity.yaml")
	for _, s := range stacks {
		// As the file's header says: a RoleBinding in each stack's namespace.
		ns := stackConfig(t, s).Namespace.Name
		sh(t, time.Minute, "build/bin/kubectl create rolebinding llm-platform-preview -n "+ns+
			" --clusterrole=llm-platform-preview --serviceaccount=llm-platform-ci:llm-platform-preview")
	}
	preview := identityKubeconfig(t, "llm-platform-ci", "llm-platform-preview")

	// An identity with only get, list and watch, as a user may first try.
	sh(t, time.Minute, `build/bin/kubectl create serviceaccount read-only -n llm-platform-ci --dry-run=client -o yaml | build/bin/kubectl apply -f - &&
build/bin/kubectl create clusterrole read-only --verb=get,list,watch --resource='*.*' --dry-run=client -o yaml | build/bin/kubectl apply -f - &&
build/bin/kubectl create clusterrolebinding read-only --clusterrole=read-only --serviceaccount=llm-platform-ci:read-only --dry-run=client -o yaml | build/bin/kubectl apply -f -`)
	readOnly := identityKubeconfig(t, "llm-platform-ci", "read-only")

	var steps []replayStep
	for _, wf := range []string{"pull-request.yml", "drift.yml"} {
		for _, s := range workflowSteps(t, filepath.Join(work, ".github", "workflows", wf)) {
			if s.Command == "preview" {
				steps = append(steps, s)
			}
		}
	}
	assert.GreaterOrEqual(t, len(steps), 4, "pull-request and drift, dev and prod")
	for _, step := range steps {
		t.Run(step.Name, func(t *testing.T) {
			out := sh(t, 10*time.Minute, step.CLI(), "KUBECONFIG="+preview)
			assert.NotContains(t, out, "forbidden")
			assert.NotContains(t, out, "cannot patch")
			out = shFails(t, 10*time.Minute, step.CLI(), "KUBECONFIG="+readOnly)
			assert.Contains(t, out, "the identity running this preview may not", "it fails for the permission")
			assert.Contains(t, out, "patch deployments.apps", "naming it")
		})
	}

	// A pull request that changes the stack: the preview identity previews
	// the change; the read-only one cannot, and its preview fails.
	t.Run("a change previewed", func(t *testing.T) {
		stackFile := filepath.Join(work, "Pulumi.dev.yaml")
		saved, err := os.ReadFile(stackFile)
		require.NoError(t, err)
		defer func() { require.NoError(t, os.WriteFile(stackFile, saved, 0o644)) }()
		pulumi(t, time.Minute, "config set --stack dev --path 'llm-platform:pipeline.transformation.resources.requests.cpu' 600m")
		prPreview := steps[0]
		require.Equal(t, "preview", prPreview.Command)
		prPreview.Stack = "dev"
		out := sh(t, 10*time.Minute, prPreview.CLI()+" --diff", "KUBECONFIG="+preview)
		assert.Contains(t, out, "600m")
		assert.NotContains(t, out, "forbidden")
		out = shFails(t, 10*time.Minute, prPreview.CLI()+" --diff", "KUBECONFIG="+readOnly)
		assert.Contains(t, out, "the identity running this preview may not", "it fails for the permission, not for another reason")
		assert.NotContains(t, out, "600m", "and shows no diff it could not check")
	})

	t.Run("the preview identity cannot write", func(t *testing.T) {
		ns := stackConfig(t, "dev").Namespace.Name
		annotate := "build/bin/kubectl --kubeconfig " + preview + " annotate namespace " + ns + " llm-platform.io/ci-write-test=1"
		sh(t, time.Minute, annotate+" --dry-run=server")
		out := shFails(t, time.Minute, annotate)
		assert.Contains(t, out, "llm-platform-preview may only dry-run")
		out = shFails(t, time.Minute, "build/bin/kubectl --kubeconfig "+preview+" delete serviceaccount default -n "+ns)
		assert.Contains(t, out, "forbidden")
		out = shFails(t, time.Minute, "build/bin/kubectl --kubeconfig "+preview+" get secret -n kube-system")
		assert.Contains(t, out, "forbidden", "no Secret outside the stacks' namespaces, and none listed")
	})
}

// identityKubeconfig writes a kubeconfig for the local cluster that
// authenticates as ServiceAccount namespace/name, with a short-lived token.
func identityKubeconfig(t *testing.T, namespace, name string) string {
	t.Helper()
	path := filepath.Join(work, "build", "kubeconfig-"+name)
	token := strings.TrimSpace(sh(t, time.Minute, "build/bin/kubectl create token "+name+" -n "+namespace+" --duration 1h"))
	sh(t, time.Minute, `cp build/kubeconfig `+path+` &&
build/bin/kubectl --kubeconfig `+path+` config set-credentials `+name+` --token="$TOKEN" >/dev/null &&
build/bin/kubectl --kubeconfig `+path+` config set-context --current --user=`+name+` >/dev/null`, "TOKEN="+token)
	return path
}
