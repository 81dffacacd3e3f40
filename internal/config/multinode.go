package config

import (
	"fmt"
	"strconv"
	"strings"

	"llm-platform/internal/group"
	"llm-platform/internal/names"
)

// maxGroupNodes bounds serving.models[].nodes where gpuPool.maxNodes does
// not: the largest published multi-node deployments (DeepSeek-V3 wide
// expert parallelism, Kimi K2) span tens of nodes; a thousand is a typo.
const maxGroupNodes = 1000

// multiNode checks a model whose replica spans several nodes: a group that
// fits the pool, a launch the stack can write, weights every node of a group
// can read, and the risks a cluster without gang scheduling runs.
func (c *checker) multiNode(key string, m Model, pool GPUPool) {
	c.atLeast(key+".nodes", m.Nodes, 1)
	c.scheduling(key+".scheduling", m)
	if !m.MultiNode() {
		return
	}
	switch {
	case pool.MaxNodes >= 1 && m.Nodes > pool.MaxNodes:
		c.fail(key+".nodes", m.Nodes, fmt.Sprintf("must be at most gpuPool.maxNodes (%d): a group of %d nodes could never be placed, and its pods would hold GPUs while the rest stays Pending", pool.MaxNodes, m.Nodes), strconv.Itoa(pool.MaxNodes))
	case m.Nodes > maxGroupNodes:
		c.fail(key+".nodes", m.Nodes, fmt.Sprintf("must be at most %d: no model spans more nodes; set gpuPool.maxNodes to the pool's size", maxGroupNodes), "2")
	}
	// LeaderWorkerSet names each group's workers' StatefulSet
	// inference-<name>-<group index>, and a StatefulSet's pods carry the
	// label controller-revision-hash=<its name>-<hash of 10>: a label value
	// of at most 63 characters leaves the name 52.
	const maxStatefulSetName = 52
	groupIndex := strconv.Itoa(MaxReplicas(m.Replicas, m.Autoscaling) - 1) // the last group's
	if limit := maxStatefulSetName - len(names.Inference("")) - 1 - len(groupIndex); len(m.Name) > limit && !c.failed(key+".name") {
		c.fail(key+".name", m.Name, fmt.Sprintf("must be at most %d characters when nodes > 1: each group's StatefulSet is named %s-<group index>, and Kubernetes cannot label the pods of a StatefulSet whose name is over %d characters", limit, names.Inference(m.Name), maxStatefulSetName), fmt.Sprintf("%q", m.Name[:limit]))
	}
	// The launch a group's args would suggest: a node's GPUs per
	// tensor-parallel group, one pipeline stage per node.
	launch := fmt.Sprintf(`["--tensor-parallel-size", "%d", "--pipeline-parallel-size", "%d"]`, m.GPUs, m.Nodes)
	if f := group.OwnedFlag(m.Args); f != "" {
		c.fail(key+".args", m.Args, fmt.Sprintf("must not set %s when nodes > 1: the stack writes the group's launch (%s) from nodes and the variables LeaderWorkerSet sets", f, strings.Join(group.OwnedFlags, ", ")), launch)
	}
	if backend, ok := flagValue(m.Args, "--distributed-executor-backend"); ok && backend == "ray" {
		c.fail(key+".args", m.Args, "must not ask for --distributed-executor-backend ray when nodes > 1: the group is launched with vLLM's own multi-node runtime (mp), and no Ray cluster is started", launch)
	}
	c.tensorParallelWithinNodes(key, m, pool, launch)
	if m.Source.Cached() && m.ModelCache.AccessMode == AccessReadWriteOnce && !c.failed(key+".modelCache.accessMode") {
		c.fail(key+".modelCache.accessMode", m.ModelCache.AccessMode,
			fmt.Sprintf("must be ReadWriteMany when nodes is %d: every pod of a group reads the weights from the one cache, each on its own node, and a ReadWriteOnce claim attaches to one node (or take the weights from an oci:// source, pulled on each node)", m.Nodes), `"ReadWriteMany"`)
	}
	if m.Source.Scheme() == SourceClaim {
		c.warn(key+".source.uri", "%s: with nodes %d every pod of a group mounts the claim on its own node; it must be ReadWriteMany or ReadOnlyMany", m.Source.URI, m.Nodes)
	}
	if !strings.Contains(m.Image, "vllm") {
		c.warn(key+".image", "%s: with nodes %d the stack launches vLLM's multi-node runtime (%s); a server that is not vLLM must accept those flags", m.Image, m.Nodes, strings.Join(group.OwnedFlags, ", "))
	}
	if dp, ok := flagValue(m.Args, "--data-parallel-size", "-dp"); ok && dp != "1" && !c.failed(key+".args") {
		c.fail(key+".args", m.Args, fmt.Sprintf("must not set --data-parallel-size %s when nodes > 1: data parallel ranks across a group talk over vLLM's data-parallel RPC and master ports (--data-parallel-rpc-port, --data-parallel-master-port), which the launch does not write and the group's NetworkPolicy does not admit; serve more copies as more replicas (each a group) instead", dp), launch)
	}
	c.poolHoldsGroups(key, m, pool)
	c.warn(key+".nodes", "%d: a model of groups needs Kubernetes 1.31 or later (its pods keep to their group through pod affinity's matchLabelKeys, beta and on by default since 1.31; an older API server drops the field, and groups then attract each other) and the LeaderWorkerSet controller (sigs.k8s.io/lws v0.9 or later) installed, which a preview cannot check", m.Nodes)
	s := m.Scheduling
	switch {
	case s.SchedulerName == "":
		c.warn(key+".scheduling", "unset: the default scheduler places a group's %d pods one by one, so a partial group can hold its GPUs while the rest stays Pending (and two partial groups can deadlock); set schedulerName \"volcano\" (with the LeaderWorkerSet controller's gangSchedulingManagement.schedulerProvider: volcano) to place each group whole or not at all", m.Nodes)
	case s.SchedulerName != group.VolcanoScheduler:
		c.warn(key+".scheduling.schedulerName", "%s: LeaderWorkerSet creates a group's PodGroup only for volcano, so this scheduler places a group whole only if it groups the pods by itself; a partial group can hold its GPUs while the rest stays Pending", s.SchedulerName)
	case pool.GroupDomainLabel != "":
		// LWS creates a group's workers only once its leader is placed in
		// a domain (pod_controller.go), and Volcano places the leader only
		// with its whole group (a PodGroup of minMember nodes).
		c.fail(key+".scheduling.schedulerName", s.SchedulerName, fmt.Sprintf("cannot be volcano with gpuPool.groupDomainLabel (%s): LeaderWorkerSet creates a group's workers only once its leader is placed in a domain, and Volcano places the leader only together with the workers (a PodGroup of minMember %d), so no group would ever start; drop one of the two", pool.GroupDomainLabel, m.Nodes), `""`)
	}
}

