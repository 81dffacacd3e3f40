package config

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"llm-platform/internal/names"
)

// DefaultPickerImage is the endpoint picker's upstream release, the version
// the tests build from sigs.k8s.io/gateway-api-inference-extension.
const DefaultPickerImage = "registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0"

// DefaultScorers are the endpoint picker's scorers and weights when its
// config names none: the upstream v1.5.0 default profile.
var DefaultScorers = map[string]int{
	"queue-scorer":                2,
	"kv-cache-utilization-scorer": 2,
	"prefix-cache-scorer":         3,
}

// PickerScorers are the scorer plugin types of the picker v1.5.0 that work
// from what it scrapes and what it routed (its
// pkg/epp/framework/plugins/scheduling/scorer). Its other scorers
// (token-load-scorer, latency-scorer, predicted-latency-scorer) need data
// producers and predictors this stack does not configure, and a type it does
// not register stops it at start: both are refused.
var PickerScorers = []string{
	"kv-cache-utilization-scorer",
	"lora-affinity-scorer",
	"prefix-cache-scorer",
	"queue-scorer",
	"running-requests-size-scorer",
}

// Pooled is every model that routes through an inference pool.
func (s Serving) Pooled() []Model {
	var out []Model
	for _, m := range s.Models {
		if m.Routing == RoutingInferencePool {
			out = append(out, m)
		}
	}
	return out
}

// routing checks serving.routing and each model's routing: what a pooled
// model needs (a gateway, a served model name, a picker that starts) and
// what two pooled models must not share.
func (c *checker) routing(cfg *Config, prod bool) {
	const key = "serving.routing"
	r := cfg.Serving.Routing
	c.oneOf(key+".mode", r.Mode, RoutingModes)
	served := map[string]int{}
	for i, m := range cfg.Serving.Models {
		k := fmt.Sprintf("serving.models[%d].routing", i)
		if c.wrote(k) {
			c.oneOf(k, m.Routing, RoutingModes)
		}
		if m.Routing != RoutingInferencePool {
			continue
		}
		if m.MetricsPort != m.Port {
			c.fail(fmt.Sprintf("serving.models[%d].metricsPort", i), m.MetricsPort,
				fmt.Sprintf("must equal port (%d) when the model routes through an inference pool: the endpoint picker v1.5.0 scrapes queue and KV-cache metrics on the pool's target port, as vLLM serves them", m.Port), strconv.Itoa(m.Port))
		}
		names := m.ServedModelNames()
		if len(names) == 0 {
			c.fail(fmt.Sprintf("serving.models[%d].args", i), m.Args,
				"must name --served-model-name when the model routes through an inference pool: the HTTPRoute matches the name clients send as the OpenAI \"model\" field",
				fmt.Sprintf(`[..., "--served-model-name", %q]`, m.Name))
			continue
		}
		if !strings.Contains(m.Image, "vllm") {
			c.warn(fmt.Sprintf("serving.models[%d].routing", i), "inferencePool with %s: the endpoint picker v1.5.0 scores replicas on vLLM's series (vllm:num_requests_waiting, vllm:kv_cache_usage_perc); a server that exports others is scored blind, by prefix alone", m.Image)
		}
		for _, name := range names {
			// Gateway API's HTTPHeaderMatch value: 1 to 4096 printable characters.
			if len(name) > 4096 || strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				c.fail(fmt.Sprintf("serving.models[%d].args", i), name,
					"--served-model-name must be at most 4096 characters with no control characters when the model routes through an inference pool: the HTTPRoute matches it as a header value (Gateway API HTTPHeaderMatch)", `"llama-3-70b"`)
				continue
			}
			if j, dup := served[name]; dup && j != i {
				c.fail(fmt.Sprintf("serving.models[%d].args", i), name,
					fmt.Sprintf("--served-model-name must differ between pooled models behind one gateway: serving.models[%d] serves %q too, and two routes matching one name would split its requests between two models", j, name), "")
			}
			served[name] = i
		}
	}
	pooled := cfg.Serving.Pooled()
	if len(pooled) == 0 {
		return
	}
	for i, m := range cfg.Serving.Models {
		for _, p := range pooled {
			if names.Inference(m.Name) == names.Picker(p.Name) {
				c.fail(fmt.Sprintf("serving.models[%d].name", i), m.Name,
					fmt.Sprintf("must not be %q: that model's endpoint picker is named %s", p.Name+"-epp", names.Picker(p.Name)), "")
			}
		}
	}
	first := slices.IndexFunc(cfg.Serving.Models, func(m Model) bool { return m.Routing == RoutingInferencePool })
	why := fmt.Sprintf("required: serving.models[%d] routes through an inference pool, whose HTTPRoute attaches to this gateway", first)
	if r.Gateway.Name == "" {
		c.fail(key+".gateway.name", r.Gateway.Name, why, `"inference-gateway"`)
	} else if errs := validation.IsDNS1123Subdomain(r.Gateway.Name); len(errs) > 0 {
		c.fail(key+".gateway.name", r.Gateway.Name, "must be a Gateway's name, a DNS-1123 subdomain: "+strings.Join(errs, "; "), `"inference-gateway"`)
	}
	if r.Gateway.Namespace == "" {
		c.fail(key+".gateway.namespace", r.Gateway.Namespace, why, `"llm-gateway"`)
	} else {
		c.dns1123Label(key+".gateway.namespace", r.Gateway.Namespace)
	}
	if r.Gateway.SectionName != "" {
		if errs := validation.IsDNS1123Subdomain(r.Gateway.SectionName); len(errs) > 0 {
			c.fail(key+".gateway.sectionName", r.Gateway.SectionName, "must be a listener's name, a DNS-1123 subdomain: "+strings.Join(errs, "; "), `"https"`)
		}
	}
	for j, ns := range r.Gateway.DataPlaneNamespaces {
		c.dns1123Label(fmt.Sprintf("%s.gateway.dataPlaneNamespaces[%d]", key, j), ns)
	}
	c.oneOf(key+".failureMode", r.FailureMode, []string{FailClose, FailOpen})
	if r.FailureMode == FailOpen {
		c.warn(key+".failureMode", "FailOpen: with the picker down the gateway chooses a replica itself, blind to queues and caches; several gateway implementations do not honour FailOpen and refuse the request anyway (see docs/serving.md, \"Routing\")")
	}
	p := r.Picker
	c.image(key+".picker.image", p.Image, prod)
	c.scorers(key+".picker.scorers", p.Scorers)
	c.resources(key+".picker.resources", p.Resources)
	if len(cfg.Namespace.Network.EgressFor(EgressEndpointPicker)) == 0 {
		c.fail("namespace.network.egress", cfg.Namespace.Network.Egress,
			fmt.Sprintf("must let the endpoint picker reach the API server (serving.models[%d] routes through an inference pool, and its picker watches pods and the pool): add a rule with the API server's address and port (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes) and workloads [%s]", first, EgressEndpointPicker),
			fmt.Sprintf(`[{"cidr": "172.16.0.2/32", "ports": [443], "description": "API server", "workloads": [%q]}]`, EgressEndpointPicker))
	}
	c.warn(key, "%d model(s) route through an inference pool: the cluster needs the Gateway API CRDs (gateway.networking.k8s.io/v1), the InferencePool CRD (inference.networking.k8s.io/v1) and a gateway implementation that supports InferencePool v1 behind Gateway %s/%s; a preview cannot check them (see docs/serving.md, \"Routing\")",
		len(pooled), r.Gateway.Namespace, r.Gateway.Name)
}

