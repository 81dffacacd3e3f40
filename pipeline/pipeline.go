// Package pipeline creates the data pipeline: the shared claim for
// intermediate data (kept on destroy), the ingestion Job that writes to it, and
// the transformation Deployment that reads it, with its own PDB and HPA.
package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/config"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
)

// DataVolume is the name of the shared claim's volume in every stage.
const DataVolume = "data"

// Args configures the pipeline.
type Args struct {
	// Pipeline is the validated configuration.
	Pipeline config.Pipeline
	// Ingestion and Transformation are each stage's namespace, ServiceAccount,
	// priority and pull secret.
	Ingestion, Transformation podspec.Shared
	// ModelRegistryTokenSecret, when set, is exposed to ingestion as MODEL_REGISTRY_TOKEN.
	ModelRegistryTokenSecret pulumi.StringInput
	// Adopter, when set, is the provider of the claims the stack keeps on
	// delete: it adopts a kept claim of the same name instead of failing.
	Adopter pulumi.ProviderResource
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

// IngestionWorkload labels the pods of an ingestion run; instance tells the
// Job created by `pulumi up` from runs of the schedule.
func IngestionWorkload(instance string) labels.Workload {
	return labels.Workload{Name: names.Ingestion, Instance: instance, Component: "pipeline"}
}

// IngestionPodArgs is what an ingestion pod needs.
type IngestionPodArgs struct {
	// Ingestion is the validated stage configuration.
	Ingestion config.Ingestion
	// MountPath of the shared claim.
	MountPath string
	// DataClaim is the shared claim's name.
	DataClaim pulumi.StringInput
	// Shared is the pod's namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
	// Workload labels the pod.
	Workload labels.Workload
	// ModelRegistryTokenSecret, when set, is exposed as MODEL_REGISTRY_TOKEN.
	ModelRegistryTokenSecret pulumi.StringInput
}

// ingestionPodTemplate is the pod of one ingestion run (see RunSpec).
func ingestionPodTemplate(a IngestionPodArgs) *corev1.PodTemplateSpecArgs {
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("DATA_DIR"), Value: pulumi.String(a.MountPath)}}
	if a.ModelRegistryTokenSecret != nil {
		env = append(env, podspec.SecretEnv("MODEL_REGISTRY_TOKEN", a.ModelRegistryTokenSecret, "token"))
	}
	container := a.Shared.Security.Container(podspec.ContainerSpec{
		Name: names.Ingestion, Image: a.Ingestion.Image, Args: a.Ingestion.Args, Resources: a.Ingestion.Resources,
		Env:    env,
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String(DataVolume), MountPath: pulumi.String(a.MountPath)}},
	})
	return &corev1.PodTemplateSpecArgs{
		Metadata: &metav1.ObjectMetaArgs{Labels: a.Workload.AllInput()},
		Spec: a.Shared.PodSpec(corev1.PodSpecArgs{
			// Never: a failed pod stays for its logs, and podFailurePolicy requires it.
			RestartPolicy: pulumi.String("Never"),
			Containers:    corev1.ContainerArray{container},
			Volumes: corev1.VolumeArray{
				podspec.Tmp(a.Ingestion.Resources),
				podspec.ClaimVolume(DataVolume, a.DataClaim),
			},
		}),
	}
}

// failurePolicy ignores pods lost to disruptions (a drained node, a
// preemption) so they do not count against backoffLimit, and fails the whole
// Job at once on the exit codes that mean retrying is pointless.
func failurePolicy(container string, failFast []int) *batchv1.PodFailurePolicyArgs {
	rules := batchv1.PodFailurePolicyRuleArray{batchv1.PodFailurePolicyRuleArgs{
		Action: pulumi.String("Ignore"),
		OnPodConditions: batchv1.PodFailurePolicyOnPodConditionsPatternArray{batchv1.PodFailurePolicyOnPodConditionsPatternArgs{
			Type: pulumi.String("DisruptionTarget"), Status: pulumi.String("True"),
		}},
	}}
	if len(failFast) > 0 {
		rules = append(rules, batchv1.PodFailurePolicyRuleArgs{
			Action: pulumi.String("FailJob"),
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirementArgs{
				ContainerName: pulumi.String(container), Operator: pulumi.String("In"), Values: pulumi.ToIntArray(failFast),
			},
		})
	}
	return &batchv1.PodFailurePolicyArgs{Rules: rules}
}

