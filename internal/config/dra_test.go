package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/stacktest"
)

// A GPU selector is held to the example inventory where the inventory is
// sure: the typed fields name what the driver publishes on every device, so
// a product, profile or memory no device has is an error that says why.
// Free-form CEL may name what an example cannot know (a driver version, an
// attribute of a device described in gpuPool.dra.devices): when only the CEL
// matches nothing, the preview warns and keeps it; a misspelt attribute is
// still an error at gpuSelector.cel.
func TestGPUSelectorsAgainstTheInventory(t *testing.T) {
	dra := func(selector map[string]any, extra map[string]any) *stacktest.Config {
		c := stacktest.Load(t, "dev").Set(t, "gpuPool.allocation", "dra").Set(t, "serving.models[0].gpuSelector", selector)
		for k, v := range extra {
			c.Set(t, k, v)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		selector map[string]any
		extra    map[string]any
		err      string // "" when the stack is valid
		warning  string
	}{
		{name: "a newer driver than the example's", selector: map[string]any{"cel": `device.attributes["gpu.nvidia.com"].driverVersion.isGreaterThan(semver("585.0.0"))`},
			warning: `llm-platform:serving.models[0].gpuSelector.cel: no device of the example inventory satisfies it with the other fields of gpuSelector; a preview cannot see your cluster's devices, so it is kept`},
		{name: "an architecture of a device described without one",
			selector: map[string]any{"productName": "NVIDIA GH200 480GB", "cel": `device.attributes["gpu.nvidia.com"].architecture == "Hopper"`},
			extra:    map[string]any{"gpuPool.dra.devices": []any{map[string]any{"productName": "NVIDIA GH200 480GB", "memory": "97871Mi"}}},
			warning:  `gpuSelector.cel: no device of the example inventory satisfies it`},
		{name: "a misspelt attribute", selector: map[string]any{"cel": `device.attributes["gpu.nvidia.com"].productname == "NVIDIA L4"`},
			err: `llm-platform:serving.models[0].gpuSelector.cel: "device.attributes[\"gpu.nvidia.com\"].productname == \"NVIDIA L4\"" is invalid: fails on every device of the inventory: device.attributes["gpu.nvidia.com"].productname == "NVIDIA L4": no such key: productname; name an attribute the driver publishes (productName, architecture,`},
		{name: "a product's marketing memory above what NVML reports", selector: map[string]any{"productName": "NVIDIA H100 80GB HBM3", "minMemory": "80Gi"},
			err: `a replica would stay Pending: the most memory such a device has is 81559Mi (NVIDIA H100 80GB HBM3; NVML reports a little less than the marketing size), below minMemory 80Gi: name a device with more memory, or lower minMemory to at most 81559Mi`},
		{name: "a MIG slice smaller than asked", selector: map[string]any{"migProfile": "1g.10gb", "minMemory": "10Gi"},
			err: `the most memory such a device has is 9536Mi`},
		{name: "a product name without its vendor", selector: map[string]any{"productName": "H100 80GB HBM3"},
			err: `for example "NVIDIA H100 80GB HBM3"`},
		{name: "device memory without a unit", selector: map[string]any{"productName": "NVIDIA GH200 480GB"},
			extra: map[string]any{"gpuPool.dra.devices": []any{map[string]any{"productName": "NVIDIA GH200 480GB", "memory": "80"}}},
			err:   `llm-platform:gpuPool.dra.devices[0].memory: "80" is invalid: is 80 bytes`},
		{name: "a described product with a look-alike letter", selector: map[string]any{"productName": "NVIDIA H100 80GB HBM3"},
			extra: map[string]any{"gpuPool.dra.devices": []any{map[string]any{"productName": "NVIDIA Н200 NVL", "memory": "143771Mi"}}},
			err:   "gpuPool.dra.devices[0].productName: \"NVIDIA Н200 NVL\" is invalid: must be the product name as NVML reports it"},
		{name: "a MIG slice larger than its GPU", selector: map[string]any{"productName": "NVIDIA H100 80GB HBM3"},
			extra: map[string]any{"gpuPool.dra.devices": []any{map[string]any{"productName": "Acme X1", "memory": "80Gi", "migProfiles": []any{"1g.100gb"}}}},
			err:   `llm-platform:gpuPool.dra.devices[0].migProfiles[0]: "1g.100gb" is invalid: has more memory (95367Mi) than the GPU it slices (memory 80Gi)`},
		{name: "a product and enough memory", selector: map[string]any{"productName": "NVIDIA H100 80GB HBM3", "minMemory": "79Gi"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertLoads(t, dra(tc.selector, tc.extra), tc.err, tc.warning, "gpuSelector")
		})
	}
}

// The attribute a replica's GPUs share must be one they can share.
func TestMatchAttribute(t *testing.T) {
	for _, tc := range []struct{ value, err, warning string }{
		{"resource.kubernetes.io/pcieRoot", "", ""},
		{"gpu.nvidia.com/productName", "", ""},
		{"resource.kubernetes.io/pcieroot", `llm-platform:gpuPool.dra.matchAttribute: "resource.kubernetes.io/pcieroot" is invalid: attribute names are case-sensitive: the driver publishes resource.kubernetes.io/pcieRoot; for example "resource.kubernetes.io/pcieRoot"`, ""},
		{"gpu.nvidia.com/uuid", `llm-platform:gpuPool.dra.matchAttribute: "gpu.nvidia.com/uuid" is invalid: is different on every device`, ""},
		{"gpu.nvidia.com/nvlinkDomain", "", "llm-platform:gpuPool.dra.matchAttribute: gpu.nvidia.com/nvlinkDomain is not an attribute the NVIDIA DRA driver or Kubernetes publish in the example inventory"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			assertLoads(t, stacktest.Load(t, "dev").Set(t, "gpuPool.allocation", "dra").Set(t, "gpuPool.dra.matchAttribute", tc.value), tc.err, tc.warning, "matchAttribute")
		})
	}
}

// assertLoads loads c: with wantErr, the load fails with it; otherwise it
// loads, warning wantWarning, or nothing about the key named quiet.
func assertLoads(t *testing.T, c *stacktest.Config, wantErr, wantWarning, quiet string) {
	t.Helper()
	res, err := load(c)
	if wantErr != "" {
		require.Error(t, err)
		assert.Contains(t, err.Error(), wantErr)
		return
	}
	require.NoError(t, err)
	warnings := strings.Join(res.Warnings, "\n")
	if wantWarning != "" {
		assert.Contains(t, warnings, wantWarning)
	} else {
		assert.NotContains(t, warnings, quiet)
	}
}

// A value of a fixed set written in another case names the one meant, and
// the keys that depend on it are not refused for it.
func TestAllocationInAnotherCase(t *testing.T) {
	_, err := load(stacktest.Load(t, "dev").Set(t, "gpuPool.allocation", "DRA").Set(t, "serving.models[0].gpuSelector.productName", "NVIDIA L4"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `llm-platform:gpuPool.allocation: "DRA" is invalid: must be one of devicePlugin, dra, written exactly: the values are case-sensitive; for example "dra"`)
	assert.NotContains(t, err.Error(), "gpuSelector")
}
