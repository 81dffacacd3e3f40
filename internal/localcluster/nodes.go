// Package localcluster deploys rendered stacks onto the local control plane
// (kube-apiserver, controller-manager and scheduler with kwok's fake nodes)
// and waits until they converge as `pulumi up` would want them to.
package localcluster

import (
	"fmt"
	"slices"
	"strconv"

	"llm-platform/internal/config"
)

// Zones the fake node pools span.
var Zones = []string{"zone-a", "zone-b"}

// CPUNodesPerZone is the size of the CPU pool in each zone.
const CPUNodesPerZone = 1

// GPUNodes is how many nodes a stack's GPU pool needs: every model at its
// autoscaling maximum plus the surge pod of a rollout, packed per node as the
// pool's GPUs allow, and at least one node per zone.
func GPUNodes(cfg config.Config) int {
	surge := 0
	if cfg.GPUPool.SpareCapacity {
		surge = 1
	}
	nodes := 0
	for _, m := range cfg.Serving.Models {
		perNode := cfg.GPUPool.GPUsPerNode / m.GPUs
		pods := config.MaxReplicas(m.Replicas, m.Autoscaling) + surge
		if m.MultiNode() {
			// A group's pods each take a node, all in one zone: every zone
			// gets room for whole groups, one more for a rollout's surge
			// or a recreated group.
			groupsPerZone := (pods+len(Zones)-1)/len(Zones) + 1
			nodes += groupsPerZone * m.Nodes * len(Zones)
			continue
		}
		nodes += (pods + perNode - 1) / perNode
	}
	if cfg.GPUPool.Allocation == config.AllocationDRA {
		// A mixed pool (see dra.go): each product on both zones, and room
		// for every model on the nodes of its product alone.
		pairs := 2 * len(Zones)
		return max((2*nodes+pairs-1)/pairs*pairs, pairs)
	}
	return max(nodes, len(Zones))
}

// Infrastructure is what a stack expects of the cluster and no stack creates:
// nodes of its GPU pool (labelled and tainted as its config says, with GPU
// capacity), a CPU pool, and the StorageClasses its claims name.
func Infrastructure(cfgs ...config.Config) []map[string]any {
	var objs []map[string]any
	classes := []string{}
	objs = append(objs, storageClass("kwok-volume", true))
	for _, zone := range Zones {
		for i := range CPUNodesPerZone {
			name := fmt.Sprintf("cpu-%s-%d", zone, i)
			objs = append(objs, node(name, zone, map[string]string{"node-pool": "cpu"}, nil, resources("64", "512Gi", "", 0)))
		}
	}
	for _, cfg := range cfgs {
		pool := cfg.GPUPool
		var gpuNodes []string
		for i := range GPUNodes(cfg) {
			zone := Zones[i%len(Zones)]
			name := fmt.Sprintf("gpu-%s-%d", pool.NodeLabelValue, i)
			taint := map[string]any{"key": pool.TaintKey, "value": "present", "effect": pool.TaintEffect}
			gpus := pool.GPUsPerNode
			if pool.Allocation == config.AllocationDRA {
				gpus = 0 // the devices are in the node's ResourceSlice
			}
			objs = append(objs, node(name, zone,
				map[string]string{pool.NodeLabelKey: pool.NodeLabelValue, "node-pool": "gpu"},
				[]any{taint}, resources("96", "1Ti", pool.ResourceName, gpus)))
			gpuNodes = append(gpuNodes, name)
		}
		if pool.Allocation == config.AllocationDRA {
			objs = append(objs, draDriver(cfg, gpuNodes)...)
		}
		for _, c := range storageClasses(cfg) {
			if !slices.Contains(classes, c) {
				classes = append(classes, c)
			}
		}
	}
	for _, c := range classes {
		objs = append(objs, storageClass(c, false))
	}
	return objs
}

func storageClasses(cfg config.Config) []string {
	var out []string
	for _, c := range []string{cfg.Pipeline.Storage.StorageClass, cfg.Checkpoint.Storage.StorageClass} {
		if c != "" {
			out = append(out, c)
		}
	}
	for _, m := range cfg.Serving.Models {
		if m.ModelCache.StorageClass != "" {
			out = append(out, m.ModelCache.StorageClass)
		}
	}
	return out
}

func resources(cpu, memory, gpuName string, gpus int) map[string]any {
	r := map[string]any{"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "4Ti"}
	if gpus > 0 {
		r[gpuName] = strconv.Itoa(gpus)
	}
	return r
}

func node(name, zone string, extra map[string]string, taints []any, res map[string]any) map[string]any {
	labels := map[string]any{
		"kubernetes.io/hostname":      name,
		"kubernetes.io/os":            "linux",
		"kubernetes.io/arch":          "amd64",
		"topology.kubernetes.io/zone": zone,
		"type":                        "kwok",
	}
	for k, v := range extra {
		labels[k] = v
	}
	n := map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata": map[string]any{
			"name":   name,
			"labels": labels,
			"annotations": map[string]any{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
				// metrics-server scrapes kwok, which serves every node's
				// kubelet resource metrics on one port, each under its own path.
				"metrics.k8s.io/resource-metrics-path": "/metrics/nodes/" + name + "/metrics/resource",
			},
		},
		"status": map[string]any{"capacity": res, "allocatable": res},
	}
	if len(taints) > 0 {
		n["spec"] = map[string]any{"taints": taints}
	}
	return n
}

func storageClass(name string, isDefault bool) map[string]any {
	meta := map[string]any{"name": name}
	if isDefault {
		meta["annotations"] = map[string]any{"storageclass.kubernetes.io/is-default-class": "true"}
	}
	return map[string]any{
		"apiVersion":           "storage.k8s.io/v1",
		"kind":                 "StorageClass",
		"metadata":             meta,
		"provisioner":          "kwok.x-k8s.io/volume",
		"reclaimPolicy":        "Delete",
		"volumeBindingMode":    "Immediate",
		"allowVolumeExpansion": true,
	}
}
