//go:build realnode

package realnode

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// selfReport is what every double answers on /debug/self: the facts of the
// process as the kernel sees them, not as the pod spec asks for them.
type selfReport struct {
	UID          int    `json:"uid"`
	GID          int    `json:"gid"`
	RootWritable bool   `json:"root_writable"`
	TmpWritable  bool   `json:"tmp_writable"`
	ShmBytes     int64  `json:"shm_bytes"`
	Home         string `json:"home"`
	Revision     string `json:"revision"`
	Pod          string `json:"pod"`
}

// report asks a running pod's double for its /debug/self, from the pod's
// own node (the kubelet's probes come from there too).
func report(t *testing.T, p corev1.Pod, port int32) selfReport {
	t.Helper()
	var r selfReport
	url := fmt.Sprintf("http://%s:%d/debug/self", p.Status.PodIP, port)
	require.NoError(t, getJSON(nodeNetns(p.Spec.NodeName), url, &r), "pod %s", p.Name)
	return r
}

// Every pod of the stack runs on a real node, under restricted, as uid 65532
// with a read-only root filesystem and a writable /tmp: the doubles refuse to
// run otherwise (exit 3), and the servers report what the kernel says.
func TestPodsRunUnderRestrictedOnRealNodes(t *testing.T) {
	cfg := deployStack(t)
	ns := cfg.Namespace.Name
	all := pods(t, ns, "")
	require.NotEmpty(t, all)
	kinds := map[string]bool{}
	for _, p := range all {
		t.Run(p.Name, func(t *testing.T) {
			assert.True(t, strings.HasPrefix(p.Spec.NodeName, "realnode-"), "on a real node, not %q", p.Spec.NodeName)
			for _, c := range p.Status.ContainerStatuses {
				assert.Zero(t, c.RestartCount, "container %s never restarted", c.Name)
				if c.State.Terminated != nil {
					assert.Zero(t, c.State.Terminated.ExitCode, "container %s: %s", c.Name, c.State.Terminated.Message)
				}
			}
			switch p.Status.Phase {
			case corev1.PodSucceeded:
				kinds[p.Labels["app.kubernetes.io/name"]] = true
				return
			case corev1.PodRunning:
				require.True(t, localcluster.PodReady(p), "Ready")
			default:
				t.Fatalf("phase %s", p.Status.Phase)
			}
			c := p.Spec.Containers[0]
			require.NotEmpty(t, c.Ports, "a served port")
			r := report(t, p, c.Ports[0].ContainerPort)
			kinds[p.Labels["app.kubernetes.io/name"]] = true
			assert.Equal(t, 65532, r.UID, "uid")
			assert.Equal(t, 65532, r.GID, "gid")
			assert.False(t, r.RootWritable, "the root filesystem is read-only")
			assert.True(t, r.TmpWritable, "/tmp is writable")
			assert.Equal(t, "/tmp", r.Home)
			for _, v := range p.Spec.Volumes {
				if v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory && v.EmptyDir.SizeLimit != nil {
					assert.Equal(t, v.EmptyDir.SizeLimit.Value(), r.ShmBytes, "/dev/shm is the memory emptyDir of shmSize")
				}
			}
		})
	}
	// Every role ran here: a server, its fetch run, the pipeline's two
	// stages and the checkpoint store.
	for _, role := range []string{"inference", "fetch", "ingestion", "transformation", "checkpoint"} {
		assert.True(t, kinds[role], "a %s pod ran on a real node (roles seen: %v)", role, kinds)
	}
}

// The weights are complete before a server starts, proven by the servers
// themselves: the double refuses to start without the fetch run's marker
// (exit 4), so a server that is Ready and never restarted read a complete
// revision, the one configured. A pod pointed at a directory without the
// marker shows the refusal is live. A revision change then rolls every
// server onto the new revision, each at its first start.
func TestServersStartOnlyOnCompleteWeights(t *testing.T) {
	cfg := deployStack(t)
	model := cfg.Serving.Models[0]
	for _, p := range servingPods(t, cfg) {
		assert.Zero(t, p.Status.ContainerStatuses[0].RestartCount, "%s never restarted", p.Name)
		assert.Equal(t, model.Source.Revision, report(t, p, int32(model.Port)).Revision, "%s serves the configured revision", p.Name)
	}

	pod := `apiVersion: v1
kind: Pod
metadata: {name: no-weights, namespace: outsider}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: server
    image: llm-platform.local/model-server:test
    imagePullPolicy: Never
    args: ["--model", "/tmp/weights-never-fetched", "--port", "8000"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes: [{name: tmp, emptyDir: {}}]`
	_, stderr, err := kubectl.Run([]byte(pod), "apply", "-f", "-")
	require.NoError(t, err, stderr)
	var p corev1.Pod
	waitFor(t, "the server without weights to exit", 2*time.Minute, func() bool {
		require.NoError(t, kubectl.GetJSON(&p, "-n", "outsider", "pod", "no-weights"))
		return p.Status.Phase == corev1.PodFailed
	})
	assert.Equal(t, int32(4), p.Status.ContainerStatuses[0].State.Terminated.ExitCode, "refused: the weights are not complete")

	// A new revision: its fetch run completes first, then the servers roll
	// and each new one starts on the new revision at its first try.
	const next = "89abcdef0123456789abcdef0123456789abcdef"
	dir := stackVariant(t, func(s string) string {
		return strings.Replace(s, "revision: "+model.Source.Revision+"\n", "revision: "+next+"\n", 1)
	})
	var out bytes.Buffer
	_, err = localcluster.Deploy(dir, stackName, kubectl, 5*time.Minute, &out)
	require.NoError(t, err, out.String())
	current = dir
	waitFor(t, "every server on the new revision", 3*time.Minute, func() bool {
		serving := servingPods(t, cfg)
		if len(serving) < model.Autoscaling.MinReplicas || len(pods(t, cfg.Namespace.Name, "app.kubernetes.io/instance="+names.Inference(model.Name))) != len(serving) {
			return false
		}
		for _, p := range serving {
			if report(t, p, int32(model.Port)).Revision != next {
				return false
			}
		}
		return true
	})
	for _, p := range servingPods(t, cfg) {
		assert.Zero(t, p.Status.ContainerStatuses[0].RestartCount, "%s started on complete weights at its first try", p.Name)
	}
}

