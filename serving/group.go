package serving

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/group"
	"llm-platform/internal/workload"
)

// groupRevisionLabel tells a LeaderWorkerSet's new pods from the old during
// a rollout (sigs.k8s.io/lws, api/leaderworkerset/v1).
const groupRevisionLabel = "leaderworkerset.sigs.k8s.io/template-revision-hash"

// newGroup is what a multi-node model's LeaderWorkerSet adds to its
// leaders: the workers, launched headless with the same parallel sizes, on
// pods like the leader's but for their labels and the leaders' spread.
func newGroup(args Args, cacheClaim pulumi.StringInput, claimTemplate pulumi.StringPtrInput) *workload.Group {
	worker := WorkerWorkload(args.Model)
	pod := podSpec(args, worker, cacheClaim, claimTemplate)
	pod.TopologySpreadConstraints = nil
	g := &workload.Group{
		Size:            args.Nodes,
		Worker:          worker,
		Pods:            GroupPods(args.Model),
		WorkerContainer: container(args, group.Launch(args.Args, args.Nodes, false)),
		WorkerPod:       pod,
	}
	if args.GroupDomainLabel != "" {
		// On the LeaderWorkerSet, where its controller reads it for the
		// leaders, and in the templates, where its pod webhook reads it:
		// a change of domain label is then a rollout, not only a rule for
		// groups created later.
		g.Annotations = map[string]string{group.ExclusiveTopologyAnnotation: args.GroupDomainLabel}
		g.PodAnnotations = map[string]string{group.ExclusiveTopologyAnnotation: args.GroupDomainLabel}
	}
	if args.QueueName != "" {
		if g.Annotations == nil {
			g.Annotations = map[string]string{}
		}
		g.Annotations[group.VolcanoQueueAnnotation] = args.QueueName
	}
	return g
}

// groupAffinity keeps the pods of one group in one zone (their traffic
// crosses no zone boundary, which is slow and billed) and on distinct nodes
// (a group of n nodes is n nodes' GPUs). matchLabelKeys narrows each term
// to the pod's own group: its group-key label's value is added to the
// selector. The first pod of a group matches its own term, so it may go
// anywhere; the others follow it.
func groupAffinity(model string) *corev1.AffinityArgs {
	term := func(topologyKey string) corev1.PodAffinityTermArray {
		return corev1.PodAffinityTermArray{corev1.PodAffinityTermArgs{
			LabelSelector:  &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(GroupPods(model))},
			MatchLabelKeys: pulumi.StringArray{pulumi.String(group.GroupKeyLabel)},
			TopologyKey:    pulumi.String(topologyKey),
		}}
	}
	return &corev1.AffinityArgs{
		PodAffinity:     &corev1.PodAffinityArgs{RequiredDuringSchedulingIgnoredDuringExecution: term("topology.kubernetes.io/zone")},
		PodAntiAffinity: &corev1.PodAntiAffinityArgs{RequiredDuringSchedulingIgnoredDuringExecution: term("kubernetes.io/hostname")},
	}
}
