// Package run is the one definition of an ingestion run: its pod, its shards
// and its failure policy. The pipeline's first run and every run of the
// schedule are built from it, so a scheduled run does exactly what the first
// one did; only the limits differ. Neither component imports the other.
package run

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
)

// DataVolume is the name of the shared claim's volume in every stage.
const DataVolume = "data"

// Workload labels the pods of an ingestion run; instance tells the Job
// created by `pulumi up` from the runs of the schedule.
func Workload(instance string) labels.Workload {
	return labels.Workload{Name: names.Ingestion, Instance: instance, Component: "pipeline"}
}

// Definition is what one ingestion run does.
type Definition struct {
	// Image and Args of the ingestion program.
	Image string
	Args  []string
	// Resources of its container.
	Resources podspec.Resources
	// Indexed runs Completions shards, Parallelism at a time; each pod gets
	// JOB_COMPLETION_INDEX.
	Indexed                  bool
	Completions, Parallelism int
	// FailFastExitCodes fail the run at once, without retries.
	FailFastExitCodes []int
	// DataClaim is the shared claim, mounted at MountPath.
	DataClaim pulumi.StringInput
	MountPath string
	// TokenSecret, when set, names a Secret whose "token" key is exposed as
	// MODEL_REGISTRY_TOKEN.
	TokenSecret pulumi.StringInput
}

// Limits bound one run. The first run's Job and the schedule's runs each
// have their own.
type Limits struct {
	// BackoffLimit is how many failed pods are retried.
	BackoffLimit int
	// ActiveDeadlineSeconds bounds the whole run.
	ActiveDeadlineSeconds int
	// TTLSecondsAfterFinished deletes a finished run; nil keeps it.
	TTLSecondsAfterFinished *int
	// Rerun, above 0, is written into the run's pod template (annotation
	// RerunAnnotation), so each new value is a new spec, hence a new run
	// under a new name. 0 writes nothing: the spec, and the name, of every
	// run made before the field existed stay as they were.
	Rerun int
}

// RerunAnnotation carries Limits.Rerun on a run's pods.
const RerunAnnotation = "llm-platform/rerun"

// Spec is the Job spec of one run of d, its pods labelled as workload and
// shaped by shared, bounded by limits.
func Spec(d Definition, shared podspec.Shared, workload labels.Workload, limits Limits) *batchv1.JobSpecArgs {
	completionMode := "NonIndexed"
	if d.Indexed {
		completionMode = "Indexed"
	}
	spec := &batchv1.JobSpecArgs{
		BackoffLimit:          pulumi.Int(limits.BackoffLimit),
		ActiveDeadlineSeconds: pulumi.Int(limits.ActiveDeadlineSeconds),
		Completions:           pulumi.Int(d.Completions),
		Parallelism:           pulumi.Int(d.Parallelism),
		CompletionMode:        pulumi.String(completionMode),
		PodFailurePolicy:      FailurePolicy(names.Ingestion, d.FailFastExitCodes),
		Template:              podTemplate(d, shared, workload, limits.Rerun),
	}
	if limits.TTLSecondsAfterFinished != nil {
		spec.TtlSecondsAfterFinished = pulumi.Int(*limits.TTLSecondsAfterFinished)
	}
	return spec
}

// Name names a run by the content of its spec: "ingestion-" and the first
// ten hex digits of the SHA-256 of the spec as sent. A Job's spec cannot change
// in place, so a changed run is a new Job under a new name, created beside the
// old one, and never races the deletion of an object of the same name.
func Name(spec *batchv1.JobSpecArgs) pulumi.StringOutput {
	return NameBySpec(names.Ingestion, spec)
}

// NameBySpec is prefix, "-" and the first ten hex digits of the SHA-256 of
// the Job spec as sent (see Name).
func NameBySpec(prefix string, spec *batchv1.JobSpecArgs) pulumi.StringOutput {
	return spec.ToJobSpecOutput().ApplyT(func(s batchv1.JobSpec) (string, error) {
		text, err := json.Marshal(s)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(text)
		return prefix + "-" + hex.EncodeToString(sum[:])[:10], nil
	}).(pulumi.StringOutput)
}

func podTemplate(d Definition, shared podspec.Shared, workload labels.Workload, rerun int) *corev1.PodTemplateSpecArgs {
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("DATA_DIR"), Value: pulumi.String(d.MountPath)}}
	if d.TokenSecret != nil {
		env = append(env, podspec.SecretEnv("MODEL_REGISTRY_TOKEN", d.TokenSecret, "token"))
	}
	container := shared.Security.Container(podspec.ContainerSpec{
		Name: names.Ingestion, Image: d.Image, Args: d.Args, Resources: d.Resources,
		Env:    env,
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String(DataVolume), MountPath: pulumi.String(d.MountPath)}},
	})
	meta := &metav1.ObjectMetaArgs{Labels: workload.AllInput()}
	if rerun > 0 {
		meta.Annotations = pulumi.StringMap{RerunAnnotation: pulumi.String(strconv.Itoa(rerun))}
	}
	return &corev1.PodTemplateSpecArgs{
		Metadata: meta,
		Spec: shared.PodSpec(corev1.PodSpecArgs{
			// Never: a failed pod stays for its logs, and podFailurePolicy requires it.
			RestartPolicy: pulumi.String("Never"),
			Containers:    corev1.ContainerArray{container},
			Volumes: corev1.VolumeArray{
				podspec.Tmp(d.Resources),
				podspec.ClaimVolume(DataVolume, d.DataClaim),
			},
		}),
	}
}

// FailurePolicy ignores pods lost to disruptions (a drained node, a
// preemption) so they do not count against backoffLimit, and fails the whole
// Job at once on the exit codes that mean retrying is pointless.
func FailurePolicy(container string, failFast []int) *batchv1.PodFailurePolicyArgs {
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
