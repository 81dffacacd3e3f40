//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
	"llm-platform/internal/render"
	"llm-platform/internal/stack"
)

// The fault scenarios run on stacks of their own (test/e2e/testdata), each in
// its own namespace and GPU pool, so they never disturb dev and prod.
const neverReady = "e2e.llm-platform.dev/never-ready" // kwok keeps such pods Pending

var (
	testdata = filepath.Join(root, "test", "e2e", "testdata")
	faults   config.Config // spare GPU node
	nospare  config.Config // exactly enough GPUs
	llama    = names.Inference("llama")

	deployMu sync.Mutex
	deployed = map[string]error{}
)

// deployTestStack deploys test/e2e/testdata/Pulumi.<name>.yaml once per run,
// with the nodes its GPU pool needs, and returns its configuration.
func deployTestStack(t *testing.T, name string) config.Config {
	t.Helper()
	cfg, err := localcluster.LoadConfig(testdata, name)
	require.NoError(t, err)
	deployMu.Lock()
	defer deployMu.Unlock()
	err, done := deployed[name]
	if !done {
		err = localcluster.PrepareNodes(kubectl, cfg)
		if err == nil {
			var out bytes.Buffer
			if _, err = localcluster.Deploy(testdata, name, kubectl, 3*time.Minute, &out); err != nil {
				err = fmt.Errorf("%w\n%s", err, out.String())
			}
		}
		deployed[name] = err
	}
	require.NoError(t, err, "deploy test stack %s", name)
	return cfg
}

func deployFaultStacks(t *testing.T) {
	t.Helper()
	faults = deployTestStack(t, "faults")
	nospare = deployTestStack(t, "nospare")
}

func deployment(t *testing.T, ns, name string) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	require.NoError(t, kubectl.GetJSON(&d, "-n", ns, "deployment", name))
	return d
}

func podsOf(t *testing.T, ns, instance string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	require.NoError(t, kubectl.GetJSON(&pods, "-n", ns, "pods", "-l", "app.kubernetes.io/instance="+instance))
	return pods.Items
}

// pollDeployment hands the Deployment to observe four times a second, in the
// background, until the returned stop is called.
func pollDeployment(ns, name string, observe func(appsv1.Deployment)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			var d appsv1.Deployment
			if kubectl.GetJSON(&d, "-n", ns, "deployment", name) == nil {
				observe(d)
			}
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }
}

// watchAvailable records the lowest availableReplicas of a Deployment until stop is called.
func watchAvailable(ns, name string) (stop func() int32) {
	lowest := atomic.Int32{}
	lowest.Store(1 << 30)
	stopPolling := pollDeployment(ns, name, func(d appsv1.Deployment) {
		if d.Status.AvailableReplicas < lowest.Load() {
			lowest.Store(d.Status.AvailableReplicas)
		}
	})
	return func() int32 { stopPolling(); return lowest.Load() }
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func converged(t *testing.T, cfg config.Config) {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, localcluster.Wait(kubectl, cfg.Namespace.Name, localcluster.Checks(kubectl, cfg), 2*time.Minute, &out), out.String())
}

func gpuNodes(t *testing.T, cfg config.Config) []string {
	t.Helper()
	var nodes corev1.NodeList
	require.NoError(t, kubectl.GetJSON(&nodes, "nodes", "-l", cfg.GPUPool.NodeLabelKey+"="+cfg.GPUPool.NodeLabelValue))
	var out []string
	for _, n := range nodes.Items {
		out = append(out, n.Name)
	}
	return out
}