// scorers checks the picker's scorer weights: known plugin types, weights
// of at least 0, one above 0.
func (c *checker) scorers(key string, s map[string]int) {
	types := make([]string, 0, len(s))
	for t := range s {
		types = append(types, t)
	}
	sort.Strings(types)
	total := 0
	for _, t := range types {
		w := s[t]
		k := key + "." + quoteKey(t)
		if !slices.Contains(PickerScorers, t) {
			c.fail(k, t, "is not a scorer of the endpoint picker v1.5.0; scorers are "+strings.Join(PickerScorers, ", "), `"prefix-cache-scorer"`)
			continue
		}
		if w < 0 {
			c.fail(k, w, "must be 0 or more: a weight scales the scorer's 0..1 score", "2")
			continue
		}
		total += w
	}
	if len(s) == 0 || total == 0 && !c.failedUnder(key) {
		c.fail(key, s, "needs at least one scorer with a weight above 0: with none the picker chooses at random", `{"queue-scorer": 2, "kv-cache-utilization-scorer": 2, "prefix-cache-scorer": 3}`)
	}
}

// failedUnder reports whether a key at or below key already has a problem.
func (c *checker) failedUnder(key string) bool {
	for _, err := range append(c.decodeErrs, c.errs...) {
		if fe, ok := err.(*FieldError); ok && (fe.Key == key || strings.HasPrefix(fe.Key, key+".")) {
			return true
		}
	}
	return false
}

// oneOf refuses a value outside valid.
func (c *checker) oneOf(key, v string, valid []string) {
	if slices.Contains(valid, v) {
		return
	}
	for _, ok := range valid {
		if strings.EqualFold(strings.TrimSpace(v), ok) {
			c.fail(key, v, "must be one of "+strings.Join(valid, ", ")+", written exactly: the values are case-sensitive", strconv.Quote(ok))
			return
		}
	}
	c.fail(key, v, "must be one of "+strings.Join(valid, ", "), strconv.Quote(valid[0]))
}
