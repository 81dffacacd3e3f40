// Package availability builds the PodDisruptionBudgets and
// HorizontalPodAutoscalers of the stack's workloads, with the same rules for
// all: a budget never blocks every eviction, and scaling is fast up, slow down.
package availability

import (
	"fmt"
	"regexp"
	"strings"

	apiextensions "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/apimachinery/pkg/util/intstr"

	"llm-platform/internal/labels"
	"llm-platform/internal/rollout"
)

// Metrics an autoscaler scales on, and drivers that carry the signal.
const (
	// MetricCPU is the pods' CPU utilization against their request.
	MetricCPU = "cpu"
	// MetricPods is a per-pod custom metric, such as a queue depth.
	MetricPods = "pods"
	// DriverHPA is an HPA of the stack reading the custom metrics API.
	DriverHPA = "hpa"
	// DriverKEDA is a KEDA ScaledObject reading Prometheus; KEDA owns the HPA.
	DriverKEDA = "keda"
)

// Autoscaling says whether and how a Deployment scales.
type Autoscaling struct {
	// Enabled: an autoscaler owns the replica count.
	Enabled bool
	// MinReplicas and MaxReplicas bound it; MinReplicas 0 needs DriverKEDA.
	MinReplicas, MaxReplicas int
	// Metric is MetricCPU or MetricPods.
	Metric string
	// Driver is DriverHPA or DriverKEDA.
	Driver string
	// MetricName is the Pods metric's name in the custom metrics API.
	MetricName string
	// Series is the Prometheus series behind it (KEDA queries, adapter
	// rules); the translation from config fills in MetricName when unset.
	Series string
	// TargetAverageValue per pod of the Pods metric, for example "5".
	TargetAverageValue string
	// TargetCPUUtilization in percent of the request (MetricCPU).
	TargetCPUUtilization int
	// PrometheusAddress is where KEDA queries Prometheus.
	PrometheusAddress string
	// Query replaces the KEDA trigger's default query (the sum of Series
	// over the workload's pods).
	Query string
	// ScaleUpStabilizationSeconds and ScaleDownStabilizationSeconds are the
	// autoscaler's windows.
	ScaleUpStabilizationSeconds, ScaleDownStabilizationSeconds int
}

// MaxReplicasOf is the most replicas a workload with this autoscaling and
// fixed count runs (see rollout.MaxReplicas).
func (a Autoscaling) MaxReplicasOf(replicas int) int {
	return rollout.MaxReplicas(replicas, a.Enabled, a.MaxReplicas)
}

// NeedsBudget reports whether a workload gets a PodDisruptionBudget: only one
// that can run more than one replica. At one replica any budget either blocks
// every drain or protects nothing, so config validation warns instead.
func NeedsBudget(replicas int, a Autoscaling) bool {
	return a.MaxReplicasOf(replicas) > 1
}

// BudgetArgs describes a workload's PodDisruptionBudget.
type BudgetArgs struct {
	// Metadata of the budget (name, namespace, labels).
	Metadata *metav1.ObjectMetaArgs
	// Workload whose selector the budget uses.
	Workload labels.Workload
	// Pods, when set, select the pods instead of the Workload's selector
	// (every pod of a LeaderWorkerSet, leaders and workers).
	Pods map[string]string
	// MaxUnavailable is a count ("1") or a percentage ("25%"), never 0.
	MaxUnavailable string
}

