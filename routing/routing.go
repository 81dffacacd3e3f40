// Package routing routes a model's requests through the Gateway API
// Inference Extension: an InferencePool (inference.networking.k8s.io/v1)
// that selects the model's server pods, the pool's endpoint picker (the
// extension's EPP, which chooses a replica for each request from its queue,
// its KV-cache use and the prompt prefixes it already holds) and an
// HTTPRoute (gateway.networking.k8s.io/v1) on the configured Gateway that
// sends the model's requests to the pool. The stack creates one per model
// whose routing is inferencePool; the model's ClusterIP Service stays.
package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	apiextensions "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/intent"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/workload"
)

// The picker's ports (the EPP's defaults: --grpc-port, --grpc-health-port,
// --metrics-port).
const (
	// ExtProcPort serves Envoy's external processing (ext-proc) gRPC to the
	// gateway, over TLS with the picker's own certificate.
	ExtProcPort = 9002
	// HealthPort serves the gRPC health service the kubelet probes.
	HealthPort = 9003
	// MetricsPort serves the picker's Prometheus metrics at /metrics.
	MetricsPort = 9090
)

// ModelHeader is the header the HTTPRoute matches a model by: what the
// extension's body-based router sets from the OpenAI "model" field, and
// what a client without it sends itself.
const ModelHeader = "X-Gateway-Model-Name"

// ConfigFile is where the picker reads its EndpointPickerConfig.
const ConfigFile = "/etc/epp/config.yaml"

// Args describes the routing of one model.
type Args struct {
	// Model names the model: the pool and the route are named
	// inference-<Model>, the picker inference-<Model>-epp.
	Model string
	// ServedModelNames are the OpenAI "model" fields clients send (vLLM's
	// --served-model-name, one or more); the route matches each.
	ServedModelNames []string
	// Pods select exactly the model's server pods.
	Pods map[string]string
	// TargetPort is the servers' inference port; MetricsPort and MetricsPath
	// where the picker scrapes their queue and KV-cache use.
	TargetPort, MetricsPort int
	MetricsPath             string
	// FailureMode is the pool's: FailClose or FailOpen.
	FailureMode string
	// Gateway the route attaches to.
	Gateway Gateway
	// Picker is the endpoint picker's own configuration.
	Picker Picker
	// Scrapers are namespaces that may read the picker's metrics.
	Scrapers []string
	// Egress are the networks the picker reaches: the API server.
	Egress []intent.Egress
	// Shared is the picker pods' namespace, ServiceAccount, priority and
	// pull secret.
	Shared podspec.Shared
}

// Gateway names the Gateway a route attaches to.
type Gateway struct {
	Name, Namespace string
	// SectionName is the listener, "" for all of them.
	SectionName string
	// DataPlane are the namespaces the gateway's proxies run in: they reach
	// the picker and the model.
	DataPlane []string
}

// Picker configures an endpoint picker. It runs one replica: v1.5.0's
// active/standby mode keeps its standbys not Ready, which a rolling update
// and a disruption budget cannot tell from broken pods (docs/serving.md, "Routing").
type Picker struct {
	Image string
	// Scorers are the scheduling profile's scorers, in order.
	Scorers   []Scorer
	Resources podspec.Resources
}

// Scorer is a scorer plugin of the picker and its weight.
type Scorer struct {
	Type   string
	Weight int
}

// PickerWorkload labels a model's picker pods.
func PickerWorkload(model string) labels.Workload {
	return labels.Workload{Name: "endpoint-picker", Instance: names.Picker(model), Component: "routing"}
}

// Intents are what the picker serves and reaches: the gateway's namespace
// on the ext-proc port, scrapers on its metrics, and the model's servers on
// their metrics port.
func (a Args) Intents() []intent.Workload {
	return []intent.Workload{{
		Name: names.Picker(a.Model),
		Pods: PickerWorkload(a.Model).Selector(),
		Serves: []intent.Ingress{
			{Port: ExtProcPort, From: intent.Peers{Namespaces: a.Gateway.DataPlane}},
			{Port: MetricsPort, From: intent.Peers{Namespaces: a.Scrapers}},
		},
		Reaches: a.Egress,
		Calls:   []intent.Call{{Pods: a.Pods, Port: a.MetricsPort}},
	}}
}

// Routing is one model's pool, picker and route.
type Routing struct {
	pulumi.ResourceState

	// Pool is the InferencePool's name.
	Pool pulumi.StringOutput
	// Picker is the endpoint picker's Deployment and Service name.
	Picker string
	// PickerWorkload identifies the picker's pods.
	PickerWorkload labels.Workload
	// Route is the HTTPRoute's name.
	Route pulumi.StringOutput
}

