package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"llm-platform/internal/dra"
)

// allocation checks gpuPool.allocation and, with "dra", gpuPool.dra.
func (c *checker) allocation(key string, p GPUPool) {
	c.oneOf(key+".allocation", p.Allocation, []string{AllocationDevicePlugin, AllocationDRA})
	if p.Allocation != AllocationDRA {
		if c.anyWritten(key + ".dra") {
			c.warn(key+".dra", "has no effect: gpuPool.allocation is %s; set it to dra to claim GPUs through Dynamic Resource Allocation", p.Allocation)
		}
		return
	}
	if c.wrote(key+".resourceName") && p.ResourceName != Defaults().GPUPool.ResourceName {
		c.warn(key+".resourceName", "%s has no effect with allocation dra: GPUs are claimed from DeviceClass %s; for another vendor's GPUs set gpuPool.dra.deviceClassName to its driver's class", p.ResourceName, p.DRA.DeviceClassName)
	}
	for _, k := range []struct{ key, v, example string }{
		{key + ".dra.deviceClassName", p.DRA.DeviceClassName, `"gpu.nvidia.com"`},
		{key + ".dra.migDeviceClassName", p.DRA.MIGDeviceClassName, `"mig.nvidia.com"`},
	} {
		if errs := validation.IsDNS1123Subdomain(k.v); len(errs) > 0 {
			c.fail(k.key, k.v, "must be a DeviceClass name (a DNS subdomain): "+strings.Join(errs, "; "), k.example)
		}
	}
	if p.DRA.DeviceClassName == p.DRA.MIGDeviceClassName && p.DRA.DeviceClassName != "" {
		c.fail(key+".dra.migDeviceClassName", p.DRA.MIGDeviceClassName, "must differ from dra.deviceClassName: MIG slices and whole GPUs are different device classes (the NVIDIA driver's mig.nvidia.com and gpu.nvidia.com)", `"mig.nvidia.com"`)
	}
	if a := p.DRA.MatchAttribute; a != "" {
		if errs := validation.IsQualifiedName(a); len(errs) > 0 || !strings.Contains(a, "/") {
			c.fail(key+".dra.matchAttribute", a, "must be a fully qualified device attribute, domain/name (resource.k8s.io/v1 matchAttribute)", `"resource.kubernetes.io/pcieRoot"`)
		} else {
			c.matchAttribute(key+".dra.matchAttribute", a)
		}
	}
	c.warn(key+".allocation", "dra: the cluster needs Kubernetes 1.34 or later and a DRA driver publishing the devices of DeviceClasses %s and %s (NVIDIA's dra-driver-nvidia-gpu), not the device plugin on the same nodes; a preview cannot check them (see docs/serving.md, \"GPUs through Dynamic Resource Allocation\")",
		p.DRA.DeviceClassName, p.DRA.MIGDeviceClassName)
	for i, d := range p.DRA.Devices {
		k := fmt.Sprintf("%s.dra.devices[%d]", key, i)
		switch {
		case strings.TrimSpace(d.ProductName) == "":
			c.fail(k+".productName", nil, "required: the product name the driver publishes", `"NVIDIA H100 80GB HBM3"`)
		case oddCharacter(d.ProductName) != "":
			c.fail(k+".productName", d.ProductName, "must be the product name as NVML reports it (nvidia-smi --query-gpu=name --format=csv), which is plain ASCII", `"NVIDIA H100 80GB HBM3"`)
		}
		memory, memoryOK := c.gpuMemoryOK(k+".memory", d.Memory)
		for j, prof := range d.MIGProfiles {
			pk := fmt.Sprintf("%s.migProfiles[%d]", k, j)
			if !migProfile.MatchString(prof) {
				c.fail(pk, prof, "must be a MIG profile such as 1g.10gb (<compute>g.<memory>gb, optionally +me)", `"1g.10gb"`)
				continue
			}
			if slice := resource.MustParse(dra.MIGMemory(prof)); memoryOK && slice.Cmp(memory) > 0 {
				c.fail(pk, prof, fmt.Sprintf("has more memory (%s) than the GPU it slices (memory %s): a MIG slice is a part of its GPU", slice.String(), d.Memory), "")
			}
		}
	}
}

