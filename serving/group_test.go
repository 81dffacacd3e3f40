package serving_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"llm-platform/internal/group"
	"llm-platform/internal/stacktest"
)

// multiNode is prod with its 70B model on groups of two 4-GPU nodes.
func multiNode(t *testing.T) *stacktest.Result {
	return stacktest.Run(t, stacktest.MultiNodeProd(t))
}

// leaderWorkerSet is the part of a LeaderWorkerSet the tests read.
type leaderWorkerSet struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Replicas        *int   `json:"replicas"`
		StartupPolicy   string `json:"startupPolicy"`
		RolloutStrategy struct {
			Type                       string `json:"type"`
			RollingUpdateConfiguration struct {
				MaxUnavailable int `json:"maxUnavailable"`
				MaxSurge       int `json:"maxSurge"`
			} `json:"rollingUpdateConfiguration"`
		} `json:"rolloutStrategy"`
		NetworkConfig struct {
			SubdomainPolicy string `json:"subdomainPolicy"`
		} `json:"networkConfig"`
		LeaderWorkerTemplate struct {
			Size           int                    `json:"size"`
			RestartPolicy  string                 `json:"restartPolicy"`
			LeaderTemplate corev1.PodTemplateSpec `json:"leaderTemplate"`
			WorkerTemplate corev1.PodTemplateSpec `json:"workerTemplate"`
		} `json:"leaderWorkerTemplate"`
	} `json:"spec"`
}

func TestMultiNodeModelIsALeaderWorkerSetOfGroups(t *testing.T) {
	res := multiNode(t)
	assert.False(t, res.Has("Deployment", "inference-llama-3-70b"), "no Deployment beside the groups")
	var l leaderWorkerSet
	res.Decode(t, "LeaderWorkerSet", "inference-llama-3-70b", &l)
	spec := l.Spec
	assert.Equal(t, 2, spec.LeaderWorkerTemplate.Size)
	assert.Equal(t, "RecreateGroupOnPodRestart", spec.LeaderWorkerTemplate.RestartPolicy, "a worker's loss restarts its group")
	assert.Equal(t, "LeaderCreated", spec.StartupPolicy, "vLLM's leader is ready only once its workers joined")
	assert.Equal(t, "UniquePerReplica", spec.NetworkConfig.SubdomainPolicy, "the groups' headless Services leave the model's Service its name")
	require.NotNil(t, spec.Replicas)
	assert.Equal(t, 3, *spec.Replicas, "created at the autoscaler's minimum")
	assert.Equal(t, []string{"spec.replicas"}, res.Resource(t, "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet", "inference-llama-3-70b-leaderworkerset").IgnoreChanges,
		"and from then on the autoscaler's count is kept")
	// prod has spare capacity and a ReadWriteMany cache, which would let a
	// Deployment surge; spare room for one pod is not room for a group.
	assert.Equal(t, "RollingUpdate", spec.RolloutStrategy.Type)
	assert.Equal(t, 0, spec.RolloutStrategy.RollingUpdateConfiguration.MaxSurge, "no surge group")
	assert.Equal(t, 1, spec.RolloutStrategy.RollingUpdateConfiguration.MaxUnavailable, "one group at a time")
	assert.Equal(t, "condition=Available", l.Metadata.Annotations["pulumi.com/waitFor"], "pulumi up waits for the groups")
}

