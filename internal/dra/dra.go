// Package dra turns a model's typed GPU selector into the CEL selectors of a
// DRA ResourceClaimTemplate (resource.k8s.io/v1), compiles them with the
// compiler the API server and the scheduler use
// (k8s.io/dynamic-resource-allocation/cel), and checks them against an
// inventory of devices as the NVIDIA DRA driver publishes them. The entry
// points are Selector.Expressions, Compile and Inventory.Match.
package dra

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/utils/ptr"
)

// Driver is the NVIDIA DRA driver's name (kubernetes-sigs/dra-driver-nvidia-gpu):
// the domain of the attributes and capacities it publishes.
const Driver = "gpu.nvidia.com"

// The device classes the NVIDIA DRA driver creates: whole GPUs and MIG slices.
const (
	GPUClass = "gpu.nvidia.com"
	MIGClass = "mig.nvidia.com"
)

// Selector says which devices a model may get. Every field is optional; an
// empty Selector takes any device of the class.
type Selector struct {
	// ProductName is the exact product name the driver publishes (NVML's
	// name, the attribute productName), for example "NVIDIA H100 80GB HBM3".
	ProductName string
	// MinMemory is the least device memory (the capacity memory, bytes), for
	// example 80Gi.
	MinMemory string
	// MIGProfile, when set, claims a MIG slice of that profile (the attribute
	// profile, for example "1g.10gb") from the MIG class instead of a GPU.
	MIGProfile string
	// CEL is one more selector expression, written by the user.
	CEL string
}

// Expressions are the CEL selectors Selector stands for, in a stable order.
func (s Selector) Expressions() []string {
	var out []string
	attr := fmt.Sprintf("device.attributes[%q]", Driver)
	if s.ProductName != "" {
		out = append(out, fmt.Sprintf("%s.productName == %s", attr, strconv.Quote(s.ProductName)))
	}
	if s.MIGProfile != "" {
		out = append(out, fmt.Sprintf("%s.profile == %s", attr, strconv.Quote(s.MIGProfile)))
	}
	if s.MinMemory != "" {
		out = append(out, fmt.Sprintf("device.capacity[%q].memory.compareTo(quantity(%q)) >= 0", Driver, s.MinMemory))
	}
	if s.CEL != "" {
		out = append(out, s.CEL)
	}
	return out
}

// Class is the device class s claims from: migClass for a MIG profile,
// gpuClass otherwise.
func (s Selector) Class(gpuClass, migClass string) string {
	if s.MIGProfile != "" {
		return migClass
	}
	return gpuClass
}

// Compile compiles expr as the API server validates a new ResourceClaim
// selector: the environment of new expressions, at most
// CELSelectorExpressionMaxLength characters, and an estimated cost within
// CELSelectorExpressionMaxCost (k8s.io/api/resource/v1); the error is the
// compiler's, or the limit that was passed.
func Compile(expr string) (cel.CompilationResult, error) {
	if len(expr) > resourceapi.CELSelectorExpressionMaxLength {
		return cel.CompilationResult{}, fmt.Errorf("is %d characters long, more than the API server's %d", len(expr), resourceapi.CELSelectorExpressionMaxLength)
	}
	r := cel.GetCompiler(cel.Features{}).CompileCELExpression(expr, cel.Options{EnvType: ptr.To(environment.NewExpressions)})
	if r.Error != nil {
		return r, fmt.Errorf("%s", r.Error.Detail)
	}
	if r.MaxCost > resourceapi.CELSelectorExpressionMaxCost {
		return r, fmt.Errorf("is too complex: its estimated cost %d exceeds the API server's limit %d", r.MaxCost, resourceapi.CELSelectorExpressionMaxCost)
	}
	return r, nil
}

// Device is one device as the NVIDIA driver publishes it in a ResourceSlice.
type Device struct {
	// Name is the device's name in its slice, for example gpu-0 or gpu-0-mig-1g.10gb-0.
	Name string
	// Type is "gpu" or "mig".
	Type string
	// ProductName is the GPU's product name (a MIG slice carries its parent's).
	ProductName string
	// Architecture is the GPU's architecture (Ampere, Hopper, Blackwell, Ada
	// Lovelace); CUDAComputeCapability its compute capability, a version.
	Architecture, CUDAComputeCapability string
	// Memory is the device memory.
	Memory string
	// Profile is a MIG slice's profile, "" for a GPU.
	Profile string
	// PCIeRoot is the standard attribute resource.kubernetes.io/pcieRoot.
	PCIeRoot string
}