// matchAttribute checks the attribute a replica's GPUs must share against
// what the NVIDIA driver and Kubernetes publish: case matters, and a UUID
// is shared by no two devices. Others are warned about: a preview cannot
// see the driver's attributes.
func (c *checker) matchAttribute(key, a string) {
	known := []string{"resource.kubernetes.io/pcieRoot"}
	for _, name := range dra.KnownAttributes {
		if !strings.Contains(name, "/") {
			known = append(known, dra.Driver+"/"+name)
		}
	}
	switch {
	case a == dra.Driver+"/uuid":
		c.fail(key, a, "is different on every device: the GPUs of a replica of more than one GPU could never share it, and the replica would stay Pending", `"resource.kubernetes.io/pcieRoot"`)
	case slices.Contains(known, a):
	default:
		for _, k := range known {
			if strings.EqualFold(k, a) {
				c.fail(key, a, "attribute names are case-sensitive: the driver publishes "+k, strconv.Quote(k))
				return
			}
		}
		c.warn(key, "%s is not an attribute the NVIDIA DRA driver or Kubernetes publish in the example inventory (%s): a preview cannot see your driver's; if its devices lack it, a replica of more than one GPU stays Pending (check `kubectl get resourceslices -o yaml`)", a, strings.Join(known, ", "))
	}
}

var migProfile = regexp.MustCompile(`^[1-9]c?\.?[0-9]*g\.[0-9]+gb(\+[a-z]+)?$`)

// gpuSelector checks a model's gpuSelector: only with allocation dra, CEL
// that compiles (the API server's own compiler), a MIG profile for one
// device, and a selector some device of the inventory satisfies.
func (c *checker) gpuSelector(key string, m Model, pool GPUPool) {
	k := key + ".gpuSelector"
	s := m.GPUSelector
	if !c.anyWritten(k) {
		return
	}
	if c.failed("gpuPool.allocation") {
		return // refused there; what it would have been is not known
	}
	if pool.Allocation != AllocationDRA {
		c.fail(k, s, "applies only with gpuPool.allocation: dra (the device plugin hands out any GPU of the pool's resource); set gpuPool.allocation to dra, or select the pool's nodes with gpuPool.nodeLabelKey", "")
		return
	}
	if s.ProductName == "" && c.wrote(k+".productName") {
		c.fail(k+".productName", s.ProductName, "must name a product, or be left out for any", `"NVIDIA H100 80GB HBM3"`)
	}
	if s.MinMemory != "" || c.wrote(k+".minMemory") {
		c.gpuMemory(k+".minMemory", s.MinMemory)
	}
	if s.MIGProfile != "" && !migProfile.MatchString(s.MIGProfile) {
		c.fail(k+".migProfile", s.MIGProfile, "must be a MIG profile such as 1g.10gb (<compute>g.<memory>gb, optionally +me)", `"1g.10gb"`)
	}
	if s.MIGProfile != "" && m.GPUs > 1 {
		c.fail(key+".gpus", m.GPUs, fmt.Sprintf("must be 1 with gpuSelector.migProfile %q: a replica gets one MIG slice (MIG slices do not join for tensor parallelism)", s.MIGProfile), "1")
	}
	if s.CEL != "" {
		if _, err := dra.Compile(s.CEL); err != nil {
			c.fail(k+".cel", s.CEL, "must be a CEL device selector the API server accepts: "+oneLine(err.Error()), `"device.attributes[\"gpu.nvidia.com\"].architecture == \"Hopper\""`)
		}
	}
	if c.failedUnder(k) || c.failed(key+".gpus") || c.failedUnder("gpuPool.dra") {
		return
	}
	inv := inventory(pool.DRA)
	sel := m.DRASelector()
	typ := sel.Type()
	// The typed fields name what the driver publishes for every device, so
	// an inventory that no device of satisfies is an error. Free-form CEL
	// may name what an example inventory cannot know (a driver version, a
	// UUID, an attribute of a device described in gpuPool.dra.devices): it
	// is held to the inventory only where that is sure.
	typed := sel
	typed.CEL = ""
	ok, _ := inv.Match(typ, typed.Expressions())
	switch {
	case ok:
	case s.ProductName != "" && !slices.Contains(inv.ProductNames(), s.ProductName):
		c.fail(k+".productName", s.ProductName, "matches no device of the inventory: the driver publishes the exact NVML name, one of "+quoteAll(inv.ProductNames())+"; for hardware not listed, describe it in gpuPool.dra.devices", strconv.Quote(closestName(s.ProductName, inv.ProductNames())))
		return
	case s.MIGProfile != "" && !slices.Contains(inv.MIGProfiles(), s.MIGProfile):
		c.fail(k+".migProfile", s.MIGProfile, "matches no MIG slice of the inventory: one of "+quoteAll(inv.MIGProfiles())+"; for hardware not listed, describe it in gpuPool.dra.devices", `"1g.10gb"`)
		return
	default:
		c.fail(k, s, "no device of the inventory satisfies all of it ("+typed.Describe()+"): a replica would stay Pending"+whyNoDevice(inv, typed)+"; for hardware not listed, describe it in gpuPool.dra.devices", "")
		return
	}
	if sel.CEL == "" {
		return
	}
	full, err := inv.Match(typ, sel.Expressions())
	onlyMIG := false
	if !full && typ == "gpu" {
		onlyMIG, _ = inv.Match("mig", sel.Expressions())
	}
	switch {
	case full:
	case onlyMIG:
		c.fail(k, s, "selects MIG slices only, but whole GPUs are claimed from "+pool.DRA.DeviceClassName+": set gpuSelector.migProfile to claim a slice from "+pool.DRA.MIGDeviceClassName, "")
	case err != nil && !dra.MissingKnownAttribute(err):
		c.fail(k+".cel", s.CEL, "fails on every device of the inventory: "+oneLine(err.Error())+"; name an attribute the driver publishes ("+strings.Join(dra.KnownAttributes, ", ")+"), compare versions with semver(), or guard it with has()", "")
	default:
		c.warn(k+".cel", "no device of the example inventory satisfies it with the other fields of gpuSelector; a preview cannot see your cluster's devices, so it is kept: check it against `kubectl get resourceslices -o yaml` before the model rolls, or its replicas stay Pending")
	}
}

