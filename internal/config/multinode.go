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
	if name := m.Scheduling.SchedulerName; name != "" {
		c.dns1123Subdomain(key+".scheduling.schedulerName", name)
	}
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
	groupIndex := strconv.Itoa(MaxReplicas(m.Replicas, m.Autoscaling)) // the surge group's, at most
	if limit := maxStatefulSetName - len(names.Inference("")) - 1 - len(groupIndex); len(m.Name) > limit && !c.failed(key+".name") {
		c.fail(key+".name", m.Name, fmt.Sprintf("must be at most %d characters when nodes > 1: each group's StatefulSet is named %s-<group index>, and Kubernetes cannot label the pods of a StatefulSet whose name is over %d characters", limit, names.Inference(m.Name), maxStatefulSetName), fmt.Sprintf("%q", m.Name[:limit]))
	}
	if f := group.OwnedFlag(m.Args); f != "" {
		c.fail(key+".args", m.Args, fmt.Sprintf("must not set %s when nodes > 1: the stack writes the group's launch (%s) from nodes and the variables LeaderWorkerSet sets", f, strings.Join(group.OwnedFlags, ", ")), `["--tensor-parallel-size", "8", "--pipeline-parallel-size", "2"]`)
	}
	if backend, ok := flagValue(m.Args, "--distributed-executor-backend"); ok && backend == "ray" {
		c.fail(key+".args", m.Args, "must not ask for --distributed-executor-backend ray when nodes > 1: the group is launched with vLLM's own multi-node runtime (mp), and no Ray cluster is started", `["--tensor-parallel-size", "8", "--pipeline-parallel-size", "2"]`)
	}
	if tp, ok := flagValue(m.Args, "--tensor-parallel-size", "-tp"); ok && pool.GroupDomainLabel == "" {
		if n, err := strconv.Atoi(tp); err == nil && n > m.GPUs && m.GPUs >= 1 {
			c.fail(key+".args", m.Args, fmt.Sprintf("asks for --tensor-parallel-size %d, more than the %d GPUs of one node: tensor parallelism all-reduces on every layer and belongs within a node; span the nodes with --pipeline-parallel-size (or set gpuPool.groupDomainLabel when groups run in one NVLink domain)", n, m.GPUs),
				fmt.Sprintf(`["--tensor-parallel-size", "%d", "--pipeline-parallel-size", "%d"]`, m.GPUs, m.Nodes))
		}
	}
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
	if m.Scheduling.SchedulerName == "" {
		c.warn(key+".scheduling.schedulerName", "unset: the default scheduler places a group's %d pods one by one, so a partial group can hold its GPUs while the rest stays Pending (and two partial groups can deadlock); a gang scheduler (Volcano, Kueue) places a group whole or not at all", m.Nodes)
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
