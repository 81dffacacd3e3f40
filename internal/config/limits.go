package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/inf.v0"
	"k8s.io/apimachinery/pkg/api/resource"

	"llm-platform/internal/names"
	"llm-platform/internal/rollout"
)

// Limits beyond which a value is legal for Kubernetes but cannot be meant.
const (
	// daySeconds caps budgets and deadlines written in seconds.
	daySeconds = 86400
	// maxIndexedCompletions is the API server's limit on completions and
	// parallelism of an Indexed Job.
	maxIndexedCompletions = 100000
	// noEffect is how a warning says a written value changes nothing.
	noEffect = "has no effect"
)

// namespaceName refuses the names Kubernetes reserves, and the names whose
// derived objects the API server would refuse.
func (c *checker) namespaceName(key, name string) {
	c.dns1123Label(key, name)
	switch {
	case name == "default" || strings.HasPrefix(name, "kube-"):
		c.fail(key, name, "must not be default or a kube-* namespace: those belong to the cluster, and the stack's quota, limit range and default-deny policy would apply to what the cluster runs there", `"llm-platform"`)
	case strings.HasPrefix(name, "system-"):
		c.fail(key, name, fmt.Sprintf("must not start with system-: the stack names its PriorityClasses after the namespace (%s), and the API server reserves that prefix for its own", names.PriorityServing(name)), `"llm-platform"`)
	}
}

// bytes checks a quantity of bytes: positive, whole bytes (512m is 0.512
// bytes, not 512 MiB) and within what Kubernetes can count.
func (c *checker) bytes(key string, q Quantity, example string) (resource.Quantity, bool) {
	v, ok := c.positiveQuantity(key, q, example)
	if !ok {
		return v, false
	}
	if !whole(v.AsDec(), 0) {
		c.fail(key, q, "is a fraction of a byte (the m suffix means thousandths, not mega); write bytes with Mi or Gi", example)
		return v, false
	}
	if v.Cmp(oneMebibyte) < 0 && strings.Trim(string(q), "0123456789") == "" {
		// Kubernetes reads a bare number as bytes: "24" is 24 bytes, which
		// no container, volume or quota can use.
		c.fail(key, q, fmt.Sprintf("is %s bytes: a number without a unit is bytes in Kubernetes; write the unit (Mi, Gi, Ti)", q), strconv.Quote(string(q)+"Gi"))
		return v, false
	}
	return v, c.fitsInt64(key, q, v, example)
}

// cpu checks a quantity of CPU: positive, in whole millicores (Kubernetes
// rounds anything finer up to 1m) and within what Kubernetes can count.
func (c *checker) cpu(key string, q Quantity, example string) (resource.Quantity, bool) {
	v, ok := c.positiveQuantity(key, q, example)
	if !ok {
		return v, false
	}
	if !whole(v.AsDec(), 3) {
		c.fail(key, q, "is finer than a millicore (1m, a thousandth of a CPU), the smallest amount Kubernetes schedules; write whole millicores", `"500m"`)
		return v, false
	}
	return v, c.fitsInt64(key, q, v, example)
}

var oneMebibyte = resource.MustParse("1Mi")

var maxInt64Dec = inf.NewDec(math.MaxInt64, 3) // in thousandths, as Kubernetes counts milli-units

func (c *checker) fitsInt64(key string, q Quantity, v resource.Quantity, example string) bool {
	if v.AsDec().Cmp(maxInt64Dec) > 0 {
		c.fail(key, q, "too large: more than Kubernetes can count for a resource", example)
		return false
	}
	return true
}

// whole reports whether d has no digits beyond `places` decimal places.
func whole(d *inf.Dec, places inf.Scale) bool {
	return new(inf.Dec).Round(d, places, inf.RoundDown).Cmp(d) == 0
}

func (c *checker) between(key string, v, lo, hi int, hiWords string) {
	if v < lo {
		c.atLeast(key, v, lo)
	} else if v > hi {
		c.fail(key, v, fmt.Sprintf("too large: at most %d (%s)", hi, hiWords), strconv.Itoa(hi))
	}
}

// atMostDay caps a value in seconds at a day: longer is legal for the API
// server but is a mistake (a unit confusion, a stray digit) for every budget
// and deadline the stack has.
func (c *checker) atMostDay(key string, seconds int) {
	if seconds > daySeconds {
		c.fail(key, seconds, fmt.Sprintf("too large: at most %d seconds (a day)", daySeconds), "600")
	}
}

