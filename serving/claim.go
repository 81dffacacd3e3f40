package serving

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	resourcev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/resource/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/names"
)

// GPUClaim asks for a replica's GPUs through Dynamic Resource Allocation
// (resource.k8s.io/v1) instead of the pool's extended resource: each pod
// gets a ResourceClaim from the model's ResourceClaimTemplate, which the
// scheduler allocates from the devices the DRA driver publishes.
type GPUClaim struct {
	// DeviceClassName is the DeviceClass the request names, for example
	// gpu.nvidia.com (whole GPUs) or mig.nvidia.com (MIG slices).
	DeviceClassName string
	// Selectors are CEL expressions every device must satisfy (compiled
	// at preview by the config's validation).
	Selectors []string
	// MatchAttribute, when set and the replica has more than one device, is
	// the attribute all its devices share (a claim constraint).
	MatchAttribute string
}

// claimRequest is the name of the one request in the claim and of the
// container's claim reference.
const claimRequest = "gpus"

// claimSpec is the ResourceClaim every pod of the model gets.
func (a Args) claimSpec() resourcev1.ResourceClaimSpecArgs {
	c := a.GPUClaim
	var selectors resourcev1.DeviceSelectorArray
	for _, e := range c.Selectors {
		selectors = append(selectors, resourcev1.DeviceSelectorArgs{Cel: &resourcev1.CELDeviceSelectorArgs{Expression: pulumi.String(e)}})
	}
	devices := &resourcev1.DeviceClaimArgs{
		Requests: resourcev1.DeviceRequestArray{resourcev1.DeviceRequestArgs{
			Name: pulumi.String(claimRequest),
			Exactly: &resourcev1.ExactDeviceRequestArgs{
				DeviceClassName: pulumi.String(c.DeviceClassName),
				AllocationMode:  pulumi.String("ExactCount"),
				Count:           pulumi.IntPtr(a.GPUs),
				Selectors:       selectors,
			},
		}},
	}
	if c.MatchAttribute != "" && a.GPUs > 1 {
		devices.Constraints = resourcev1.DeviceConstraintArray{resourcev1.DeviceConstraintArgs{
			Requests: pulumi.StringArray{pulumi.String(claimRequest)}, MatchAttribute: pulumi.String(c.MatchAttribute),
		}}
	}
	return resourcev1.ResourceClaimSpecArgs{Devices: devices}
}

// claimTemplateName names the template by its content: a template's spec is
// immutable, so a changed claim is a new template the pods roll onto, while
// pods of the old ReplicaSet keep the claims they already have.
func (a Args) claimTemplateName() string {
	b, _ := json.Marshal(struct {
		Class, Attr string
		Selectors   []string
		Count       int
	}{a.GPUClaim.DeviceClassName, a.GPUClaim.MatchAttribute, a.GPUClaim.Selectors, a.GPUs})
	sum := sha256.Sum256(b)
	return names.Inference(a.Model) + "-gpus-" + hex.EncodeToString(sum[:])[:8]
}

// newClaimTemplate creates the model's ResourceClaimTemplate.
func newClaimTemplate(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*resourcev1.ResourceClaimTemplate, error) {
	t, err := resourcev1.NewResourceClaimTemplate(ctx, name+"-gpu-claim", &resourcev1.ResourceClaimTemplateArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(args.claimTemplateName()), Namespace: args.Shared.Namespace, Labels: Workload(args.Model).AllInput(),
		},
		Spec: resourcev1.ResourceClaimTemplateSpecArgs{Spec: args.claimSpec()},
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("serving %q: gpu claim template: %w", name, err)
	}
	return t, nil
}

// podClaims is the pod's reference to its claim from template.
func podClaims(template pulumi.StringPtrInput) corev1.PodResourceClaimArray {
	return corev1.PodResourceClaimArray{corev1.PodResourceClaimArgs{
		Name: pulumi.String(claimRequest), ResourceClaimTemplateName: template,
	}}
}
