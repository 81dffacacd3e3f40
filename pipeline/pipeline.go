// Package pipeline creates the data pipeline: the shared claim for
// intermediate data (kept on destroy), the ingestion Job that writes to it, and
// the transformation Deployment that reads it, with its own PDB and HPA.
package pipeline

import (
	"fmt"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/intent"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/run"
	"llm-platform/internal/workload"
)

// Args describes the pipeline.
type Args struct {
	// Data is the shared claim, named DataClaimName and mounted at MountPath
	// in every stage.
	Data          podspec.Claim
	DataClaimName string
	MountPath     string
	// Ingestion is what the first run does (its DataClaim and MountPath are
	// filled in here), bounded by IngestionLimits.
	Ingestion       run.Definition
	IngestionLimits run.Limits
	// IngestionEgress are the networks the runs read from.
	IngestionEgress []intent.Egress
	// IngestionShared is the runs' namespace, ServiceAccount, priority and
	// pull secret.
	IngestionShared podspec.Shared
	// Transformation is the transformation stage.
	Transformation Transformation
	// Adopter, when set, is the provider of the claims the stack keeps on
	// delete: it adopts a kept claim of the same name instead of failing.
	Adopter pulumi.ProviderResource
}

// Transformation describes the transformation Deployment. It serves HTTP,
// and metrics at /metrics, on its port "http".
type Transformation struct {
	// Image and Args of the service.
	Image string
	Args  []string
	// Resources of its container.
	Resources podspec.Resources
	// Port it listens on; the stack's pods may reach it there, and Scrapers
	// (namespaces) may scrape it.
	Port     int
	Scrapers []string
	// Probes and the Budgets its timings derive from.
	Probes  workload.Probes
	Budgets workload.Budgets
	// Replicas while autoscaling is off; Autoscaling otherwise owns them.
	Replicas    int
	Autoscaling availability.Autoscaling
	// MaxUnavailable of its disruption budget.
	MaxUnavailable string
	// Egress are the networks outside the cluster it reaches.
	Egress []intent.Egress
	// Shared is its pods' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
}

// Pipeline is the data pipeline.
type Pipeline struct {
	pulumi.ResourceState

	// DataClaim is the shared claim's name.
	DataClaim pulumi.StringOutput
	// TransformationWorkload identifies the transformation pods; they serve
	// HTTP, and metrics at /metrics, on the container port "http".
	TransformationWorkload labels.Workload
	// IngestionJob is the ingestion Job's name.
	IngestionJob pulumi.StringOutput
	// Transformation is the transformation Deployment's name.
	Transformation pulumi.StringOutput
}

// TransformationWorkload identifies the transformation pods.
var TransformationWorkload = labels.Workload{Name: names.Transformation, Instance: names.Transformation, Component: "pipeline"}

// Intents are what the stages serve and reach: the first run reaches its
// sources; the transformation serves the stack's pods and the scrapers.
func (a Args) Intents() []intent.Workload {
	t := a.Transformation
	return []intent.Workload{{
		Name:    names.Ingestion,
		Pods:    run.Workload(names.Ingestion).Selector(),
		Reaches: a.IngestionEgress,
	}, {
		Name:    names.Transformation,
		Pods:    TransformationWorkload.Selector(),
		Serves:  intent.StackService(t.Port, t.Scrapers),
		Reaches: t.Egress,
	}}
}

// New creates the pipeline.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Pipeline, error) {
	p := &Pipeline{TransformationWorkload: TransformationWorkload}
	if err := ctx.RegisterComponentResource("llm-platform:index:Pipeline", name, p, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(p)
	dataLabels := labels.Workload{Name: names.PipelineDataApp, Instance: names.PipelineDataApp, Component: "pipeline"}

	claim, err := corev1.NewPersistentVolumeClaim(ctx, name+"-data", &corev1.PersistentVolumeClaimArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(args.DataClaimName), Namespace: args.IngestionShared.Namespace,
			Labels: dataLabels.AllInput(), Annotations: availability.Adopted(),
		},
		Spec: podspec.ClaimSpec(args.Data),
	}, append([]pulumi.ResourceOption{parent}, availability.Kept(args.Adopter)...)...)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: data claim: %w", name, err)
	}
	p.DataClaim = claim.Metadata.Name().Elem()

	first := args.Ingestion
	first.DataClaim, first.MountPath = p.DataClaim, args.MountPath
	ingestion := run.Workload(names.Ingestion)
	spec := run.Spec(first, args.IngestionShared, ingestion, args.IngestionLimits)
	// The finished Job stays: it is the record that this run happened. A TTL
	// would delete it, every refresh would then see it gone, and the next
	// `pulumi up` would run ingestion again.
	job, err := batchv1.NewJob(ctx, name+"-ingestion", &batchv1.JobArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: run.Name(spec), Namespace: args.IngestionShared.Namespace, Labels: ingestion.AllInput(),
			// An ingestion may run for hours; `pulumi up` must not wait for it.
			Annotations: podspec.WorkloadAnnotations(pulumi.StringMap{availability.SkipAwait: pulumi.String("true")}),
		},
		Spec: spec,
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: ingestion job: %w", name, err)
	}
	p.IngestionJob = job.Metadata.Name().Elem()

	t := args.Transformation
	container := t.Shared.Security.Container(podspec.ContainerSpec{
		Name: names.Transformation, Image: t.Image, Args: t.Args, Resources: t.Resources,
		Env:    corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("DATA_DIR"), Value: pulumi.String(args.MountPath)}},
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String(run.DataVolume), MountPath: pulumi.String(args.MountPath)}},
	})
	built, err := workload.New(ctx, name+"-transformation", workload.Args{
		Name:      names.Transformation,
		Workload:  TransformationWorkload,
		Shared:    t.Shared,
		Container: container,
		Ports:     []workload.Port{{Name: "http", Port: t.Port}},
		Pod: corev1.PodSpecArgs{
			Volumes: corev1.VolumeArray{podspec.Tmp(t.Resources), podspec.ClaimVolume(run.DataVolume, p.DataClaim)},
		},
		Probes:         t.Probes,
		Budgets:        t.Budgets,
		Replicas:       t.Replicas,
		Autoscaling:    t.Autoscaling,
		MaxUnavailable: t.MaxUnavailable,
		// CPU nodes have room for one more pod, but a ReadWriteOnce claim
		// does not attach to the second node a surge pod may land on.
		Surge:                args.Data.AccessMode != "ReadWriteOnce",
		FormerDeploymentName: name + "-transformation",
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", name, err)
	}
	p.Transformation = built.Deployment

	if err := ctx.RegisterResourceOutputs(p, pulumi.Map{
		"dataClaim": p.DataClaim, "ingestionJob": p.IngestionJob, "transformation": p.Transformation,
	}); err != nil {
		return nil, err
	}
	return p, nil
}
