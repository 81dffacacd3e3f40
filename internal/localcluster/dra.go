package localcluster

import (
	"fmt"

	"llm-platform/internal/config"
	"llm-platform/internal/dra"
)

// The local cluster's stand-in for the NVIDIA DRA driver, for a stack with
// gpuPool.allocation: dra. It creates the driver's two DeviceClasses and
// publishes a ResourceSlice per GPU node, with the attributes and capacity
// the driver publishes (internal/dra), so that the real kube-scheduler
// allocates claims from them. kwok runs no kubelet plugin: devices are
// allocated, never prepared.
//
// The pool is mixed, to prove selectors place pods, in pairs of nodes (one
// per zone): the first pair has gpusPerNode H100s, on two PCIe roots (half
// the GPUs each); the next pair has A100 80GB, the first half whole GPUs and
// the second half in MIG mode, each split into seven 1g.10gb slices; and so on.

// DRAProducts are the products of the local pool's node pairs, in turn.
var DRAProducts = [2]string{"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"}

// MIGSlicesPerGPU is how many 1g.10gb slices a MIG-mode A100 80GB offers.
const MIGSlicesPerGPU = 7

func draDriver(cfg config.Config, nodes []string) []map[string]any {
	objs := []map[string]any{
		deviceClass(cfg.GPUPool.DRA.DeviceClassName, dra.ClassExpression("gpu")),
		deviceClass(cfg.GPUPool.DRA.MIGDeviceClassName, dra.ClassExpression("mig")),
	}
	for i, n := range nodes {
		objs = append(objs, resourceSlice(n, nodeDevices(i, cfg.GPUPool.GPUsPerNode)))
	}
	return objs
}

// nodeDevices are the devices of the i-th GPU node, as the driver names them.
func nodeDevices(i, gpus int) []dra.Device {
	var out []dra.Device
	for g := range gpus {
		root := fmt.Sprintf("pci0000:%02x", 2*g/max(gpus, 2))
		switch {
		case (i/len(Zones))%2 == 0:
			out = append(out, dra.Device{Name: fmt.Sprintf("gpu-%d", g), Type: "gpu", ProductName: DRAProducts[0], Architecture: "Hopper", CUDAComputeCapability: "9.0.0", Memory: "81559Mi", PCIeRoot: root})
		case g < gpus/2 || gpus == 1:
			out = append(out, dra.Device{Name: fmt.Sprintf("gpu-%d", g), Type: "gpu", ProductName: DRAProducts[1], Architecture: "Ampere", CUDAComputeCapability: "8.0.0", Memory: "81920Mi", PCIeRoot: root})
		default:
			for s := range MIGSlicesPerGPU {
				out = append(out, dra.Device{Name: fmt.Sprintf("gpu-%d-mig-%d", g, s), Type: "mig", ProductName: DRAProducts[1], Architecture: "Ampere", CUDAComputeCapability: "8.0.0", Memory: "9728Mi", Profile: "1g.10gb", PCIeRoot: root})
			}
		}
	}
	return out
}

func deviceClass(name, selector string) map[string]any {
	return map[string]any{
		"apiVersion": "resource.k8s.io/v1",
		"kind":       "DeviceClass",
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"selectors": []any{map[string]any{"cel": map[string]any{"expression": selector}}}},
	}
}

func resourceSlice(node string, devices []dra.Device) map[string]any {
	var list []any
	for _, d := range devices {
		attrs := map[string]any{}
		for k, v := range d.Attributes() {
			switch {
			case v.StringValue != nil:
				attrs[string(k)] = map[string]any{"string": *v.StringValue}
			case v.VersionValue != nil:
				attrs[string(k)] = map[string]any{"version": *v.VersionValue}
			}
		}
		list = append(list, map[string]any{
			"name":       d.Name,
			"attributes": attrs,
			"capacity":   map[string]any{"memory": map[string]any{"value": d.Memory}},
		})
	}
	return map[string]any{
		"apiVersion": "resource.k8s.io/v1",
		"kind":       "ResourceSlice",
		"metadata":   map[string]any{"name": node + "-" + dra.Driver},
		"spec": map[string]any{
			"driver":   dra.Driver,
			"nodeName": node,
			"pool":     map[string]any{"name": node, "generation": 1, "resourceSliceCount": 1},
			"devices":  list,
		},
	}
}
