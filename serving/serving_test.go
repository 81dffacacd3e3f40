package serving_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"llm-platform/internal/availability"
	"llm-platform/internal/rollout"
	"llm-platform/internal/stack"
	"llm-platform/internal/stacktest"
)

func TestInferencePodRunsOnTheGPUPool(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	d := res.Deployment(t, "inference-llama-3-70b")
	pod := d.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	gpu := corev1.ResourceName("nvidia.com/gpu")
	assert.Equal(t, "4", c.Resources.Requests.Name(gpu, "").String())
	assert.Equal(t, c.Resources.Requests[gpu], c.Resources.Limits[gpu], "GPU requests equal limits")
	assert.Equal(t, map[string]string{"karpenter.sh/nodepool": "gpu-a100"}, pod.NodeSelector)
	assert.Equal(t, []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}, pod.Tolerations)
}

func TestProbesAndDeadlinesDeriveFromTheModelLoadBudget(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	d := res.Deployment(t, "inference-llama-3-70b")
	c := d.Spec.Template.Spec.Containers[0]
	startup := c.StartupProbe
	require.NotNil(t, startup)
	assert.GreaterOrEqual(t, int(startup.FailureThreshold*startup.PeriodSeconds), 1200, "startup probe covers the 1200 s budget")
	assert.Less(t, int((startup.FailureThreshold-1)*startup.PeriodSeconds), 1200, "and not much more")
	assert.Equal(t, "/health", startup.HTTPGet.Path)
	assert.Equal(t, "/v1/models", c.ReadinessProbe.HTTPGet.Path, "readiness is model-aware")
	assert.Equal(t, "/health", c.LivenessProbe.HTTPGet.Path, "liveness is cheap")
	// pull 600 + load 1200 + margin 60
	assert.Equal(t, int32(1860), *d.Spec.ProgressDeadlineSeconds)

	rec := res.Resource(t, "kubernetes:apps/v1:Deployment", "inference-llama-3-70b-deployment")
	assert.Equal(t, (1860*time.Second + rollout.NodeProvisioningSeconds*time.Second).String(), rec.CreateTimeout)
	assert.Equal(t, (6*1860*time.Second + rollout.NodeProvisioningSeconds*time.Second).String(), rec.UpdateTimeout, "an update replaces up to maxReplicas pods one at a time")
}

func TestRolloutNeverWaitsForAGPUThatDoesNotExist(t *testing.T) {
	cases := []struct {
		spare                    bool
		maxSurge, maxUnavailable int
	}{{true, 1, 0}, {false, 0, 1}}
	for _, tc := range cases {
		c := stacktest.Load(t, "prod").Set(t, "gpuPool.spareCapacity", tc.spare)
		d := stacktest.Run(t, c).Deployment(t, "inference-llama-3-70b")
		ru := d.Spec.Strategy.RollingUpdate
		assert.Equal(t, tc.maxSurge, ru.MaxSurge.IntValue(), "spare=%v", tc.spare)
		assert.Equal(t, tc.maxUnavailable, ru.MaxUnavailable.IntValue(), "spare=%v", tc.spare)
	}
}

func TestGracefulDrainAndSharedMemory(t *testing.T) {
	d := stacktest.Run(t, stacktest.Load(t, "prod")).Deployment(t, "inference-llama-3-70b")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	require.NotNil(t, c.Lifecycle.PreStop.Sleep)
	assert.Equal(t, int64(15), c.Lifecycle.PreStop.Sleep.Seconds)
	assert.Equal(t, int64(15+120), *pod.TerminationGracePeriodSeconds, "grace covers the preStop sleep and the drain")
	var shm *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "shm" {
			shm = &pod.Volumes[i]
		}
	}
	require.NotNil(t, shm)
	assert.Equal(t, corev1.StorageMediumMemory, shm.EmptyDir.Medium)
	assert.Equal(t, "16Gi", shm.EmptyDir.SizeLimit.String())
	assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "shm", MountPath: "/dev/shm"})
	assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "model-cache", MountPath: "/models", ReadOnly: true},
		"the server reads what the fetch run delivered, and writes nothing there")
}

