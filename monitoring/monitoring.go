// Package monitoring gives the platform the monitoring a team expects on day
// one, as prometheus-operator objects: a PodMonitor per workload that serves
// metrics, and one PrometheusRule with the platform's alerts. Every alert has
// a runbook line in docs/operations.md (section "Runbooks"). The objects need the
// prometheus-operator CRDs (monitoring.coreos.com/v1) on the cluster.
package monitoring

import (
	"fmt"
	"regexp"
	"strings"

	apiextensions "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/labels"
)

// Target is one workload to scrape.
type Target struct {
	// Workload whose pods are scraped.
	Workload labels.Workload
	// Port is the name of the container port serving metrics.
	Port string
	// Path of the metrics endpoint.
	Path string
}

// QueueSignal is a model's demand signal, alerted on when it stays above target.
type QueueSignal struct {
	// Model names the model, for the alert's labels.
	Model string
	// Deployment is the model's Deployment; its pods are named after it.
	Deployment string
	// Series is the Prometheus series of the queue depth per pod.
	Series string
	// Target is the average per pod the autoscaler aims for.
	Target string
}

// Args configures the monitoring of one stack.
type Args struct {
	// Namespace the stack runs in: every object and every alert is scoped to it.
	Namespace string
	// Labels are added to every monitor and rule, so that the cluster's
	// Prometheus selects them (for example release: kube-prometheus-stack).
	Labels map[string]string
	// Interval between scrapes, for example "30s".
	Interval string
	// Targets are the workloads to scrape.
	Targets []Target
	// InferenceDeploymentPrefix starts the name of every model's Deployment.
	InferenceDeploymentPrefix string
	// Pickers are the endpoint pickers' Deployments (pooled models' routing);
	// their pods are named after them.
	Pickers []string
	// Groups are the LeaderWorkerSets of multi-node models. Each has a
	// leaders' StatefulSet of its own name, whose ready replicas are the
	// groups that serve.
	Groups []string
	// Queues are the models that scale on a queue.
	Queues []QueueSignal
	// CronJob is the schedule's CronJob, and MissedAfterSeconds how late its
	// next run may be before it counts as missed.
	CronJob            string
	MissedAfterSeconds int
	// ClaimPattern is a regular expression matching the claims to watch for space.
	ClaimPattern string
}

// Monitoring is what New created.
type Monitoring struct {
	pulumi.ResourceState
	// Rule is the PrometheusRule's name.
	Rule pulumi.StringOutput
}

// RuleName names the PrometheusRule.
const RuleName = "llm-platform-alerts"

