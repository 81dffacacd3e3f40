package serving

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A ResourceClaimTemplate's spec is immutable: any change to the claim is a
// new name, so the pods roll onto a new template; the same claim keeps its name.
func TestTheClaimTemplateIsNamedByItsContent(t *testing.T) {
	base := Args{Model: "llama", GPUs: 4, GPUClaim: &GPUClaim{DeviceClassName: "gpu.nvidia.com", Selectors: []string{"true"}, MatchAttribute: "resource.kubernetes.io/pcieRoot"}}
	name := base.claimTemplateName()
	assert.Regexp(t, `^inference-llama-gpus-[0-9a-f]{8}$`, name)
	assert.Equal(t, name, base.claimTemplateName())
	for _, change := range []func(*Args){
		func(a *Args) { a.GPUs = 2 },
		func(a *Args) { a.GPUClaim.DeviceClassName = "mig.nvidia.com" },
		func(a *Args) { a.GPUClaim.Selectors = []string{"false"} },
		func(a *Args) { a.GPUClaim.MatchAttribute = "" },
	} {
		a := base
		claim := *base.GPUClaim
		a.GPUClaim = &claim
		change(&a)
		assert.NotEqual(t, name, a.claimTemplateName())
	}
}