func TestSpreadAcrossZonesAndHosts(t *testing.T) {
	d := stacktest.Run(t, stacktest.Load(t, "prod")).Deployment(t, "inference-llama-3-70b")
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	require.Len(t, tsc, 2)
	assert.Equal(t, "topology.kubernetes.io/zone", tsc[0].TopologyKey)
	assert.Equal(t, corev1.DoNotSchedule, tsc[0].WhenUnsatisfiable)
	assert.Equal(t, "kubernetes.io/hostname", tsc[1].TopologyKey)
	assert.Equal(t, []string{"pod-template-hash"}, tsc[0].MatchLabelKeys)

	c := stacktest.Load(t, "prod").Set(t, "serving.models[0].topologySpread.zone", "None")
	d = stacktest.Run(t, c).Deployment(t, "inference-llama-3-70b")
	assert.Len(t, d.Spec.Template.Spec.TopologySpreadConstraints, 1)
}

func TestModelCacheIsKeptOnDestroy(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var pvc corev1.PersistentVolumeClaim
	res.Decode(t, "PersistentVolumeClaim", "model-cache-llama-3-70b-rwx-efs-sc", &pvc)
	assert.Equal(t, "efs-sc", *pvc.Spec.StorageClassName)
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{"ReadWriteMany"}, pvc.Spec.AccessModes)
	assert.True(t, res.Resource(t, "kubernetes:core/v1:PersistentVolumeClaim", "inference-llama-3-70b-model-cache").RetainOnDelete)
}

// A cache claim is named after what cannot change in place (class, access
// mode): changing either makes a new claim beside the kept one, never a
// delete-then-create of one name that collides with it.
func TestModelCacheIsNamedByItsClassAndAccessMode(t *testing.T) {
	cacheName := func(c *stacktest.Config) string {
		for _, o := range stacktest.Run(t, c).Objects {
			if o.Kind() == "PersistentVolumeClaim" && strings.HasPrefix(o.Name(), "model-cache-") {
				return o.Name()
			}
		}
		return ""
	}
	dev := func() *stacktest.Config { return stacktest.Load(t, "dev") }
	assert.Equal(t, "model-cache-llama-3-8b-rwo-default", cacheName(dev()))
	assert.Equal(t, "model-cache-llama-3-8b-rwx-default", cacheName(dev().Set(t, "serving.models[0].modelCache.accessMode", "ReadWriteMany")))
	assert.Equal(t, "model-cache-llama-3-8b-rwo-premium-rwo", cacheName(dev().Set(t, "serving.models[0].modelCache.storageClass", "premium-rwo")))
	assert.Equal(t, "model-cache-llama-3-8b-rwo-default", cacheName(dev().Set(t, "serving.models[0].modelCache.size", "80Gi")),
		"a size grows in place: the same claim")
}

func TestServiceHasNamedPortsAndScrapeAnnotations(t *testing.T) {
	c := stacktest.Load(t, "dev").Set(t, "serving.models[0].metricsPort", 9090)
	res := stacktest.Run(t, c)
	var svc corev1.Service
	res.Decode(t, "Service", "inference-llama-3-8b", &svc)
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	require.Len(t, svc.Spec.Ports, 2)
	assert.Equal(t, "http", svc.Spec.Ports[0].Name)
	assert.Equal(t, "http", svc.Spec.Ports[0].TargetPort.String())
	assert.Equal(t, "metrics", svc.Spec.Ports[1].Name)
	assert.Equal(t, "9090", svc.Annotations["prometheus.io/port"])
	assert.Equal(t, "true", svc.Annotations["prometheus.io/scrape"])
	assert.Equal(t, "true", svc.Annotations[availability.SkipAwait],
		"the Deployment's await proves the pods Ready; the Service's own await only adds a 10 s settle")

	// The dev model serves metrics on its serving port: one port, no duplicate.
	res = stacktest.Run(t, stacktest.Load(t, "dev"))
	res.Decode(t, "Service", "inference-llama-3-8b", &svc)
	assert.Len(t, svc.Spec.Ports, 1)
}