// NewBudget creates a policy/v1 PodDisruptionBudget. Unhealthy pods may always
// be evicted (AlwaysAllow): a pod that is not Ready serves nothing, and
// protecting it would let one crash-looping pod block a node drain.
func NewBudget(ctx *pulumi.Context, name string, args BudgetArgs, opts ...pulumi.ResourceOption) (*policyv1.PodDisruptionBudget, error) {
	var maxUnavailable pulumi.Input
	switch v := intstr.Parse(args.MaxUnavailable); {
	case v.Type == intstr.Int && v.IntVal > 0:
		maxUnavailable = pulumi.Int(int(v.IntVal))
	case v.Type == intstr.String && strings.HasSuffix(v.StrVal, "%"):
		maxUnavailable = pulumi.String(v.StrVal)
	default:
		return nil, fmt.Errorf("disruption budget %q: maxUnavailable %q is neither a positive count nor a percentage", name, args.MaxUnavailable)
	}
	selector := args.Workload.SelectorInput()
	if args.Pods != nil {
		selector = pulumi.ToStringMap(args.Pods)
	}
	return policyv1.NewPodDisruptionBudget(ctx, name, &policyv1.PodDisruptionBudgetArgs{
		Metadata: args.Metadata,
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable:             maxUnavailable,
			Selector:                   &metav1.LabelSelectorArgs{MatchLabels: selector},
			UnhealthyPodEvictionPolicy: pulumi.String("AlwaysAllow"),
		},
	}, opts...)
}

// ScaleTarget is the object an autoscaler scales through its scale
// subresource: a Deployment, or a LeaderWorkerSet (whose scale counts groups
// and whose selector, for Pods metrics, selects the leaders).
type ScaleTarget struct {
	// APIVersion and Kind of the object, for example apps/v1 Deployment.
	APIVersion, Kind string
	// Name of the object.
	Name pulumi.StringInput
}

// DeploymentTarget is the Deployment of that name.
func DeploymentTarget(name pulumi.StringInput) ScaleTarget {
	return ScaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: name}
}

// AutoscalerArgs describes a workload's HorizontalPodAutoscaler.
type AutoscalerArgs struct {
	// Metadata of the autoscaler (name, namespace, labels).
	Metadata *metav1.ObjectMetaArgs
	// Target is what it scales.
	Target ScaleTarget
	// Autoscaling is the validated configuration (Enabled is true).
	Autoscaling Autoscaling
}

// NewAutoscaler creates an autoscaling/v2 HPA that scales up at once (doubling
// or adding two pods a minute, whichever is more) and down one pod every two
// minutes after the stabilization window: a GPU replica is slow to come back,
// so removing one is the step to be careful with.
func NewAutoscaler(ctx *pulumi.Context, name string, args AutoscalerArgs, opts ...pulumi.ResourceOption) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	a := args.Autoscaling
	var metric autoscalingv2.MetricSpecArgs
	switch a.Metric {
	case MetricPods:
		metric = autoscalingv2.MetricSpecArgs{
			Type: pulumi.String("Pods"),
			Pods: &autoscalingv2.PodsMetricSourceArgs{
				Metric: &autoscalingv2.MetricIdentifierArgs{Name: pulumi.String(a.MetricName)},
				Target: &autoscalingv2.MetricTargetArgs{Type: pulumi.String("AverageValue"), AverageValue: pulumi.String(a.TargetAverageValue)},
			},
		}
	case MetricCPU:
		metric = autoscalingv2.MetricSpecArgs{
			Type: pulumi.String("Resource"),
			Resource: &autoscalingv2.ResourceMetricSourceArgs{
				Name:   pulumi.String("cpu"),
				Target: &autoscalingv2.MetricTargetArgs{Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(a.TargetCPUUtilization)},
			},
		}
	default:
		return nil, fmt.Errorf("autoscaler %q: unknown metric %q", name, a.Metric)
	}
	return autoscalingv2.NewHorizontalPodAutoscaler(ctx, name, &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: args.Metadata,
		Spec: &autoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: &autoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String(args.Target.APIVersion), Kind: pulumi.String(args.Target.Kind), Name: args.Target.Name,
			},
			MinReplicas: pulumi.Int(a.MinReplicas),
			MaxReplicas: pulumi.Int(a.MaxReplicas),
			Metrics:     autoscalingv2.MetricSpecArray{metric},
			Behavior:    behavior(a),
		},
	}, opts...)
}

