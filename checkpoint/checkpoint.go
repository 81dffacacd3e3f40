// Package checkpoint creates the checkpoint store: a StatefulSet whose
// replicas each own a claim made from a named volumeClaimTemplate, a headless
// Service that gives each replica a stable DNS name, and a PDB. Claims are
// retained when the StatefulSet is deleted or scaled down, so checkpoints
// survive `pulumi destroy`.
package checkpoint

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/intent"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/workload"
)

// Args describes the checkpoint store.
type Args struct {
	// Image and Args of the store.
	Image string
	Args  []string
	// Replicas each own a claim made from Storage, mounted at MountPath.
	Replicas  int
	Storage   podspec.Claim
	MountPath string
	// Resources of its container.
	Resources podspec.Resources
	// Port it listens on; the stack's pods may reach it there, and Scrapers
	// (namespaces) may scrape it.
	Port     int
	Scrapers []string
	// Probes and the Budgets its timings derive from.
	Probes  workload.Probes
	Budgets workload.Budgets
	// MaxUnavailable of its disruption budget.
	MaxUnavailable string
	// Egress are the networks outside the cluster it reaches.
	Egress []intent.Egress
	// Shared is the pods' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
}

// Intent is what the store serves: the stack's pods and the scrapers on its port.
func (a Args) Intent() intent.Workload {
	return intent.Workload{
		Name:    names.Checkpoint,
		Pods:    Workload.Selector(),
		Serves:  intent.StackService(a.Port, a.Scrapers),
		Reaches: a.Egress,
	}
}

// Store is the checkpoint store.
type Store struct {
	pulumi.ResourceState

	// Workload identifies the store's pods; they serve HTTP, and metrics at
	// /metrics, on the container port "http".
	Workload labels.Workload

	// ServiceName is the headless Service's name; replica i answers at
	// checkpoint-i.<ServiceName>.<namespace>.svc.
	ServiceName pulumi.StringOutput
	// ClaimNames are the claims the StatefulSet has created, one per
	// replica: read from the StatefulSet the cluster holds, its claim
	// template's name, its own name and its replicas.
	ClaimNames pulumi.StringArrayOutput
}

// DeletionPropagation is pulumi-kubernetes' annotation choosing how it
// deletes an object, read from the inputs of the object's last deployment:
// the StatefulSet carries Orphan from creation, so that its replacement (a
// change of checkpoint.storage) never stops its pods. A delete is not an
// eviction: with the default cascading deletion every checkpoint pod stops
// at once, whatever the disruption budget says. `pulumi destroy` orphans
// them too: they keep running in the kept namespace until deleted or
// adopted by the next `pulumi up`.
const (
	DeletionPropagation = "pulumi.com/deletionPropagationPolicy"
	Orphan              = "orphan"
)

// Workload identifies the checkpoint store's pods.
var Workload = labels.Workload{Name: names.Checkpoint, Instance: names.Checkpoint, Component: "checkpoint"}