// RunLimits bound one run. The first run's Job and the schedule's runs each
// have their own.
type RunLimits struct {
	// BackoffLimit is how many failed pods are retried.
	BackoffLimit int
	// ActiveDeadlineSeconds bounds the whole run.
	ActiveDeadlineSeconds int
	// TTLSecondsAfterFinished deletes a finished run; nil keeps it.
	TTLSecondsAfterFinished *int
}

// RunSpec is the Job spec of one ingestion run: the pod, its completion mode,
// completions, parallelism and failure policy. The first run and every
// scheduled run are built from it, so a scheduled run does exactly what the
// first one did; only the limits differ.
func RunSpec(pod IngestionPodArgs, limits RunLimits) *batchv1.JobSpecArgs {
	in := pod.Ingestion
	completionMode := "NonIndexed"
	if in.Indexed {
		completionMode = "Indexed"
	}
	spec := &batchv1.JobSpecArgs{
		BackoffLimit:          pulumi.Int(limits.BackoffLimit),
		ActiveDeadlineSeconds: pulumi.Int(limits.ActiveDeadlineSeconds),
		Completions:           pulumi.Int(in.Completions),
		Parallelism:           pulumi.Int(in.Parallelism),
		CompletionMode:        pulumi.String(completionMode),
		PodFailurePolicy:      failurePolicy(names.Ingestion, in.FailFastExitCodes),
		Template:              ingestionPodTemplate(pod),
	}
	if limits.TTLSecondsAfterFinished != nil {
		spec.TtlSecondsAfterFinished = pulumi.Int(*limits.TTLSecondsAfterFinished)
	}
	return spec
}

// RunName names a run by the content of its spec: "ingestion-" and the first
// ten hex digits of the SHA-256 of the spec as sent. A Job's spec cannot change
// in place, so a changed run is a new Job under a new name, created beside the
// old one, and never races the deletion of an object of the same name.
func RunName(spec *batchv1.JobSpecArgs) pulumi.StringOutput {
	return spec.ToJobSpecOutput().ApplyT(func(s batchv1.JobSpec) (string, error) {
		text, err := json.Marshal(s)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(text)
		return names.Ingestion + "-" + hex.EncodeToString(sum[:])[:10], nil
	}).(pulumi.StringOutput)
}

