package routing_test

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"

	"llm-platform/internal/stacktest"
	"llm-platform/routing"
)

type pool struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   any    `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		TargetPorts []struct {
			Number int `json:"number"`
		} `json:"targetPorts"`
		EndpointPickerRef struct {
			Name string `json:"name"`
			Port struct {
				Number int `json:"number"`
			} `json:"port"`
			FailureMode string `json:"failureMode"`
		} `json:"endpointPickerRef"`
	} `json:"spec"`
}

func TestPooledModelGetsPoolPickerAndRoute(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))

	var p pool
	res.Decode(t, "InferencePool", "inference-llama-3-70b", &p)
	model := res.Deployment(t, "inference-llama-3-70b")
	assert.Equal(t, model.Spec.Selector.MatchLabels, p.Spec.Selector.MatchLabels, "the pool selects exactly the model's server pods")
	require.Len(t, p.Spec.TargetPorts, 1)
	assert.Equal(t, 8000, p.Spec.TargetPorts[0].Number)
	assert.Equal(t, "inference-llama-3-70b-epp", p.Spec.EndpointPickerRef.Name)
	assert.Equal(t, routing.ExtProcPort, p.Spec.EndpointPickerRef.Port.Number)
	assert.Equal(t, "FailClose", p.Spec.EndpointPickerRef.FailureMode)

	var route struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   any    `json:"metadata"`
		Spec       struct {
			ParentRefs []map[string]string `json:"parentRefs"`
			Rules      []struct {
				Matches []struct {
					Path    map[string]string   `json:"path"`
					Headers []map[string]string `json:"headers"`
				} `json:"matches"`
				BackendRefs []map[string]string `json:"backendRefs"`
			} `json:"rules"`
		} `json:"spec"`
	}
	res.Decode(t, "HTTPRoute", "inference-llama-3-70b", &route)
	assert.Equal(t, []map[string]string{{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway", "namespace": "llm-gateway"}}, route.Spec.ParentRefs)
	require.Len(t, route.Spec.Rules, 1)
	assert.Equal(t, []map[string]string{{"type": "Exact", "name": routing.ModelHeader, "value": "meta-llama/Meta-Llama-3-70B-Instruct"}},
		route.Spec.Rules[0].Matches[0].Headers, "the route matches the served model name clients send")
	assert.Equal(t, []map[string]string{{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "inference-llama-3-70b"}}, route.Spec.Rules[0].BackendRefs)

	assert.False(t, res.Has("InferencePool", "inference-bge-embed"), "the embedding model keeps its Service")
	assert.True(t, res.Has("Service", "inference-llama-3-70b"), "the pooled model's Service stays for in-cluster clients")
}

func TestPickerRunsWithTheRenderedConfig(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	d := res.Deployment(t, "inference-llama-3-70b-epp")
	require.Equal(t, int32(1), *d.Spec.Replicas)
	assert.Equal(t, 1, d.Spec.Strategy.RollingUpdate.MaxSurge.IntValue(), "its successor is ready before it stops")
	assert.Equal(t, 0, d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue())
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0", c.Image)
	assert.Subset(t, c.Args, []string{"--pool-name=inference-llama-3-70b", "--pool-namespace=llm-platform", "--config-file=" + routing.ConfigFile, "--tracing=false"})
	assert.Equal(t, "readiness", *c.ReadinessProbe.GRPC.Service, "a picker that has not synced its pool is not Ready")
	assert.Equal(t, "liveness", *c.LivenessProbe.GRPC.Service)
	assert.Equal(t, int32(routing.HealthPort), c.LivenessProbe.GRPC.Port)
	assert.True(t, *d.Spec.Template.Spec.AutomountServiceAccountToken, "it watches the API")
	assert.Contains(t, d.Spec.Template.Annotations, "llm-platform.io/picker-config-sha256")

	var cm corev1.ConfigMap
	res.Decode(t, "ConfigMap", "inference-llama-3-70b-epp", &cm)
	var cfg struct {
		Kind               string                  `yaml:"kind"`
		Plugins            []struct{ Type string } `yaml:"plugins"`
		SchedulingProfiles []struct {
			Plugins []struct {
				PluginRef string `yaml:"pluginRef"`
				Weight    int    `yaml:"weight"`
			} `yaml:"plugins"`
		} `yaml:"schedulingProfiles"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg))
	assert.Equal(t, "EndpointPickerConfig", cfg.Kind)
	weights := map[string]int{}
	for _, p := range cfg.SchedulingProfiles[0].Plugins {
		weights[p.PluginRef] = p.Weight
	}
	assert.Equal(t, map[string]int{"kv-cache-utilization-scorer": 2, "prefix-cache-scorer": 3, "queue-scorer": 2, "max-score-picker": 0}, weights, "the upstream default weights")

	// A scorer change is a new config hash: the picker rolls to read it.
	before := d.Spec.Template.Annotations["llm-platform.io/picker-config-sha256"]
	changed := stacktest.Run(t, stacktest.Load(t, "prod").Set(t, "serving.routing.picker.scorers", map[string]any{"queue-scorer": 1}))
	assert.NotEqual(t, before, changed.Deployment(t, "inference-llama-3-70b-epp").Spec.Template.Annotations["llm-platform.io/picker-config-sha256"])
}

