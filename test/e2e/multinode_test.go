//go:build e2e

package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/group"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// A model larger than one node, run by the real LeaderWorkerSet controller
// (built from sigs.k8s.io/lws and started by hack/cluster.sh) on kwok GPU
// nodes: groups of a leader and a worker on distinct nodes of one zone; a
// worker's loss recreates its group; the budget refuses a drain that would
// break a second group; the HPA scales groups on the leaders' queue.
func TestMultiNodeGroups(t *testing.T) {
	require.NoError(t, cluster("custom-metrics"))
	cfg := deployTestStack(t, "multinode")
	ns := cfg.Namespace.Name
	model := cfg.Serving.Models[0]
	name := names.Inference(model.Name)
	minGroups := model.Autoscaling.MinReplicas

	t.Run("each group is a leader and a worker on distinct GPU nodes of one zone", func(t *testing.T) {
		groups := podGroups(t, ns, name)
		require.Len(t, groups, minGroups)
		zones := nodeZones(t)
		for key, pods := range groups {
			require.Len(t, pods, model.Nodes, "group %s", key)
			nodes := map[string]bool{}
			groupZones := map[string]bool{}
			indexes := []string{}
			for _, p := range pods {
				nodes[p.Spec.NodeName] = true
				groupZones[zones[p.Spec.NodeName]] = true
				indexes = append(indexes, p.Labels[group.WorkerIndexLabel])
				env := map[string]bool{}
				for _, e := range p.Spec.Containers[0].Env {
					env[e.Name] = true
				}
				assert.True(t, env[group.LeaderAddressVar] && env[group.WorkerIndexVar] && env[group.SizeVar], "%s: LeaderWorkerSet's variables are set for the launch", p.Name)
			}
			sort.Strings(indexes)
			assert.Equal(t, []string{"0", "1"}, indexes, "group %s: a leader and a worker", key)
			assert.Len(t, nodes, model.Nodes, "group %s: one node per pod", key)
			assert.Len(t, groupZones, 1, "group %s: one zone", key)
		}
	})

	t.Run("the Service reaches the leaders only", func(t *testing.T) {
		var eps corev1.Endpoints
		require.NoError(t, kubectl.GetJSON(&eps, "-n", ns, "endpoints", name))
		leaders := 0
		for _, s := range eps.Subsets {
			for _, a := range s.Addresses {
				require.NotNil(t, a.TargetRef)
				var p corev1.Pod
				require.NoError(t, kubectl.GetJSON(&p, "-n", ns, "pod", a.TargetRef.Name))
				assert.Equal(t, "0", p.Labels[group.WorkerIndexLabel], "%s is a leader", p.Name)
				leaders++
			}
		}
		assert.Equal(t, minGroups, leaders)
	})

	t.Run("a worker's loss recreates its whole group", func(t *testing.T) {
		groups := podGroups(t, ns, name)
		key, pods := anyGroup(groups)
		leader, worker := splitGroup(t, pods)
		_, stderr, err := kubectl.Run(nil, "-n", ns, "delete", "pod", worker.Name, "--wait=false")
		require.NoError(t, err, stderr)
		waitFor(t, "the group's leader to be recreated", time.Minute, func() bool {
			var p corev1.Pod
			return kubectl.GetJSON(&p, "-n", ns, "pod", leader.Name) != nil || p.UID != leader.UID
		})
		waitFor(t, "the group to be whole and ready again", 2*time.Minute, func() bool {
			return groupsReady(t, ns, name) == minGroups
		})
		t.Logf("group %s: the worker's loss restarted its leader too", key)
	})

	t.Run("the budget refuses a drain that would break a second group", func(t *testing.T) {
		waitFor(t, "every group ready", 2*time.Minute, func() bool { return groupsReady(t, ns, name) == minGroups })
		waitFor(t, "the budget to allow one disruption", time.Minute, func() bool {
			var pdb struct {
				Status struct {
					DisruptionsAllowed int `json:"disruptionsAllowed"`
				} `json:"status"`
			}
			return kubectl.GetJSON(&pdb, "-n", ns, "pdb", name) == nil && pdb.Status.DisruptionsAllowed == 1
		})
		groups := podGroups(t, ns, name)
		require.GreaterOrEqual(t, len(groups), 2)
		var keys []string
		for k := range groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		_, first := splitGroup(t, groups[keys[0]])
		second, _ := splitGroup(t, groups[keys[1]])
		// No room for the broken group to come back while the second
		// eviction is asked: on kwok nodes a recreated group is Ready within
		// a second, on a GPU node only after its model has loaded.
		nodes := gpuNodes(t, cfg)
		for _, n := range nodes {
			_, stderr, err := kubectl.Run(nil, "cordon", n)
			require.NoError(t, err, stderr)
		}
		uncordon := func() {
			for _, n := range nodes {
				_, _, _ = kubectl.Run(nil, "uncordon", n)
			}
		}
		defer uncordon()
		require.NoError(t, evict(ns, first.Name), "the budget allows breaking one group")
		waitFor(t, "the first group to be broken", 30*time.Second, func() bool { return groupsReady(t, ns, name) < minGroups })
		err := evict(ns, second.Name)
		require.Error(t, err, "a second group's pod must not be evicted while the first is down")
		assert.Contains(t, err.Error(), "TooManyRequests", "the Eviction API answers 429")
		uncordon()
		waitFor(t, "the broken group to come back", 2*time.Minute, func() bool { return groupsReady(t, ns, name) == minGroups })
	})

	t.Run("the HPA scales groups on the leaders' queue", func(t *testing.T) {
		queue := localcluster.WritePodMetric(kubectl, ns, name, model.Autoscaling.MetricName, "0")
		defer queue.Stop()
		target := resource.MustParse(string(model.Autoscaling.TargetAverageValue))
		queue.Set(fmt.Sprint(4 * target.Value()))
		maxGroups := model.Autoscaling.MaxReplicas
		waitFor(t, "the LeaderWorkerSet to reach maxReplicas groups, all ready", 3*time.Minute, func() bool {
			return groupsReady(t, ns, name) == maxGroups
		})
		var hpa autoscalingv2.HorizontalPodAutoscaler
		require.NoError(t, kubectl.GetJSON(&hpa, "-n", ns, "hpa", name))
		assert.Equal(t, "LeaderWorkerSet", hpa.Spec.ScaleTargetRef.Kind)
		assert.EqualValues(t, maxGroups, hpa.Status.DesiredReplicas)
		assert.Len(t, podGroups(t, ns, name), maxGroups, "a group is added whole")
		for key, pods := range podGroups(t, ns, name) {
			assert.Len(t, pods, model.Nodes, "group %s", key)
		}
		queue.Set("0")
		waitFor(t, "the groups to scale back after the window", 3*time.Minute, func() bool {
			return groupsReady(t, ns, name) == minGroups && len(podGroups(t, ns, name)) == minGroups
		})
	})
}

