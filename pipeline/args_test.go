package pipeline_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"

	"llm-platform/internal/intent"
	"llm-platform/internal/mock"
	"llm-platform/internal/podspec"
	"llm-platform/internal/run"
	"llm-platform/internal/workload"
	"llm-platform/pipeline"
)

func TestPipelineFromHandWrittenArgs(t *testing.T) {
	shared := podspec.Shared{Namespace: pulumi.String("team-a"), Security: podspec.DefaultSecurity(), ServiceAccount: pulumi.String("sa")}
	small := podspec.Resources{Requests: podspec.ResourceList{CPU: "1", Memory: "1Gi", EphemeralStorage: "1Gi"}, Limits: podspec.ResourceList{CPU: "1", Memory: "1Gi", EphemeralStorage: "1Gi"}}
	args := pipeline.Args{
		Data: podspec.Claim{Size: "10Gi", AccessMode: "ReadWriteMany"}, DataClaimName: "shared", MountPath: "/work",
		Ingestion:       run.Definition{Image: "ingest:1", Resources: small, Completions: 4, Parallelism: 2, Indexed: true},
		IngestionLimits: run.Limits{BackoffLimit: 1, ActiveDeadlineSeconds: 600},
		IngestionEgress: []intent.Egress{{CIDR: "10.1.0.0/16", Ports: []int{443}}},
		IngestionShared: shared,
		Transformation: pipeline.Transformation{
			Image: "transform:1", Resources: small, Port: 8081,
			Probes:  workload.Probes{StartupPath: "/healthz", ReadinessPath: "/readyz", LivenessPath: "/healthz", PeriodSeconds: 10, ReadinessPeriodSeconds: 10},
			Budgets: workload.Budgets{StartupSeconds: 120, ImagePullSeconds: 60}, Replicas: 1, MaxUnavailable: "1", Shared: shared,
		},
	}
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := pipeline.New(ctx, "pipeline", args)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)

	o, ok := rec.Find("Deployment", "transformation")
	require.True(t, ok)
	var d appsv1.Deployment
	require.NoError(t, o.Decode(&d))
	c := d.Spec.Template.Spec.Containers[0]
	require.NotNil(t, c.StartupProbe, "a slow start is not a liveness failure")
	assert.Equal(t, int32(12), c.StartupProbe.FailureThreshold, "120 s at 10 s periods")
	assert.Equal(t, int32(60+120+60), *d.Spec.ProgressDeadlineSeconds, "image pull + startup + margin")
	deployment, ok := rec.Resource("kubernetes:apps/v1:Deployment", "pipeline-transformation-deployment")
	require.True(t, ok)
	assert.Equal(t, "14m0s", deployment.CreateTimeout, "Pulumi waits the progress deadline and a node's provisioning")

	var jobs int
	for _, o := range rec.Objects() {
		if o.Kind() != "Job" {
			continue
		}
		jobs++
		var job batchv1.Job
		require.NoError(t, o.Decode(&job))
		assert.Equal(t, "shared", job.Spec.Template.Spec.Volumes[1].PersistentVolumeClaim.ClaimName, "the run mounts the claim the pipeline made")
		assert.Equal(t, int32(4), *job.Spec.Completions)
	}
	assert.Equal(t, 1, jobs)

	intents := args.Intents()
	require.Len(t, intents, 2)
	assert.Equal(t, args.IngestionEgress, intents[0].Reaches, "ingestion reaches its sources")
	assert.Empty(t, intents[1].Reaches, "the transformation reaches nothing outside")
	assert.True(t, intents[1].Serves[0].From.Stack, "the stack's pods reach the transformation")
	assert.Equal(t, 8081, intents[1].Serves[0].Port)
}
