package pipeline_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/stacktest"
	"llm-platform/pipeline"
)

func TestIngestionJobDoesNotHoldPulumiUp(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var job batchv1.Job
	res.Decode(t, "Job", "ingestion", &job)
	assert.Equal(t, "true", job.Annotations[pipeline.SkipAwait])
	assert.Equal(t, int32(6), *job.Spec.BackoffLimit)
	assert.Equal(t, int64(86400), *job.Spec.ActiveDeadlineSeconds)
	assert.Equal(t, int32(86400), *job.Spec.TTLSecondsAfterFinished)
	assert.Equal(t, corev1.RestartPolicyNever, job.Spec.Template.Spec.RestartPolicy)
	assert.Equal(t, batchv1.IndexedCompletion, *job.Spec.CompletionMode)
	assert.Equal(t, int32(8), *job.Spec.Completions)
	assert.Equal(t, int32(4), *job.Spec.Parallelism)
	assert.True(t, res.Resource(t, "kubernetes:batch/v1:Job", "pipeline-ingestion").DeleteBeforeReplace,
		"a changed template replaces the Job, and its fixed name needs the old one gone first")
}

func TestPodFailurePolicy(t *testing.T) {
	var job batchv1.Job
	stacktest.Run(t, stacktest.Load(t, "prod")).Decode(t, "Job", "ingestion", &job)
	rules := job.Spec.PodFailurePolicy.Rules
	require.Len(t, rules, 2)
	assert.Equal(t, batchv1.PodFailurePolicyActionIgnore, rules[0].Action)
	assert.Equal(t, corev1.DisruptionTarget, rules[0].OnPodConditions[0].Type, "a drained node does not count against backoffLimit")
	assert.Equal(t, batchv1.PodFailurePolicyActionFailJob, rules[1].Action)
	assert.Equal(t, []int32{2, 3}, rules[1].OnExitCodes.Values)
	assert.Equal(t, "ingestion", *rules[1].OnExitCodes.ContainerName)

	c := stacktest.Load(t, "prod").Set(t, "pipeline.ingestion.failFastExitCodes", []any{})
	stacktest.Run(t, c).Decode(t, "Job", "ingestion", &job)
	assert.Len(t, job.Spec.PodFailurePolicy.Rules, 1)
}

func TestSharedClaimIsKeptAndMountedByEveryStage(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var pvc corev1.PersistentVolumeClaim
	res.Decode(t, "PersistentVolumeClaim", "pipeline-data", &pvc)
	assert.Equal(t, "2Ti", pvc.Spec.Resources.Requests.Storage().String())
	assert.True(t, res.Resource(t, "kubernetes:core/v1:PersistentVolumeClaim", "pipeline-data").RetainOnDelete)

	for _, tpl := range res.PodTemplates(t) {
		if tpl.Owner == "Job/ingestion" || tpl.Owner == "Deployment/transformation" || tpl.Owner == "CronJob/pipeline-schedule" {
			var claim string
			for _, v := range tpl.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					claim = v.PersistentVolumeClaim.ClaimName
				}
			}
			assert.Equal(t, "pipeline-data", claim, tpl.Owner)
			assert.Contains(t, tpl.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: pipeline.DataVolume, MountPath: "/data"}, tpl.Owner)
		}
	}
}

func TestTransformationHasProbesBudgetAndAutoscaler(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	d := res.Deployment(t, "transformation")
	assert.Nil(t, d.Spec.Replicas, "the HPA owns replicas")
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.True(t, res.Has("PodDisruptionBudget", "transformation"))
	assert.True(t, res.Has("HorizontalPodAutoscaler", "transformation"))

	dev := stacktest.Run(t, stacktest.Load(t, "dev"))
	assert.Equal(t, int32(1), *dev.Deployment(t, "transformation").Spec.Replicas)
	assert.False(t, dev.Has("PodDisruptionBudget", "transformation"), "one replica: no budget")
}