// New creates the pipeline.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Pipeline, error) {
	p := &Pipeline{TransformationWorkload: TransformationWorkload}
	if err := ctx.RegisterComponentResource("llm-platform:index:Pipeline", name, p, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(p)
	cfg := args.Pipeline
	dataLabels := labels.Workload{Name: names.PipelineDataApp, Instance: names.PipelineDataApp, Component: "pipeline"}

	claim, err := corev1.NewPersistentVolumeClaim(ctx, name+"-data", &corev1.PersistentVolumeClaimArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(names.PipelineData(cfg.Storage.StorageClass, cfg.Storage.AccessMode)), Namespace: args.Ingestion.Namespace,
			Labels: dataLabels.AllInput(), Annotations: availability.Adopted(),
		},
		Spec: podspec.ClaimSpec(cfg.Storage),
	}, parent, pulumi.RetainOnDelete(true), pulumi.Provider(args.Adopter))
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: data claim: %w", name, err)
	}
	p.DataClaim = claim.Metadata.Name().Elem()

	in := cfg.Ingestion
	ingestion := IngestionWorkload(names.Ingestion)
	spec := RunSpec(IngestionPodArgs{
		Ingestion: in, MountPath: cfg.MountPath, DataClaim: p.DataClaim, Shared: args.Ingestion,
		Workload: ingestion, ModelRegistryTokenSecret: args.ModelRegistryTokenSecret,
	}, RunLimits{BackoffLimit: in.BackoffLimit, ActiveDeadlineSeconds: in.ActiveDeadlineSeconds})
	// The finished Job stays: it is the record that this run happened. A TTL
	// would delete it, every refresh would then see it gone, and the next
	// `pulumi up` would run ingestion again.
	job, err := batchv1.NewJob(ctx, name+"-ingestion", &batchv1.JobArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: RunName(spec), Namespace: args.Ingestion.Namespace, Labels: ingestion.AllInput(),
			// An ingestion may run for hours; `pulumi up` must not wait for it.
			Annotations: podspec.WorkloadAnnotations(pulumi.StringMap{availability.SkipAwait: pulumi.String("true")}),
		},
		Spec: spec,
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: ingestion job: %w", name, err)
	}
	p.IngestionJob = job.Metadata.Name().Elem()

	deployment, err := newTransformation(ctx, name, cfg, args.Transformation, p.DataClaim, parent)
	if err != nil {
		return nil, fmt.Errorf("pipeline %q: %w", name, err)
	}
	p.Transformation = deployment.Metadata.Name().Elem()

	if err := ctx.RegisterResourceOutputs(p, pulumi.Map{
		"dataClaim": p.DataClaim, "ingestionJob": p.IngestionJob, "transformation": p.Transformation,
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// TransformationWorkload identifies the transformation pods.
var TransformationWorkload = labels.Workload{Name: names.Transformation, Instance: names.Transformation, Component: "pipeline"}

func newTransformation(ctx *pulumi.Context, name string, cfg config.Pipeline, shared podspec.Shared, claim pulumi.StringInput, parent pulumi.ResourceOption) (*appsv1.Deployment, error) {
	t := cfg.Transformation
	workload := TransformationWorkload
	meta := func() *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(names.Transformation), Namespace: shared.Namespace, Labels: workload.AllInput()}
	}
	container := shared.Security.Container(podspec.ContainerSpec{
		Name: names.Transformation, Image: t.Image, Args: t.Args, Resources: t.Resources,
		Env:    corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("DATA_DIR"), Value: pulumi.String(cfg.MountPath)}},
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String(DataVolume), MountPath: pulumi.String(cfg.MountPath)}},
	})
	container.Ports = corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(t.Port), Protocol: pulumi.String("TCP")}}
	container.ReadinessProbe = podspec.HTTPProbe(t.ReadinessPath, "http", 10, 3)
	container.LivenessProbe = podspec.HTTPProbe(t.LivenessPath, "http", 10, 3)

	deploymentMeta := meta()
	deploymentMeta.Annotations = podspec.WorkloadAnnotations(availability.ReplicaOwnership(t.Autoscaling))
	deployment, err := appsv1.NewDeployment(ctx, name+"-transformation", &appsv1.DeploymentArgs{
		Metadata: deploymentMeta,
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas:             availability.Replicas(t.Replicas, t.Autoscaling),
			Selector:             &metav1.LabelSelectorArgs{MatchLabels: workload.SelectorInput()},
			RevisionHistoryLimit: pulumi.Int(5),
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type:          pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{MaxSurge: pulumi.Int(1), MaxUnavailable: pulumi.Int(0)},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: workload.AllInput()},
				Spec: shared.PodSpec(corev1.PodSpecArgs{
					Containers: corev1.ContainerArray{container},
					Volumes:    corev1.VolumeArray{podspec.Tmp(t.Resources), podspec.ClaimVolume(DataVolume, claim)},
				}),
			},
		},
	}, append([]pulumi.ResourceOption{parent}, availability.ReplicaOptions(t.Autoscaling)...)...)
	if err != nil {
		return nil, fmt.Errorf("transformation: %w", err)
	}
	if availability.NeedsBudget(t.Replicas, t.Autoscaling) {
		if _, err := availability.NewBudget(ctx, name+"-transformation-pdb", availability.BudgetArgs{
			Metadata: meta(), Workload: workload, Disruption: t.Disruption,
		}, parent); err != nil {
			return nil, fmt.Errorf("transformation disruption budget: %w", err)
		}
	}
	if t.Autoscaling.Enabled {
		if _, err := availability.NewAutoscaler(ctx, name+"-transformation-hpa", availability.AutoscalerArgs{
			Metadata: meta(), Deployment: deployment.Metadata.Name().Elem(), Autoscaling: t.Autoscaling,
		}, parent); err != nil {
			return nil, fmt.Errorf("transformation autoscaler: %w", err)
		}
	}
	return deployment, nil
}
