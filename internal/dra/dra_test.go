package dra

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSelectorsMatchTheInventoryAsTheSchedulerWould(t *testing.T) {
	cases := []struct {
		name string
		sel  Selector
		want bool
	}{
		{"any GPU", Selector{}, true},
		{"an H100", Selector{ProductName: "NVIDIA H100 80GB HBM3"}, true},
		{"a typo in the product", Selector{ProductName: "H100 80GB"}, false},
		{"at least 80Gi", Selector{MinMemory: "80Gi"}, true},
		{"at least 1Ti: no GPU has it", Selector{MinMemory: "1Ti"}, false},
		{"an L4 with 80Gi: none", Selector{ProductName: "NVIDIA L4", MinMemory: "80Gi"}, false},
		{"a 1g.10gb slice", Selector{MIGProfile: "1g.10gb"}, true},
		{"an unknown profile", Selector{MIGProfile: "1g.12gb"}, false},
		{"a user expression", Selector{CEL: `device.attributes["gpu.nvidia.com"].productName.startsWith("NVIDIA A100")`}, true},
		{"the docs' example: Hopper", Selector{CEL: `device.attributes["gpu.nvidia.com"].architecture == "Hopper"`}, true},
		{"a compute capability, as a version", Selector{CEL: `device.attributes["gpu.nvidia.com"].cudaComputeCapability.isGreaterThan(semver("8.9.0"))`}, true},
		{"a guarded attribute", Selector{CEL: `has(device.attributes["gpu.nvidia.com"].architecture) && device.attributes["gpu.nvidia.com"].architecture == "Blackwell"`}, true},
		{"the standard PCIe root", Selector{CEL: `device.attributes["resource.kubernetes.io"].pcieRoot != ""`}, true},
		{"a 4g.40gb slice", Selector{MIGProfile: "4g.40gb"}, true},
		{"a slice with media extensions", Selector{MIGProfile: "1g.10gb+me"}, true},
		{"a 7g.80gb slice of an A100 80GB", Selector{ProductName: "NVIDIA A100-SXM4-80GB", MIGProfile: "7g.80gb"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := KnownDevices.Match(tc.sel.Type(), tc.sel.Expressions())
			require.NoError(t, err)
			assert.Equal(t, tc.want, ok)
		})
	}
}

func TestCompileRefusesWhatTheAPIServerRefuses(t *testing.T) {
	for _, expr := range []string{
		`device.attributes["gpu.nvidia.com"].productName ==`,
		`1 + 1`, // an int, not a bool
		`device.nosuchfield == 1`,
		`device.attributes.all(a, device.attributes.all(b, device.attributes.all(c, device.attributes.all(d, a == b))))`, // beyond the cost limit
		strings.Repeat("true && ", 1400) + "true", // beyond 10 KiB
	} {
		_, err := Compile(expr)
		assert.Error(t, err, expr)
	}
	_, err := Compile(ClassExpression("gpu"))
	assert.NoError(t, err)
}