// New creates the model's InferencePool, endpoint picker and HTTPRoute.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Routing, error) {
	if len(args.ServedModelNames) == 0 {
		return nil, fmt.Errorf("routing %q: no served model name for the route to match", name)
	}
	w := PickerWorkload(args.Model)
	r := &Routing{Picker: names.Picker(args.Model), PickerWorkload: w}
	if err := ctx.RegisterComponentResource("llm-platform:index:Routing", name, r, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(r)
	poolName := names.Inference(args.Model)
	meta := func(object string, l labels.Workload) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(object), Namespace: args.Shared.Namespace, Labels: l.AllInput()}
	}
	model := labels.Workload{Name: "inference", Instance: poolName, Component: "routing"}

	config := PickerConfig(args.Picker.Scorers, args.MetricsPath)
	configMap, err := corev1.NewConfigMap(ctx, name+"-epp-config", &corev1.ConfigMapArgs{
		Metadata: meta(r.Picker, w),
		Data:     pulumi.StringMap{"config.yaml": pulumi.String(config)},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("routing %q: picker config: %w", name, err)
	}

	// The pool first: the picker reports live only once it has read it.
	pool, err := apiextensions.NewCustomResource(ctx, name+"-inferencepool", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("inference.networking.k8s.io/v1"),
		Kind:       pulumi.String("InferencePool"),
		Metadata:   meta(poolName, model),
		OtherFields: map[string]any{"spec": pulumi.Map{
			"selector":    pulumi.Map{"matchLabels": pulumi.ToStringMap(args.Pods)},
			"targetPorts": pulumi.Array{pulumi.Map{"number": pulumi.Int(args.TargetPort)}},
			"endpointPickerRef": pulumi.Map{
				"name":        pulumi.String(r.Picker),
				"port":        pulumi.Map{"number": pulumi.Int(ExtProcPort)},
				"failureMode": pulumi.String(args.FailureMode),
			},
		}},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("routing %q: inference pool: %w", name, err)
	}
	r.Pool = pool.Metadata.Name().Elem()

	role, err := rbacv1.NewRole(ctx, name+"-epp-role", &rbacv1.RoleArgs{
		Metadata: meta(r.Picker, w),
		Rules:    pickerRules(),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("routing %q: picker role: %w", name, err)
	}
	binding, err := rbacv1.NewRoleBinding(ctx, name+"-epp-rolebinding", &rbacv1.RoleBindingArgs{
		Metadata: meta(r.Picker, w),
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: role.Metadata.Name().Elem()},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: args.Shared.ServiceAccount, Namespace: args.Shared.Namespace}},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("routing %q: picker role binding: %w", name, err)
	}

	shared := args.Shared
	shared.APIClient = true
	sum := sha256.Sum256([]byte(config))
	container := shared.Security.Container(podspec.ContainerSpec{
		Name: "epp", Image: args.Picker.Image, Resources: args.Picker.Resources,
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{
			Name: pulumi.String("config"), MountPath: pulumi.String(ConfigFile[:strings.LastIndex(ConfigFile, "/")]), ReadOnly: pulumi.BoolPtr(true),
		}},
	})
	container.Args = pickerFlags(args, poolName)
	_, err = workload.New(ctx, name+"-epp", workload.Args{
		Name:      r.Picker,
		Workload:  w,
		Shared:    shared,
		Container: container,
		Ports:     []workload.Port{{Name: "grpc", Port: ExtProcPort}, {Name: "grpc-health", Port: HealthPort}, {Name: "metrics", Port: MetricsPort}},
		Pod: corev1.PodSpecArgs{Volumes: corev1.VolumeArray{
			podspec.Tmp(args.Picker.Resources),
			corev1.VolumeArgs{Name: pulumi.String("config"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: configMap.Metadata.Name().Elem()}},
		}},
		// A scorer change reaches the picker through a rollout.
		PodAnnotations: pulumi.StringMap{"llm-platform.io/picker-config-sha256": pulumi.String(hex.EncodeToString(sum[:]))},
		Service:        true,
		Probes: workload.Probes{
			PeriodSeconds: 5, ReadinessPeriodSeconds: 5,
			GRPC: &workload.GRPCHealth{Port: HealthPort, Readiness: "readiness", Liveness: "liveness"},
		},
		// The picker loads nothing: a minute to start is plenty. The
		// gateway keeps its stream to a terminating picker until the
		// endpoints drop it, so the preStop sleep covers that.
		Budgets: workload.Budgets{StartupSeconds: 60, ImagePullSeconds: 300, PreStopSleepSeconds: 5, DrainSeconds: 10},
		// One picker; a rollout surges its successor, ready before the old
		// one stops.
		Replicas:       1,
		MaxUnavailable: "1",
		Surge:          true,
		After:          []pulumi.Resource{binding, pool},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("routing %q: picker: %w", name, err)
	}

	parentRef := pulumi.Map{
		"group": pulumi.String("gateway.networking.k8s.io"), "kind": pulumi.String("Gateway"),
		"name": pulumi.String(args.Gateway.Name), "namespace": pulumi.String(args.Gateway.Namespace),
	}
	if args.Gateway.SectionName != "" {
		parentRef["sectionName"] = pulumi.String(args.Gateway.SectionName)
	}
	route, err := apiextensions.NewCustomResource(ctx, name+"-httproute", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("gateway.networking.k8s.io/v1"),
		Kind:       pulumi.String("HTTPRoute"),
		Metadata:   meta(poolName, model),
		OtherFields: map[string]any{"spec": pulumi.Map{
			"parentRefs": pulumi.Array{parentRef},
			"rules": pulumi.Array{pulumi.Map{
				"matches": matches(args.ServedModelNames),
				"backendRefs": pulumi.Array{pulumi.Map{
					"group": pulumi.String("inference.networking.k8s.io"), "kind": pulumi.String("InferencePool"),
					"name": pool.Metadata.Name().Elem(),
				}},
			}},
		}},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("routing %q: route: %w", name, err)
	}
	r.Route = route.Metadata.Name().Elem()

	if err := ctx.RegisterResourceOutputs(r, pulumi.Map{"pool": r.Pool, "picker": pulumi.String(r.Picker), "route": r.Route}); err != nil {
		return nil, err
	}
	return r, nil
}

