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
	"llm-platform/internal/config"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
)

// Args configures the checkpoint store.
type Args struct {
	// Checkpoint is the validated configuration.
	Checkpoint config.Checkpoint
	// Shared is the pods' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
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
	// ClaimNames are the claims the StatefulSet creates, one per replica.
	ClaimNames []string
}

// Workload identifies the checkpoint store's pods.
var Workload = labels.Workload{Name: names.Checkpoint, Instance: names.Checkpoint, Component: "checkpoint"}

// New creates the checkpoint store.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Store, error) {
	cp := args.Checkpoint
	s := &Store{Workload: Workload}
	if err := ctx.RegisterComponentResource("llm-platform:index:CheckpointStore", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)
	workload := Workload
	meta := func() *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(names.Checkpoint), Namespace: args.Shared.Namespace, Labels: workload.AllInput()}
	}

	service, err := corev1.NewService(ctx, name+"-service", &corev1.ServiceArgs{
		Metadata: meta(),
		Spec: &corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"),
			Selector:  workload.SelectorInput(),
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
	container.ReadinessProbe = podspec.HTTPProbe(cp.ReadinessPath, "http", 10, 3)
	container.LivenessProbe = podspec.HTTPProbe(cp.LivenessPath, "http", 20, 3)

	statefulSetMeta := meta()
	statefulSetMeta.Annotations = podspec.WorkloadAnnotations(nil)
	if _, err := appsv1.NewStatefulSet(ctx, name+"-statefulset", &appsv1.StatefulSetArgs{
		Metadata: statefulSetMeta,
		Spec: &appsv1.StatefulSetSpecArgs{
			ServiceName:         s.ServiceName,
			Replicas:            pulumi.Int(cp.Replicas),
			Selector:            &metav1.LabelSelectorArgs{MatchLabels: workload.SelectorInput()},
			PodManagementPolicy: pulumi.String("Parallel"),
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs{
				WhenDeleted: pulumi.String("Retain"), WhenScaled: pulumi.String("Retain"),
			},
			UpdateStrategy: &appsv1.StatefulSetUpdateStrategyArgs{Type: pulumi.String("RollingUpdate")},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: workload.AllInput()},
				Spec: args.Shared.PodSpec(corev1.PodSpecArgs{
					Containers: corev1.ContainerArray{container},
					Volumes:    corev1.VolumeArray{podspec.Tmp(cp.Resources)},
				}),
			},
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(names.CheckpointClaim), Labels: workload.AllInput()},
				Spec:     podspec.ClaimSpec(cp.Storage),
			}},
		},
		// volumeClaimTemplates are immutable: changing them replaces the
		// StatefulSet. The fixed name needs the old one deleted first; its
		// claims are retained and re-adopted by the new one (see README).
	}, parent, pulumi.DeleteBeforeReplace(true)); err != nil {
		return nil, fmt.Errorf("checkpoint %q: statefulset: %w", name, err)
	}
	for i := range cp.Replicas {
		s.ClaimNames = append(s.ClaimNames, names.CheckpointClaimOf(i))
	}

	if availability.NeedsBudget(cp.Replicas, config.Autoscaling{}) {
		if _, err := availability.NewBudget(ctx, name+"-pdb", availability.BudgetArgs{
			Metadata: meta(), Workload: workload, Disruption: cp.Disruption,
		}, parent); err != nil {
			return nil, fmt.Errorf("checkpoint %q: disruption budget: %w", name, err)
		}
	}

	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"serviceName": s.ServiceName, "claimNames": pulumi.ToStringArray(s.ClaimNames),
	}); err != nil {
		return nil, err
	}
	return s, nil
}
