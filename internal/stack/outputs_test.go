package stack_test

import (
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/config"
	"llm-platform/internal/mock"
	"llm-platform/internal/stack"
	"llm-platform/internal/stacktest"
)

// The outputs users read with `pulumi stack output`: values are recorded while
// the program runs and asserted after RunErr returns.
func TestStackOutputs(t *testing.T) {
	c := stacktest.Load(t, "prod")
	res, err := config.Load(c.Lookup, c.IsSecret)
	require.NoError(t, err)

	var mu sync.Mutex
	got := map[string]any{}
	record := func(key string, out pulumi.Output) {
		out.ApplyT(func(v any) any {
			mu.Lock()
			defer mu.Unlock()
			got[key] = v
			return v
		})
	}
	err = pulumi.RunErr(func(ctx *pulumi.Context) error {
		s, err := stack.Build(ctx, res.Config, config.Secrets{}, config.Cluster{})
		if err != nil {
			return err
		}
		record("namespace", s.Platform.Namespace)
		for _, m := range s.Models {
			record("endpoint "+m.Model, m.Endpoint)
			record("cache "+m.Model, m.CacheClaim)
		}
		record("checkpointService", s.Checkpoint.ServiceName)
		record("cronJob", s.Schedule.CronJobName)
		record("dataClaim", s.Pipeline.DataClaim)
		record("adapter rules", pulumi.ToOutput(s.AdapterRules))
		stack.Export(ctx, s)
		return nil
	}, pulumi.WithMocks("llm-platform", "prod", mock.NewRecorder()))
	require.NoError(t, err)

	assert.Equal(t, map[string]any{
		"namespace":            "llm-platform",
		"endpoint llama-3-70b": "http://inference-llama-3-70b.llm-platform.svc.cluster.local:8000",
		"endpoint bge-embed":   "http://inference-bge-embed.llm-platform.svc.cluster.local:8000",
		"cache llama-3-70b":    "model-cache-llama-3-70b-rwx-efs-sc",
		"cache bge-embed":      "model-cache-bge-embed-rwx-efs-sc",
		"checkpointService":    "checkpoint",
		"cronJob":              "pipeline-schedule",
		"dataClaim":            "pipeline-data-rwx-efs-sc",
		// What prometheus-adapter needs to serve prod's queue depth: vLLM's
		// series, per pod of the namespace, under the HPA's metric name.
		"adapter rules": []map[string]any{{
			"seriesQuery": `vllm:num_requests_waiting{namespace="llm-platform",pod!=""}`,
			"resources": map[string]any{"overrides": map[string]any{
				"namespace": map[string]any{"resource": "namespace"},
				"pod":       map[string]any{"resource": "pod"},
			}},
			"name":         map[string]any{"matches": "^vllm:num_requests_waiting$", "as": "vllm_num_requests_waiting"},
			"metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
		}},
	}, got)
}