func TestGroupLaunchIsVLLMMultiNode(t *testing.T) {
	res := multiNode(t)
	var l leaderWorkerSet
	res.Decode(t, "LeaderWorkerSet", "inference-llama-3-70b", &l)
	leader := l.Spec.LeaderWorkerTemplate.LeaderTemplate.Spec
	worker := l.Spec.LeaderWorkerTemplate.WorkerTemplate.Spec
	require.Len(t, leader.Containers, 1)
	require.Len(t, worker.Containers, 1)
	launch := []string{"--nnodes", "2", "--node-rank", "$(LWS_WORKER_INDEX)", "--master-addr", "$(LWS_LEADER_ADDRESS)", "--master-port", "29501"}
	la, wa := leader.Containers[0].Args, worker.Containers[0].Args
	assert.Equal(t, launch, la[len(la)-len(launch):], "the leader serves the API")
	assert.Equal(t, append(launch, "--headless"), wa[len(wa)-len(launch)-1:], "workers run headless")
	assert.Equal(t, "--tensor-parallel-size", la[4], "the model's own args come first")

	assert.NotNil(t, leader.Containers[0].StartupProbe, "the leader is probed from the load budget")
	assert.NotNil(t, leader.Containers[0].ReadinessProbe)
	assert.NotEmpty(t, leader.Containers[0].Ports)
	assert.Nil(t, worker.Containers[0].ReadinessProbe, "a headless worker serves no health endpoint")
	assert.Nil(t, worker.Containers[0].LivenessProbe)
	assert.Empty(t, worker.Containers[0].Ports)
	require.NotNil(t, worker.Containers[0].Lifecycle)
	assert.EqualValues(t, 15+120, worker.Containers[0].Lifecycle.PreStop.Sleep.Seconds, "workers outlive the leader's drain")
	assert.Equal(t, *leader.TerminationGracePeriodSeconds, *worker.TerminationGracePeriodSeconds)

	for name, pod := range map[string]corev1.PodSpec{"leader": leader, "worker": worker} {
		gpu := pod.Containers[0].Resources.Limits["nvidia.com/gpu"]
		assert.Equal(t, "4", gpu.String(), "%s: gpus per node", name)
		assert.Equal(t, "volcano", pod.SchedulerName, name)
		require.NotNil(t, pod.SecurityContext, name)
		assert.Contains(t, pod.SecurityContext.Sysctls, corev1.Sysctl{Name: "net.ipv4.ip_local_port_range", Value: "40000 40999"}, name)
		require.NotNil(t, pod.Affinity, name)
		together := pod.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		apart := pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		require.Len(t, together, 1, name)
		require.Len(t, apart, 1, name)
		assert.Equal(t, "topology.kubernetes.io/zone", together[0].TopologyKey, "%s: a group in one zone", name)
		assert.Equal(t, "kubernetes.io/hostname", apart[0].TopologyKey, "%s: a pod per node", name)
		assert.Equal(t, []string{group.GroupKeyLabel}, together[0].MatchLabelKeys, "%s: of its own group", name)
		assert.Equal(t, []string{group.GroupKeyLabel}, apart[0].MatchLabelKeys, name)
	}
	assert.Len(t, leader.TopologySpreadConstraints, 2, "the leaders spread the groups over zones and hosts")
	assert.Empty(t, worker.TopologySpreadConstraints)
}

// The Service, the scrape and the inference pool reach leaders only; the
// budget counts every pod of every group, in groups.
func TestGroupSelectorsAndBudget(t *testing.T) {
	res := multiNode(t)
	var l leaderWorkerSet
	res.Decode(t, "LeaderWorkerSet", "inference-llama-3-70b", &l)
	leaderLabels := labels.Set(l.Spec.LeaderWorkerTemplate.LeaderTemplate.Labels)
	workerLabels := labels.Set(l.Spec.LeaderWorkerTemplate.WorkerTemplate.Labels)

	var svc corev1.Service
	res.Decode(t, "Service", "inference-llama-3-70b", &svc)
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	assert.True(t, sel.Matches(leaderLabels), "the Service selects the leaders")
	assert.False(t, sel.Matches(workerLabels), "and not the workers, which serve no API")

	var pool map[string]any
	res.Decode(t, "InferencePool", "inference-llama-3-70b", &pool)
	poolLabels := labels.Set{}
	for k, v := range pool["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any) {
		poolLabels[k] = v.(string)
	}
	assert.False(t, labels.SelectorFromSet(poolLabels).Matches(workerLabels), "the endpoint picker never picks a worker")
	assert.True(t, labels.SelectorFromSet(poolLabels).Matches(leaderLabels))

	var pdb policyv1.PodDisruptionBudget
	res.Decode(t, "PodDisruptionBudget", "inference-llama-3-70b", &pdb)
	pdbSel := labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels)
	assert.True(t, pdbSel.Matches(leaderLabels) && pdbSel.Matches(workerLabels), "the budget counts every pod of a group")
	assert.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue(), "one unavailable pod: never a second broken group")

	var hpa autoscalingv2.HorizontalPodAutoscaler
	res.Decode(t, "HorizontalPodAutoscaler", "inference-llama-3-70b", &hpa)
	assert.Equal(t, "LeaderWorkerSet", hpa.Spec.ScaleTargetRef.Kind, "the HPA scales groups")
	assert.Equal(t, "leaderworkerset.x-k8s.io/v1", hpa.Spec.ScaleTargetRef.APIVersion)
}