// New creates the PodMonitors and the PrometheusRule.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Monitoring, error) {
	m := &Monitoring{}
	if err := ctx.RegisterComponentResource("llm-platform:index:Monitoring", name, m, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(m)
	meta := func(objectName string, w labels.Workload) *metav1.ObjectMetaArgs {
		all := w.All()
		for k, v := range args.Labels {
			all[k] = v
		}
		return &metav1.ObjectMetaArgs{Name: pulumi.String(objectName), Namespace: pulumi.String(args.Namespace), Labels: pulumi.ToStringMap(all)}
	}
	for _, t := range args.Targets {
		_, err := apiextensions.NewCustomResource(ctx, name+"-"+t.Workload.Instance, &apiextensions.CustomResourceArgs{
			ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
			Kind:       pulumi.String("PodMonitor"),
			Metadata:   meta(t.Workload.Instance, t.Workload),
			OtherFields: map[string]any{"spec": map[string]any{
				"selector": map[string]any{"matchLabels": t.Workload.Selector()},
				"podMetricsEndpoints": []any{map[string]any{
					"port": t.Port, "path": t.Path, "interval": args.Interval,
				}},
			}},
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("monitoring: pod monitor %s: %w", t.Workload.Instance, err)
		}
	}
	rules := make([]any, 0)
	for _, a := range Alerts(args) {
		rules = append(rules, a.rule())
	}
	platform := labels.Workload{Name: "monitoring", Instance: RuleName, Component: "platform"}
	rule, err := apiextensions.NewCustomResource(ctx, name+"-alerts", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("PrometheusRule"),
		Metadata:   meta(RuleName, platform),
		OtherFields: map[string]any{"spec": map[string]any{
			"groups": []any{map[string]any{"name": "llm-platform", "rules": rules}},
		}},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("monitoring: rule: %w", err)
	}
	m.Rule = rule.Metadata.Name().Elem()
	return m, ctx.RegisterResourceOutputs(m, pulumi.Map{"rule": m.Rule})
}

// Alert is one alerting rule.
type Alert struct {
	// Name is the alert's name; docs/operations.md's runbooks list each one.
	Name string
	// Expr is the PromQL expression.
	Expr string
	// For is how long Expr must hold.
	For string
	// Severity is critical (someone acts now) or warning (someone looks today).
	Severity string
	// Summary says what is wrong, with template variables of the alert's labels.
	Summary string
	// Labels beyond severity (the model, for per-model alerts).
	Labels map[string]string
}

func (a Alert) rule() map[string]any {
	l := map[string]any{"severity": a.Severity}
	for k, v := range a.Labels {
		l[k] = v
	}
	return map[string]any{
		"alert":  a.Name,
		"expr":   a.Expr,
		"for":    a.For,
		"labels": l,
		"annotations": map[string]any{
			"summary": a.Summary,
			"runbook": "docs/operations.md, section Runbooks: " + a.Name,
		},
	}
}

// alternation is a regular expression matching exactly one of names.
func alternation(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return strings.Join(quoted, "|")
}

// Alerts are the platform's alerting rules for args.
func Alerts(args Args) []Alert {
	ns := fmt.Sprintf("namespace=%q", args.Namespace)
	inference := fmt.Sprintf(`%s,deployment=~"%s.+"`, ns, regexp.QuoteMeta(args.InferenceDeploymentPrefix))
	inferencePods := fmt.Sprintf(`%s,pod=~"%s.+"`, ns, regexp.QuoteMeta(args.InferenceDeploymentPrefix))
	var pickers string
	if len(args.Pickers) > 0 {
		pickers = alternation(args.Pickers)
		// A picker's Deployment starts like a model's: keep it out of the
		// models' alerts, it has its own.
		inference += fmt.Sprintf(`,deployment!~"%s"`, pickers)
		inferencePods += fmt.Sprintf(`,pod!~"(%s)-.+"`, pickers)
	}
	alerts := []Alert{
		{
			Name:     "LLMInferenceNoReadyReplica",
			Expr:     fmt.Sprintf("kube_deployment_status_replicas_available{%s} == 0", inference),
			For:      "5m",
			Severity: "critical",
			Summary:  "{{ $labels.deployment }} has no ready replica: the model serves nothing",
		},
		{
			Name:     "LLMRolloutStuck",
			Expr:     fmt.Sprintf(`kube_deployment_status_condition{%s,condition="Progressing",status="false"} == 1`, ns),
			For:      "1m",
			Severity: "warning",
			Summary:  "the rollout of {{ $labels.deployment }} passed its progress deadline",
		},
		{
			Name: "LLMAutoscalerAtMaximum",
			Expr: fmt.Sprintf("kube_horizontalpodautoscaler_status_current_replicas{%s} >= on (namespace, horizontalpodautoscaler) kube_horizontalpodautoscaler_spec_max_replicas{%s}", ns, ns),
			For:  "15m", Severity: "warning",
			Summary: "{{ $labels.horizontalpodautoscaler }} has run at its maximum for 15 minutes: demand is above what it may scale to",
		},
		{
			Name:     "LLMPipelineRunFailed",
			Expr:     fmt.Sprintf(`kube_job_failed{%s,condition="true"} == 1`, ns),
			For:      "1m",
			Severity: "warning",
			Summary:  "the run {{ $labels.job_name }} failed",
		},
		{
			Name: "LLMScheduledRunMissed",
			Expr: fmt.Sprintf(`time() - kube_cronjob_next_schedule_time{%[1]s,cronjob=%[2]q} > %[3]d and on (namespace, cronjob) kube_cronjob_spec_suspend{%[1]s,cronjob=%[2]q} == 0`,
				ns, args.CronJob, args.MissedAfterSeconds),
			For: "1m", Severity: "warning",
			Summary: "the scheduled pipeline run of {{ $labels.cronjob }} did not start",
		},
		{
			Name:     "LLMInferencePodsUnschedulable",
			Expr:     fmt.Sprintf(`kube_pod_status_unschedulable{%s} == 1`, inferencePods),
			For:      "5m",
			Severity: "warning",
			Summary:  "{{ $labels.pod }} is Pending: no GPU node has room for it, or no free device its claim selects",
		},
		{
			Name: "LLMClaimAlmostFull",
			Expr: fmt.Sprintf(`kubelet_volume_stats_used_bytes{%[1]s,persistentvolumeclaim=~%[2]q} / on (namespace, persistentvolumeclaim) kubelet_volume_stats_capacity_bytes{%[1]s,persistentvolumeclaim=~%[2]q} > 0.85`,
				ns, args.ClaimPattern),
			For: "5m", Severity: "warning",
			Summary: "the claim {{ $labels.persistentvolumeclaim }} is more than 85% full",
		},
	}
	if len(args.Groups) > 0 {
		alerts = append(alerts, Alert{
			Name:     "LLMInferenceNoReadyGroup",
			Expr:     fmt.Sprintf(`kube_statefulset_status_replicas_ready{%s,statefulset=~"%s"} == 0`, ns, alternation(args.Groups)),
			For:      "5m",
			Severity: "critical",
			Summary:  "{{ $labels.statefulset }} has no ready leader: the multi-node model serves nothing",
		})
	}
	if pickers != "" {
		alerts = append(alerts, Alert{
			Name: "LLMEndpointPickerNoReadyReplica",
			Expr: fmt.Sprintf(`kube_deployment_status_replicas_available{%s,deployment=~"%s"} == 0`, ns, pickers),
			For:  "2m", Severity: "critical",
			Summary: "the endpoint picker {{ $labels.deployment }} has no ready replica: the gateway refuses its model's requests (FailClose) or routes them blind (FailOpen)",
		})
	}
	for _, q := range args.Queues {
		alerts = append(alerts, Alert{
			Name: "LLMQueueAboveTarget",
			Expr: fmt.Sprintf(`avg(%s{%s,pod=~"%s-.+"}) > %s`, q.Series, ns, regexp.QuoteMeta(q.Deployment), q.Target),
			For:  "10m", Severity: "warning",
			Summary: "requests waiting per replica of " + q.Model + " have been above the target (" + q.Target + ") for 10 minutes",
			Labels:  map[string]string{"model": q.Model},
		})
	}
	return alerts
}