// KnownAttributes are the attributes the NVIDIA DRA driver publishes on its
// devices in its own domain (gpu.nvidia.com), and the standard pcieRoot, as
// a selector names them.
var KnownAttributes = []string{"productName", "architecture", "cudaComputeCapability", "driverVersion",
	"cudaDriverVersion", "type", "profile", "uuid", "brand", "resource.kubernetes.io/pcieRoot"}

// MissingKnownAttribute reports whether err, from Match, is an expression
// failing on devices that lack one of KnownAttributes: devices described
// without it (gpuPool.dra.devices), not a misspelt name.
func MissingKnownAttribute(err error) bool {
	_, rest, found := strings.Cut(err.Error(), "no such key: ")
	if !found {
		return false
	}
	name := strings.Fields(rest)
	return len(name) > 0 && slices.Contains(KnownAttributes, strings.Trim(name[0], `"',.;`))
}

// Example values of the attributes every device of the driver has but that
// selectors rarely name: enough for an expression over them to evaluate.
const (
	exampleDriverVersion     = "580.95.5"
	exampleCUDADriverVersion = "13.0.0"
	examplePCIeRoot          = "pci0000:00"
)

// Attributes and Capacity are d as the driver publishes them: type, uuid,
// productName, brand, architecture, cudaComputeCapability, driverVersion,
// cudaDriverVersion, pcieRoot, and for a MIG slice profile and parentUUID
// (kubernetes-sigs/dra-driver-nvidia-gpu, cmd/gpu-kubelet-plugin/deviceinfo.go).
func (d Device) Attributes() map[resourceapi.QualifiedName]resourceapi.DeviceAttribute {
	str := func(v string) resourceapi.DeviceAttribute { return resourceapi.DeviceAttribute{StringValue: ptr.To(v)} }
	ver := func(v string) resourceapi.DeviceAttribute {
		return resourceapi.DeviceAttribute{VersionValue: ptr.To(v)}
	}
	root := d.PCIeRoot
	if root == "" {
		root = examplePCIeRoot
	}
	attrs := map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
		"type":                            str(d.Type),
		"uuid":                            str("GPU-" + d.Name),
		"productName":                     str(d.ProductName),
		"brand":                           str("Nvidia"),
		"driverVersion":                   ver(exampleDriverVersion),
		"cudaDriverVersion":               ver(exampleCUDADriverVersion),
		"resource.kubernetes.io/pcieRoot": str(root),
	}
	if d.Architecture != "" {
		attrs["architecture"] = str(d.Architecture)
	}
	if d.CUDAComputeCapability != "" {
		attrs["cudaComputeCapability"] = ver(d.CUDAComputeCapability)
	}
	if d.Profile != "" {
		attrs["profile"] = str(d.Profile)
		attrs["parentUUID"] = str("GPU-" + d.Name + "-parent")
	}
	return attrs
}

// Capacity is d's capacity: its memory.
func (d Device) Capacity() map[resourceapi.QualifiedName]resourceapi.DeviceCapacity {
	return map[resourceapi.QualifiedName]resourceapi.DeviceCapacity{
		"memory": {Value: resource.MustParse(d.Memory)},
	}
}

// ClassExpression is the selector of the NVIDIA driver's class for type
// ("gpu" or "mig"), as its DeviceClasses have it.
func ClassExpression(typ string) string {
	return fmt.Sprintf("device.driver == %q && device.attributes[%q].type == %q", Driver, Driver, typ)
}

// Inventory is the devices a preview checks selectors against.
type Inventory []Device

// Match reports whether some device of inv of type typ satisfies every
// expression; an expression that does not compile, or fails on a device, is
// the error.
func (inv Inventory) Match(typ string, exprs []string) (bool, error) {
	var compiled []cel.CompilationResult
	for _, e := range exprs {
		r, err := Compile(e)
		if err != nil {
			return false, fmt.Errorf("%s: %w", e, err)
		}
		compiled = append(compiled, r)
	}
	// As in the scheduler, an expression that fails on a device (an
	// attribute it lacks) does not select it; if it fails on every device,
	// the error is what the user needs to see.
	var lastErr error
	evaluated, failed := 0, 0
	for _, d := range inv {
		if d.Type != typ {
			continue
		}
		evaluated++
		in := cel.Device{Driver: Driver, Attributes: d.Attributes(), Capacity: d.Capacity()}
		all := true
		for _, r := range compiled {
			ok, _, err := r.DeviceMatches(context.Background(), in)
			if err != nil {
				lastErr = fmt.Errorf("%s: %w", r.Expression, err)
				failed++
				all = false
				break
			}
			if !ok {
				all = false
				break
			}
		}
		if all {
			return true, nil
		}
	}
	if evaluated > 0 && failed == evaluated {
		return false, lastErr
	}
	return false, nil
}