func TestPickerReadsOnlyWhatItPicksFrom(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var role rbacv1.Role
	res.Decode(t, "Role", "inference-llama-3-70b-epp", &role)
	for _, r := range role.Rules {
		assert.ElementsMatch(t, []string{"get", "list", "watch"}, r.Verbs, "the picker writes nothing: %v", r.Resources)
	}
	assert.False(t, res.Has("ClusterRole", "inference-llama-3-70b-epp"), "metrics auth is off: no token or access reviews")
	var binding rbacv1.RoleBinding
	res.Decode(t, "RoleBinding", "inference-llama-3-70b-epp", &binding)
	assert.Equal(t, "inference-llama-3-70b-epp", binding.Subjects[0].Name, "bound to the picker's own ServiceAccount")
	assert.Equal(t, "inference-llama-3-70b-epp", res.Deployment(t, "inference-llama-3-70b-epp").Spec.Template.Spec.ServiceAccountName)
}

// No pool selects a pod of another workload: each matches only its own
// model's server pods, never a fetch run, a picker or another model.
func TestPoolsSelectOnlyTheirModelsServers(t *testing.T) {
	c := stacktest.Load(t, "prod").Set(t, "serving.models[1].routing", "inferencePool").
		Set(t, "serving.models[1].args", []any{"--model-id", "$(MODEL_PATH)", "--port", "8000", "--served-model-name", "bge"})
	res := stacktest.Run(t, c)
	tpls := res.PodTemplates(t)
	pools := 0
	for _, o := range res.Objects {
		if o.Kind() != "InferencePool" {
			continue
		}
		pools++
		var p pool
		require.NoError(t, o.Decode(&p))
		sel := labels.SelectorFromSet(p.Spec.Selector.MatchLabels)
		var matched []string
		for _, tpl := range tpls {
			if sel.Matches(labels.Set(maps.Clone(tpl.Labels))) {
				matched = append(matched, tpl.Owner)
			}
		}
		assert.Equal(t, []string{"Deployment/" + o.Name()}, matched, "pool %s", o.Name())
	}
	assert.Equal(t, 2, pools)
}

// vLLM serves every name after --served-model-name: the route matches each.
// A gateway whose proxies run elsewhere (Envoy Gateway's
// envoy-gateway-system) is admitted from there.
func TestRouteMatchesEveryServedNameAndAdmitsTheDataPlane(t *testing.T) {
	c := stacktest.Load(t, "prod").
		Set(t, "serving.models[0].args", []any{"--model", "$(MODEL_PATH)", "--served-model-name", "llama-70b", "llama", "--tensor-parallel-size", "4", "--port", "8000"}).
		Set(t, "serving.routing.gateway.dataPlaneNamespaces", []any{"envoy-gateway-system"})
	res := stacktest.Run(t, c)
	var route struct {
		Spec struct {
			Rules []struct {
				Matches []struct {
					Headers []map[string]string `json:"headers"`
				} `json:"matches"`
			} `json:"rules"`
		} `json:"spec"`
	}
	o := res.Find(t, "HTTPRoute", "inference-llama-3-70b")
	spec, err := json.Marshal(o.Fields["spec"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(spec, &route.Spec))
	var names []string
	for _, m := range route.Spec.Rules[0].Matches {
		names = append(names, m.Headers[0]["value"])
	}
	assert.Equal(t, []string{"llama-70b", "llama"}, names)

	var pickerIn networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-in-inference-llama-3-70b-epp", &pickerIn)
	assert.Equal(t, []string{"envoy-gateway-system"}, pickerIn.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions[0].Values)
	var modelIn networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-in-inference-llama-3-70b", &modelIn)
	assert.Contains(t, modelIn.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions[0].Values, "envoy-gateway-system")
}