// New creates the checkpoint store.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Store, error) {
	cp := args
	s := &Store{Workload: Workload}
	if err := ctx.RegisterComponentResource("llm-platform:index:CheckpointStore", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)
	meta := func() *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(names.Checkpoint), Namespace: args.Shared.Namespace, Labels: Workload.AllInput()}
	}

	service, err := corev1.NewService(ctx, name+"-service", &corev1.ServiceArgs{
		Metadata: meta(),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"),
			Selector:  Workload.SelectorInput(),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(cp.Port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
			}},
			// Peers find each other while starting, before they are Ready.
			PublishNotReadyAddresses: pulumi.BoolPtr(true),
		},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: service: %w", name, err)
	}
	s.ServiceName = service.Metadata.Name().Elem()

	container := args.Shared.Security.Container(podspec.ContainerSpec{
		Name: names.Checkpoint, Image: cp.Image, Args: cp.Args, Resources: cp.Resources,
		Env:    corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("CHECKPOINT_DIR"), Value: pulumi.String(cp.MountPath)}},
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String(names.CheckpointClaim), MountPath: pulumi.String(cp.MountPath)}},
	})
	container.Ports = corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(cp.Port), Protocol: pulumi.String("TCP")}}
	// Pods are replaced one at a time, each only once the previous is gone:
	// the plan counts every replica.
	timings, err := cp.Budgets.Plan(cp.Probes, cp.Replicas)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: %w", name, err)
	}
	cp.Probes.Apply(&container, "http", timings, cp.Budgets.PreStopSleepSeconds)
	pod := corev1.PodSpecArgs{
		Containers:                    corev1.ContainerArray{container},
		Volumes:                       corev1.VolumeArray{podspec.Tmp(cp.Resources)},
		TerminationGracePeriodSeconds: cp.Budgets.GracePeriod(timings),
	}

	statefulSetMeta := meta()
	statefulSetMeta.Annotations = podspec.WorkloadAnnotations(pulumi.StringMap{DeletionPropagation: pulumi.String(Orphan)})
	statefulSet, err := appsv1.NewStatefulSet(ctx, name+"-statefulset", &appsv1.StatefulSetArgs{
		Metadata: statefulSetMeta,
		Spec: &appsv1.StatefulSetSpecArgs{
			ServiceName:         s.ServiceName,
			Replicas:            pulumi.Int(cp.Replicas),
			Selector:            &metav1.LabelSelectorArgs{MatchLabels: Workload.SelectorInput()},
			PodManagementPolicy: pulumi.String("Parallel"),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs{
				WhenDeleted: pulumi.String("Retain"), WhenScaled: pulumi.String("Retain"),
			},
			UpdateStrategy: &appsv1.StatefulSetUpdateStrategyArgs{Type: pulumi.String("RollingUpdate")},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: Workload.AllInput()},
				Spec:     args.Shared.PodSpec(pod),
			},
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(names.CheckpointClaim), Labels: Workload.AllInput()},
				Spec:     podspec.ClaimSpec(cp.Storage),
			}},
		},
		// volumeClaimTemplates are immutable: changing them replaces the
		// StatefulSet. The fixed name needs the old one deleted first, with
		// orphaning deletion (DeletionPropagation): its pods keep running
		// and serving, and the new StatefulSet adopts them (same selector)
		// and its claims (retained); see docs/operations.md.
	}, parent, pulumi.DeleteBeforeReplace(true), workload.Timeouts(timings))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %q: statefulset: %w", name, err)
	}
	s.ClaimNames = claimNames(statefulSet)

	if availability.NeedsBudget(cp.Replicas, availability.Autoscaling{}) {
		if _, err := availability.NewBudget(ctx, name+"-pdb", availability.BudgetArgs{
			Metadata: meta(), Workload: Workload, MaxUnavailable: cp.MaxUnavailable,
		}, parent); err != nil {
			return nil, fmt.Errorf("checkpoint %q: disruption budget: %w", name, err)
		}
	}

	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"serviceName": s.ServiceName, "claimNames": s.ClaimNames,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// claimNames are the claims a StatefulSet makes: <template>-<statefulset>-<ordinal>
// for each replica, as the StatefulSet controller names them.
func claimNames(sts *appsv1.StatefulSet) pulumi.StringArrayOutput {
	return pulumi.All(sts.Metadata.Name().Elem(), sts.Spec.Replicas(), sts.Spec.VolumeClaimTemplates()).ApplyT(func(v []any) []string {
		set, replicas := v[0].(string), v[1].(*int)
		var out []string
		for _, template := range v[2].([]corev1.PersistentVolumeClaimType) {
			if template.Metadata == nil || template.Metadata.Name == nil || replicas == nil {
				continue
			}
			for i := range *replicas {
				out = append(out, fmt.Sprintf("%s-%s-%d", *template.Metadata.Name, set, i))
			}
		}
		return out
	}).(pulumi.StringArrayOutput)
}
