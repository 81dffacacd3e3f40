//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// kwok reports a pod's CPU usage from this annotation to the metrics-server
// that hack/cluster.sh runs beside the control plane.
const usageCPU = "kwok.x-k8s.io/usage-cpu"

// Scenario 10: the inference HPA scales up under simulated load, step by step
// as its behavior policy allows, to its maximum, and every new replica gets a
// GPU and becomes Ready.
func TestFaultAutoscalerScalesUpUnderLoad(t *testing.T) {
	cfg := deployTestStack(t, "autoscale")
	ns := cfg.Namespace.Name
	model := cfg.Serving.Models[0]
	name := names.Inference(model.Name)
	minReplicas, maxReplicas := int32(model.Autoscaling.MinReplicas), int32(model.Autoscaling.MaxReplicas)

	var hpa autoscalingv2.HorizontalPodAutoscaler
	waitFor(t, "the HPA to read CPU utilization from metrics-server", 3*time.Minute, func() bool {
		require.NoError(t, kubectl.GetJSON(&hpa, "-n", ns, "hpa", name))
		return cpuUtilization(hpa) != nil && hpa.Status.CurrentReplicas == minReplicas
	})
	assert.Equal(t, minReplicas, hpa.Status.DesiredReplicas, "idle, it holds the minimum (CPU at %d%%)", *cpuUtilization(hpa))
	// The policy to hold it to is the one the stack renders, and the API
	// server kept it as rendered (not its own defaults).
	scaleUp := renderedScaleUp(t, "autoscale", name)
	assert.Equal(t, scaleUp, hpa.Spec.Behavior.ScaleUp)

	// Load: every replica running now uses twice its CPU request, far above
	// the target; the replicas the HPA adds stay idle.
	load := resource.MustParse(string(model.Resources.Requests.CPU))
	load.Add(load)
	watch := watchReplicas(ns, name)
	loaded := time.Now()
	for _, p := range podsOf(t, ns, name) {
		_, _, err := kubectl.Run(nil, "-n", ns, "annotate", "--overwrite", "pod", p.Name, usageCPU+"="+load.String())
		require.NoError(t, err)
	}
	waitFor(t, "the Deployment to reach maxReplicas", 4*time.Minute, func() bool {
		return watch.Latest() == maxReplicas && deployment(t, ns, name).Status.AvailableReplicas == maxReplicas
	})
	history := watch.Stop()
	t.Logf("replicas after load: %v", history)

	// It reacts within a few metric resolutions and HPA syncs, and never
	// faster than the policy allows: each step at most the limit computed
	// as the HPA does, from the replicas one policy period earlier (its
	// sliding window).
	require.Greater(t, len(history), 1, "no scale-up")
	require.Equal(t, minReplicas, history[0].replicas)
	assert.Less(t, history[1].at.Sub(loaded), 90*time.Second, "the HPA reacts to load within 90 s")
	for _, step := range history[1:] {
		assert.LessOrEqual(t, step.replicas, scaleUpLimit(scaleUp, history, step.at),
			"step to %s: at most the policy's limit (replicas seen: %v)", step, history)
		assert.LessOrEqual(t, step.replicas, maxReplicas, "never above maxReplicas")
	}

	// Every replica, the added ones included, runs Ready on the GPU pool.
	for _, p := range podsOf(t, ns, name) {
		var node corev1.Node
		require.NoError(t, kubectl.GetJSON(&node, "node", p.Spec.NodeName))
		assert.Equal(t, cfg.GPUPool.NodeLabelValue, node.Labels[cfg.GPUPool.NodeLabelKey], "pod %s", p.Name)
		assert.True(t, localcluster.PodReady(p), "pod %s is Ready", p.Name)
	}
}

func renderedScaleUp(t *testing.T, stack, name string) *autoscalingv2.HPAScalingRules {
	t.Helper()
	scaleUp := renderedHPA(t, testdata, stack, name).Spec.Behavior.ScaleUp
	require.NotNil(t, scaleUp, "the stack sets a scale-up policy")
	return scaleUp
}

func cpuUtilization(hpa autoscalingv2.HorizontalPodAutoscaler) *int32 {
	for _, m := range hpa.Status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
			return m.Resource.Current.AverageUtilization
		}
	}
	return nil
}

// windowSlack absorbs a late poll when looking one period back. A step
// beyond the policy would come a whole HPA sync (15 s) early and still be caught.
const windowSlack = 5 * time.Second

// scaleUpLimit is the most replicas the scale-up rules allow at time at, as
// the HPA controller computes it: each policy counts from the replicas in
// force one of its periods earlier, and selectPolicy picks among them.
func scaleUpLimit(rules *autoscalingv2.HPAScalingRules, history []replicaStep, at time.Time) int32 {
	var limits []int32
	for _, p := range rules.Policies {
		from := replicasAt(history, at.Add(-time.Duration(p.PeriodSeconds)*time.Second+windowSlack))
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			limits = append(limits, from+p.Value)
		case autoscalingv2.PercentScalingPolicy:
			limits = append(limits, int32(math.Ceil(float64(from)*(1+float64(p.Value)/100))))
		}
	}
	selectMin := rules.SelectPolicy != nil && *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect
	limit := limits[0]
	for _, l := range limits[1:] {
		if selectMin {
			limit = min(limit, l)
		} else {
			limit = max(limit, l)
		}
	}
	return limit
}

// replicasAt is the replica count in force at time at: the last step seen
// by then, or the first one seen when at is earlier.
func replicasAt(history []replicaStep, at time.Time) int32 {
	replicas := history[0].replicas
	for _, s := range history {
		if s.at.After(at) {
			break
		}
		replicas = s.replicas
	}
	return replicas
}

type replicaStep struct {
	replicas int32
	at       time.Time
}

func (s replicaStep) String() string {
	return fmt.Sprintf("%d@%s", s.replicas, s.at.Format("15:04:05.0"))
}

// replicaWatch records every change of a Deployment's spec.replicas, with
// the time it was seen.
type replicaWatch struct {
	mu      sync.Mutex
	history []replicaStep
	stop    func()
}

func watchReplicas(ns, name string) *replicaWatch {
	w := &replicaWatch{}
	w.stop = pollDeployment(ns, name, func(d appsv1.Deployment) {
		if d.Spec.Replicas == nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.history) == 0 || w.history[len(w.history)-1].replicas != *d.Spec.Replicas {
			w.history = append(w.history, replicaStep{*d.Spec.Replicas, time.Now()})
		}
	})
	return w
}

// Latest is the replica count last seen (0 before the first poll).
func (w *replicaWatch) Latest() int32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.history) == 0 {
		return 0
	}
	return w.history[len(w.history)-1].replicas
}

// Stop ends the watch and returns what it saw.
func (w *replicaWatch) Stop() []replicaStep {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.history
}
