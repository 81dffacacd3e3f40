package config_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/stacktest"
)

// multiNodeProd is prod with its 70B model on groups of two nodes.
func multiNodeProd(t *testing.T) *stacktest.Config { return stacktest.MultiNodeProd(t) }

func TestMultiNodeModelIsValid(t *testing.T) {
	res, err := load(multiNodeProd(t))
	require.NoError(t, err)
	assert.Equal(t, 2, res.Config.Serving.Models[0].Nodes)
	assert.Equal(t, 1, res.Config.Serving.Models[1].Nodes, "nodes defaults to 1")
	for _, w := range res.Warnings {
		assert.NotContains(t, w, "serving.models[0].scheduling", "a gang scheduler is named")
	}
}

func TestMultiNodeWithoutGangSchedulerIsWarnedAbout(t *testing.T) {
	c := multiNodeProd(t)
	c.Set(t, "serving.models[0].scheduling", nil)
	res, err := load(c)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(res.Warnings, "\n"),
		"llm-platform:serving.models[0].scheduling: unset: the default scheduler places a group's 2 pods one by one, so a partial group can hold its GPUs while the rest stays Pending")
}

// Only Volcano gets PodGroups from LeaderWorkerSet; any other scheduler
// name is passed through with a warning.
func TestGangSchedulingWarnings(t *testing.T) {
	for _, tc := range []struct {
		name       string
		scheduling map[string]any
		warned     bool
	}{
		{"volcano", map[string]any{"schedulerName": "volcano"}, false},
		{"volcano with a queue", map[string]any{"schedulerName": "volcano", "queueName": "inference"}, false},
		{"another scheduler", map[string]any{"schedulerName": "scheduler-plugins-scheduler"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := multiNodeProd(t)
			c.Set(t, "serving.models[0].scheduling", tc.scheduling)
			res, err := load(c)
			require.NoError(t, err)
			warnings := strings.Join(res.Warnings, "\n")
			if tc.warned {
				assert.Contains(t, warnings, "llm-platform:serving.models[0].scheduling.schedulerName: scheduler-plugins-scheduler: LeaderWorkerSet creates a group's PodGroup only for volcano")
			} else {
				assert.NotContains(t, warnings, "serving.models[0].scheduling")
			}
		})
	}
}

// A group never surges, spare capacity or not; the preview says so.
func TestMultiNodeSpareCapacityIsWarnedAbout(t *testing.T) {
	res, err := load(multiNodeProd(t))
	require.NoError(t, err)
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "llm-platform:serving.models[0].nodes: 2 with gpuPool.spareCapacity: the model's groups roll one at a time in place (maxSurge 0, maxUnavailable 1)")
}

// The quota must hold every group at the autoscaling maximum, and no group
// more (groups never surge): 6 groups x 2 pods x 4 GPUs, plus the embedding
// model's 2 replicas and one more.
func TestMultiNodeQuotaCountsGroups(t *testing.T) {
	c := multiNodeProd(t)
	c.Set(t, "namespace.quota.gpus", 40)
	_, err := load(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "llm-platform:namespace.quota.gpus: 40 is invalid: the stack needs 51 at its autoscaling maximum during a rollout (inference-llama-3-70b: 12 pods x 4, inference-bge-embed: 3 pods x 1)")
}