// behavior is every autoscaler's: up at once, down one pod a period after
// the stabilization window.
func behavior(a Autoscaling) *autoscalingv2.HorizontalPodAutoscalerBehaviorArgs {
	return &autoscalingv2.HorizontalPodAutoscalerBehaviorArgs{
		ScaleUp: &autoscalingv2.HPAScalingRulesArgs{
			StabilizationWindowSeconds: pulumi.Int(a.ScaleUpStabilizationSeconds),
			SelectPolicy:               pulumi.String("Max"),
			Policies: autoscalingv2.HPAScalingPolicyArray{
				autoscalingv2.HPAScalingPolicyArgs{Type: pulumi.String("Percent"), Value: pulumi.Int(100), PeriodSeconds: pulumi.Int(60)},
				autoscalingv2.HPAScalingPolicyArgs{Type: pulumi.String("Pods"), Value: pulumi.Int(2), PeriodSeconds: pulumi.Int(60)},
			},
		},
		ScaleDown: &autoscalingv2.HPAScalingRulesArgs{
			StabilizationWindowSeconds: pulumi.Int(a.ScaleDownStabilizationSeconds),
			SelectPolicy:               pulumi.String("Min"),
			Policies: autoscalingv2.HPAScalingPolicyArray{
				autoscalingv2.HPAScalingPolicyArgs{Type: pulumi.String("Pods"), Value: pulumi.Int(1), PeriodSeconds: pulumi.Int(rollout.ScaleDownPeriodSeconds)},
			},
		},
	}
}

// ScaledObjectArgs describes a KEDA ScaledObject for a workload.
type ScaledObjectArgs struct {
	// Metadata of the ScaledObject and of the HPA KEDA creates (its name).
	Metadata *metav1.ObjectMetaArgs
	// Target is what it scales.
	Target ScaleTarget
	// HPAName names the HPA KEDA creates and owns.
	HPAName string
	// Autoscaling is the validated configuration (Driver keda).
	Autoscaling Autoscaling
	// Query is the PromQL of the trigger: the total queue of the model.
	Query pulumi.StringInput
}

// NewScaledObject creates a KEDA ScaledObject (keda.sh/v1alpha1): KEDA owns
// the HPA, with the same behavior as the stack's own, scales on the same
// queue signal read from Prometheus (per replica: AverageValue), and can hold
// the model at zero replicas when minReplicas is 0.
func NewScaledObject(ctx *pulumi.Context, name string, args ScaledObjectArgs, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	a := args.Autoscaling
	return apiextensions.NewCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("keda.sh/v1alpha1"),
		Kind:       pulumi.String("ScaledObject"),
		Metadata:   args.Metadata,
		OtherFields: map[string]any{"spec": pulumi.Map{
			"scaleTargetRef":  pulumi.Map{"apiVersion": pulumi.String(args.Target.APIVersion), "kind": pulumi.String(args.Target.Kind), "name": args.Target.Name},
			"minReplicaCount": pulumi.Int(a.MinReplicas),
			"maxReplicaCount": pulumi.Int(a.MaxReplicas),
			// Scale to zero only after the same quiet period as a scale-down.
			"cooldownPeriod":  pulumi.Int(a.ScaleDownStabilizationSeconds),
			"pollingInterval": pulumi.Int(15),
			"advanced": pulumi.Map{"horizontalPodAutoscalerConfig": pulumi.Map{
				"name":     pulumi.String(args.HPAName),
				"behavior": behavior(a),
			}},
			"triggers": pulumi.Array{pulumi.Map{
				"type":       pulumi.String("prometheus"),
				"metricType": pulumi.String("AverageValue"),
				"metadata": pulumi.Map{
					"serverAddress": pulumi.String(a.PrometheusAddress),
					"query":         args.Query,
					"threshold":     pulumi.String(a.TargetAverageValue),
				},
			}},
		}},
	}, opts...)
}