// evict asks the Eviction API to evict a pod, as a drain does.
func evict(ns, pod string) error {
	body := fmt.Sprintf(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":%q,"namespace":%q}}`, pod, ns)
	_, _, err := kubectl.Run([]byte(body), "create", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/eviction", ns, pod), "-f", "-")
	return err
}

// Scenario 1: drain a GPU node hosting an inference pod while a spare GPU node exists.
func TestFaultDrainWithSpareNode(t *testing.T) {
	deployFaultStacks(t)
	ns := faults.Namespace.Name
	node := podsOf(t, ns, llama)[0].Spec.NodeName
	stop := watchAvailable(ns, llama)
	_, stderr, err := kubectl.Run(nil, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s")
	lowest := stop()
	defer kubectl.Run(nil, "uncordon", node)
	require.NoError(t, err, stderr)
	waitFor(t, "the evicted replica to come back elsewhere", time.Minute, func() bool {
		return deployment(t, ns, llama).Status.AvailableReplicas == 3
	})
	for _, p := range podsOf(t, ns, llama) {
		assert.NotEqual(t, node, p.Spec.NodeName, "no pod stays on the drained node")
	}
	assert.GreaterOrEqual(t, lowest, int32(3-1), "Available never drops below replicas - maxUnavailable")
}

// Scenario 4: a rollout to an image that never becomes Ready keeps the old pods
// serving and reports ProgressDeadlineExceeded within the derived deadline.
// Scenarios 2 and 3 then run while that rollout is stuck.
func TestFaultStuckRolloutAndExhaustedBudget(t *testing.T) {
	deployFaultStacks(t)
	ns := faults.Namespace.Name
	plan, err := stack.ModelTimings(faults, faults.Serving.Models[0])
	require.NoError(t, err)
	deadline := plan.ProgressDeadlineSeconds
	require.Equal(t, int32(deadline), *deployment(t, ns, llama).Spec.ProgressDeadlineSeconds)

	stop := watchAvailable(ns, llama)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"labels":{%q:"true"}},"spec":{"containers":[{"name":"server","image":"vllm/vllm-openai:never-ready"}]}}}}`, neverReady)
	_, _, err = kubectl.Run(nil, "-n", ns, "patch", "deployment", llama, "-p", patch)
	require.NoError(t, err)
	start := time.Now()
	defer func() {
		_, _, _ = kubectl.Run(nil, "-n", ns, "rollout", "undo", "deployment/"+llama)
		converged(t, faults)
	}()
	waitFor(t, "ProgressDeadlineExceeded", time.Duration(deadline+45)*time.Second, func() bool {
		for _, c := range deployment(t, ns, llama).Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
				return true
			}
		}
		return false
	})
	elapsed := time.Since(start)
	assert.Less(t, elapsed, time.Duration(deadline+45)*time.Second, "reported within the deadline derived from the model-load budget (%d s)", deadline)
	assert.Equal(t, int32(3), stop(), "the old pods kept serving throughout")

	var unready, healthy []string
	for _, p := range podsOf(t, ns, llama) {
		if localcluster.PodReady(p) {
			healthy = append(healthy, p.Name)
		} else {
			unready = append(unready, p.Name)
		}
	}
	require.Len(t, healthy, 3)
	require.Len(t, unready, 1)

	// Exhaust the budget: no room anywhere, then one healthy pod evicted.
	nodes := gpuNodes(t, faults)
	for _, n := range nodes {
		_, _, err := kubectl.Run(nil, "cordon", n)
		require.NoError(t, err)
	}
	defer func() {
		for _, n := range nodes {
			_, _, _ = kubectl.Run(nil, "uncordon", n)
		}
	}()
	require.NoError(t, evict(ns, healthy[0]), "the budget allows one disruption")

	// Scenario 2: the budget is exhausted: eviction refused, drain fails, no pod lost.
	err = evict(ns, healthy[1])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "disruption budget")
	assert.Contains(t, err.Error(), "TooManyRequests", "the Eviction API answers 429")
	var victim corev1.Pod
	require.NoError(t, kubectl.GetJSON(&victim, "-n", ns, "pod", healthy[2]))
	_, _, err = kubectl.Run(nil, "drain", victim.Spec.NodeName, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=8s")
	assert.Error(t, err, "a drain with a timeout fails rather than break the budget")
	for _, name := range healthy[1:] {
		var p corev1.Pod
		require.NoError(t, kubectl.GetJSON(&p, "-n", ns, "pod", name), "pod %s was not lost", name)
		assert.Nil(t, p.DeletionTimestamp, "pod %s is not being deleted", name)
	}

	// Scenario 3: a pod that is not Ready can still be evicted (AlwaysAllow),
	// even with the budget at zero.
	assert.NoError(t, evict(ns, unready[0]))
}

// Scenario 5: a rolling update completes with and without spare GPU capacity,
// and with a spare GPU Available never drops.
func TestFaultRollingUpdates(t *testing.T) {
	deployFaultStacks(t)
	for _, tc := range []struct {
		cfg      config.Config
		replicas int32
		lowest   int32
	}{{faults, 3, 3}, {nospare, 2, 1}} {
		ns := tc.cfg.Namespace.Name
		t.Run(ns, func(t *testing.T) {
			converged(t, tc.cfg)
			stop := watchAvailable(ns, llama)
			_, _, err := kubectl.Run(nil, "-n", ns, "set", "image", "deployment/"+llama, "server=vllm/vllm-openai:v0.6.4")
			require.NoError(t, err)
			_, stderr, err := kubectl.Run(nil, "-n", ns, "rollout", "status", "deployment/"+llama, "--timeout=120s")
			lowest := stop()
			require.NoError(t, err, "the rollout completes: %s", stderr)
			assert.GreaterOrEqual(t, lowest, tc.lowest)
			d := deployment(t, ns, llama)
			assert.Equal(t, tc.replicas, d.Status.UpdatedReplicas)
		})
	}
}

func checkpointClaims(t *testing.T, ns string, replicas int) map[string]string {
	t.Helper()
	volumes := map[string]string{}
	for i := range replicas {
		var pvc corev1.PersistentVolumeClaim
		require.NoError(t, kubectl.GetJSON(&pvc, "-n", ns, "pvc", names.CheckpointClaimOf(i)))
		require.Equal(t, corev1.ClaimBound, pvc.Status.Phase)
		volumes[pvc.Name] = pvc.Spec.VolumeName
	}
	return volumes
}

// Scenario 6: a deleted checkpoint pod returns with the same name, claim and volume.
func TestFaultCheckpointPodReturnsWithItsVolume(t *testing.T) {
	deployFaultStacks(t)
	ns := faults.Namespace.Name
	before := checkpointClaims(t, ns, 3)
	var old corev1.Pod
	require.NoError(t, kubectl.GetJSON(&old, "-n", ns, "pod", "checkpoint-1"))
	_, _, err := kubectl.Run(nil, "-n", ns, "delete", "pod", "checkpoint-1", "--wait=false")
	require.NoError(t, err)
	var back corev1.Pod
	waitFor(t, "checkpoint-1 to return", time.Minute, func() bool {
		return kubectl.GetJSON(&back, "-n", ns, "pod", "checkpoint-1") == nil && back.UID != old.UID && localcluster.PodReady(back)
	})
	var claim string
	for _, v := range back.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	assert.Equal(t, names.CheckpointClaimOf(1), claim)
	assert.Equal(t, before, checkpointClaims(t, ns, 3), "the same volumes stay bound")
}

// Scenario 7: scaling down and up keeps the claims and re-binds the same volumes.
func TestFaultCheckpointScaleDownAndUp(t *testing.T) {
	deployFaultStacks(t)
	ns := faults.Namespace.Name
	before := checkpointClaims(t, ns, 3)
	_, _, err := kubectl.Run(nil, "-n", ns, "scale", "statefulset", names.Checkpoint, "--replicas=1")
	require.NoError(t, err)
	waitFor(t, "scale-down", time.Minute, func() bool { return len(podsOf(t, ns, names.Checkpoint)) == 1 })
	assert.Equal(t, before, checkpointClaims(t, ns, 3), "claims of removed replicas are retained")
	_, _, err = kubectl.Run(nil, "-n", ns, "scale", "statefulset", names.Checkpoint, "--replicas=3")
	require.NoError(t, err)
	converged(t, faults)
	assert.Equal(t, before, checkpointClaims(t, ns, 3), "the same volumes re-bind")
}

// Scenario 8: with concurrencyPolicy Forbid, a run that is still active when
// the next one is due means no second run.
func TestFaultCronForbidsConcurrentRuns(t *testing.T) {
	deployFaultStacks(t)
	ns := faults.Namespace.Name
	patch := fmt.Sprintf(`{"spec":{"schedule":"* * * * *","suspend":false,"jobTemplate":{"spec":{"template":{"metadata":{"labels":{%q:"true"}}}}}}}`, neverReady)
	_, _, err := kubectl.Run(nil, "-n", ns, "patch", "cronjob", names.Cron, "-p", patch)
	require.NoError(t, err)
	defer kubectl.Run(nil, "-n", ns, "patch", "cronjob", names.Cron, "-p", `{"spec":{"suspend":true}}`)
	jobs := func() []batchv1.Job {
		var list batchv1.JobList
		require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "jobs"))
		var out []batchv1.Job
		for _, j := range list.Items {
			if slices.ContainsFunc(j.OwnerReferences, func(o metav1.OwnerReference) bool { return o.Kind == "CronJob" }) {
				out = append(out, j)
			}
		}
		return out
	}
	waitFor(t, "the first scheduled run", 75*time.Second, func() bool { return len(jobs()) == 1 })
	first := jobs()[0].CreationTimestamp.Time
	// Wait past the next minute boundary, when a second run would be due.
	time.Sleep(time.Until(first.Truncate(time.Minute).Add(time.Minute + 20*time.Second)))
	running := jobs()
	require.Len(t, running, 1, "Forbid: no second run while the first is active")
	assert.Zero(t, running[0].Status.Succeeded)
	var cj batchv1.CronJob
	require.NoError(t, kubectl.GetJSON(&cj, "-n", ns, "cronjob", names.Cron))
	assert.Len(t, cj.Status.Active, 1)
}

// Scenario 9: teardown as `pulumi destroy` does it: every object deleted but
// those the stack retains. The claims (and the volumes behind them) survive.
func TestFaultTeardownKeepsData(t *testing.T) {
	deployFaultStacks(t)
	ns := nospare.Namespace.Name
	objs, err := render.Objects(testdata, "nospare")
	require.NoError(t, err)
	claims := map[string]string{}
	var list corev1.PersistentVolumeClaimList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "pvc"))
	for _, c := range list.Items {
		claims[c.Name] = c.Spec.VolumeName
	}
	dataClaim := names.PipelineData(nospare.Pipeline.Storage.StorageClass, nospare.Pipeline.Storage.AccessMode)
	cache := nospare.Serving.Models[0].ModelCache
	cacheClaim := names.ModelCache("llama", cache.StorageClass, cache.AccessMode)
	require.Contains(t, claims, dataClaim)
	require.Contains(t, claims, cacheClaim)
	require.Contains(t, claims, names.CheckpointClaimOf(0))

	var kept []string
	for _, o := range slices.Backward(objs) { // dependents first, as the engine does
		if o.Resource.RetainOnDelete {
			kept = append(kept, o.Kind()+"/"+o.Name())
			continue
		}
		args := []string{"delete", strings.ToLower(o.Kind()), o.Name(), "--wait=true", "--timeout=60s"}
		if o.Namespace() != "" {
			args = append(args, "-n", o.Namespace())
		}
		_, _, err := kubectl.Run(nil, args...)
		require.NoError(t, err, "%s/%s", o.Kind(), o.Name())
	}
	assert.ElementsMatch(t, []string{"Namespace/" + ns, "PersistentVolumeClaim/" + dataClaim, "PersistentVolumeClaim/" + cacheClaim}, kept)
	waitFor(t, "the workloads' pods to go", time.Minute, func() bool {
		var pods corev1.PodList
		return kubectl.GetJSON(&pods, "-n", ns, "pods") == nil && len(pods.Items) == 0
	})
	var after corev1.PersistentVolumeClaimList
	require.NoError(t, kubectl.GetJSON(&after, "-n", ns, "pvc"))
	left := map[string]string{}
	for _, c := range after.Items {
		assert.Equal(t, corev1.ClaimBound, c.Status.Phase, c.Name)
		left[c.Name] = c.Spec.VolumeName
	}
	assert.Equal(t, claims, left, "every claim, the checkpoint claims included, still holds its volume")
}