// podGroups are a multi-node model's live pods by group.
func podGroups(t *testing.T, ns, name string) map[string][]corev1.Pod {
	t.Helper()
	out := map[string][]corev1.Pod{}
	for _, p := range runningPods(t, ns, name) {
		out[p.Labels[group.GroupKeyLabel]] = append(out[p.Labels[group.GroupKeyLabel]], p)
	}
	return out
}

func anyGroup(groups map[string][]corev1.Pod) (string, []corev1.Pod) {
	for k, v := range groups {
		return k, v
	}
	return "", nil
}

// splitGroup is a group's leader and one of its workers.
func splitGroup(t *testing.T, pods []corev1.Pod) (leader, worker corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if p.Labels[group.WorkerIndexLabel] == "0" {
			leader = p
		} else {
			worker = p
		}
	}
	require.NotEmpty(t, leader.Name, "the group has a leader")
	require.NotEmpty(t, worker.Name, "the group has a worker")
	return leader, worker
}

// groupsReady is the LeaderWorkerSet's count of ready groups.
func groupsReady(t *testing.T, ns, name string) int {
	t.Helper()
	l, err := localcluster.GetLeaderWorkerSet(kubectl, ns, name)
	if err != nil {
		return -1
	}
	return int(l.Status.ReadyReplicas)
}

// nodeZones maps every node to its zone.
func nodeZones(t *testing.T) map[string]string {
	t.Helper()
	var nodes corev1.NodeList
	require.NoError(t, kubectl.GetJSON(&nodes, "nodes"))
	out := map[string]string{}
	for _, n := range nodes.Items {
		out[n.Name] = n.Labels["topology.kubernetes.io/zone"]
	}
	return out
}
