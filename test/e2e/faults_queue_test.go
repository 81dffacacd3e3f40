//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
	"llm-platform/internal/render"
)

// queueWindowSeconds is the scale-down stabilization window the test gives
// prod's model, in place of prod's 300 s.
const queueWindowSeconds = 30

// Scenario 11: prod's inference HPA, exactly as prod configures it (the Pods
// metric vllm_num_requests_waiting, its target, its behavior) but with a short
// scale-down window, scales up when the queue depth of the running pods rises
// and back down after the window once it falls. The metric is served through
// the custom metrics API, as prometheus-adapter would serve it from Prometheus.
func TestFaultInferenceScalesOnQueueDepth(t *testing.T) {
	require.NoError(t, cluster("custom-metrics"))
	dir, stack := queueStack(t)
	cfg, err := localcluster.LoadConfig(dir, stack)
	require.NoError(t, err)
	model := cfg.Serving.Models[0]
	require.Equal(t, "vllm_num_requests_waiting", model.Autoscaling.MetricName, "prod's own metric")
	ns, name := cfg.Namespace.Name, names.Inference(model.Name)
	minReplicas, maxReplicas := int32(model.Autoscaling.MinReplicas), int32(model.Autoscaling.MaxReplicas)

	require.NoError(t, localcluster.PrepareNodes(kubectl, cfg))
	var out bytes.Buffer
	_, err = localcluster.Deploy(dir, stack, kubectl, 3*time.Minute, &out)
	require.NoError(t, err, out.String())

	// The HPA on the cluster is prod's, but for the window.
	prodHPA, queueHPA := renderedHPA(t, root, "prod", name), renderedHPA(t, dir, stack, name)
	assert.Equal(t, prodHPA.Spec.Metrics, queueHPA.Spec.Metrics)
	assert.Equal(t, prodHPA.Spec.Behavior.ScaleUp, queueHPA.Spec.Behavior.ScaleUp)
	assert.Equal(t, prodHPA.Spec.Behavior.ScaleDown.Policies, queueHPA.Spec.Behavior.ScaleDown.Policies)
	assert.Equal(t, int32(queueWindowSeconds), *queueHPA.Spec.Behavior.ScaleDown.StabilizationWindowSeconds)

	queue := localcluster.WritePodMetric(kubectl, ns, name, model.Autoscaling.MetricName, "0")
	defer queue.Stop()
	var hpa autoscalingv2.HorizontalPodAutoscaler
	waitFor(t, "the HPA to read the queue depth through custom.metrics.k8s.io", 2*time.Minute, func() bool {
		require.NoError(t, kubectl.GetJSON(&hpa, "-n", ns, "hpa", name))
		return podsMetric(hpa) != "" && hpa.Status.CurrentReplicas == minReplicas
	})
	assert.Equal(t, minReplicas, hpa.Status.DesiredReplicas, "an empty queue holds the minimum")

	// Four times the target waiting on every replica: the HPA asks for
	// more than the maximum and the scale-up policy lets it double at once.
	watch := watchReplicas(ns, name)
	rose := time.Now()
	target := resource.MustParse(string(model.Autoscaling.TargetAverageValue))
	queue.Set(fmt.Sprint(4 * target.Value()))
	waitFor(t, "the Deployment to reach maxReplicas, every replica Ready", 3*time.Minute, func() bool {
		return watch.Latest() == maxReplicas && deployment(t, ns, name).Status.ReadyReplicas == maxReplicas
	})
	readyAfter := time.Since(rose)
	t.Logf("queue depth rose: all %d replicas Ready %s after the rise", maxReplicas, readyAfter.Round(time.Second))

	// The queue drains: nothing moves before the window has passed, then
	// the HPA removes what the scale-down policy allows.
	fell := time.Now()
	queue.Set("0")
	waitFor(t, "the first scale-down step", time.Duration(queueWindowSeconds)*time.Second+2*time.Minute, func() bool {
		return watch.Latest() < maxReplicas && watch.Latest() != 0
	})
	history := watch.Stop()
	t.Logf("replicas: %v (queue rose at %s, fell at %s)", history, rose.Format("15:04:05.0"), fell.Format("15:04:05.0"))
	require.Equal(t, minReplicas, history[0].replicas)
	assert.Less(t, history[1].at.Sub(rose), 90*time.Second, "the HPA reacts to the queue within 90 s")
	first := history[len(history)-1]
	assert.GreaterOrEqual(t, first.at.Sub(fell), time.Duration(queueWindowSeconds)*time.Second-windowSlack, "not before the stabilization window")
	assert.GreaterOrEqual(t, first.replicas, scaleDownFloor(queueHPA, history, first.at), "no more than the policy allows")
}

