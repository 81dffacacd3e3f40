//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"llm-platform/internal/group"
	"llm-platform/internal/localcluster"
)

// Labels of LeaderWorkerSet (sigs.k8s.io/lws v0.9.0) the stack itself does
// not use; the others are internal/group's.
const (
	lwsName     = "leaderworkerset.sigs.k8s.io/name"
	lwsRevision = "leaderworkerset.sigs.k8s.io/template-revision-hash"
)

// The LeaderWorkerSet controller that hack/cluster.sh runs beside the control
// plane, webhooks included: a LeaderWorkerSet of 2 groups of 2 gets its pods
// on the GPU nodes, each labelled and given the LWS_* variables by the pod
// webhook; a worker's loss recreates its whole group and no other; the scale
// subresource scales it; a template change rolls it group by group.
func TestLeaderWorkerSetGroupsRunOnTheGPUNodes(t *testing.T) {
	const ns, set = "lws-smoke", "smoke"
	cfg, err := localcluster.LoadConfig(root, "prod")
	require.NoError(t, err)
	require.NoError(t, localcluster.PrepareNodes(kubectl, cfg))
	pool := cfg.GPUPool
	_, _, _ = kubectl.Run(nil, "delete", "namespace", ns, "--ignore-not-found", "--wait")
	_, stderr, err := kubectl.Run(nil, "create", "namespace", ns)
	require.NoError(t, err, stderr)
	t.Cleanup(func() { _, _, _ = kubectl.Run(nil, "delete", "namespace", ns, "--wait=false") })

	manifest := fmt.Sprintf(`{"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
  "metadata": {"name": %[1]q, "namespace": %[2]q},
  "spec": {"replicas": 2, "leaderWorkerTemplate": {"size": 2, "restartPolicy": "RecreateGroupOnPodRestart",
    "workerTemplate": {"spec": {
      "nodeSelector": {%[3]q: %[4]q},
      "tolerations": [{"key": %[5]q, "operator": "Exists", "effect": %[6]q}],
      "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
      "containers": [{"name": "server", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}}]}}}}}`,
		set, ns, pool.NodeLabelKey, pool.NodeLabelValue, pool.TaintKey, pool.TaintEffect)
	res, err := kubectl.Apply([]byte(manifest))
	require.NoError(t, err)
	assert.Empty(t, res.Warnings)

	get := func() localcluster.LeaderWorkerSetStatus {
		l, err := localcluster.GetLeaderWorkerSet(kubectl, ns, set)
		require.NoError(t, err)
		return l
	}
	pods := func() map[string]corev1.Pod {
		var list corev1.PodList
		require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "pods", "-l", lwsName+"="+set))
		out := map[string]corev1.Pod{}
		for _, p := range list.Items {
			out[p.Name] = p
		}
		return out
	}
	// settled: groups*2 pods, all Ready and none terminating, and the set Available.
	settled := func(groups int) func() bool {
		return func() bool {
			ps := pods()
			if len(ps) != 2*groups {
				return false
			}
			for _, p := range ps {
				if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !localcluster.PodReady(p) {
					return false
				}
			}
			l := get()
			return l.Status.ReadyReplicas == int32(groups) && l.Status.UpdatedReplicas == int32(groups) &&
				l.Available()
		}
	}
	waitFor(t, "2 groups of 2 Ready", 20*time.Second, settled(2))

	t.Run("each pod is labelled and given the LWS variables by the webhook, on a GPU node", func(t *testing.T) {
		ps := pods()
		nodes := gpuNodes(t, cfg)
		for g := range 2 {
			leader, worker := ps[fmt.Sprintf("%s-%d", set, g)], ps[fmt.Sprintf("%s-%d-1", set, g)]
			for i, p := range []corev1.Pod{leader, worker} {
				require.NotEmpty(t, p.Name, "group %d, worker %d", g, i)
				assert.Equal(t, set, p.Labels[lwsName], p.Name)
				assert.Equal(t, fmt.Sprint(g), p.Labels[group.GroupIndexLabel], p.Name)
				assert.Equal(t, fmt.Sprint(i), p.Labels[group.WorkerIndexLabel], p.Name)
				assert.NotEmpty(t, p.Labels[lwsRevision], p.Name)
				assert.Equal(t, leader.Labels[group.GroupKeyLabel], p.Labels[group.GroupKeyLabel], "%s: one key per group", p.Name)
				assert.Equal(t, map[string]string{
					group.LeaderAddressVar: fmt.Sprintf("%s-%d.%s.%s", set, g, set, ns),
					group.SizeVar:          "2",
					group.WorkerIndexVar:   fmt.Sprint(i),
				}, env(p.Spec.Containers[0]), p.Name)
				assert.Contains(t, nodes, p.Spec.NodeName, p.Name)
			}
		}
		assert.NotEqual(t, ps[set+"-0"].Labels[group.GroupKeyLabel], ps[set+"-1"].Labels[group.GroupKeyLabel])

		// The leaders' StatefulSet, one workers' StatefulSet per group (named
		// for its leader pod) and the headless Service the address names.
		var sts appsv1.StatefulSetList
		require.NoError(t, kubectl.GetJSON(&sts, "-n", ns, "statefulsets"))
		got := map[string]int32{}
		for _, s := range sts.Items {
			got[s.Name] = *s.Spec.Replicas
		}
		assert.Equal(t, map[string]int32{set: 2, set + "-0": 1, set + "-1": 1}, got)
		var svc corev1.Service
		require.NoError(t, kubectl.GetJSON(&svc, "-n", ns, "service", set))
		assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
	})

	t.Run("a worker's loss recreates its group, and only its group", func(t *testing.T) {
		before := pods()
		_, stderr, err := kubectl.Run(nil, "-n", ns, "delete", "pod", set+"-0-1", "--wait=false")
		require.NoError(t, err, stderr)
		waitFor(t, "group 0 recreated", 30*time.Second, func() bool {
			ps := pods()
			return ps[set+"-0"].UID != before[set+"-0"].UID && ps[set+"-0-1"].UID != before[set+"-0-1"].UID &&
				settled(2)()
		})
		after := pods()
		assert.Equal(t, before[set+"-1"].UID, after[set+"-1"].UID, "the other group's leader is kept")
		assert.Equal(t, before[set+"-1-1"].UID, after[set+"-1-1"].UID, "the other group's worker is kept")
	})

	t.Run("kubectl scale scales it through the scale subresource", func(t *testing.T) {
		_, stderr, err := kubectl.Run(nil, "-n", ns, "scale", "leaderworkerset", set, "--replicas=3")
		require.NoError(t, err, stderr)
		waitFor(t, "3 groups Ready", 20*time.Second, settled(3))
		l := get()
		assert.Equal(t, lwsName+"="+set+","+group.WorkerIndexLabel+"=0", l.Status.HPAPodSelector, "an HPA selects the leaders")
		var scale struct {
			Status struct {
				Replicas int32  `json:"replicas"`
				Selector string `json:"selector"`
			} `json:"status"`
		}
		raw, stderr, err := kubectl.Run(nil, "get", "--raw",
			fmt.Sprintf("/apis/leaderworkerset.x-k8s.io/v1/namespaces/%s/leaderworkersets/%s/scale", ns, set))
		require.NoError(t, err, stderr)
		require.NoError(t, json.Unmarshal([]byte(raw), &scale))
		assert.Equal(t, int32(3), scale.Status.Replicas)
		assert.Equal(t, l.Status.HPAPodSelector, scale.Status.Selector)
	})

	t.Run("a template change rolls the groups, reported as UpdateInProgress", func(t *testing.T) {
		revision := pods()[set+"-0"].Labels[lwsRevision]
		var mu sync.Mutex
		var seen []string
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			for {
				if l, err := localcluster.GetLeaderWorkerSet(kubectl, ns, set); err == nil {
					var s []string
					for _, c := range l.Status.Conditions {
						s = append(s, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
					}
					slices.Sort(s)
					state := strings.Join(s, " ")
					mu.Lock()
					if len(seen) == 0 || seen[len(seen)-1] != state {
						seen = append(seen, state)
					}
					mu.Unlock()
				}
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
		_, stderr, err := kubectl.Run(nil, "-n", ns, "patch", "leaderworkerset", set, "--type=merge",
			"-p", `{"spec":{"leaderWorkerTemplate":{"workerTemplate":{"metadata":{"annotations":{"e2e.llm-platform.dev/rev":"2"}}}}}}`)
		require.NoError(t, err, stderr)
		waitFor(t, "every group on the new revision", 45*time.Second, func() bool {
			if !settled(3)() {
				return false
			}
			for _, p := range pods() {
				if p.Labels[lwsRevision] == revision {
					return false
				}
			}
			return true
		})
		close(done)
		<-finished
		t.Logf("conditions seen during the rollout: %q", seen)
		assert.True(t, slices.ContainsFunc(seen, func(s string) bool {
			return strings.Contains(s, "UpdateInProgress=True(GroupsUpdating)")
		}), "UpdateInProgress was reported: %q", seen)
		l := get()
		assert.True(t, l.Available())
		assert.False(t, meta.IsStatusConditionTrue(l.Status.Conditions, "UpdateInProgress"))
	})
}

// env is a container's plain environment variables.
func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}
