//go:build realnode

package realnode

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/config"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
	"llm-platform/internal/render"
)

// current is the folder of the stack file last deployed: a scenario that
// changes the stack (a new image) leaves it changed for the next.
var current = testdata

func currentStack() string { return current }

// stackVariant writes the current stack file, changed by edit, into a new
// folder and returns it.
func stackVariant(t *testing.T, edit func(string) string) string {
	t.Helper()
	file := "Pulumi." + stackName + ".yaml"
	text, err := os.ReadFile(filepath.Join(current, file))
	require.NoError(t, err)
	changed := edit(string(text))
	require.NotEqual(t, string(text), changed, "the variant changes the stack")
	// Not t.TempDir: the variant stays the current stack after its test.
	dir, err := os.MkdirTemp(variants, "stack-")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(changed), 0o644))
	return dir
}

// applyOnly applies a stack's render without waiting for it to converge.
func applyOnly(dir string) error {
	objs, err := render.Objects(dir, stackName)
	if err != nil {
		return err
	}
	manifests, err := render.Manifests(objs)
	if err != nil {
		return err
	}
	_, err = kubectl.Apply(manifests)
	return err
}

// serviceURL is the model's completions endpoint through its Service, and
// the network namespace of the client pod in llm-gateway (the namespace the
// stack's inferenceClients name) that sends the requests: the client node's
// kube-proxy routes them, and the model's policies admit them.
func serviceURL(t *testing.T, cfg config.Config) (string, string) {
	t.Helper()
	model := cfg.Serving.Models[0]
	var svc corev1.Service
	require.NoError(t, kubectl.GetJSON(&svc, "-n", cfg.Namespace.Name, "service", names.Inference(model.Name)))
	var client corev1.Pod
	require.NoError(t, kubectl.GetJSON(&client, "-n", "llm-gateway", "pod", "client"))
	from, err := podNetns(client.Status.PodIP)
	require.NoError(t, err)
	return fmt.Sprintf("http://%s:%d/v1/completions", svc.Spec.ClusterIP, model.Port), from
}

// underLoad runs change while a steady stream of requests goes to the model
// through its Service, keeps the stream on for settle afterwards, and asserts
// that not one request failed.
func underLoad(t *testing.T, cfg config.Config, scenario string, settle time.Duration, change func()) localcluster.LoadResult {
	t.Helper()
	url, from := serviceURL(t, cfg)
	client := clientFrom(from, 30*time.Second)
	waitFor(t, "the model to answer through its Service", time.Minute, func() bool {
		_, err := send(client, url, []byte(`{"prompt":"warm-up"}`))
		return err == nil
	})
	l := startLoad(scenario, client, url)
	defer l.Stop() // a change that fails its test must not leave the stream running
	time.Sleep(3 * time.Second)
	change()
	time.Sleep(settle)
	require.False(t, l.TimedOut(), "the change outlasted the stream (%s): its end ran without load", maxLoad)
	r := l.Stop()
	record(t, r)
	assert.Greater(t, r.Sent, loadRate*5, "a stream, not a handful")
	assert.Zero(t, r.Failed, "no request lost: %v", r.Errors)
	return r
}

// No request is lost while the model's image rolls, while the node of one of
// its pods is drained, or while its HPA scales it down: the preStop sleep
// keeps a pod serving until kube-proxy has stopped sending it connections,
// and the grace period lets it finish what it has.
func TestNoRequestLost(t *testing.T) {
	cfg := deployStack(t)
	model := cfg.Serving.Models[0]
	ns, name := cfg.Namespace.Name, names.Inference(model.Name)
	queue := localcluster.WritePodMetric(kubectl, ns, name, model.Autoscaling.MetricName, "0")
	defer queue.Stop()
	grace := time.Duration(model.Drain.PreStopSleepSeconds+model.Drain.DrainSeconds) * time.Second

	t.Run("rollout of a new image", func(t *testing.T) {
		dir := stackVariant(t, func(s string) string {
			return strings.Replace(s, "image: llm-platform.local/model-server:test\n", "image: llm-platform.local/model-server:test-v2\n", 1)
		})
		before := servingPods(t, cfg)
		underLoad(t, cfg, "rollout", grace, func() {
			var out bytes.Buffer
			_, err := localcluster.Deploy(dir, stackName, kubectl, 5*time.Minute, &out)
			require.NoError(t, err, out.String())
			current = dir
			waitFor(t, "every old pod to be gone", 2*grace+time.Minute, func() bool {
				for _, p := range pods(t, ns, "app.kubernetes.io/instance="+name) {
					if p.Spec.Containers[0].Image != "llm-platform.local/model-server:test-v2" {
						return false
					}
				}
				return true
			})
		})
		for _, p := range servingPods(t, cfg) {
			for _, old := range before {
				assert.NotEqual(t, old.Name, p.Name, "every pod was replaced")
			}
		}
	})

	t.Run("drain of a node serving the model", func(t *testing.T) {
		serving := servingPods(t, cfg)
		require.NotEmpty(t, serving)
		node := serving[0].Spec.NodeName
		defer func() {
			_, stderr, err := kubectl.Run(nil, "uncordon", node)
			assert.NoError(t, err, stderr)
		}()
		underLoad(t, cfg, "drain", 5*time.Second, func() {
			_, stderr, err := kubectl.Run(nil, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=5m")
			require.NoError(t, err, "kubectl drain %s: %s", node, stderr)
			waitFor(t, "the model back at its replicas elsewhere", 3*time.Minute, func() bool {
				now := servingPods(t, cfg)
				for _, p := range now {
					if p.Spec.NodeName == node {
						return false
					}
				}
				return len(now) >= model.Autoscaling.MinReplicas
			})
		})
	})

	t.Run("HPA scale-down", func(t *testing.T) {
		target := resource.MustParse(string(model.Autoscaling.TargetAverageValue))
		queue.Set(fmt.Sprint(4 * target.Value()))
		maxReplicas := model.Autoscaling.MaxReplicas
		waitFor(t, "the HPA to scale the model up to its maximum", 3*time.Minute, func() bool {
			return len(servingPods(t, cfg)) == maxReplicas
		})
		underLoad(t, cfg, "scale-down", 3*time.Second, func() {
			queue.Set("0")
			waitFor(t, "the HPA to scale down and the removed pods to be gone", time.Duration(model.Autoscaling.ScaleDownStabilizationSeconds)*time.Second+3*time.Minute, func() bool {
				return len(pods(t, ns, "app.kubernetes.io/instance="+name)) == model.Autoscaling.MinReplicas
			})
		})
	})
}