func TestDisruptionBudget(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var pdb policyv1.PodDisruptionBudget
	res.Decode(t, "PodDisruptionBudget", "inference-llama-3-70b", &pdb)
	assert.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())
	assert.Nil(t, pdb.Spec.MinAvailable)
	assert.Equal(t, policyv1.AlwaysAllow, *pdb.Spec.UnhealthyPodEvictionPolicy)

	c := stacktest.Load(t, "prod").Set(t, "serving.models[1].disruption.maxUnavailable", "50%")
	res = stacktest.Run(t, c)
	res.Decode(t, "PodDisruptionBudget", "inference-bge-embed", &pdb)
	assert.Equal(t, "50%", pdb.Spec.MaxUnavailable.String())

	// One replica: a budget would block every drain or protect nothing; none is made.
	assert.False(t, stacktest.Run(t, stacktest.Load(t, "dev")).Has("PodDisruptionBudget", "inference-llama-3-8b"))
}

func TestAutoscalerOwnsReplicas(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var hpa autoscalingv2.HorizontalPodAutoscaler
	res.Decode(t, "HorizontalPodAutoscaler", "inference-llama-3-70b", &hpa)
	assert.Equal(t, int32(3), *hpa.Spec.MinReplicas)
	assert.Equal(t, int32(6), hpa.Spec.MaxReplicas)
	assert.Equal(t, "inference-llama-3-70b", hpa.Spec.ScaleTargetRef.Name)
	require.Len(t, hpa.Spec.Metrics, 1)
	assert.Equal(t, autoscalingv2.PodsMetricSourceType, hpa.Spec.Metrics[0].Type)
	assert.Equal(t, "vllm_num_requests_waiting", hpa.Spec.Metrics[0].Pods.Metric.Name)
	assert.Equal(t, int32(0), *hpa.Spec.Behavior.ScaleUp.StabilizationWindowSeconds, "scale up at once")
	assert.Equal(t, int32(300), *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds, "scale down slowly")
	llama := res.Deployment(t, "inference-llama-3-70b")
	assert.Nil(t, llama.Spec.Replicas, "the HPA owns replicas")
	assert.NotContains(t, llama.Annotations, availability.PatchForce, "nothing to take over from the HPA")
	assert.Equal(t, []string{"spec.replicas"}, res.Resource(t, "kubernetes:apps/v1:Deployment", "inference-llama-3-70b-deployment").IgnoreChanges,
		"turning autoscaling on keeps the live count instead of resetting it to one")
	assert.Empty(t, res.Resource(t, "kubernetes:apps/v1:Deployment", "inference-bge-embed-deployment").IgnoreChanges)

	embed := res.Deployment(t, "inference-bge-embed")
	assert.Equal(t, int32(2), *embed.Spec.Replicas, "no HPA: replicas are set")
	assert.Equal(t, "true", embed.Annotations[availability.PatchForce],
		"pulumi up takes spec.replicas back from the HPA's manager after autoscaling is turned off")
	assert.False(t, res.Has("HorizontalPodAutoscaler", "inference-bge-embed"))
}

func TestEveryModelGetsItsOwnObjects(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	for _, m := range []string{"llama-3-70b", "bge-embed"} {
		for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "ServiceAccount"} {
			assert.True(t, res.Has(kind, "inference-"+m), "%s inference-%s", kind, m)
		}
		assert.True(t, res.Has("PersistentVolumeClaim", "model-cache-"+m+"-rwx-efs-sc"))
	}
}

func TestTimingsDeriveFromTheBudgets(t *testing.T) {
	c := stacktest.Load(t, "dev").
		Set(t, "serving.models[0].livenessPeriodSeconds", 10).
		Set(t, "serving.models[0].modelLoadBudgetSeconds", 95).
		Set(t, "serving.models[0].imagePullBudgetSeconds", 0).
		Set(t, "serving.models[0].drain", map[string]any{"preStopSleepSeconds": 5, "drainSeconds": 30})
	r, err := stack.ModelTimings(c.Config(t), c.Config(t).Serving.Models[0])
	require.NoError(t, err)
	assert.Equal(t, 10, r.StartupFailureThreshold, "95 s budget at 10 s periods needs 10 tries")
	assert.Equal(t, 100+rollout.MarginSeconds, r.ProgressDeadlineSeconds)
	assert.Equal(t, 35, r.TerminationGracePeriodSeconds)
}