// keyed is a config key and the value written there.
type keyed struct {
	key   string
	value int
}

// modelRolloutFits is rolloutFits for a model's budgets.
func (c *checker) modelRolloutFits(key string, m Model) {
	c.rolloutFits(rollout.Budgets{
		ModelLoadSeconds:    m.ModelLoadBudgetSeconds,
		ImagePullSeconds:    m.ImagePullBudgetSeconds,
		ProbePeriodSeconds:  m.LivenessPeriodSeconds,
		MaxReplicas:         MaxReplicas(m.Replicas, m.Autoscaling),
		PreStopSleepSeconds: m.Drain.PreStopSleepSeconds,
		DrainSeconds:        m.Drain.DrainSeconds,
	}, map[string]keyed{
		"ModelLoadSeconds": {key + ".modelLoadBudgetSeconds", m.ModelLoadBudgetSeconds},
		"DrainSeconds":     {key + ".drain.drainSeconds", m.Drain.DrainSeconds},
		"MaxReplicas":      {replicasKey(key, m.Autoscaling), MaxReplicas(m.Replicas, m.Autoscaling)},
	})
}

// rolloutFits refuses budgets whose derived timings would not fit their
// fields, naming the key (of keys, by rollout.Budgets field) that made them
// overflow.
func (c *checker) rolloutFits(b rollout.Budgets, keys map[string]keyed) {
	_, err := rollout.Plan(b)
	tooLarge, ok := err.(*rollout.TooLarge)
	if !ok {
		return
	}
	if k, ok := keys[tooLarge.Budget]; ok && !c.failed(k.key) {
		c.fail(k.key, k.value, "too large: "+tooLarge.Error(), "")
	}
}

// replicasKey is the key that sets a workload's most replicas.
func replicasKey(key string, a Autoscaling) string {
	if a.Enabled {
		return key + ".autoscaling.maxReplicas"
	}
	return key + ".replicas"
}

// replicasFitNamespace refuses a replica count the namespace can never run,
// naming the count's own key. It compares numbers, never counts pods one by
// one, so a billion replicas is refused as fast as two.
func (c *checker) replicasFitNamespace(cfg *Config) {
	pods := cfg.Namespace.Quota.Pods
	if pods < 1 {
		return
	}
	check := func(key string, n int) {
		if n > pods {
			c.fail(key, n, fmt.Sprintf("must be at most namespace.quota.pods (%d): the namespace can never run that many pods", pods), strconv.Itoa(pods))
		}
	}
	for i, m := range cfg.Serving.Models {
		key := fmt.Sprintf("serving.models[%d]", i)
		check(replicasKey(key, m.Autoscaling), MaxReplicas(m.Replicas, m.Autoscaling))
	}
	t := cfg.Pipeline.Transformation
	check(replicasKey("pipeline.transformation", t.Autoscaling), MaxReplicas(t.Replicas, t.Autoscaling))
	check("pipeline.ingestion.parallelism", cfg.Pipeline.Ingestion.Parallelism)
	check("checkpoint.replicas", cfg.Checkpoint.Replicas)
}

// replicasOwner warns about a replica count that an autoscaler overrides.
func (c *checker) replicasOwner(key string, a Autoscaling) {
	if a.Enabled && c.wrote(key+".replicas") {
		c.warn(key+".replicas", "%s while %s.autoscaling.enabled is true: the HPA owns the count, between minReplicas and maxReplicas", noEffect, key)
	}
}

// portMatchesArgs refuses a port that disagrees with a --port the server is
// started with: the probes, the Service and the network policy would all
// target a port nothing listens on.
func (c *checker) portMatchesArgs(key string, port int, args []string) {
	for i, arg := range args {
		value, ok := strings.CutPrefix(arg, "--port=")
		if !ok && arg == "--port" && i+1 < len(args) {
			value, ok = args[i+1], true
		}
		if !ok {
			continue
		}
		n, err := strconv.Atoi(value)
		if err != nil || n == port {
			continue // $(PORT) and the like are the user's to resolve
		}
		c.fail(key+".port", port, fmt.Sprintf("disagrees with args[%d] (--port %s): the probes, the Service and the network policy would target a port the server does not listen on", i, value), value)
	}
}
