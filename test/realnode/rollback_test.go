//go:build realnode

package realnode

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// A rollout of images that do not exist, for a model and for the checkpoint
// store, is undone by applying the previous stack file again: every pod
// recovers with no `kubectl delete pod`. The registry named is a port
// nothing listens on in the node's own network namespace, so each pull is a
// real one that containerd tries and fails (ErrImagePull, then
// ImagePullBackOff), and nothing leaves the machine. StatefulSets are known
// not to replace a broken pod on their own under OrderedReady (the
// controller waits for the broken pod to become Ready before it updates
// it); the checkpoint store's Parallel pod management is what lets the
// rollback replace it, and this test fails if that changes.
func TestBrokenRolloutIsUndoneByRollingTheFileBack(t *testing.T) {
	cfg := deployStack(t)
	ns := cfg.Namespace.Name
	model := names.Inference(cfg.Serving.Models[0].Name)
	previous := currentStack()
	serving := len(servingPods(t, cfg))
	broken := stackVariant(t, func(s string) string {
		s = strings.Replace(s, "image: llm-platform.local/model-server:test", "image: 127.0.0.1:1/llm-platform/model-server:missing", 1)
		return strings.Replace(s, "image: llm-platform.local/checkpoint-store:test", "image: 127.0.0.1:1/llm-platform/checkpoint-store:missing", 1)
	})
	require.NoError(t, applyOnly(broken))
	waitFor(t, "the new model pod and the checkpoint pod to fail their pulls", 2*time.Minute, func() bool {
		return len(pullFailing(t, ns, model)) > 0 && len(pullFailing(t, ns, names.Checkpoint)) > 0
	})
	assert.GreaterOrEqual(t, len(servingPods(t, cfg)), serving-1, "the old model pods keep serving (at most maxUnavailable down)")

	// The way back is the file as it was, applied again and awaited.
	start := time.Now()
	var out bytes.Buffer
	_, err := localcluster.Deploy(previous, stackName, kubectl, 4*time.Minute, &out)
	require.NoError(t, err, "rolling the file back converges with no pod deleted by hand\n%s", out.String())
	t.Logf("rolled back in %s", time.Since(start).Round(time.Second))

	for _, instance := range []string{model, names.Checkpoint} {
		waitFor(t, instance+" back on its image, every pod Ready", 2*time.Minute, func() bool {
			all := pods(t, ns, "app.kubernetes.io/instance="+instance)
			for _, p := range all {
				if p.DeletionTimestamp == nil && (!localcluster.PodReady(p) || strings.Contains(p.Spec.Containers[0].Image, ":missing")) {
					return false
				}
			}
			return len(all) > 0
		})
		assert.Empty(t, pullFailing(t, ns, instance), "no pod of %s is left failing its pull", instance)
	}
	var sts appsv1.StatefulSet
	require.NoError(t, kubectl.GetJSON(&sts, "-n", ns, "statefulset", names.Checkpoint))
	assert.Equal(t, sts.Status.UpdateRevision, sts.Status.CurrentRevision, "the checkpoint store is on one revision, the file's")
	assert.Equal(t, *sts.Spec.Replicas, sts.Status.ReadyReplicas)
}

// pullFailing names the pods of a workload whose image cannot be pulled.
func pullFailing(t *testing.T, ns, instance string) []string {
	t.Helper()
	var out []string
	for _, p := range pods(t, ns, "app.kubernetes.io/instance="+instance) {
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
				out = append(out, p.Name)
			}
		}
	}
	return out
}