// With driver keda, a KEDA ScaledObject owns the HPA: it scales on the same
// queue, read from Prometheus, with the same behavior, and the stack creates
// no HPA of its own.
func TestKEDAScaledObjectOwnsTheAutoscaler(t *testing.T) {
	c := stacktest.Load(t, "prod").
		Set(t, "serving.models[0].autoscaling.driver", "keda").
		Set(t, "serving.models[0].autoscaling.prometheusAddress", "http://prometheus-operated.monitoring.svc:9090")
	res := stacktest.Run(t, c)
	assert.False(t, res.Has("HorizontalPodAutoscaler", "inference-llama-3-70b"), "KEDA creates the HPA; a second one would fight it")
	so := res.Find(t, "ScaledObject", "inference-llama-3-70b")
	assert.Equal(t, "keda.sh/v1alpha1", so.Fields["apiVersion"])
	spec := so.Fields["spec"].(map[string]any)
	assert.Equal(t, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference-llama-3-70b"}, spec["scaleTargetRef"])
	assert.EqualValues(t, 3, spec["minReplicaCount"])
	assert.EqualValues(t, 6, spec["maxReplicaCount"])
	assert.EqualValues(t, 300, spec["cooldownPeriod"])
	trigger := spec["triggers"].([]any)[0].(map[string]any)
	assert.Equal(t, "prometheus", trigger["type"])
	assert.Equal(t, "AverageValue", trigger["metricType"], "the queue per replica, as the HPA's Pods metric")
	assert.Equal(t, map[string]any{
		"serverAddress": "http://prometheus-operated.monitoring.svc:9090",
		"query":         `sum(vllm:num_requests_waiting{namespace="llm-platform",pod=~"inference-llama-3-70b-.+"})`,
		"threshold":     "5",
	}, trigger["metadata"])
	hpaConfig := spec["advanced"].(map[string]any)["horizontalPodAutoscalerConfig"].(map[string]any)
	assert.Equal(t, "inference-llama-3-70b", hpaConfig["name"])
	behavior := hpaConfig["behavior"].(map[string]any)
	assert.EqualValues(t, 300, behavior["scaleDown"].(map[string]any)["stabilizationWindowSeconds"], "the same behavior as the stack's own HPA")

	llama := res.Deployment(t, "inference-llama-3-70b")
	assert.Nil(t, llama.Spec.Replicas, "KEDA's HPA owns replicas")
	assert.Equal(t, []string{"spec.replicas"}, res.Resource(t, "kubernetes:apps/v1:Deployment", "inference-llama-3-70b-deployment").IgnoreChanges)
}

// A surge pod may land on another node, where a ReadWriteOnce cache cannot
// attach (Multi-Attach): such a model rolls in place even with spare capacity.
func TestNoSurgeOntoAReadWriteOnceCache(t *testing.T) {
	c := stacktest.Load(t, "dev").Set(t, "gpuPool.spareCapacity", true)
	require.Equal(t, "ReadWriteOnce", stacktest.Run(t, c).Find(t, "PersistentVolumeClaim", "model-cache-llama-3-8b-rwo-default").Fields["spec"].(map[string]any)["accessModes"].([]any)[0])
	ru := stacktest.Run(t, c).Deployment(t, "inference-llama-3-8b").Spec.Strategy.RollingUpdate
	assert.Equal(t, 0, ru.MaxSurge.IntValue(), "no surge pod that could not attach the claim")
	assert.Equal(t, 1, ru.MaxUnavailable.IntValue())

	rwx := c.Set(t, "serving.models[0].modelCache.accessMode", "ReadWriteMany")
	ru = stacktest.Run(t, rwx).Deployment(t, "inference-llama-3-8b").Spec.Strategy.RollingUpdate
	assert.Equal(t, 1, ru.MaxSurge.IntValue(), "a shared cache attaches anywhere: surge")

	pipe := stacktest.Load(t, "dev").Set(t, "pipeline.storage.accessMode", "ReadWriteOnce")
	ru = stacktest.Run(t, pipe).Deployment(t, "transformation").Spec.Strategy.RollingUpdate
	assert.Equal(t, 0, ru.MaxSurge.IntValue(), "the transformation on a ReadWriteOnce pipeline claim rolls in place")
	ru = stacktest.Run(t, stacktest.Load(t, "dev")).Deployment(t, "transformation").Spec.Strategy.RollingUpdate
	assert.Equal(t, 1, ru.MaxSurge.IntValue(), "and surges on ReadWriteMany")
}
