//go:build e2e

// Package e2e applies every rendered stack (dev, prod, quickstart) to a real control plane
// (kube-apiserver, controller-manager, scheduler, etcd; kwok's fake nodes) and
// checks they are admitted without a warning and converge. Run with `make e2e`.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

const clusterName = "llm-platform-e2e"

var (
	root    = stacktest.RepoRoot()
	kubectl = localcluster.Kubectl{
		Binary:     filepath.Join(root, "build", "bin", "kubectl"),
		Kubeconfig: filepath.Join(root, "build", "kubeconfig-"+clusterName),
	}
	stacks = stacktest.Stacks()
)

func cluster(action string) error {
	cmd := exec.Command(filepath.Join(root, "hack", "cluster.sh"), action)
	cmd.Env = append(os.Environ(), "CLUSTER_NAME="+clusterName)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func TestMain(m *testing.M) {
	// Always a fresh cluster: a run that was killed must not leave state behind.
	_ = cluster("down")
	if err := cluster("up"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start the local control plane:", err)
		os.Exit(1)
	}
	code := m.Run()
	if os.Getenv("KEEP_CLUSTER") == "" {
		_ = cluster("down")
	}
	os.Exit(code)
}

// The tests run in order: the stacks are deployed once and later tests look
// at what is there.
func TestStacksAreAdmittedWithoutWarnings(t *testing.T) {
	var cfgs []config.Config
	for _, s := range stacks {
		cfg, err := localcluster.LoadConfig(root, s)
		require.NoError(t, err)
		cfgs = append(cfgs, cfg)
	}
	require.NoError(t, localcluster.PrepareNodes(kubectl, cfgs...))

	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			objs, err := render.Objects(root, s)
			require.NoError(t, err)
			manifests, err := render.Manifests(objs)
			require.NoError(t, err)
			res, err := kubectl.Apply(manifests)
			require.NoError(t, err, "strict server-side apply")
			assert.Empty(t, res.Warnings, "the API server warned")
			assert.Equal(t, len(objs), strings.Count(res.Output, "serverside-applied"), res.Output)
		})
	}
}

func TestStacksConverge(t *testing.T) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			var out bytes.Buffer
			outcome, err := localcluster.Deploy(root, s, kubectl, 4*time.Minute, &out)
			t.Log(out.String())
			require.NoError(t, err)
			assert.False(t, outcome.Changed, "the first test applied it already")
		})
	}
}

func TestRestrictedIsEnforcedAndNoPodWasRefused(t *testing.T) {
	for _, s := range stacks {
		cfg, err := localcluster.LoadConfig(root, s)
		require.NoError(t, err)
		ns := cfg.Namespace.Name
		var n corev1.Namespace
		require.NoError(t, kubectl.GetJSON(&n, "namespace", ns))
		assert.Equal(t, "restricted", n.Labels["pod-security.kubernetes.io/enforce"])

		// A pod that breaks restricted is refused here: the check is live.
		bad := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"privileged","namespace":%q},
			"spec":{"containers":[{"name":"c","image":"busybox:1.36","securityContext":{"privileged":true}}]}}`, ns)
		_, _, err = kubectl.Run([]byte(bad), "create", "--dry-run=server", "-f", "-")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "violates PodSecurity \"restricted")

		var events corev1.EventList
		require.NoError(t, kubectl.GetJSON(&events, "-n", ns, "events"))
		for _, e := range events.Items {
			// Concurrent pod creations race on the ResourceQuota's
			// resourceVersion; the controller retries such a conflict. Any
			// other refusal (quota exceeded, PodSecurity) is a defect.
			if strings.Contains(e.Message, "the object has been modified; please apply your changes to the latest version") {
				continue
			}
			assert.NotEqual(t, "FailedCreate", e.Reason, "%s/%s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
		}
	}
}

func TestSecondApplyChangesNothing(t *testing.T) {
	for _, s := range stacks {
		objs, err := render.Objects(root, s)
		require.NoError(t, err)
		manifests, err := render.Manifests(objs)
		require.NoError(t, err)
		diff, err := kubectl.Diff(manifests)
		require.NoError(t, err)
		assert.Empty(t, diff, "stack %s drifted from its render", s)
	}
}
