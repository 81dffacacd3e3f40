package config

import (
	"fmt"
	"strings"

	"gopkg.in/inf.v0"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/names"
)

// Demand is what the whole stack asks of its namespace at its autoscaling
// maximum, during a rollout, with the ingestion Job and a scheduled run active.
// StatefulSet pods are replaced only once gone, so they count once.
type Demand struct {
	CPU, Memory, MemoryLimits, Storage resource.Quantity
	GPUs, Pods                         int
	// Parts says where the GPUs go, for messages.
	GPUParts []string
}

// StackDemand sums the demand of a valid configuration.
func StackDemand(cfg *Config) Demand {
	var d Demand
	add := func(pods int, r Resources) {
		d.CPU.Add(times(r.Requests.CPU, pods))
		d.Memory.Add(times(r.Requests.Memory, pods))
		d.MemoryLimits.Add(times(r.Limits.Memory, pods))
		d.Pods += pods
	}
	for _, m := range cfg.Serving.Models {
		// One pod more than the replicas: during a rollout or an eviction either a
		// surge pod runs beside the old ones, or an old pod that is still draining
		// (it counts against the quota until it is gone) overlaps its replacement.
		// A multi-node model's replica is a group of Nodes pods, and it has no
		// one more: groups never surge, and a group's new pods take the names
		// of the old (StatefulSets'), so they start only once the old are gone.
		pods := MaxReplicas(m.Replicas, m.Autoscaling) + 1
		if m.MultiNode() {
			pods = MaxReplicas(m.Replicas, m.Autoscaling) * m.Nodes
		}
		add(pods, m.Resources)
		d.GPUs += pods * m.GPUs
		d.GPUParts = append(d.GPUParts, fmt.Sprintf("%s: %d pods x %d", names.Inference(m.Name), pods, m.GPUs))
		if m.Source.Cached() {
			d.Storage.Add(resource.MustParse(string(m.ModelCache.Size)))
		}
		if m.Source.Fetched() {
			// A fetch run of a new revision runs beside the serving pods.
			add(1, m.Source.Fetch.Resources)
		}
	}
	for range cfg.Serving.Pooled() {
		// Each pooled model's picker, and its surge pod while it rolls.
		add(2, cfg.Serving.Routing.Picker.Resources)
	}
	t := cfg.Pipeline.Transformation
	add(MaxReplicas(t.Replicas, t.Autoscaling)+1, t.Resources) // the same one pod more
	// The first run, and a scheduled run beside it (Forbid: at most one); a
	// scheduled run is the same run, as parallel as the first.
	add(2*cfg.Pipeline.Ingestion.Parallelism, cfg.Pipeline.Ingestion.Resources)
	add(cfg.Checkpoint.Replicas, cfg.Checkpoint.Resources)
	d.Storage.Add(resource.MustParse(string(cfg.Pipeline.Storage.Size)))
	d.Storage.Add(times(cfg.Checkpoint.Storage.Size, cfg.Checkpoint.Replicas))
	return d
}

// absurdDemand is demand no namespace quota should be raised to: ten
// thousand large machines' worth.
var absurdDemand = map[string]resource.Quantity{
	"namespace.quota.cpu":    resource.MustParse("1000000"),
	"namespace.quota.memory": resource.MustParse("1Pi"),
}

// times is n copies of q, computed, not summed: the demand of a billion
// replicas costs what the demand of one does.
func times(q Quantity, n int) resource.Quantity {
	v := resource.MustParse(string(q))
	product := new(inf.Dec).Mul(v.AsDec(), inf.NewDec(int64(n), 0))
	return *resource.NewDecimalQuantity(*product, v.Format)
}

// quotaFits reports each quota the stack would run into: a rollout or a
// scale-up that the quota refuses fails late and confusingly, so refuse it now.
func (c *checker) quotaFits(cfg *Config) {
	d := StackDemand(cfg)
	q := cfg.Namespace.Quota
	const why = "the stack needs %s at its autoscaling maximum during a rollout"
	// A count nobody wrote is missing, not a written zero.
	written := func(key string, v int) (any, string) {
		if c.wrote(key) {
			return v, ""
		}
		return nil, "required: "
	}
	if d.GPUs > q.GPUs {
		v, required := written("namespace.quota.gpus", q.GPUs)
		c.fail("namespace.quota.gpus", v, fmt.Sprintf(required+why+" (%s)", fmt.Sprint(d.GPUs), strings.Join(d.GPUParts, ", ")), fmt.Sprint(d.GPUs))
	}
	if d.Pods > q.Pods {
		v, required := written("namespace.quota.pods", q.Pods)
		c.fail("namespace.quota.pods", v, fmt.Sprintf(required+why, fmt.Sprint(d.Pods)), fmt.Sprint(d.Pods))
	}
	check := func(key string, have Quantity, need resource.Quantity, what string) bool {
		if h := resource.MustParse(string(have)); h.Cmp(need) < 0 {
			if absurd, ok := absurdDemand[key]; ok && need.Cmp(absurd) > 0 {
				// No quota should be raised to that: a unit is wrong somewhere.
				c.fail(key, have, fmt.Sprintf(why+", more than any cluster holds (over %s): look for a request with a unit missing or too large", what+" "+need.String(), absurd.String()), "")
				return false
			}
			c.fail(key, have, fmt.Sprintf(why, what+" "+need.String()), fmt.Sprintf("%q", need.String()))
			return false
		}
		return true
	}
	check("namespace.quota.cpu", q.CPU, d.CPU, "cpu requests of")
	// Limits are at least the requests: report them only when requests fit.
	_ = check("namespace.quota.memory", q.Memory, d.Memory, "memory requests of") &&
		check("namespace.quota.memory", q.Memory, d.MemoryLimits, "memory limits of")
	check("namespace.quota.storage", q.Storage, d.Storage, "claims of")
}
