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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"llm-platform/internal/localcluster"
)

// The LeaderWorkerSet labels and variables this test relies on (sigs.k8s.io/lws v0.9.0).
const (
	lwsName        = "leaderworkerset.sigs.k8s.io/name"
	lwsGroupIndex  = "leaderworkerset.sigs.k8s.io/group-index"
	lwsGroupKey    = "leaderworkerset.sigs.k8s.io/group-key"
	lwsWorkerIndex = "leaderworkerset.sigs.k8s.io/worker-index"
	lwsRevision    = "leaderworkerset.sigs.k8s.io/template-revision-hash"
)

// leaderWorkerSet is what this test reads of a LeaderWorkerSet.
type leaderWorkerSet struct {
	metav1.ObjectMeta `json:"metadata"`
	Status            struct {
		Conditions      []metav1.Condition `json:"conditions"`
		Replicas        int32              `json:"replicas"`
		ReadyReplicas   int32              `json:"readyReplicas"`
		UpdatedReplicas int32              `json:"updatedReplicas"`
		HPAPodSelector  string             `json:"hpaPodSelector"`
	} `json:"status"`
}

func (l leaderWorkerSet) condition(typ string) metav1.ConditionStatus {
	for _, c := range l.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

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

	get := func() leaderWorkerSet {
		var l leaderWorkerSet
		require.NoError(t, kubectl.GetJSON(&l, "-n", ns, "leaderworkerset", set))
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
				if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !ready(p) {
					return false
				}
			}
			l := get()
			return l.Status.ReadyReplicas == int32(groups) && l.Status.UpdatedReplicas == int32(groups) &&
				l.condition("Available") == metav1.ConditionTrue
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
				assert.Equal(t, fmt.Sprint(g), p.Labels[lwsGroupIndex], p.Name)
				assert.Equal(t, fmt.Sprint(i), p.Labels[lwsWorkerIndex], p.Name)
				assert.NotEmpty(t, p.Labels[lwsRevision], p.Name)
				assert.Equal(t, leader.Labels[lwsGroupKey], p.Labels[lwsGroupKey], "%s: one key per group", p.Name)
				assert.Equal(t, map[string]string{
					"LWS_LEADER_ADDRESS": fmt.Sprintf("%s-%d.%s.%s", set, g, set, ns),
					"LWS_GROUP_SIZE":     "2",
					"LWS_WORKER_INDEX":   fmt.Sprint(i),
				}, env(p.Spec.Containers[0]), p.Name)
				assert.Contains(t, nodes, p.Spec.NodeName, p.Name)
			}
		}
		assert.NotEqual(t, ps[set+"-0"].Labels[lwsGroupKey], ps[set+"-1"].Labels[lwsGroupKey])

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
		assert.Equal(t, lwsName+"="+set+","+lwsWorkerIndex+"=0", l.Status.HPAPodSelector, "an HPA selects the leaders")
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
				var l leaderWorkerSet
				if kubectl.GetJSON(&l, "-n", ns, "leaderworkerset", set) == nil {
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
		assert.Equal(t, metav1.ConditionTrue, l.condition("Available"))
		assert.Equal(t, metav1.ConditionFalse, l.condition("UpdateInProgress"))
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