// ProductNames lists the distinct product names of inv, for messages.
func (inv Inventory) ProductNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range inv {
		if !seen[d.ProductName] {
			seen[d.ProductName] = true
			out = append(out, d.ProductName)
		}
	}
	return out
}

// MIGProfiles lists the distinct MIG profiles of inv, for messages.
func (inv Inventory) MIGProfiles() []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range inv {
		if d.Profile != "" && !seen[d.Profile] {
			seen[d.Profile] = true
			out = append(out, d.Profile)
		}
	}
	return out
}

// gpu is one whole GPU of a product.
func gpu(name, product, arch, cc, memory string) Device {
	return Device{Name: name, Type: "gpu", ProductName: product, Architecture: arch, CUDAComputeCapability: cc, Memory: memory}
}

// migs are the slices of parent, one per profile, their memory read from the
// profile's name (1g.10gb: 10 GB, written in MiB as NVML reports memory,
// slightly below what the name says).
func migs(parent Device, profiles ...string) Inventory {
	var out Inventory
	for _, p := range profiles {
		d := parent
		d.Name, d.Type, d.Profile, d.Memory = parent.Name+"-mig-"+strings.ReplaceAll(strings.ReplaceAll(p, ".", "-"), "+", "-"), "mig", p, MIGMemory(p)
		out = append(out, d)
	}
	return out
}

// MIGMemory is the memory a MIG profile's name gives, in MiB: 1g.10gb has
// 10 GB, 9536Mi ("0" for a name without one).
func MIGMemory(profile string) string {
	_, rest, _ := strings.Cut(profile, "g.")
	gb, _, _ := strings.Cut(rest, "gb")
	n, err := strconv.Atoi(gb)
	if err != nil {
		return "0"
	}
	return fmt.Sprintf("%dMi", n*1000*1000*1000/(1<<20))
}

var (
	l4        = gpu("l4", "NVIDIA L4", "Ada Lovelace", "8.9.0", "23034Mi")
	a100s     = gpu("a100-40", "NVIDIA A100-SXM4-40GB", "Ampere", "8.0.0", "40960Mi")
	a100      = gpu("a100-80", "NVIDIA A100-SXM4-80GB", "Ampere", "8.0.0", "81920Mi")
	h100      = gpu("h100", "NVIDIA H100 80GB HBM3", "Hopper", "9.0.0", "81559Mi")
	h200      = gpu("h200", "NVIDIA H200", "Hopper", "9.0.0", "143771Mi")
	b200      = gpu("b200", "NVIDIA B200", "Blackwell", "10.0.0", "183359Mi")
	gpus      = Inventory{l4, a100s, a100, h100, h200, b200}
	migSlices = slicesOf()
)

func slicesOf() Inventory {
	var out Inventory
	out = append(out, migs(a100s, "1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")...)
	out = append(out, migs(a100, "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")...)
	out = append(out, migs(h100, "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")...)
	out = append(out, migs(h200, "1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb")...)
	out = append(out, migs(b200, "1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb")...)
	return out
}

// KnownDevices is the example inventory: one device of each NVIDIA
// data-center GPU the stack's docs use, and the MIG slices of the
// MIG-capable ones (NVIDIA's MIG user guide), with the product names,
// architectures and memory NVML reports. A selector that no device here (nor
// in gpuPool.dra.devices) could match is refused at preview.
var KnownDevices = append(append(Inventory{}, gpus...), migSlices...)

// Type is the device type s claims: "mig" with a MIG profile, else "gpu".
func (s Selector) Type() string {
	if s.MIGProfile != "" {
		return "mig"
	}
	return "gpu"
}

// QuotaResource is the ResourceQuota name that caps the devices a namespace
// claims from class (Kubernetes' DRA quota: <class>.deviceclass.resource.k8s.io/devices).
func QuotaResource(class string) string {
	return class + corev1.ResourceClaimsPerClass
}

// Describe is s in words, for messages.
func (s Selector) Describe() string {
	return strings.Join(s.Expressions(), " && ")
}
