// Package cron creates the CronJob that runs the pipeline's ingestion on a
// schedule: never two runs at once, bounded retries, deadline and history.
package cron

import (
	"fmt"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/config"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
)

// Args configures the schedule.
type Args struct {
	// Cron is the validated configuration.
	Cron config.Cron
	// Namespace the CronJob lives in.
	Namespace pulumi.StringInput
	// Workload labels the CronJob and its runs.
	Workload labels.Workload
	// Run is the Job spec of one run: the same as the first run's, with the
	// schedule's own limits (see pipeline.RunSpec).
	Run *batchv1.JobSpecArgs
}

// Schedule is the pipeline's CronJob.
type Schedule struct {
	pulumi.ResourceState

	// CronJobName is the CronJob's name.
	CronJobName pulumi.StringOutput
}

// New creates the CronJob.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Schedule, error) {
	c := args.Cron
	s := &Schedule{}
	if err := ctx.RegisterComponentResource("llm-platform:index:PipelineSchedule", name, s, opts...); err != nil {
		return nil, err
	}
	cronJob, err := batchv1.NewCronJob(ctx, name+"-cronjob", &batchv1.CronJobArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(names.Cron), Namespace: args.Namespace, Labels: args.Workload.AllInput(),
			Annotations: podspec.WorkloadAnnotations(nil),
		},
		Spec: &batchv1.CronJobSpecArgs{
			Schedule:                   pulumi.String(c.Schedule),
			TimeZone:                   pulumi.String(c.TimeZone),
			Suspend:                    pulumi.BoolPtr(c.Suspend),
			ConcurrencyPolicy:          pulumi.String("Forbid"),
			StartingDeadlineSeconds:    pulumi.Int(c.StartingDeadlineSeconds),
			SuccessfulJobsHistoryLimit: pulumi.Int(c.SuccessfulJobsHistoryLimit),
			FailedJobsHistoryLimit:     pulumi.Int(c.FailedJobsHistoryLimit),
			JobTemplate: &batchv1.JobTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: args.Workload.AllInput()},
				Spec:     args.Run,
			},
		},
	}, pulumi.Parent(s))
	if err != nil {
		return nil, fmt.Errorf("cron %q: cronjob: %w", name, err)
	}
	s.CronJobName = cronJob.Metadata.Name().Elem()
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{"cronJobName": s.CronJobName}); err != nil {
		return nil, err
	}
	return s, nil
}