// matches are the route's matches, one per served name (any one matches).
func matches(served []string) pulumi.Array {
	var out pulumi.Array
	for _, name := range served {
		out = append(out, pulumi.Map{
			"path":    pulumi.Map{"type": pulumi.String("PathPrefix"), "value": pulumi.String("/")},
			"headers": pulumi.Array{pulumi.Map{"type": pulumi.String("Exact"), "name": pulumi.String(ModelHeader), "value": pulumi.String(name)}},
		})
	}
	return out
}

// pickerFlags are the EPP's command-line flags.
func pickerFlags(a Args, pool string) pulumi.StringArray {
	flags := pulumi.StringArray{
		pulumi.String("--pool-name=" + pool),
		pulumi.Sprintf("--pool-namespace=%s", a.Shared.Namespace),
		pulumi.String("--config-file=" + ConfigFile),
		pulumi.String("--grpc-port=" + strconv.Itoa(ExtProcPort)),
		pulumi.String("--grpc-health-port=" + strconv.Itoa(HealthPort)),
		pulumi.String("--metrics-port=" + strconv.Itoa(MetricsPort)),
		// The NetworkPolicy admits only the scrapers to the metrics port;
		// with the endpoint's own auth the picker would need a ClusterRole
		// for token and access reviews.
		pulumi.String("--metrics-endpoint-auth=false"),
		// On by default, it prints a tenth of all request traces to stdout.
		pulumi.String("--tracing=false"),
	}
	return flags
}

// pickerRules are what the picker v1.5.0 reads, in its namespace: the
// pods it picks from and its pool; and, where a cluster has their CRDs
// (llm-d installs them), the objectives and model rewrites it then watches
// and would fail without. It writes nothing: no leader election.
func pickerRules() rbacv1.PolicyRuleArray {
	read := pulumi.ToStringArray([]string{"get", "list", "watch"})
	return rbacv1.PolicyRuleArray{
		rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{""}), Resources: pulumi.ToStringArray([]string{"pods"}), Verbs: read},
		rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{"inference.networking.k8s.io"}), Resources: pulumi.ToStringArray([]string{"inferencepools"}), Verbs: read},
		rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{"inference.networking.x-k8s.io"}), Resources: pulumi.ToStringArray([]string{"inferenceobjectives", "inferencemodelrewrites"}), Verbs: read},
	}
}

// PickerConfig is the EndpointPickerConfig of a picker: the scorers, one
// scheduling profile that weighs them and takes the best endpoint, and the
// servers' metrics read at metricsPath on the pool's target port with
// vLLM's series names. The rest is what v1.5.0 adds by default.
func PickerConfig(scorers []Scorer, metricsPath string) string {
	var b strings.Builder
	b.WriteString("apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n")
	for _, s := range scorers {
		fmt.Fprintf(&b, "- type: %s\n", s.Type)
	}
	fmt.Fprintf(&b, `- type: max-score-picker
- type: single-profile-handler
- type: metrics-data-source
  parameters:
    scheme: http
    path: %s
- type: core-metrics-extractor
  parameters:
    defaultEngine: vllm
schedulingProfiles:
- name: default
  plugins:
`, strconv.Quote(metricsPath))
	for _, s := range scorers {
		fmt.Fprintf(&b, "  - pluginRef: %s\n    weight: %d\n", s.Type, s.Weight)
	}
	b.WriteString(`  - pluginRef: max-score-picker
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
`)
	return b.String()
}