// scheduling checks serving.models[].scheduling: a scheduler that can exist
// and a queue only Volcano's groups have.
func (c *checker) scheduling(key string, m Model) {
	s := m.Scheduling
	if s.SchedulerName != "" {
		c.dns1123Subdomain(key+".schedulerName", s.SchedulerName, `"volcano"`)
		if !c.failed(key+".schedulerName") && strings.Contains(s.SchedulerName, "kueue") {
			c.fail(key+".schedulerName", s.SchedulerName, "names no scheduler: Kueue admits workloads and leaves them to a scheduler, and no scheduler of this name would ever place the pods (they stay Pending); leave it unset, or use volcano", `""`)
		}
	}
	if s.QueueName == "" {
		return
	}
	switch {
	case !m.MultiNode():
		c.fail(key+".queueName", s.QueueName, "applies to a model of groups (nodes > 1) under Volcano, where the queue admits each group whole", `""`)
	case s.SchedulerName != group.VolcanoScheduler:
		// Kueue's LeaderWorkerSet webhook makes the queue label and both pod
		// templates immutable once set (kueue, leaderworkerset_webhook.go):
		// every later change of the model would fail at pulumi up.
		c.fail(key+".queueName", s.QueueName, "needs schedulerName \"volcano\": it names the Volcano Queue of the groups' PodGroups. Kueue is not supported: its webhook freezes a queued LeaderWorkerSet's queue label and pod templates, so every later change of the model (args, resources, gpus) would fail at pulumi up", `""`)
	default:
		c.dns1123Subdomain(key+".queueName", s.QueueName, `"inference"`) // a Volcano Queue's name
	}
}

// flagValue is the value of the first of names in args, in the "--flag v"
// or "--flag=v" form.
func flagValue(args []string, names ...string) (string, bool) {
	for i, a := range args {
		for _, n := range names {
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v, true
			}
			if a == n && i+1 < len(args) {
				return args[i+1], true
			}
		}
	}
	return "", false
}

