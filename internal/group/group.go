// Package group is the launch of a multi-node model: one replica is a group
// of pods, a leader and workers, run by a LeaderWorkerSet
// (leaderworkerset.x-k8s.io/v1, sigs.k8s.io/lws). It holds what the
// stack's config checks and its serving component must agree on: the
// variables LeaderWorkerSet gives each pod, vLLM's multi-node flags, and the
// ports the pods of a group use among themselves.
//
// The launch is vLLM's own multi-node runtime (the multiprocessing executor
// with --nnodes, vLLM 0.11 and later), not Ray: every pod runs `vllm serve`
// with the same parallel sizes; the leader (node rank 0) serves the API and
// the workers run headless. Ray would add a head, a dashboard and an object
// store with ports of their own, and a second process tree to supervise in
// each pod, for nothing vLLM needs on Kubernetes, where LeaderWorkerSet
// already starts, addresses and restarts the group.
package group

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Variables LeaderWorkerSet's pod webhook sets in every container of a group.
const (
	// LeaderAddressVar is the leader pod's DNS name, reachable from the group.
	LeaderAddressVar = "LWS_LEADER_ADDRESS"
	// WorkerIndexVar is the pod's index in its group: 0 for the leader.
	WorkerIndexVar = "LWS_WORKER_INDEX"
	// SizeVar is the number of pods in a group.
	SizeVar = "LWS_GROUP_SIZE"
)

// Labels and annotations of LeaderWorkerSet (sigs.k8s.io/lws, api/leaderworkerset/v1).
const (
	// WorkerIndexLabel is on every pod of a group: "0" on the leader.
	WorkerIndexLabel = "leaderworkerset.sigs.k8s.io/worker-index"
	// GroupKeyLabel is on every pod of a group, unique to the group.
	GroupKeyLabel = "leaderworkerset.sigs.k8s.io/group-key"
	// GroupIndexLabel is the group's index among the replicas.
	GroupIndexLabel = "leaderworkerset.sigs.k8s.io/group-index"
	// ExclusiveTopologyAnnotation places each group, alone, in one domain
	// of the node label it names (one group per domain).
	ExclusiveTopologyAnnotation = "leaderworkerset.sigs.k8s.io/exclusive-topology"
)

// Gang scheduling of groups: the scheduler and queue LeaderWorkerSet (v0.9)
// makes PodGroups for.
const (
	// VolcanoScheduler is Volcano's scheduler name. The LeaderWorkerSet
	// controller, run with gangSchedulingManagement.schedulerProvider:
	// volcano, creates a PodGroup of minMember = group size per group.
	VolcanoScheduler = "volcano"
	// VolcanoQueueAnnotation on a LeaderWorkerSet names the Volcano Queue
	// of its groups' PodGroups (volcano.sh/apis, scheduling/v1beta1).
	VolcanoQueueAnnotation = "scheduling.volcano.sh/queue-name"
)

// MasterPort is where the leader's torch.distributed store listens for the
// group (vLLM's --master-port; 29501 is vLLM's own default).
const MasterPort = 29501

// The ports a group's processes open for each other (NCCL's and Gloo's
// sockets, vLLM's message queues) are the kernel's ephemeral ports, chosen
// at run time. Each pod's net.ipv4.ip_local_port_range (a safe sysctl,
// allowed by every Pod Security level) narrows them to this range, so that
// the NetworkPolicy can admit exactly it between the pods of the model.
const (
	FirstEphemeralPort = 40000
	LastEphemeralPort  = 40999
)

// PortRangeSysctl is the value of net.ipv4.ip_local_port_range.
func PortRangeSysctl() string {
	return fmt.Sprintf("%d %d", FirstEphemeralPort, LastEphemeralPort)
}

// OwnedFlags are vLLM's flags the launch writes; a model's args must not.
var OwnedFlags = []string{"--nnodes", "--node-rank", "--master-addr", "--master-port", "--headless"}

// OwnedFlag returns the first flag of args that the launch owns, or "".
func OwnedFlag(args []string) string {
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if slices.Contains(OwnedFlags, name) {
			return name
		}
	}
	return ""
}

// Launch is the args of one pod of a group of nodes pods: the model's args,
// then vLLM's multi-node flags. Kubernetes expands $(VAR) in args from the
// container's environment, where LeaderWorkerSet has put the leader's
// address and the pod's index; leader says whether the pod serves the API
// (the workers run headless).
func Launch(args []string, nodes int, leader bool) []string {
	out := append(slices.Clone(args),
		"--nnodes", strconv.Itoa(nodes),
		"--node-rank", "$("+WorkerIndexVar+")",
		"--master-addr", "$("+LeaderAddressVar+")",
		"--master-port", strconv.Itoa(MasterPort),
	)
	if !leader {
		out = append(out, "--headless")
	}
	return out
}

// MaxUnavailablePods is the disruption budget of a model of groups, in
// pods, from disruption.maxUnavailable in groups: a count, or a percentage
// of groups (rounded up, as Kubernetes rounds a budget's percentage, and at
// least 1), with groups the fewest the model runs.
//
// A drain evicts pods, and evicting any pod of a group restarts the whole
// group (RecreateGroupOnPodRestart): its pods are then all unavailable until
// it is back. Each broken group holds at least one unavailable pod, so a
// budget of k unavailable pods over all the model's pods never lets
// evictions break more than k groups. A percentage of pods would: 25% of
// four 4-pod groups is four pods, four groups.
func MaxUnavailablePods(maxUnavailable string, groups int) (int, error) {
	if p, ok := strings.CutSuffix(maxUnavailable, "%"); ok {
		percent, err := strconv.Atoi(p)
		if err != nil || percent < 1 || percent > 100 {
			return 0, fmt.Errorf("maxUnavailable %q is not a percentage from 1%% to 100%%", maxUnavailable)
		}
		return max(1, (percent*max(groups, 1)+99)/100), nil
	}
	n, err := strconv.Atoi(maxUnavailable)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("maxUnavailable %q is not a count of at least 1 or a percentage", maxUnavailable)
	}
	return n, nil
}
