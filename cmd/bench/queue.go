package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// queueRuns is how many fresh clusters section 6 measures.
const queueRuns = 3

// benchQueue measures prod's first model from its queue depth rising to
// replicas Ready: its own HPA (Pods metric, target, behavior) on the local
// cluster, the metric served through custom.metrics.k8s.io by the
// custom-metrics test adapter. Each run is a fresh cluster.
func benchQueue(root string, w io.Writer) {
	var steps, readies []time.Duration
	var from, to int32
	for range queueRuns {
		step, ready, min, max := queueToReady(root)
		steps, readies, from, to = append(steps, step), append(readies, ready), min, max
	}
	slices.Sort(steps)
	slices.Sort(readies)
	fmt.Fprintf(w, "\n## 6. Queue depth rising to new replicas Ready (prod's inference HPA, %d fresh clusters)\n\n", queueRuns)
	fmt.Fprintf(w, "| | median | min | max |\n| --- | ---: | ---: | ---: |\n")
	fmt.Fprintf(w, "| queue rises to the HPA raising replicas (%d to %d) | %s | %s | %s |\n", from, to, secs(median(steps)), secs(steps[0]), secs(steps[len(steps)-1]))
	fmt.Fprintf(w, "| queue rises to all %d replicas Ready | %s | %s | %s |\n", to, secs(median(readies)), secs(readies[0]), secs(readies[len(readies)-1]))
	fmt.Fprintf(w, "\nThe model starts at rest: the HPA reads the queue, holds the minimum, and its last scaling is older than\n"+
		"the scale-up policy's period (within it, the HPA counts the policy from the replicas before that scaling).\n"+
		"The queue (`vllm:num_requests_waiting`, served as `vllm_num_requests_waiting`) then goes from 0 to four times\n"+
		"the target on every running pod. The HPA reacts on one of its syncs (every 15 s) once the adapter serves the new\n"+
		"value; scaling to all %d at once is what the behavior allows (double, or +2, per minute). On the local cluster a new\n"+
		"pod is Ready within a second (kwok), so the second row minus the first, %s in the median, is scheduling alone; on a\n"+
		"real cluster add a GPU node (if none is free), the image pull and the model load.\n",
		to, secs(median(readies)-median(steps)))
}

func queueToReady(root string) (step, ready time.Duration, minReplicas, maxReplicas int32) {
	k, cluster := benchCluster(root)
	defer cluster("down")
	cluster("custom-metrics")
	cfg, err := localcluster.LoadConfig(root, "prod")
	must(err)
	must(localcluster.PrepareNodes(k, cfg))
	_, err = localcluster.Deploy(root, "prod", k, 5*time.Minute, io.Discard)
	must(err)

	model := cfg.Serving.Models[0]
	ns, deployment := cfg.Namespace.Name, names.Inference(model.Name)
	minReplicas, maxReplicas = int32(model.Autoscaling.MinReplicas), int32(model.Autoscaling.MaxReplicas)
	queue := localcluster.WritePodMetric(k, ns, deployment, model.Autoscaling.MetricName, "0")
	defer queue.Stop()
	// A model in steady state: the HPA reads the queue, holds the minimum, and
	// its last scaling (1 to minReplicas at creation) is older than the
	// scale-up policy's period. Within that period the HPA counts the policy
	// from the replicas before that scaling, and a first run measured 45 s,
	// mostly that wait.
	poll(4*time.Minute, "the HPA to read the queue, at rest", func() bool {
		var hpa autoscalingv2.HorizontalPodAutoscaler
		_ = k.GetJSON(&hpa, "-n", ns, "hpa", deployment)
		for _, m := range hpa.Status.CurrentMetrics {
			if m.Type == autoscalingv2.PodsMetricSourceType {
				last := hpa.Status.LastScaleTime
				return hpa.Status.CurrentReplicas == minReplicas && last != nil && time.Since(last.Time) > scaleUpPeriod(hpa)+5*time.Second
			}
		}
		return false
	})

	target := resource.MustParse(string(model.Autoscaling.TargetAverageValue))
	start := time.Now()
	queue.Set(fmt.Sprint(4 * target.Value()))
	poll(5*time.Minute, "all replicas Ready", func() bool {
		var d appsv1.Deployment
		_ = k.GetJSON(&d, "-n", ns, "deployment", deployment)
		if step == 0 && d.Spec.Replicas != nil && *d.Spec.Replicas > minReplicas {
			step = time.Since(start)
		}
		return d.Status.ReadyReplicas == maxReplicas
	})
	return step, time.Since(start), minReplicas, maxReplicas
}

// scaleUpPeriod is the longest period of the HPA's scale-up policies.
func scaleUpPeriod(hpa autoscalingv2.HorizontalPodAutoscaler) time.Duration {
	var longest int32
	if b := hpa.Spec.Behavior; b != nil && b.ScaleUp != nil {
		for _, p := range b.ScaleUp.Policies {
			longest = max(longest, p.PeriodSeconds)
		}
	}
	return time.Duration(longest) * time.Second
}

func poll(timeout time.Duration, what string, done func() bool) {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			must(fmt.Errorf("timed out after %s waiting for %s", timeout, what))
		}
		time.Sleep(localcluster.PollInterval)
	}
}
