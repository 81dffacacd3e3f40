package serving_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

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
	got := a.Intents()[0]
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

// A fetched source: the fetch run fills the cache first, the server waits
// for it, runs offline and reads the revision's directory.
func TestFetchedSourceFromHandWrittenArgs(t *testing.T) {
	a := handWritten()
	a.Source = &serving.Source{
		Scheme: "hf", URI: "hf://mistralai/Mistral-7B-Instruct-v0.3", Repo: "mistralai/Mistral-7B-Instruct-v0.3",
		Revision: "e0bc86c23ce5aae1db576c8cca6f06f1f73af2db",
		Fetch: serving.Fetch{
			Image: "fetch:1", Args: []string{"huggingface-cli", "download", "$(SOURCE_REPO)"}, BudgetSeconds: 1800, BackoffLimit: 2,
			Resources: a.Resources, Egress: []intent.Egress{{CIDR: "0.0.0.0/0", Ports: []int{443}}},
			Shared: podspec.Shared{Namespace: pulumi.String("team-a"), Security: podspec.DefaultSecurity(), ServiceAccount: pulumi.String("fetch-sa")},
		},
	}
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := serving.New(ctx, "inference-mistral", a)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)

	var job batchv1.Job
	for _, o := range rec.Objects() {
		if o.Kind() == "Job" {
			require.NoError(t, o.Decode(&job))
		}
	}
	require.Regexp(t, `^fetch-mistral-[0-9a-f]{10}$`, job.Name, "named by its spec: a new revision is a new run")
	c := job.Spec.Template.Spec.Containers[0]
	assert.Equal(t, []string{"/bin/sh", "-c"}, c.Command[:2])
	assert.Contains(t, c.Command[2], serving.FetchMarker, "a revision already fetched is not fetched again")
	assert.Equal(t, []string{"huggingface-cli", "download", "$(SOURCE_REPO)"}, c.Args)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "MODEL_DIR", Value: "/models/mistral/e0bc86c23ce5aae1db576c8cca6f06f1f73af2db"})
	assert.Equal(t, "HF_TOKEN", c.Env[len(c.Env)-1].Name, "the token goes to the fetch run")
	assert.Equal(t, int64(1800), *job.Spec.ActiveDeadlineSeconds)
	assert.Equal(t, "fetch-sa", job.Spec.Template.Spec.ServiceAccountName)
	assert.Equal(t, "weights", job.Spec.Template.Spec.Volumes[1].PersistentVolumeClaim.ClaimName)
	jobResource, ok := rec.Resource("kubernetes:batch/v1:Job", "inference-mistral-fetch")
	require.True(t, ok)
	assert.NotEmpty(t, jobResource.CreateTimeout, "pulumi up waits for the download, within its budget")
	deployment, ok := rec.Resource("kubernetes:apps/v1:Deployment", "inference-mistral-deployment")
	require.True(t, ok)
	assert.Contains(t, deployment.DependsOn, "urn:pulumi:test::llm-platform::llm-platform:index:Inference$kubernetes:batch/v1:Job::inference-mistral-fetch",
		"the Deployment is created and rolled only after the fetch run completes")

	o, _ := rec.Find("Deployment", "inference-mistral")
	var d appsv1.Deployment
	require.NoError(t, o.Decode(&d))
	server := d.Spec.Template.Spec.Containers[0]
	assert.Contains(t, server.Env, corev1.EnvVar{Name: "HF_HUB_OFFLINE", Value: "1"})
	assert.Contains(t, server.Env, corev1.EnvVar{Name: "MODEL_PATH", Value: "/models/mistral/e0bc86c23ce5aae1db576c8cca6f06f1f73af2db"})
	for _, e := range server.Env {
		assert.NotEqual(t, "HF_TOKEN", e.Name, "an offline server needs no token")
	}

	intents := a.Intents()
	require.Len(t, intents, 2)
	assert.Empty(t, intents[0].Reaches, "the server reaches no source")
	assert.Equal(t, "fetch-mistral", intents[1].Name)
	assert.Equal(t, a.Source.Fetch.Egress, intents[1].Reaches, "only the fetch run reaches the sources")
}

// A claim source: nothing is fetched or created; the server mounts the
// claim read-only and reads the path inside it.
func TestClaimSourceFromHandWrittenArgs(t *testing.T) {
	a := handWritten()
	a.Source = &serving.Source{Claim: "shared-weights", Path: "mistral/v3"}
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := serving.New(ctx, "inference-mistral", a)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	for _, o := range rec.Objects() {
		assert.NotContains(t, []string{"Job", "PersistentVolumeClaim"}, o.Kind(), "nothing to fetch, no cache to create")
	}
	o, _ := rec.Find("Deployment", "inference-mistral")
	var d appsv1.Deployment
	require.NoError(t, o.Decode(&d))
	assert.Equal(t, "shared-weights", d.Spec.Template.Spec.Volumes[2].PersistentVolumeClaim.ClaimName)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "MODEL_PATH", Value: "/models/mistral/v3"})
	assert.Len(t, a.Intents(), 1)
}

// An OCI image source: the kubelet pulls the weights as an image volume;
// nothing is fetched and no claim is made.
func TestImageSourceFromHandWrittenArgs(t *testing.T) {
	a := handWritten()
	a.Source = &serving.Source{Image: "ghcr.io/acme/weights/mistral:v0.3"}
	var hasClaim bool
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		inf, err := serving.New(ctx, "inference-mistral", a)
		if err == nil {
			hasClaim = inf.HasClaim
		}
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	assert.False(t, hasClaim, "no claim to export")
	for _, o := range rec.Objects() {
		assert.NotContains(t, []string{"Job", "PersistentVolumeClaim"}, o.Kind(), "nothing to fetch, no cache to create")
	}
	o, _ := rec.Find("Deployment", "inference-mistral")
	var d appsv1.Deployment
	require.NoError(t, o.Decode(&d))
	volume := d.Spec.Template.Spec.Volumes[2]
	require.NotNil(t, volume.Image)
	assert.Equal(t, "ghcr.io/acme/weights/mistral:v0.3", volume.Image.Reference)
	assert.Equal(t, corev1.PullIfNotPresent, volume.Image.PullPolicy)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "MODEL_PATH", Value: "/models"})
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "model-cache", MountPath: "/models", ReadOnly: true})
}