// AdapterRule is the prometheus-adapter rule that serves a workload's Pods
// metric to its HPA through the custom metrics API: the Prometheus series of
// the namespace's pods, summed per pod, under the metric's name. The stack
// exports one per model that scales on a Pods metric (metricsAdapterRules),
// to be added to the adapter's `rules:`.
func AdapterRule(namespace string, a Autoscaling) map[string]any {
	series := a.Series
	return map[string]any{
		"seriesQuery": fmt.Sprintf(`%s{namespace=%q,pod!=""}`, series, namespace),
		"resources": map[string]any{"overrides": map[string]any{
			"namespace": map[string]any{"resource": "namespace"},
			"pod":       map[string]any{"resource": "pod"},
		}},
		"name":         map[string]any{"matches": "^" + regexp.QuoteMeta(series) + "$", "as": a.MetricName},
		"metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
	}
}

// Replicas is the Deployment's spec.replicas: nil when an HPA owns the count,
// so that `pulumi up` never resets what the autoscaler chose.
func Replicas(replicas int, a Autoscaling) pulumi.IntPtrInput {
	if a.Enabled {
		return nil
	}
	return pulumi.IntPtr(replicas)
}

// SkipAwait is the pulumi-kubernetes annotation that makes `pulumi up` not wait
// for an object to become ready.
const SkipAwait = "pulumi.com/skipAwait"

// ServiceAwait are the annotations of a Service in front of a workload that
// `pulumi up` already awaits. pulumi-kubernetes waits for such a Service until
// its endpoints have ready addresses and then for ten more seconds of
// "settling" after their last change: measured, that was most of a dev
// `pulumi up` (BENCHMARKS.md, section 5). The workload's own await already
// proves its pods Ready, and the unit invariants prove each Service selects
// exactly its workload's pods, so the Service adds nothing but the wait.
func ServiceAwait() pulumi.StringMap {
	return pulumi.StringMap{SkipAwait: pulumi.String("true")}
}

// PatchForce is the pulumi-kubernetes annotation that makes a server-side
// apply take over fields another field manager owns, instead of failing.
const PatchForce = "pulumi.com/patchForce"

// ReplicaOptions are the Pulumi options of a Deployment whose replica count
// an HPA owns: spec.replicas is in ignoreChanges. The program leaves it out,
// and pulumi-kubernetes then handles the field as the HPA needs: while
// another field manager owns it (the HPA has scaled), it is left out of the
// apply; while `pulumi up` still owns it (autoscaling was just turned on),
// the live count is applied again, so turning autoscaling on never resets a
// running Deployment to the default of one replica.
func ReplicaOptions(a Autoscaling) []pulumi.ResourceOption {
	if !a.Enabled {
		return nil
	}
	return []pulumi.ResourceOption{pulumi.IgnoreChanges([]string{"spec.replicas"})}
}

// Adopted are the annotations of an object created through the platform's
// adopter provider (what the stack keeps on delete). Such an object may have
// been applied before by another provider instance, and each instance applies
// under a field manager of its own: without force, the next change of a field
// (a claim grown) conflicts with the stale manager that still co-owns it.
func Adopted() pulumi.StringMap { return forceApply() }

// ReplicaOwnership are the annotations of a Deployment that says who owns its
// replica count. When `pulumi up` owns it (autoscaling off), the apply is
// forced: after autoscaling is turned off, the HPA's field manager
// (kube-controller-manager, through the scale subresource) still owns
// spec.replicas, and an unforced apply of the configured count would fail
// with a field conflict. When the HPA owns it, nothing is forced.
func ReplicaOwnership(a Autoscaling) pulumi.StringMap {
	if a.Enabled {
		return nil
	}
	return forceApply()
}

func forceApply() pulumi.StringMap {
	return pulumi.StringMap{PatchForce: pulumi.String("true")}
}

// Kept are the options of an object the stack keeps on delete (a claim):
// retained, and created through adopter when one is given, so that a kept
// object of the same name is adopted instead of failing with AlreadyExists.
func Kept(adopter pulumi.ProviderResource) []pulumi.ResourceOption {
	opts := []pulumi.ResourceOption{pulumi.RetainOnDelete(true)}
	if adopter != nil {
		opts = append(opts, pulumi.Provider(adopter))
	}
	return opts
}
