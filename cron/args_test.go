package cron_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"

	"llm-platform/cron"
	"llm-platform/internal/intent"
	"llm-platform/internal/mock"
	"llm-platform/internal/podspec"
	"llm-platform/internal/run"
)

func TestScheduleFromHandWrittenArgs(t *testing.T) {
	small := podspec.ResourceList{CPU: "1", Memory: "1Gi", EphemeralStorage: "1Gi"}
	ttl := 600
	args := cron.Args{
		Schedule: "@hourly", TimeZone: "Etc/UTC", StartingDeadlineSeconds: 60,
		SuccessfulJobsHistoryLimit: 1, FailedJobsHistoryLimit: 2,
		Run:    run.Definition{Image: "ingest:1", Resources: podspec.Resources{Requests: small, Limits: small}, Completions: 1, Parallelism: 1, DataClaim: pulumi.String("shared"), MountPath: "/work"},
		Limits: run.Limits{BackoffLimit: 2, ActiveDeadlineSeconds: 3600, TTLSecondsAfterFinished: &ttl},
		Egress: []intent.Egress{{CIDR: "10.1.0.0/16", Ports: []int{443}}},
		Shared: podspec.Shared{Namespace: pulumi.String("team-a"), Security: podspec.DefaultSecurity(), ServiceAccount: pulumi.String("sa")},
	}
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := cron.New(ctx, "schedule", args)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	o, ok := rec.Find("CronJob", "pipeline-schedule")
	require.True(t, ok)
	var cj batchv1.CronJob
	require.NoError(t, o.Decode(&cj))
	job := cj.Spec.JobTemplate.Spec
	assert.Equal(t, int32(600), *job.TTLSecondsAfterFinished)
	assert.Equal(t, "ingest:1", job.Template.Spec.Containers[0].Image)
	assert.Equal(t, "shared", job.Template.Spec.Volumes[1].PersistentVolumeClaim.ClaimName)
	assert.Equal(t, "pipeline-schedule", job.Template.Labels["app.kubernetes.io/instance"], "runs are told apart from the first run")
	assert.Equal(t, args.Egress, args.Intent().Reaches, "a run reaches its sources")
}
