package cron_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/stacktest"
)

func TestScheduleRunsIngestionOneAtATime(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var cj batchv1.CronJob
	res.Decode(t, "CronJob", "pipeline-schedule", &cj)
	assert.Equal(t, "30 3 * * *", cj.Spec.Schedule)
	assert.Equal(t, "Europe/Berlin", *cj.Spec.TimeZone)
	assert.Equal(t, batchv1.ForbidConcurrent, cj.Spec.ConcurrencyPolicy)
	assert.False(t, *cj.Spec.Suspend)
	assert.Equal(t, int64(300), *cj.Spec.StartingDeadlineSeconds)
	assert.Equal(t, int32(3), *cj.Spec.SuccessfulJobsHistoryLimit)
	job := cj.Spec.JobTemplate.Spec
	assert.Equal(t, int32(2), *job.BackoffLimit)
	assert.Equal(t, int64(21600), *job.ActiveDeadlineSeconds)
	assert.Equal(t, int32(86400), *job.TTLSecondsAfterFinished)
	assert.Equal(t, corev1.RestartPolicyNever, job.Template.Spec.RestartPolicy)
	assert.Equal(t, "ghcr.io/llm-platform/ingest:0.3.1", job.Template.Spec.Containers[0].Image, "a run does what the ingestion Job does")
	assert.Equal(t, "pipeline-schedule", job.Template.Spec.ServiceAccountName)

	// The same run as the first: completion mode, completions, parallelism and
	// failure policy included (prod ingests in 8 shards, 4 at a time).
	var first batchv1.Job
	require.NoError(t, res.OnlyNamed(t, "Job", "ingestion-").Decode(&first))
	assert.Equal(t, *first.Spec.CompletionMode, *job.CompletionMode)
	assert.Equal(t, int32(8), *job.Completions)
	assert.Equal(t, int32(4), *job.Parallelism)
	assert.Equal(t, first.Spec.PodFailurePolicy, job.PodFailurePolicy)
	assert.Equal(t, first.Spec.Template.Spec.Containers, job.Template.Spec.Containers)

	var dev batchv1.CronJob
	stacktest.Run(t, stacktest.Load(t, "dev")).Decode(t, "CronJob", "pipeline-schedule", &dev)
	assert.True(t, *dev.Spec.Suspend, "dev keeps the schedule suspended")
}