// The pods of a model's groups reach each other on the leader's store and
// the narrowed ephemeral range, and on nothing more.
func TestGroupPodsReachEachOtherOnTheLaunchPorts(t *testing.T) {
	res := multiNode(t)
	var in networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-in-inference-llama-3-70b", &in)
	groupPods := map[string]string{"app.kubernetes.io/instance": "inference-llama-3-70b"}
	assert.Equal(t, groupPods, in.Spec.PodSelector.MatchLabels, "the policy covers leaders and workers")
	var ranges []string
	for _, r := range in.Spec.Ingress {
		for _, p := range r.Ports {
			fromGroup := len(r.From) == 1 && r.From[0].PodSelector != nil && labels.Set(r.From[0].PodSelector.MatchLabels).String() == labels.Set(groupPods).String()
			if !fromGroup {
				continue
			}
			end := int32(0)
			if p.EndPort != nil {
				end = *p.EndPort
			}
			ranges = append(ranges, fmt.Sprintf("%s-%d", p.Port.String(), end))
		}
	}
	slices.Sort(ranges)
	assert.Equal(t, []string{"29501-0", "40000-40999"}, ranges)

	var out networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-out-inference-llama-3-70b", &out)
	found := 0
	for _, r := range out.Spec.Egress {
		for _, to := range r.To {
			if to.PodSelector != nil && labels.Set(to.PodSelector.MatchLabels).String() == labels.Set(groupPods).String() {
				found += len(r.Ports)
			}
		}
	}
	assert.Equal(t, 2, found, "out to the group: the store and the range")
}

// A Volcano queue reaches each group's PodGroup through the annotation
// LeaderWorkerSet copies onto it.
func TestGroupQueue(t *testing.T) {
	c := stacktest.MultiNodeProd(t)
	c.Set(t, "serving.models[0].scheduling", map[string]any{"schedulerName": "volcano", "queueName": "inference"})
	var l leaderWorkerSet
	stacktest.Run(t, c).Decode(t, "LeaderWorkerSet", "inference-llama-3-70b", &l)
	assert.Equal(t, "inference", l.Metadata.Annotations[group.VolcanoQueueAnnotation])
	assert.Equal(t, "condition=Available", l.Metadata.Annotations["pulumi.com/waitFor"], "the await stays")
	assert.Equal(t, "volcano", l.Spec.LeaderWorkerTemplate.WorkerTemplate.Spec.SchedulerName)
}

// The NVLink domain a group keeps to is in the pod templates too, where
// LeaderWorkerSet's pod webhook reads it: a change of it is a new revision,
// rolled out, not only a rule for groups created later.
func TestGroupDomainIsPartOfTheRevision(t *testing.T) {
	c := stacktest.MultiNodeProd(t)
	c.Set(t, "gpuPool.groupDomainLabel", "nvidia.com/gpu.clique")
	c.Set(t, "serving.models[0].scheduling", nil) // Volcano would never start such groups
	var l leaderWorkerSet
	stacktest.Run(t, c).Decode(t, "LeaderWorkerSet", "inference-llama-3-70b", &l)
	assert.Equal(t, "nvidia.com/gpu.clique", l.Metadata.Annotations[group.ExclusiveTopologyAnnotation])
	tmpl := l.Spec.LeaderWorkerTemplate
	assert.Equal(t, "nvidia.com/gpu.clique", tmpl.LeaderTemplate.Annotations[group.ExclusiveTopologyAnnotation])
	assert.Equal(t, "nvidia.com/gpu.clique", tmpl.WorkerTemplate.Annotations[group.ExclusiveTopologyAnnotation])
	assert.Equal(t, "true", tmpl.LeaderTemplate.Annotations["prometheus.io/scrape"], "the leader keeps its own annotations")
	assert.NotContains(t, tmpl.WorkerTemplate.Annotations, "prometheus.io/scrape", "a worker serves no metrics")
}