// tensorParallelWithinNodes checks a group's --tensor-parallel-size: a
// tensor-parallel group of ranks all-reduces on every layer, so it must sit
// within a node, or span whole nodes only in one NVLink domain
// (gpuPool.groupDomainLabel). vLLM numbers ranks node by node, so a size
// that neither divides nor is a multiple of a node's GPUs puts some groups
// across a node boundary. fix is the launch to suggest.
func (c *checker) tensorParallelWithinNodes(key string, m Model, pool GPUPool, fix string) {
	tp, ok := flagValue(m.Args, "--tensor-parallel-size", "-tp")
	n, err := strconv.Atoi(tp)
	if !ok || err != nil || n < 1 || m.GPUs < 1 || c.failed(key+".args") {
		return
	}
	switch {
	case n > m.GPUs && pool.GroupDomainLabel == "":
		c.fail(key+".args", m.Args, fmt.Sprintf("asks for --tensor-parallel-size %d, more than the %d GPUs of one node: tensor parallelism all-reduces on every layer and belongs within a node; span the nodes with --pipeline-parallel-size (or set gpuPool.groupDomainLabel when groups run in one NVLink domain)", n, m.GPUs), fix)
	case m.GPUs%n != 0 && n%m.GPUs != 0:
		c.fail(key+".args", m.Args, fmt.Sprintf("asks for --tensor-parallel-size %d, which does not divide the %d GPUs of a node: some tensor-parallel groups would straddle two nodes", n, m.GPUs), fix)
	}
}

// groupNames refuses a model whose objects a model of groups would take:
// LeaderWorkerSet names each group's StatefulSet and headless Service
// <its name>-<group index>, so a model named <name of a model of
// groups>-<an index it can reach> would share its Deployment's or its
// Service's name.
func (c *checker) groupNames(key string, models []Model) {
	for i, g := range models {
		if !g.MultiNode() || g.Name == "" {
			continue
		}
		groups := MaxReplicas(g.Replicas, g.Autoscaling)
		for j, m := range models {
			suffix, ok := strings.CutPrefix(m.Name, g.Name+"-")
			index, err := strconv.Atoi(suffix)
			if !ok || i == j || err != nil || strconv.Itoa(index) != suffix || index >= groups {
				continue
			}
			c.fail(fmt.Sprintf("%s.models[%d].name", key, j), m.Name, fmt.Sprintf("must not be %s-<group index below %d>: models[%d] runs up to %d groups (nodes %d), and LeaderWorkerSet names each group's StatefulSet and Service %s-<group index>, which %s would share", g.Name, groups, i, groups, g.Nodes, names.Inference(g.Name), names.Inference(m.Name)), fmt.Sprintf("%q", g.Name+"-v"+suffix))
		}
	}
}

// poolHoldsGroups refuses a model of groups that gpuPool.maxNodes cannot
// hold at its maximum, when no gang scheduler places its groups: a group
// of nodes pods needs nodes distinct nodes, each with gpus free, so the
// pool holds maxNodes x (gpusPerNode / gpus) of its pods, and a group
// started beyond that holds GPUs while its other pods stay Pending. Under
// Volcano such a group only waits, whole; the preview then warns. Other
// models sharing the pool are not counted: they may leave less room still.
func (c *checker) poolHoldsGroups(key string, m Model, pool GPUPool) {
	if !m.MultiNode() || pool.MaxNodes < 1 || m.GPUs < 1 || m.GPUs > pool.GPUsPerNode || m.Nodes > pool.MaxNodes {
		return
	}
	groups := MaxReplicas(m.Replicas, m.Autoscaling)
	fit := pool.MaxNodes * (pool.GPUsPerNode / m.GPUs)
	if need := groups * m.Nodes; need > fit {
		count, field := "replicas", key+".replicas"
		if m.Autoscaling.Enabled {
			count, field = "autoscaling.maxReplicas", key+".autoscaling.maxReplicas"
		}
		why := fmt.Sprintf("%d groups of %d pods with %d GPUs each need %d pods, and gpuPool.maxNodes %d of %d GPUs holds %d such pods: %s beyond the pool", groups, m.Nodes, m.GPUs, need, pool.MaxNodes, pool.GPUsPerNode, fit, count)
		if m.Scheduling.SchedulerName == group.VolcanoScheduler {
			c.warn(field, "%s: %s never start (Volcano keeps them waiting whole)", strconv.Itoa(groups), why)
			return
		}
		c.fail(field, groups, why+" would start partly and hold GPUs while their other pods stay Pending; lower "+count+" or raise gpuPool.maxNodes", strconv.Itoa(fit/m.Nodes))
	}
}
