package serving_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"llm-platform/internal/availability"
	"llm-platform/internal/intent"
	"llm-platform/internal/mock"
	"llm-platform/internal/podspec"
	"llm-platform/internal/workload"
	"llm-platform/serving"
)

// handWritten is a model described without any stack file.
func handWritten() serving.Args {
	return serving.Args{
		Model: "mistral", Image: "vllm/vllm-openai:v0.6.3", Args: []string{"--port", "8000"}, GPUs: 2,
		Pool:      serving.GPUPool{NodeLabelKey: "pool", NodeLabelValue: "l4", TaintKey: "nvidia.com/gpu", TaintEffect: "NoSchedule", ResourceName: "nvidia.com/gpu"},
		Resources: podspec.Resources{Requests: podspec.ResourceList{CPU: "4", Memory: "16Gi", EphemeralStorage: "10Gi"}, Limits: podspec.ResourceList{CPU: "4", Memory: "16Gi", EphemeralStorage: "10Gi"}},
		ShmSize:   "1Gi", Port: 8000, MetricsPort: 9090, MetricsPath: "/metrics",
		Probes:         workload.Probes{StartupPath: "/health", ReadinessPath: "/v1/models", LivenessPath: "/health", PeriodSeconds: 10, ReadinessPeriodSeconds: 5},
		Budgets:        workload.Budgets{StartupSeconds: 300, ImagePullSeconds: 120, PreStopSleepSeconds: 5, DrainSeconds: 30},
		Replicas:       2,
		MaxUnavailable: "1",
		Cache:          podspec.Claim{Size: "40Gi", AccessMode: "ReadWriteMany"},
		CacheClaimName: "weights", CacheMountPath: "/models",
		TokenSecret:   pulumi.String("hf-token"),
		ClusterDomain: "corp.internal",
		Clients:       intent.Peers{Namespaces: []string{"gateway"}},
		Scrapers:      []string{"monitoring"},
		Shared:        podspec.Shared{Namespace: pulumi.String("team-a"), Security: podspec.DefaultSecurity(), ServiceAccount: pulumi.String("sa")},
	}
}

func TestModelFromHandWrittenArgs(t *testing.T) {
	var endpoint string
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		inf, err := serving.New(ctx, "inference-mistral", handWritten())
		if err != nil {
			return err
		}
		inf.Endpoint.ApplyT(func(e string) string { endpoint = e; return e })
		return nil
	}, "test", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "http://inference-mistral.team-a.svc.corp.internal:8000", endpoint, "the endpoint ends with the cluster's domain")

	o, ok := rec.Find("Deployment", "inference-mistral")
	require.True(t, ok)
	var d appsv1.Deployment
	require.NoError(t, o.Decode(&d))
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "hf-token", c.Env[len(c.Env)-1].ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "HF_TOKEN", c.Env[len(c.Env)-1].Name, "the variable vLLM, TGI and SGLang read")
	assert.Equal(t, int32(30), c.StartupProbe.FailureThreshold, "300 s budget at 10 s periods")
	assert.Equal(t, int64(35), *d.Spec.Template.Spec.TerminationGracePeriodSeconds)
	assert.Equal(t, "weights", d.Spec.Template.Spec.Volumes[2].PersistentVolumeClaim.ClaimName)
	for _, kind := range []string{"Service", "PodDisruptionBudget"} {
		_, ok := rec.Find(kind, "inference-mistral")
		assert.True(t, ok, kind)
	}
	_, ok = rec.Find("HorizontalPodAutoscaler", "inference-mistral")
	assert.False(t, ok, "autoscaling off: no autoscaler")
}

// A model declares what it serves and reaches; the platform does the wiring.
func TestModelIntent(t *testing.T) {
	a := handWritten()
	a.Egress = []intent.Egress{{CIDR: "10.1.0.0/16", Ports: []int{443}}}
	got := a.Intent()
	assert.Equal(t, "inference-mistral", got.Name)
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "inference", "app.kubernetes.io/instance": "inference-mistral"}, got.Pods)
	assert.Equal(t, []intent.Ingress{
		{Port: 8000, From: intent.Peers{Namespaces: []string{"gateway"}}},
		{Port: 9090, From: intent.Peers{Namespaces: []string{"monitoring"}}},
	}, got.Serves)
	assert.Equal(t, a.Egress, got.Reaches)
}

// The same builder gives the KEDA path its own autoscaler and no HPA.
func TestModelWithKEDAFromHandWrittenArgs(t *testing.T) {
	a := handWritten()
	a.Autoscaling = availability.Autoscaling{Enabled: true, MinReplicas: 0, MaxReplicas: 4, Metric: availability.MetricPods, Driver: availability.DriverKEDA,
		MetricName: "queue", Series: "vllm:num_requests_waiting", TargetAverageValue: "5", PrometheusAddress: "http://prom:9090", ScaleDownStabilizationSeconds: 300}
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := serving.New(ctx, "inference-mistral", a)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	_, hpa := rec.Find("HorizontalPodAutoscaler", "inference-mistral")
	_, so := rec.Find("ScaledObject", "inference-mistral")
	assert.False(t, hpa)
	assert.True(t, so)
}
