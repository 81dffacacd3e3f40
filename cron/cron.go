// Package cron creates the CronJob that runs the pipeline's ingestion on a
// schedule: never two runs at once, bounded retries, deadline and history.
package cron

import (
	"fmt"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/intent"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/run"
)

// Args describes the schedule.
type Args struct {
	// Schedule in cron syntax, in TimeZone (an IANA name).
	Schedule, TimeZone string
	// Suspend stops scheduling.
	Suspend bool
	// StartingDeadlineSeconds is how late a missed run may still start.
	StartingDeadlineSeconds int
	// SuccessfulJobsHistoryLimit and FailedJobsHistoryLimit keep finished runs.
	SuccessfulJobsHistoryLimit, FailedJobsHistoryLimit int
	// Run is what each run does: the same definition as the pipeline's first
	// run (see package run), bounded by the schedule's own Limits.
	Run    run.Definition
	Limits run.Limits
	// Egress are the networks the runs read from.
	Egress []intent.Egress
	// Shared is the runs' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
}

// Workload labels the CronJob and its runs: ingestion pods, told apart from
// the first run by their instance.
var Workload = run.Workload(names.Cron)

// Intent is what the runs reach: the sources they read.
func (a Args) Intent() intent.Workload {
	return intent.Workload{Name: names.Cron, Pods: Workload.Selector(), Reaches: a.Egress}
}

// Schedule is the pipeline's CronJob.
type Schedule struct {
	pulumi.ResourceState

	// CronJobName is the CronJob's name.
	CronJobName pulumi.StringOutput
}

// New creates the CronJob.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Schedule, error) {
	c := args
	s := &Schedule{}
	if err := ctx.RegisterComponentResource("llm-platform:index:PipelineSchedule", name, s, opts...); err != nil {
		return nil, err
	}
	cronJob, err := batchv1.NewCronJob(ctx, name+"-cronjob", &batchv1.CronJobArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(names.Cron), Namespace: args.Shared.Namespace, Labels: Workload.AllInput(),
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
				Metadata: &metav1.ObjectMetaArgs{Labels: Workload.AllInput()},
				Spec:     run.Spec(args.Run, args.Shared, Workload, args.Limits),
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
