package pipeline_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/availability"
	"llm-platform/internal/run"
	"llm-platform/internal/stacktest"
)

// ingestionJob is the stack's one ingestion Job, whatever its name.
func ingestionJob(t *testing.T, res *stacktest.Result) batchv1.Job {
	t.Helper()
	var job batchv1.Job
	require.NoError(t, res.OnlyNamed(t, "Job", "ingestion-").Decode(&job))
	return job
}

func TestIngestionJobDoesNotHoldPulumiUp(t *testing.T) {
	job := ingestionJob(t, stacktest.Run(t, stacktest.Load(t, "prod")))
	assert.Equal(t, "true", job.Annotations[availability.SkipAwait])
	assert.Equal(t, int32(6), *job.Spec.BackoffLimit)
	assert.Equal(t, int64(86400), *job.Spec.ActiveDeadlineSeconds)
	assert.Equal(t, corev1.RestartPolicyNever, job.Spec.Template.Spec.RestartPolicy)
	assert.Equal(t, batchv1.IndexedCompletion, *job.Spec.CompletionMode)
	assert.Equal(t, int32(8), *job.Spec.Completions)
	assert.Equal(t, int32(4), *job.Spec.Parallelism)
}

// A run is named by its spec: a changed run is a new Job beside the old one
// (no delete-then-create race on one name), the same run keeps its name, and
// the finished Job is kept so a refresh never sees it gone.
func TestIngestionRunIsNamedByItsSpec(t *testing.T) {
	name := func(c *stacktest.Config) string {
		return ingestionJob(t, stacktest.Run(t, c)).Name
	}
	prod := name(stacktest.Load(t, "prod"))
	assert.Regexp(t, `^ingestion-[0-9a-f]{10}$`, prod)
	assert.Equal(t, prod, name(stacktest.Load(t, "prod")), "the same run, the same name")
	for _, change := range []struct {
		key   string
		value any
	}{
		{"pipeline.ingestion.image", "ghcr.io/llm-platform/ingest:0.3.2"},
		{"pipeline.ingestion.args", []any{"--source", "s3://corpus/raw-v2"}},
		{"pipeline.ingestion.parallelism", 2},
		{"pipeline.mountPath", "/corpus"},
	} {
		assert.NotEqual(t, prod, name(stacktest.Load(t, "prod").Set(t, change.key, change.value)), "%s changes the run", change.key)
	}
	assert.Equal(t, prod, name(stacktest.Load(t, "prod").Set(t, "pipeline.transformation.image", "ghcr.io/llm-platform/transform:0.4.0")),
		"a change elsewhere is not a new run")

	// A run that failed for a reason outside the file runs again when
	// rerun is raised; each value is its own run. Without the key the
	// template has no annotation, so upgrading renames no run.
	rerun1 := stacktest.Load(t, "prod").Set(t, "pipeline.ingestion.rerun", 1)
	first := ingestionJob(t, stacktest.Run(t, rerun1))
	assert.NotEqual(t, prod, first.Name, "rerun 1 is a new run")
	assert.Equal(t, "1", first.Spec.Template.Annotations[run.RerunAnnotation])
	assert.NotEqual(t, first.Name, name(stacktest.Load(t, "prod").Set(t, "pipeline.ingestion.rerun", 2)), "rerun 2 is another")
	assert.NotContains(t, ingestionJob(t, stacktest.Run(t, stacktest.Load(t, "prod"))).Spec.Template.Annotations, run.RerunAnnotation)
	var schedule batchv1.CronJob
	stacktest.Run(t, rerun1).Decode(t, "CronJob", "pipeline-schedule", &schedule)
	assert.NotContains(t, schedule.Spec.JobTemplate.Spec.Template.Annotations, run.RerunAnnotation, "the schedule's runs are not reruns")

	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	job := ingestionJob(t, res)
	assert.Nil(t, job.Spec.TTLSecondsAfterFinished, "the finished Job is the record of the run")
	assert.False(t, res.Resource(t, "kubernetes:batch/v1:Job", "pipeline-ingestion").DeleteBeforeReplace,
		"names differ, so the new run is created before the old Job goes")
}

func TestPodFailurePolicy(t *testing.T) {
	job := ingestionJob(t, stacktest.Run(t, stacktest.Load(t, "prod")))
	rules := job.Spec.PodFailurePolicy.Rules
	require.Len(t, rules, 2)
	assert.Equal(t, batchv1.PodFailurePolicyActionIgnore, rules[0].Action)
	assert.Equal(t, corev1.DisruptionTarget, rules[0].OnPodConditions[0].Type, "a drained node does not count against backoffLimit")
	assert.Equal(t, batchv1.PodFailurePolicyActionFailJob, rules[1].Action)
	assert.Equal(t, []int32{2, 3}, rules[1].OnExitCodes.Values)
	assert.Equal(t, "ingestion", *rules[1].OnExitCodes.ContainerName)

	c := stacktest.Load(t, "prod").Set(t, "pipeline.ingestion.failFastExitCodes", []any{})
	job = ingestionJob(t, stacktest.Run(t, c))
	assert.Len(t, job.Spec.PodFailurePolicy.Rules, 1)
}

func TestSharedClaimIsKeptAndMountedByEveryStage(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var pvc corev1.PersistentVolumeClaim
	res.Decode(t, "PersistentVolumeClaim", "pipeline-data-rwx-efs-sc", &pvc)
	assert.Equal(t, "2Ti", pvc.Spec.Resources.Requests.Storage().String())
	assert.True(t, res.Resource(t, "kubernetes:core/v1:PersistentVolumeClaim", "pipeline-data").RetainOnDelete)

	for _, tpl := range res.PodTemplates(t) {
		if strings.HasPrefix(tpl.Owner, "Job/ingestion-") || tpl.Owner == "Deployment/transformation" || tpl.Owner == "CronJob/pipeline-schedule" {
			var claim string
			for _, v := range tpl.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					claim = v.PersistentVolumeClaim.ClaimName
				}
			}
			assert.Equal(t, "pipeline-data-rwx-efs-sc", claim, tpl.Owner)
			assert.Contains(t, tpl.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: run.DataVolume, MountPath: "/data"}, tpl.Owner)
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