// scaleDownFloor is the fewest replicas the scale-down rules allow at time
// at, as the HPA controller computes it: each policy counts from the
// replicas in force one of its periods earlier, scale-ups included, so a
// scale-down within a period of a scale-up may undo it in one step (prod's
// 300 s window is longer than its 120 s period, so there it never can).
func scaleDownFloor(hpa autoscalingv2.HorizontalPodAutoscaler, history []replicaStep, at time.Time) int32 {
	rules := hpa.Spec.Behavior.ScaleDown
	floor := *hpa.Spec.MinReplicas
	for _, p := range rules.Policies {
		from := replicasAt(history, at.Add(-time.Duration(p.PeriodSeconds)*time.Second+windowSlack))
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			floor = max(floor, from-p.Value)
		case autoscalingv2.PercentScalingPolicy:
			floor = max(floor, int32(math.Ceil(float64(from)*(1-float64(p.Value)/100))))
		}
	}
	return floor
}

// queueStack writes prod's stack file, in a namespace of its own and with
// the scale-down window shortened, and returns its directory and name.
func queueStack(t *testing.T) (dir, stack string) {
	t.Helper()
	prod, err := os.ReadFile(filepath.Join(root, "Pulumi.prod.yaml"))
	require.NoError(t, err)
	text := strings.Replace(string(prod), "    name: llm-platform\n", "    name: llm-platform-queue\n", 1)
	// Nodes of its own: the pool's nodes are named after its label, and prod's
	// own stack runs on them already.
	text = strings.Replace(text, "    nodeLabelValue: gpu-a100\n", "    nodeLabelValue: gpu-a100-queue\n", 1)
	text = strings.Replace(text, "          targetAverageValue: \"5\"\n",
		fmt.Sprintf("          targetAverageValue: \"5\"\n          scaleDownStabilizationSeconds: %d\n", queueWindowSeconds), 1)
	require.Equal(t, 3, strings.Count(text, "llm-platform-queue\n")+strings.Count(text, "gpu-a100-queue\n")+strings.Count(text, "scaleDownStabilizationSeconds"), "every edit applied")
	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.queue.yaml"), []byte(text), 0o644))
	return dir, "queue"
}

func renderedHPA(t *testing.T, dir, stack, name string) autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	objs, err := render.Objects(dir, stack)
	require.NoError(t, err)
	for _, o := range objs {
		if o.Kind() == "HorizontalPodAutoscaler" && o.Name() == name {
			var hpa autoscalingv2.HorizontalPodAutoscaler
			require.NoError(t, o.Decode(&hpa))
			require.NotNil(t, hpa.Spec.Behavior)
			return hpa
		}
	}
	t.Fatalf("stack %s renders no HPA %s", stack, name)
	return autoscalingv2.HorizontalPodAutoscaler{}
}

func podsMetric(hpa autoscalingv2.HorizontalPodAutoscaler) string {
	for _, m := range hpa.Status.CurrentMetrics {
		if m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil {
			return m.Pods.Current.AverageValue.String()
		}
	}
	return ""
}

// A model on driver keda, scaled to zero when idle, renders a ScaledObject
// the API server admits strictly against KEDA's own CRD (v2.18.0, applied by
// hack/cluster.sh), beside prod's PodMonitors and PrometheusRule against
// prometheus-operator's. The KEDA operator itself does not run here.
func TestKEDAStackIsAdmittedStrictly(t *testing.T) {
	prod, err := os.ReadFile(filepath.Join(root, "Pulumi.prod.yaml"))
	require.NoError(t, err)
	text := strings.Replace(string(prod), "    name: llm-platform\n", "    name: llm-platform-keda\n", 1)
	text = strings.Replace(text, "          minReplicas: 3\n", `          minReplicas: 0
          driver: keda
          prometheusAddress: http://prometheus-operated.monitoring.svc:9090
          query: sum(gateway_pending_requests{model="llama-3-70b"})
`, 1)
	require.Contains(t, text, "driver: keda")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.keda.yaml"), []byte(text), 0o644))

	objs, err := render.Objects(dir, "keda")
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.Kind()]++
	}
	require.Equal(t, 1, kinds["ScaledObject"])
	require.Equal(t, 1, kinds["PrometheusRule"])
	manifests, err := render.Manifests(objs)
	require.NoError(t, err)
	res, err := kubectl.Apply(manifests)
	require.NoError(t, err, "strict server-side apply")
	assert.Empty(t, res.Warnings, "the API server warned")
	var so struct {
		Spec struct {
			MinReplicaCount *int32 `json:"minReplicaCount"`
		} `json:"spec"`
	}
	require.NoError(t, kubectl.GetJSON(&so, "-n", "llm-platform-keda", "scaledobject", "inference-llama-3-70b"))
	require.NotNil(t, so.Spec.MinReplicaCount)
	assert.Equal(t, int32(0), *so.Spec.MinReplicaCount, "scale to zero, as stored by the API server")
}