func TestMultiNodeBadInputIsRefused(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]any
		want string
	}{
		{"no nodes", map[string]any{"serving.models[0].nodes": 0},
			"llm-platform:serving.models[0].nodes: 0 is invalid: must be at least 1"},
		{"gpus above a node", map[string]any{"serving.models[0].gpus": 16, "serving.models[0].args": []any{"--tensor-parallel-size", "8", "--pipeline-parallel-size", "4"}},
			"llm-platform:serving.models[0].gpus: 16 is invalid: must be at most gpuPool.gpusPerNode (8): with nodes 2, gpus is per node of a replica"},
		{"a group larger than the pool", map[string]any{"gpuPool.maxNodes": 2, "serving.models[0].nodes": 3, "serving.models[0].args": []any{"--tensor-parallel-size", "4", "--pipeline-parallel-size", "3"}},
			"llm-platform:serving.models[0].nodes: 3 is invalid: must be at most gpuPool.maxNodes (2): a group of 3 nodes could never be placed"},
		{"a cache a group cannot share", map[string]any{"serving.models[0].modelCache.accessMode": "ReadWriteOnce"},
			"llm-platform:serving.models[0].modelCache.accessMode: \"ReadWriteOnce\" is invalid: must be ReadWriteMany when nodes is 2: every pod of a group reads the weights from the one cache, each on its own node"},
		{"parallel sizes that miss the group", map[string]any{"serving.models[0].args": []any{"--tensor-parallel-size", "4", "--pipeline-parallel-size", "3"}},
			"llm-platform:serving.models[0].gpus: 4 is invalid: times nodes (4 x 2 = 8) must equal the GPUs serving.models[0].args asks vLLM for (--tensor-parallel-size 4 x --pipeline-parallel-size 3 = 12)"},
		{"no parallel sizes", map[string]any{"serving.models[0].args": []any{"--model", "$(MODEL_PATH)"}},
			"llm-platform:serving.models[0].args: [\"--model\",\"$(MODEL_PATH)\"] is invalid: must set the parallel sizes when nodes is 2"},
		{"a launch flag the stack writes", map[string]any{"serving.models[0].args": []any{"--tensor-parallel-size", "4", "--pipeline-parallel-size", "2", "--node-rank=0"}},
			"must not set --node-rank when nodes > 1: the stack writes the group's launch"},
		{"Ray asked for", map[string]any{"serving.models[0].args": []any{"--tensor-parallel-size", "4", "--pipeline-parallel-size", "2", "--distributed-executor-backend", "ray"}},
			"must not ask for --distributed-executor-backend ray when nodes > 1"},
		{"tensor parallel across nodes", map[string]any{"serving.models[0].args": []any{"--tensor-parallel-size", "8"}},
			"asks for --tensor-parallel-size 8, more than the 4 GPUs of one node: tensor parallelism all-reduces on every layer and belongs within a node"},
		{"a name too long for the groups' StatefulSets", map[string]any{"serving.models[0].name": strings.Repeat("a", 40), "serving.models[0].autoscaling.maxReplicas": 11},
			"must be at most 39 characters when nodes > 1: each group's StatefulSet is named inference-" + strings.Repeat("a", 40) + "-<group index>"},
		{"a scheduler name that is not a name", map[string]any{"serving.models[0].scheduling.schedulerName": "Volcano Scheduler"},
			"llm-platform:serving.models[0].scheduling.schedulerName: \"Volcano Scheduler\" is invalid: must be a DNS-1123 subdomain"},
		{"a pool size of zero", map[string]any{"gpuPool.maxNodes": 0},
			"llm-platform:gpuPool.maxNodes: 0 is invalid: must be at least 1"},
		{"Kueue named as a scheduler", map[string]any{"serving.models[0].scheduling.schedulerName": "kueue"},
			"llm-platform:serving.models[0].scheduling.schedulerName: \"kueue\" is invalid: names no scheduler: Kueue admits workloads and leaves them to a scheduler"},
		{"a queue on a one-node model", map[string]any{"serving.models[1].scheduling.queueName": "inference"},
			"llm-platform:serving.models[1].scheduling.queueName: \"inference\" is invalid: applies to a model of groups (nodes > 1)"},
		{"a queue that cannot be a label value", map[string]any{"serving.models[0].scheduling.queueName": "Inference Queue"},
			"llm-platform:serving.models[0].scheduling.queueName: \"Inference Queue\" is invalid: must be a DNS-1123 subdomain"},
		{"data parallel across a group", map[string]any{"serving.models[0].gpus": 2, "serving.models[0].args": []any{"--tensor-parallel-size", "2", "--data-parallel-size", "2"}},
			"must not set --data-parallel-size 2 when nodes > 1: data parallel ranks across a group talk over vLLM's data-parallel RPC and master ports"},
		{"tensor parallel groups that straddle nodes", map[string]any{"serving.models[0].gpus": 6, "serving.models[0].args": []any{"--tensor-parallel-size", "4", "--pipeline-parallel-size", "3"}},
			"asks for --tensor-parallel-size 4, which does not divide the 6 GPUs of a node: some tensor-parallel groups would straddle two nodes"},
		{"a model named like a group's objects", map[string]any{"serving.models[1].name": "llama-3-70b-1"},
			"llm-platform:serving.models[1].name: \"llama-3-70b-1\" is invalid: must not be llama-3-70b-<group index below 6>: models[0] runs up to 6 groups (nodes 2), and LeaderWorkerSet names each group's StatefulSet and Service inference-llama-3-70b-<group index>"},
		{"groups the pool cannot hold at their maximum", map[string]any{"gpuPool.maxNodes": 4, "serving.models[0].scheduling": nil},
			"llm-platform:serving.models[0].autoscaling.maxReplicas: 6 is invalid: 6 groups of 2 pods with 4 GPUs each need 12 pods, and gpuPool.maxNodes 4 of 8 GPUs holds 8 such pods: autoscaling.maxReplicas beyond the pool would start partly"},
		{"a Kueue queue", map[string]any{"serving.models[0].scheduling": map[string]any{"queueName": "inference"}},
			"llm-platform:serving.models[0].scheduling.queueName: \"inference\" is invalid: needs schedulerName \"volcano\": it names the Volcano Queue of the groups' PodGroups. Kueue is not supported"},
		{"Volcano with an exclusive topology", map[string]any{"gpuPool.groupDomainLabel": "nvidia.com/gpu.clique"},
			"llm-platform:serving.models[0].scheduling.schedulerName: \"volcano\" is invalid: cannot be volcano with gpuPool.groupDomainLabel (nvidia.com/gpu.clique): LeaderWorkerSet creates a group's workers only once its leader is placed in a domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := multiNodeProd(t)
			for k, v := range tc.set {
				c.Set(t, k, v)
			}
			_, err := load(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// Names that merely look like a group's are free: an index the model never
// reaches, or one with a leading zero, which LeaderWorkerSet never writes.
func TestGroupLikeNamesThatCannotCollideAreAccepted(t *testing.T) {
	for _, name := range []string{"llama-3-70b-6", "llama-3-70b-01", "llama-3-70b-v1"} {
		c := multiNodeProd(t)
		c.Set(t, "serving.models[1].name", name)
		_, err := load(c)
		assert.NoError(t, err, name)
	}
}

// Under Volcano, groups beyond the pool wait whole: a warning, not a refusal.
func TestGroupsBeyondThePoolUnderVolcanoAreWarnedAbout(t *testing.T) {
	c := multiNodeProd(t)
	c.Set(t, "gpuPool.maxNodes", 4)
	res, err := load(c)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(res.Warnings, "\n"), "llm-platform:serving.models[0].autoscaling.maxReplicas: 6: 6 groups of 2 pods with 4 GPUs each need 12 pods, and gpuPool.maxNodes 4 of 8 GPUs holds 8 such pods: autoscaling.maxReplicas beyond the pool never start")
}