// gpuMemory checks an amount of GPU memory: bytes, and at least 1Gi, less
// than any GPU or MIG slice has.
func (c *checker) gpuMemory(key string, q Quantity) {
	c.gpuMemoryOK(key, q)
}

// gpuMemoryOK is gpuMemory, returning the amount and whether it is valid.
func (c *checker) gpuMemoryOK(key string, q Quantity) (resource.Quantity, bool) {
	v, ok := c.bytes(key, q, `"80Gi"`)
	if ok && v.Cmp(resource.MustParse("1Gi")) < 0 {
		c.fail(key, q, fmt.Sprintf("is %s bytes, less than any GPU has: write the unit (Gi)", v.String()), strconv.Quote(string(q)+"Gi"))
		return v, false
	}
	return v, ok
}

// whyNoDevice is what keeps the closest devices out, for the message: the
// memory of the named product or MIG profile against minMemory.
func whyNoDevice(inv dra.Inventory, s dra.Selector) string {
	if s.MinMemory == "" {
		return ""
	}
	want, err := resource.ParseQuantity(s.MinMemory)
	if err != nil {
		return ""
	}
	var most resource.Quantity
	var which string
	for _, d := range inv {
		if d.Type != s.Type() || (s.ProductName != "" && d.ProductName != s.ProductName) || (s.MIGProfile != "" && d.Profile != s.MIGProfile) {
			continue
		}
		if m, err := resource.ParseQuantity(d.Memory); err == nil && m.Cmp(most) > 0 {
			most, which = m, d.ProductName
			if d.Profile != "" {
				which += " " + d.Profile
			}
		}
	}
	if which == "" || most.Cmp(want) >= 0 {
		return ""
	}
	return fmt.Sprintf(": the most memory such a device has is %s (%s; NVML reports a little less than the marketing size), below minMemory %s: name a device with more memory, or lower minMemory to at most %s", most.String(), which, s.MinMemory, most.String())
}

// closestName is the name of names nearest to v, ignoring case, spaces and
// the vendor's prefix, for the example of a message; the first name when
// nothing is close.
func closestName(v string, names []string) string {
	norm := func(s string) string {
		s = strings.ToLower(strings.Join(strings.Fields(s), ""))
		return strings.TrimPrefix(s, "nvidia")
	}
	for _, n := range names {
		if strings.Contains(norm(n), norm(v)) && norm(v) != "" {
			return n
		}
	}
	return names[0]
}

// inventory is the built-in example inventory plus the pool's own devices;
// it is read only once gpuPool.dra passed its checks, so every memory parses.
func inventory(d DRA) dra.Inventory {
	inv := append(dra.Inventory{}, dra.KnownDevices...)
	for i, dev := range d.Devices {
		name := fmt.Sprintf("configured-%d", i)
		inv = append(inv, dra.Device{Name: name, Type: "gpu", ProductName: dev.ProductName, Memory: string(dev.Memory)})
		for _, prof := range dev.MIGProfiles {
			inv = append(inv, dra.Device{Name: name + "-mig-" + prof, Type: "mig", ProductName: dev.ProductName, Profile: prof, Memory: dra.MIGMemory(prof)})
		}
	}
	return inv
}

// DRASelector is a model's gpuSelector as the dra package takes it.
func (m Model) DRASelector() dra.Selector {
	s := m.GPUSelector
	return dra.Selector{ProductName: s.ProductName, MinMemory: string(s.MinMemory), MIGProfile: s.MIGProfile, CEL: s.CEL}
}

func quoteAll(list []string) string {
	q := make([]string, len(list))
	for i, v := range list {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