// The startup probe the stack derives from the load budget is the one the
// kubelet runs: a server that loads for longer than modelLoadBudgetSeconds
// is killed by it and never becomes Ready, while the old pods keep serving;
// one that loads within the budget is not.
func TestStartupProbeGivesUpAfterTheLoadBudget(t *testing.T) {
	cfg := deployStack(t)
	model := cfg.Serving.Models[0]
	ns, name := cfg.Namespace.Name, names.Inference(model.Name)
	loadFor := func(seconds int) string {
		return stackVariant(t, func(s string) string {
			return strings.Replace(s, `"--load-seconds", "3"`, fmt.Sprintf(`"--load-seconds", "%d"`, seconds), 1)
		})
	}

	// First the other side: a server that needs all but two probe periods
	// of its budget is Ready at its first start.
	inTime := model.ModelLoadBudgetSeconds - 2*model.LivenessPeriodSeconds
	var out bytes.Buffer
	_, err := localcluster.Deploy(loadFor(inTime), stackName, kubectl, 5*time.Minute, &out)
	require.NoError(t, err, out.String())
	arg := fmt.Sprint(inTime)
	waitFor(t, "every server to load within the budget", 3*time.Minute, func() bool {
		all := pods(t, ns, "app.kubernetes.io/instance="+name)
		for _, p := range all {
			if !slices.Contains(p.Spec.Containers[0].Args, arg) || !localcluster.PodReady(p) || p.DeletionTimestamp != nil {
				return false
			}
		}
		return len(all) >= model.Autoscaling.MinReplicas
	})
	for _, p := range servingPods(t, cfg) {
		assert.Zero(t, p.Status.ContainerStatuses[0].RestartCount, "%s loaded in %d s of a %d s budget and was not killed", p.Name, inTime, model.ModelLoadBudgetSeconds)
	}

	slow := model.ModelLoadBudgetSeconds + 3*model.LivenessPeriodSeconds + 30
	dir := stackVariant(t, func(s string) string {
		return strings.Replace(s, `"--load-seconds", "3"`, fmt.Sprintf(`"--load-seconds", "%d"`, slow), 1)
	})
	before := servingPods(t, cfg)
	require.NoError(t, applyOnly(dir))
	defer func() {
		// Back to the stack as it was, converged, for the tests after this one.
		var out bytes.Buffer
		_, err := localcluster.Deploy(currentStack(), stackName, kubectl, 5*time.Minute, &out)
		require.NoError(t, err, out.String())
		waitFor(t, "the model back at its replicas", 2*time.Minute, func() bool {
			return len(servingPods(t, cfg)) >= model.Autoscaling.MinReplicas
		})
	}()

	start := time.Now()
	var killed corev1.Pod
	waitFor(t, "the kubelet to kill the slow server", time.Duration(model.ModelLoadBudgetSeconds+60)*time.Second, func() bool {
		for _, p := range pods(t, ns, "app.kubernetes.io/instance="+name) {
			for _, c := range p.Status.ContainerStatuses {
				if c.RestartCount > 0 {
					killed = p
					return true
				}
			}
		}
		return false
	})
	took := time.Since(start)
	t.Logf("the slow server was restarted after %s (budget %d s)", took.Round(time.Second), model.ModelLoadBudgetSeconds)
	assert.False(t, localcluster.PodReady(killed), "it never became Ready")
	// Not before the budget (a probe too short would kill a model that is
	// still loading in time), and soon after it.
	assert.GreaterOrEqual(t, took, time.Duration(model.ModelLoadBudgetSeconds-model.LivenessPeriodSeconds)*time.Second, "not before the load budget")
	assert.Less(t, took, time.Duration(model.ModelLoadBudgetSeconds+model.ImagePullBudgetSeconds+45)*time.Second, "within the budget (plus the container's start)")
	var events corev1.EventList
	require.NoError(t, kubectl.GetJSON(&events, "-n", ns, "events", "--field-selector", "involvedObject.name="+killed.Name))
	var probeFailed bool
	for _, e := range events.Items {
		probeFailed = probeFailed || strings.Contains(e.Message, "Startup probe failed")
	}
	assert.True(t, probeFailed, "the startup probe failed it")
	assert.GreaterOrEqual(t, len(servingPods(t, cfg)), len(before)-1, "the old pods keep serving (at most maxUnavailable down)")
}
