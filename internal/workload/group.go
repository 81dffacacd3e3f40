package workload

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/group"
	"llm-platform/internal/labels"
	"llm-platform/internal/rollout"
)

// LeaderWorkerSet's API (sigs.k8s.io/lws v0.9.0).
const (
	GroupAPIVersion = "leaderworkerset.x-k8s.io/v1"
	GroupKind       = "LeaderWorkerSet"
)

// Group is what a LeaderWorkerSet adds to a workload: the workers beside
// each leader.
type Group struct {
	// Size is the number of pods of a group, the leader included (at least 2).
	Size int
	// Worker labels the workers' pods. The leaders carry the workload's
	// labels, so the Service, the scrape and an inference pool select the
	// leaders only; a worker serves no API.
	Worker labels.Workload
	// Pods select every pod of the workload, leaders and workers: the
	// disruption budget counts them all (see group.MaxUnavailablePods).
	Pods map[string]string
	// WorkerContainer is the workers' server. It gets no ports and no
	// probes, and a preStop sleep of the whole grace period: on the group's
	// deletion the leader drains its requests, which need every worker.
	WorkerContainer corev1.ContainerArgs
	// WorkerPod is the workers' pod spec without containers and grace period.
	WorkerPod corev1.PodSpecArgs
	// Annotations of the LeaderWorkerSet (its exclusive topology), beside
	// the workload's own.
	Annotations map[string]string
	// PodAnnotations are added to both pod templates: a change of them is
	// a new revision of the LeaderWorkerSet, rolled out group by group,
	// where a change of the LeaderWorkerSet's own annotations reaches only
	// groups created later.
	PodAnnotations map[string]string
}

// groupTarget is the LeaderWorkerSet of that name, for an autoscaler: its
// scale subresource counts groups, and its selector (status.hpaPodSelector)
// selects the leaders, whose queue a Pods metric averages.
func groupTarget(name pulumi.StringInput) availability.ScaleTarget {
	return availability.ScaleTarget{APIVersion: GroupAPIVersion, Kind: GroupKind, Name: name}
}

// GroupReady is the pulumi-kubernetes await of a LeaderWorkerSet
// (`pulumi.com/waitFor`): a custom resource is otherwise not awaited at
// all. LeaderWorkerSet reports Available once every group's pods are ready.
const GroupReady = "condition=Available"

// newLeaderWorkerSet creates the LeaderWorkerSet: Replicas groups (or the
// autoscaler's), each a leader from pod and Size-1 workers; a lost pod
// restarts its whole group; a rollout replaces whole groups under the same
// surge rule as a Deployment's; no worker waits for its leader to be ready,
// since vLLM's leader is ready only once its workers have joined.
func newLeaderWorkerSet(ctx *pulumi.Context, name string, args Args, t rollout.Timings, w *Workload, leader corev1.PodSpecArgs, meta *metav1.ObjectMetaArgs, opts []pulumi.ResourceOption) (pulumi.StringOutput, error) {
	g := args.Group
	if g.Size < 2 {
		return pulumi.StringOutput{}, fmt.Errorf("%s: a group has at least 2 pods, not %d", args.Name, g.Size)
	}
	worker := g.WorkerPod
	container := g.WorkerContainer
	if s := args.Budgets.PreStopSleepSeconds + args.Budgets.DrainSeconds; s > 0 {
		container.Lifecycle = &corev1.LifecycleArgs{PreStop: &corev1.LifecycleHandlerArgs{
			Sleep: &corev1.SleepActionArgs{Seconds: pulumi.Int(s)},
		}}
	}
	worker.Containers = corev1.ContainerArray{container}
	worker.TerminationGracePeriodSeconds = args.Budgets.GracePeriod(t)

	annotations := pulumi.StringMap{"pulumi.com/waitFor": pulumi.String(GroupReady)}
	if given, ok := meta.Annotations.(pulumi.StringMap); ok {
		for k, v := range given {
			annotations[k] = v
		}
	}
	for k, v := range g.Annotations {
		annotations[k] = pulumi.String(v)
	}
	meta.Annotations = annotations
	meta.Labels = args.Workload.AllInput()
	leaderAnnotations, workerAnnotations := pulumi.StringMap{}, pulumi.StringMap{}
	for k, v := range args.PodAnnotations {
		leaderAnnotations[k] = v
	}
	for k, v := range g.PodAnnotations {
		leaderAnnotations[k] = pulumi.String(v)
		workerAnnotations[k] = pulumi.String(v)
	}

	spec := pulumi.Map{
		"startupPolicy": pulumi.String("LeaderCreated"),
		"rolloutStrategy": pulumi.Map{
			"type": pulumi.String("RollingUpdate"),
			"rollingUpdateConfiguration": pulumi.Map{
				"maxUnavailable": pulumi.Int(w.MaxUnavailable), "maxSurge": pulumi.Int(w.MaxSurge),
			},
		},
		// One headless Service per group (<name>-<group index>) gives the
		// pods their DNS names; the default, one Service named like the
		// LeaderWorkerSet, would take the model's Service's name.
		"networkConfig": pulumi.Map{"subdomainPolicy": pulumi.String("UniquePerReplica")},
		"leaderWorkerTemplate": pulumi.Map{
			"size":          pulumi.Int(g.Size),
			"restartPolicy": pulumi.String("RecreateGroupOnPodRestart"),
			"leaderTemplate": &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: args.Workload.AllInput(), Annotations: emptyToNil(leaderAnnotations)},
				Spec:     groupPod(args, leader),
			},
			"workerTemplate": &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: g.Worker.AllInput(), Annotations: emptyToNil(workerAnnotations)},
				Spec:     groupPod(args, worker),
			},
		},
	}
	if r := availability.Replicas(args.Replicas, args.Autoscaling); r != nil {
		spec["replicas"] = r
	} else {
		// Under an autoscaler the LeaderWorkerSet is created at its
		// minimum, not at LeaderWorkerSet's default of one group: when it
		// replaces a Deployment, Pulumi deletes that Deployment as soon as
		// the groups are Available, before the autoscaler's first sync.
		// From then on ignoreChanges (availability.ReplicaOptions) keeps
		// the live count: pulumi-kubernetes drops the field from the apply
		// while the autoscaler owns it, and applies the live value else.
		spec["replicas"] = pulumi.Int(max(args.Autoscaling.MinReplicas, 1))
	}
	lws, err := apiextensions.NewCustomResource(ctx, name+"-leaderworkerset", &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String(GroupAPIVersion),
		Kind:        pulumi.String(GroupKind),
		Metadata:    meta,
		OtherFields: map[string]any{"spec": spec},
	}, opts...)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("%s: leader worker set: %w", args.Name, err)
	}
	return lws.Metadata.Name().Elem(), nil
}

// groupPod is a pod of a group: the shared pod fields, and the narrowed
// ephemeral port range the group's policy admits (group.PortRangeSysctl).
func groupPod(args Args, spec corev1.PodSpecArgs) *corev1.PodSpecArgs {
	pod := args.Shared.PodSpec(spec)
	security := *args.Shared.Security.PodSecurityContext()
	security.Sysctls = corev1.SysctlArray{corev1.SysctlArgs{
		Name: pulumi.String("net.ipv4.ip_local_port_range"), Value: pulumi.String(group.PortRangeSysctl()),
	}}
	pod.SecurityContext = &security
	return pod
}

// emptyToNil leaves an empty map out of a template (no annotations: {}).
func emptyToNil(m pulumi.StringMap) pulumi.StringMapInput {
	if len(m) == 0 {
		return nil
	}
	return m
}
