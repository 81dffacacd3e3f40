//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"

	"llm-platform/internal/dra"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// GPUs claimed through DRA, allocated by the real kube-scheduler from the
// ResourceSlices the local stand-in for the NVIDIA driver publishes (see
// internal/localcluster/dra.go): each replica gets exactly the devices its
// selector and constraint allow, on its own node; a replica no free device
// satisfies stays Pending with the scheduler's reason; the namespace's
// device quota refuses a claim beyond it. kwok runs no kubelet plugin, so
// this proves the allocation, not the device's preparation.
func TestDRAAllocatesTheSelectedDevices(t *testing.T) {
	cfg := deployTestStack(t, "dra")
	ns := cfg.Namespace.Name
	slices := resourceSlices(t)

	t.Run("a 4-GPU replica gets four H100s of one PCIe root, on its node", func(t *testing.T) {
		pods := runningPods(t, ns, names.Inference("llama-70b"))
		require.Len(t, pods, 2)
		for _, p := range pods {
			results := allocation(t, ns, p)
			require.Len(t, results, 4, p.Name)
			roots := map[string]bool{}
			for _, r := range results {
				d := slices.device(t, r)
				assert.Equal(t, p.Spec.NodeName, r.Pool, "%s: the device is on the pod's node", p.Name)
				assert.Equal(t, localcluster.DRAProducts[0], d.ProductName, "%s: %s", p.Name, r.Device)
				assert.Equal(t, "gpu", d.Type)
				roots[d.PCIeRoot] = true
			}
			assert.Len(t, roots, 1, "%s: all four on one PCIe root: %v", p.Name, roots)
		}
	})

	t.Run("an embedding replica gets a MIG slice, not a GPU", func(t *testing.T) {
		pods := runningPods(t, ns, names.Inference("embed"))
		require.Len(t, pods, 2)
		for _, p := range pods {
			results := allocation(t, ns, p)
			require.Len(t, results, 1, p.Name)
			d := slices.device(t, results[0])
			assert.Equal(t, "mig", d.Type, p.Name)
			assert.Equal(t, "1g.10gb", d.Profile)
			assert.Equal(t, p.Spec.NodeName, results[0].Pool)
			assert.Empty(t, p.Spec.Containers[0].Resources.Limits[corev1.ResourceName(cfg.GPUPool.ResourceName)], "no extended resource is requested")
		}
	})

	t.Run("a replica no free device satisfies stays Pending with the scheduler's reason", func(t *testing.T) {
		// Two H100 nodes of two PCIe roots hold four such replicas; the fifth
		// has A100s free but its selector refuses them. (The quota, 24 devices,
		// admits its claim: this is the scheduler's refusal, not the quota's.)
		server := names.Inference("llama-70b")
		_, stderr, err := kubectl.Run(nil, "-n", ns, "scale", "deployment", server, "--replicas=5")
		require.NoError(t, err, stderr)
		defer func() {
			_, stderr, err := kubectl.Run(nil, "-n", ns, "scale", "deployment", server, "--replicas=2")
			require.NoError(t, err, stderr)
		}()
		var pending corev1.Pod
		require.Eventually(t, func() bool {
			var list corev1.PodList
			if kubectl.GetJSON(&list, "-n", ns, "pods", "-l", "app.kubernetes.io/instance="+server) != nil {
				return false
			}
			running := 0
			for _, p := range list.Items {
				if p.Status.Phase == corev1.PodRunning {
					running++
				}
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
						pending = p
					}
				}
			}
			return running == 4 && pending.Name != ""
		}, 90*time.Second, time.Second, "four replicas run and the fifth is unschedulable")
		msg := ""
		for _, c := range pending.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				msg = c.Message
			}
		}
		assert.Contains(t, msg, "cannot allocate all claims", "the DRA plugin's reason")
	})

	t.Run("the device quota refuses a claim beyond it", func(t *testing.T) {
		claim := fmt.Sprintf(`{"apiVersion":"resource.k8s.io/v1","kind":"ResourceClaim","metadata":{"name":"too-many","namespace":%q},
"spec":{"devices":{"requests":[{"name":"gpus","exactly":{"deviceClassName":%q,"count":%d}}]}}}`, ns, dra.MIGClass, cfg.Namespace.Quota.GPUs+1)
		_, stderr, err := kubectl.Run([]byte(claim), "create", "-f", "-")
		require.Error(t, err)
		assert.Contains(t, stderr, "exceeded quota")
		assert.Contains(t, stderr, dra.QuotaResource(dra.MIGClass))
	})
}

// runningPods are the Running pods of a model's server.
func runningPods(t *testing.T, ns, server string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "pods", "-l", "app.kubernetes.io/instance="+server))
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// allocation is what the scheduler allocated to the pod's one claim.
func allocation(t *testing.T, ns string, p corev1.Pod) []resourcev1.DeviceRequestAllocationResult {
	t.Helper()
	require.Len(t, p.Status.ResourceClaimStatuses, 1, "%s has its claim", p.Name)
	name := p.Status.ResourceClaimStatuses[0].ResourceClaimName
	require.NotNil(t, name)
	var claim resourcev1.ResourceClaim
	require.NoError(t, kubectl.GetJSON(&claim, "-n", ns, "resourceclaim", *name))
	require.NotNil(t, claim.Status.Allocation, "claim %s is allocated", *name)
	return claim.Status.Allocation.Devices.Results
}

// published indexes the devices of every ResourceSlice by pool and name.
type published map[string]dra.Device

func resourceSlices(t *testing.T) published {
	t.Helper()
	var list resourcev1.ResourceSliceList
	require.NoError(t, kubectl.GetJSON(&list, "resourceslices"))
	out := published{}
	for _, s := range list.Items {
		for _, d := range s.Spec.Devices {
			dev := dra.Device{Name: d.Name}
			str := func(k string) string {
				if a, ok := d.Attributes[resourcev1.QualifiedName(k)]; ok && a.StringValue != nil {
					return *a.StringValue
				}
				return ""
			}
			dev.Type, dev.ProductName, dev.Profile, dev.PCIeRoot = str("type"), str("productName"), str("profile"), str("resource.kubernetes.io/pcieRoot")
			out[s.Spec.Pool.Name+"/"+d.Name] = dev
		}
	}
	require.NotEmpty(t, out, "the stand-in driver published devices")
	return out
}

func (p published) device(t *testing.T, r resourcev1.DeviceRequestAllocationResult) dra.Device {
	t.Helper()
	assert.Equal(t, dra.Driver, r.Driver)
	d, ok := p[r.Pool+"/"+r.Device]
	require.True(t, ok, "allocated device %s/%s is published", r.Pool, r.Device)
	return d
}
