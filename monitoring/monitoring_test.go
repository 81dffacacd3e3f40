package monitoring_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/labels"
	"llm-platform/internal/mock"
	"llm-platform/internal/stacktest"
	"llm-platform/monitoring"
)

// args are hand-written: the component needs no stack file.
var args = monitoring.Args{
	Namespace:                 "team-a",
	Labels:                    map[string]string{"release": "kube-prometheus-stack"},
	Interval:                  "15s",
	InferenceDeploymentPrefix: "inference-",
	CronJob:                   "pipeline-schedule",
	MissedAfterSeconds:        360,
	ClaimPattern:              "checkpoints-.+",
	Targets: []monitoring.Target{
		{Workload: labels.Workload{Name: "inference", Instance: "inference-mistral", Component: "serving"}, Port: "metrics", Path: "/metrics"},
	},
	Queues: []monitoring.QueueSignal{{Model: "mistral", Deployment: "inference-mistral", Series: "vllm:num_requests_waiting", Target: "8"}},
	Groups: []string{"inference-deepseek-v3"},
}

func TestMonitorsAndRuleFromArgs(t *testing.T) {
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := monitoring.New(ctx, "monitoring", args)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	objs := rec.Objects()
	require.Len(t, objs, 2)
	kinds := map[string]mock.Object{}
	for _, o := range objs {
		kinds[o.Kind()] = o
		assert.Equal(t, "team-a", o.Namespace())
		meta := o.Fields["metadata"].(map[string]any)
		assert.Equal(t, "kube-prometheus-stack", meta["labels"].(map[string]any)["release"], "the cluster's Prometheus selects it")
		assert.Equal(t, "monitoring.coreos.com/v1", o.Fields["apiVersion"])
	}
	pod := kinds["PodMonitor"].Fields["spec"].(map[string]any)
	assert.Equal(t, map[string]any{"app.kubernetes.io/name": "inference", "app.kubernetes.io/instance": "inference-mistral"},
		pod["selector"].(map[string]any)["matchLabels"], "selects exactly the workload's pods")
	assert.Equal(t, []any{map[string]any{"port": "metrics", "path": "/metrics", "interval": "15s"}}, pod["podMetricsEndpoints"])

	rule := kinds["PrometheusRule"]
	assert.Equal(t, monitoring.RuleName, rule.Name())
	groups := rule.Fields["spec"].(map[string]any)["groups"].([]any)
	rules := groups[0].(map[string]any)["rules"].([]any)
	assert.Len(t, rules, len(monitoring.Alerts(args)))
	for _, r := range rules {
		expr := r.(map[string]any)["expr"].(string)
		assert.Contains(t, expr, `namespace="team-a"`, "every alert is scoped to the stack's namespace")
	}
}

// Each alert says what is wrong and a runbook says what to do about it.
func TestEveryAlertHasARunbook(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "docs", "operations.md"))
	require.NoError(t, err)
	_, runbooks, found := strings.Cut(string(doc), "### Runbooks")
	require.True(t, found, "docs/operations.md has a Runbooks section")
	runbooks, _, _ = strings.Cut(runbooks, "\n## ")
	for _, a := range monitoring.Alerts(args) {
		assert.Contains(t, runbooks, "**"+a.Name+"**", "runbook of %s", a.Name)
		assert.Contains(t, []string{"critical", "warning"}, a.Severity, a.Name)
		assert.NotEmpty(t, a.For, "%s waits before it fires: a single scrape never pages", a.Name)
	}
}

func TestQueueAlertUsesTheServersOwnSeries(t *testing.T) {
	var queue monitoring.Alert
	for _, a := range monitoring.Alerts(args) {
		if a.Name == "LLMQueueAboveTarget" {
			queue = a
		}
	}
	assert.Equal(t, `avg(vllm:num_requests_waiting{namespace="team-a",pod=~"inference-mistral-.+"}) > 8`, queue.Expr)
	assert.Equal(t, map[string]string{"model": "mistral"}, queue.Labels)
}
