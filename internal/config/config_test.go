package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/config"
	"llm-platform/internal/stacktest"
)

func load(c *stacktest.Config) (config.Result, error) {
	return config.Load(c.Lookup, c.IsSecret)
}

func TestStackFilesAreValid(t *testing.T) {
	for _, stack := range stacktest.Stacks() {
		t.Run(stack, func(t *testing.T) {
			res, err := load(stacktest.Load(t, stack))
			require.NoError(t, err)
			// The quickstart is a dev-class stack, named for its purpose.
			want := map[string]string{"quickstart": "dev"}[stack]
			if want == "" {
				want = stack
			}
			assert.Equal(t, want, res.Config.Environment)
		})
	}
}

// Each case starts from the valid dev (or prod) stack and breaks one thing.
func TestInvalidConfigIsRejectedWithKeyValueAndRule(t *testing.T) {
	cases := []struct {
		name  string
		stack string // default dev
		path  string
		value any
		want  string
	}{
		{"unknown environment", "", "environment", "production", `llm-platform:environment: "production" is invalid: must be one of dev, staging, prod`},
		{"namespace not DNS-1123", "", "namespace.name", "LLM_Platform", `llm-platform:namespace.name: "LLM_Platform" is invalid: must be a DNS-1123 label`},
		{"quota cpu unparsable", "", "namespace.quota.cpu", "lots", `llm-platform:namespace.quota.cpu: "lots" is invalid: must be a Kubernetes quantity`},
		{"quota pods zero", "", "namespace.quota.pods", 0, `llm-platform:namespace.quota.pods: 0 is invalid: must be at least 1`},
		{"GPU quota missing", "", "namespace.quota.gpus", nil, `llm-platform:namespace.quota.gpus: null is invalid: required: the stack needs 2 at its autoscaling maximum during a rollout`},
		{"negative GPU quota answered with the demand", "", "namespace.quota.gpus", -1, `llm-platform:namespace.quota.gpus: -1 is invalid: must be at least 0; for example 2`},
		{"quota too small for GPUs", "prod", "namespace.quota.gpus", 8, `llm-platform:namespace.quota.gpus: 8 is invalid: the stack needs 31 at its autoscaling maximum during a rollout (inference-llama-3-70b: 7 pods x 4, inference-bge-embed: 3 pods x 1)`},
		{"GPU quota leaves no room for a draining pod", "", "namespace.quota.gpus", 1, `llm-platform:namespace.quota.gpus: 1 is invalid: the stack needs 2 at its autoscaling maximum during a rollout (inference-llama-3-8b: 2 pods x 1)`},
		{"quota too small for memory", "", "namespace.quota.memory", "8Gi", `llm-platform:namespace.quota.memory: "8Gi" is invalid: the stack needs memory requests of 55808Mi at its autoscaling maximum during a rollout; for example "55808Mi"`},
		{"inference client namespace", "", "namespace.network.inferenceClients.namespaces[0]", "Gateway!", `llm-platform:namespace.network.inferenceClients.namespaces[0]: "Gateway!" is invalid: must be a DNS-1123 label`},
		{"egress CIDR", "", "namespace.network.egress[0].cidr", "10.40.0.0", `llm-platform:namespace.network.egress[0].cidr: "10.40.0.0" is invalid: must be a CIDR; for example "10.20.0.0/16"`},
		{"egress port", "", "namespace.network.egress[0].ports[0]", 70000, `llm-platform:namespace.network.egress[0].ports[0]: 70000 is invalid: must be a port from 1 to 65535`},
		{"gpu pool label key", "", "gpuPool.nodeLabelKey", "not a key", `llm-platform:gpuPool.nodeLabelKey: "not a key" is invalid: must be a label key`},
		{"gpu pool label value missing", "", "gpuPool.nodeLabelValue", "", `llm-platform:gpuPool.nodeLabelValue: "" is invalid: required`},
		{"taint effect", "", "gpuPool.taintEffect", "NoScheduleAtAll", `llm-platform:gpuPool.taintEffect: "NoScheduleAtAll" is invalid: must be one of NoSchedule, PreferNoSchedule, NoExecute`},
		{"gpu resource without domain", "", "gpuPool.resourceName", "gpu", `llm-platform:gpuPool.resourceName: "gpu" is invalid: must be an extended resource name with a domain`},
		{"gpus per node zero", "", "gpuPool.gpusPerNode", 0, `llm-platform:gpuPool.gpusPerNode: 0 is invalid: must be at least 1`},
		{"no models", "", "serving.models", []any{}, `llm-platform:serving.models: [] is invalid: must list at least one model`},
		{"model name not DNS-1035", "", "serving.models[0].name", "3-llama", `llm-platform:serving.models[0].name: "3-llama" is invalid: must be a DNS-1035 label of at most 40 characters`},
		{"model name too long", "", "serving.models[0].name", strings.Repeat("a", 41), `is invalid: must be a DNS-1035 label of at most 40 characters`},
		{"duplicate model", "prod", "serving.models[1].name", "llama-3-70b", `llm-platform:serving.models[1].name: "llama-3-70b" is invalid: must be unique; models[0] has it too`},
		{"image missing", "", "serving.models[0].image", "", `llm-platform:serving.models[0].image: "" is invalid: required: an image reference`},
		{"image with space", "", "serving.models[0].image", "vllm/vllm openai", `llm-platform:serving.models[0].image: "vllm/vllm openai" is invalid: must be an image reference: must not contain white space`},
		{"prod refuses latest", "prod", "serving.models[0].image", "vllm/vllm-openai:latest", `llm-platform:serving.models[0].image: "vllm/vllm-openai:latest" is invalid: prod must not use :latest; pin a version or a digest`},
		{"prod refuses untagged", "prod", "pipeline.ingestion.image", "ghcr.io/llm-platform/ingest", `llm-platform:pipeline.ingestion.image: "ghcr.io/llm-platform/ingest" is invalid: prod requires a pinned tag or digest; an untagged image means :latest`},
		{"prod refuses untagged with registry port", "prod", "checkpoint.image", "registry.local:5000/ckpt", `llm-platform:checkpoint.image: "registry.local:5000/ckpt" is invalid: prod requires a pinned tag or digest`},
		{"negative gpus", "", "serving.models[0].gpus", -1, `llm-platform:serving.models[0].gpus: -1 is invalid: must be at least 1`},
		{"more gpus than a node has", "", "serving.models[0].gpus", 2, `llm-platform:serving.models[0].gpus: 2 is invalid: must be at most gpuPool.gpusPerNode (1): a pod cannot span nodes; for a model larger than one node, set nodes and give gpus per node`},
		{"zero replicas", "", "serving.models[0].replicas", 0, `llm-platform:serving.models[0].replicas: 0 is invalid: must be at least 1`},
		{"negative replicas", "", "pipeline.transformation.replicas", -2, `llm-platform:pipeline.transformation.replicas: -2 is invalid: must be at least 1`},
		{"hpa min above max", "prod", "serving.models[0].autoscaling.minReplicas", 7, `llm-platform:serving.models[0].autoscaling.maxReplicas: 6 is invalid: must be at least minReplicas (7)`},
		{"hpa min zero", "prod", "pipeline.transformation.autoscaling.minReplicas", 0, `llm-platform:pipeline.transformation.autoscaling.minReplicas: 0 is invalid: must be at least 1`},
		{"hpa unknown metric", "prod", "serving.models[0].autoscaling.metric", "gpu", `llm-platform:serving.models[0].autoscaling.metric: "gpu" is invalid: must be cpu or pods`},
		{"hpa pods metric without name", "prod", "serving.models[0].autoscaling.metricName", "", `llm-platform:serving.models[0].autoscaling.metricName: "" is invalid: required with metric pods`},
		{"hpa cpu target out of range", "prod", "pipeline.transformation.autoscaling.targetCPUUtilization", 150, `llm-platform:pipeline.transformation.autoscaling.targetCPUUtilization: 150 is invalid: must be a percentage from 1 to 100`},
		{"pdb blocks every eviction", "prod", "serving.models[0].disruption.maxUnavailable", 0, `llm-platform:serving.models[0].disruption.maxUnavailable: "0" is invalid: must be at least 1: 0 would block every eviction, so no node could ever be drained`},
		{"pdb 0% blocks every eviction", "prod", "checkpoint.disruption.maxUnavailable", "0%", `llm-platform:checkpoint.disruption.maxUnavailable: "0%" is invalid: must be a percentage from 1% to 100%: 0% would block every eviction`},
		{"pdb not a number", "", "serving.models[0].disruption.maxUnavailable", "one", `llm-platform:serving.models[0].disruption.maxUnavailable: "one" is invalid: must be a count or a percentage`},
		{"unparsable memory", "", "serving.models[0].resources.requests.memory", "24 GB", `llm-platform:serving.models[0].resources.requests.memory: "24 GB" is invalid: must be a Kubernetes quantity; for example "2Gi"`},
		{"request above limit", "", "serving.models[0].resources.limits", map[string]any{"cpu": "2"}, `llm-platform:serving.models[0].resources.requests.cpu: "4" is invalid: must not exceed limits.cpu (2)`},
		{"missing ephemeral storage", "", "pipeline.ingestion.resources.requests.ephemeralStorage", nil, `llm-platform:pipeline.ingestion.resources.requests.ephemeralStorage: null is invalid: required: a quantity`},
		{"startup budget shorter than a liveness period", "", "serving.models[0].modelLoadBudgetSeconds", 5, `llm-platform:serving.models[0].modelLoadBudgetSeconds: 5 is invalid: must be at least one liveness period (livenessPeriodSeconds = 10)`},
		{"shm as large as memory", "", "serving.models[0].shmSize", "24Gi", `llm-platform:serving.models[0].shmSize: "24Gi" is invalid: must be less than the memory limit (24Gi)`},
		{"shared RWO cache across replicas", "", "serving.models[0].replicas", 2, `llm-platform:serving.models[0].modelCache.accessMode: "ReadWriteOnce" is invalid: must be ReadWriteMany or ReadOnlyMany when the model runs more than one replica`},
		{"bad access mode", "", "checkpoint.storage.accessMode", "ReadWrite", `llm-platform:checkpoint.storage.accessMode: "ReadWrite" is invalid: must be ReadWriteOnce, ReadWriteMany or ReadOnlyMany`},
		{"prod shared claim RWO", "prod", "pipeline.storage.accessMode", "ReadWriteOnce", `llm-platform:pipeline.storage.accessMode: "ReadWriteOnce" is invalid: the shared claim is ReadWriteOnce`},
		{"zero storage", "", "pipeline.storage.size", "0", `llm-platform:pipeline.storage.size: "0" is invalid: must be greater than zero`},
		{"memory without a unit", "", "serving.models[0].resources.requests.memory", "24", `llm-platform:serving.models[0].resources.requests.memory: "24" is invalid: is 24 bytes: a number without a unit is bytes in Kubernetes; write the unit (Mi, Gi, Ti); for example "24Gi"`},
		{"claim size without a unit", "", "pipeline.storage.size", 20, `llm-platform:pipeline.storage.size: "20" is invalid: is 20 bytes: a number without a unit is bytes in Kubernetes`},
		{"model cache class not a name", "", "serving.models[0].modelCache.storageClass", "EFS_sc", `llm-platform:serving.models[0].modelCache.storageClass: "EFS_sc" is invalid: must be a DNS-1123 subdomain`},
		{"capitals read as a registry host", "", "serving.models[0].image", "VLLM/vllm-openai:v0.6.3", `llm-platform:serving.models[0].image: "VLLM/vllm-openai:v0.6.3" is invalid: must be an image reference: "VLLM" would be read as a registry host because of its capitals, and repository names are lowercase; for example "vllm/vllm-openai:v0.6.3"`},
		{"port out of range named once", "", "serving.models[0].port", 65536, `llm-platform:serving.models[0].port: 65536 is invalid: must be a port from 1 to 65535`},
		{"port out of range", "", "serving.models[0].port", 0, `llm-platform:serving.models[0].port: 0 is invalid: must be a port from 1 to 65535`},
		{"readiness path relative", "", "serving.models[0].readinessPath", "v1/models", `llm-platform:serving.models[0].readinessPath: "v1/models" is invalid: must be an HTTP path starting with /`},
		{"liveness same as readiness", "", "serving.models[0].livenessPath", "/v1/models", `llm-platform:serving.models[0].livenessPath: "/v1/models" is invalid: must differ from readinessPath: a pod too busy to be ready would also be restarted`},
		{"checkpoint liveness same as readiness", "", "checkpoint.livenessPath", "/readyz", `llm-platform:checkpoint.livenessPath: "/readyz" is invalid: must differ from readinessPath`},
		{"cache over /tmp", "", "serving.models[0].modelCache.mountPath", "/tmp", `llm-platform:serving.models[0].modelCache.mountPath: "/tmp" is invalid: must not be a path the platform or the kernel uses (/tmp)`},
		{"claim over the image's /etc", "", "pipeline.mountPath", "/etc", `llm-platform:pipeline.mountPath: "/etc" is invalid: must not be a directory of the image's system (/etc): a volume mounted there hides what the image has`},
		{"short commit", "", "serving.models[0].source.revision", "5f0b02c", `llm-platform:serving.models[0].source.revision: "5f0b02c" is invalid: looks like a short commit: write all 40 hex digits`},
		{"topology spread value", "", "serving.models[0].topologySpread.zone", "Always", `llm-platform:serving.models[0].topologySpread.zone: "Always" is invalid: must be ScheduleAnyway, DoNotSchedule or None`},
		{"negative drain", "", "serving.models[0].drain.drainSeconds", 0, `llm-platform:serving.models[0].drain.drainSeconds: 0 is invalid: must be at least 1`},
		{"bad cron", "", "cron.schedule", "every day at two", `llm-platform:cron.schedule: "every day at two" is invalid: must be a cron schedule of five fields`},
		{"six-field cron", "", "cron.schedule", "0 0 2 * * *", `llm-platform:cron.schedule: "0 0 2 * * *" is invalid: must be a cron schedule of five fields`},
		{"time zone inside schedule", "", "cron.schedule", "CRON_TZ=UTC 0 2 * * *", `llm-platform:cron.schedule: "CRON_TZ=UTC 0 2 * * *" is invalid: must not set a time zone inside the schedule; use cron.timeZone`},
		{"bad time zone", "", "cron.timeZone", "Mars/Olympus", `llm-platform:cron.timeZone: "Mars/Olympus" is invalid: must be an IANA time zone name; for example "Europe/Berlin"`},
		{"starting deadline too short", "", "cron.startingDeadlineSeconds", 5, `llm-platform:cron.startingDeadlineSeconds: 5 is invalid: must be at least 10`},
		{"parallelism above completions", "prod", "pipeline.ingestion.parallelism", 9, `llm-platform:pipeline.ingestion.parallelism: 9 is invalid: must be at most completions (8): extra pods would have no shard`},
		{"exit code zero", "", "pipeline.ingestion.failFastExitCodes", []any{0}, `llm-platform:pipeline.ingestion.failFastExitCodes[0]: 0 is invalid: must be an exit code from 1 to 255 (0 means success)`},
		{"negative backoff", "", "pipeline.ingestion.backoffLimit", -1, `llm-platform:pipeline.ingestion.backoffLimit: -1 is invalid: must be at least 0`},
		{"unknown key", "", "serving.models[0].replcas", 2, `llm-platform:serving.models[0].replcas: "replcas" is invalid: unknown key; valid keys are args, autoscaling`},
		{"wrong type", "", "serving.models[0].gpus", "two", `llm-platform:serving.models[0].gpus: "two" is invalid: must be a whole number`},
		{"quantity as a list", "", "serving.models[0].shmSize", []any{"1Gi"}, `llm-platform:serving.models[0].shmSize: ["1Gi"] is invalid: must be a quantity such as "500m" or "16Gi"`},
		{"budget as a list", "", "checkpoint.disruption.maxUnavailable", []any{1}, `llm-platform:checkpoint.disruption.maxUnavailable: [1] is invalid: must be a count or a percentage`},
		{"quoted whole number", "", "serving.models[0].gpus", "1", `llm-platform:serving.models[0].gpus: "1" is invalid: must be a whole number, written without quotes: quoted, YAML reads it as a string (with ` + "`pulumi config set`, add `--type int`); for example 1"},
		{"fractional count", "", "checkpoint.replicas", 1.5, `llm-platform:checkpoint.replicas: 1.5 is invalid: must be a whole number`},
		{"object where a list belongs", "", "serving.models", map[string]any{"name": "x"}, `llm-platform:serving.models: {"name":"x"} is invalid: must be a list`},
		{"missing section", "", "checkpoint", nil, `llm-platform:checkpoint: null is invalid: required: the stack file has no llm-platform:checkpoint section`},
		{"missing environment", "", "environment", nil, `llm-platform:environment: null is invalid: required: one of dev, staging, prod`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stack := tc.stack
			if stack == "" {
				stack = "dev"
			}
			c := stacktest.Load(t, stack).Set(t, tc.path, tc.value)
			_, err := load(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
}

// A value refused while decoding leaves a zero behind; the zero is not the
// user's and is never refused a second time.
func TestAValueRefusedAsWrittenIsNotRefusedAgainAsZero(t *testing.T) {
	for _, tc := range []struct {
		path  string
		value any
	}{
		{"namespace.network.egress[0].ports", []any{"https"}},
		{"namespace.quota.gpus", 1000000000000},
		{"serving.models[0].gpus", "two"},
	} {
		_, err := load(stacktest.Load(t, "dev").Set(t, tc.path, tc.value))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), " 0 is invalid", "%s: only what was written is named", tc.path)
	}
}

// The metrics port that was not written is the serving port: a bad port is
// named once, at the key the user wrote.
func TestABadPortIsNamedOnce(t *testing.T) {
	_, err := load(stacktest.Load(t, "dev").Set(t, "serving.models[0].port", 65536))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "metricsPort")
}

func TestQuantitiesMayBeNumbers(t *testing.T) {
	c := stacktest.Load(t, "dev").Set(t, "serving.models[0].resources.requests.cpu", 4)
	res, err := load(c)
	require.NoError(t, err)
	assert.Equal(t, config.Quantity("4"), res.Config.Serving.Models[0].Resources.Requests.CPU)
	assert.Equal(t, config.Quantity("4"), res.Config.Serving.Models[0].Resources.Limits.CPU)
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	c := stacktest.Load(t, "dev").
		Set(t, "serving.models[0].gpus", -1).
		Set(t, "cron.timeZone", "Nowhere/Land").
		Set(t, "checkpoint.replicas", "three").
		Set(t, "namespace.name", "Bad_Name")
	_, err := load(c)
	require.Error(t, err)
	var fieldErrs []*config.FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		require.True(t, errors.As(e, &fe), "every error is a FieldError: %v", e)
		fieldErrs = append(fieldErrs, fe)
	}
	var keys []string
	for _, fe := range fieldErrs {
		keys = append(keys, fe.Key)
	}
	assert.ElementsMatch(t, []string{"serving.models[0].gpus", "cron.timeZone", "checkpoint.replicas", "namespace.name"}, keys)
}

func TestSecretsMustBeEncryptedAndAreNeverEchoed(t *testing.T) {
	c := stacktest.Load(t, "dev").Set(t, "modelRegistryToken", "hunter2")
	_, err := load(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `llm-platform:modelRegistryToken: "<redacted>" is invalid: must be stored encrypted; for example pulumi config set --secret modelRegistryToken <value>`)
	assert.NotContains(t, err.Error(), "hunter2")

	c.Secrets = []string{"llm-platform:modelRegistryToken"}
	res, err := load(c)
	require.NoError(t, err)
	assert.True(t, res.Config.Secrets.ModelRegistryToken)
}

// Values that are valid but do nothing, or are risky, deserve a warning that
// names the key; pulumi preview shows it. Each case starts from a valid stack
// and writes one value. docs/config.md lists every warning.
func TestWarnings(t *testing.T) {
	cases := []struct {
		name  string
		stack string
		set   map[string]any
		want  string
		// readme is the phrase docs/config.md's list of warnings holds for it.
		readme string
	}{
		{"autoscaling down to one replica", "prod", map[string]any{"serving.models[0].autoscaling.minReplicas": 1},
			"llm-platform:serving.models[0].autoscaling.minReplicas: 1: at low load inference-llama-3-70b runs one replica, and the PodDisruptionBudget (maxUnavailable 1) then lets a node drain evict it", "1: at low load <object> runs one replica"},
		{"vLLM on several GPUs without tensor parallel", "dev", map[string]any{"serving.models[0].gpus": 2, "namespace.quota.gpus": 8, "gpuPool.gpusPerNode": 2},
			"llm-platform:serving.models[0].gpus: 2 GPUs, but serving.models[0].args set no --tensor-parallel-size: vLLM then uses one GPU and leaves 1 idle", "set no --tensor-parallel-size: vLLM then uses one GPU"},
		{"schedule in the daylight-saving hour", "prod", map[string]any{"cron.schedule": "15 2 * * *"},
			`llm-platform:cron.schedule: "15 2 * * *" in Europe/Berlin (cron.timeZone) fires inside 02:00-03:00, the hour its daylight-saving changes shift`, "the hour its daylight-saving changes shift"},
		{"picker failing open", "prod", map[string]any{"serving.routing.failureMode": "FailOpen"},
			"llm-platform:serving.routing.failureMode: FailOpen: with the picker down the gateway chooses a replica itself", "several gateway implementations do not honour FailOpen"},
		{"spare capacity, ReadWriteOnce cache", "dev", map[string]any{"gpuPool.spareCapacity": true},
			"llm-platform:serving.models[0].modelCache.accessMode: ReadWriteOnce with gpuPool.spareCapacity: the model rolls one pod at a time", "rolls one pod at a time (maxSurge 0"},
		{"a non-vLLM server in an inference pool", "prod", map[string]any{"serving.models[1].routing": "inferencePool",
			"serving.models[1].args": []any{"--model-id", "$(MODEL_PATH)", "--port", "8000", "--served-model-name", "bge"}},
			"llm-platform:serving.models[1].routing: inferencePool with ghcr.io/huggingface/text-embeddings-inference:1.5: the endpoint picker v1.5.0 scores replicas on vLLM's series", "scores replicas on vLLM's series"},
		{"one replica, no PDB", "dev", nil,
			"llm-platform:serving.models[0].replicas: inference-llama-3-8b runs one replica: no PodDisruptionBudget is created, and a node drain takes it down until it is rescheduled", "runs one replica: no PodDisruptionBudget"},
		{"shared RWO claim in dev", "dev", map[string]any{"pipeline.storage.accessMode": "ReadWriteOnce"},
			"llm-platform:pipeline.storage.accessMode: the shared claim is ReadWriteOnce", "the shared claim is ReadWriteOnce"},
		{"no inference clients", "dev", map[string]any{"namespace.network.inferenceClients": map[string]any{}},
			"llm-platform:namespace.network.inferenceClients: is empty: nothing may call the inference port", "is empty: nothing may call the inference port"},
		{"read-only model cache", "prod", map[string]any{"serving.models[1].modelCache.accessMode": "ReadOnlyMany", "serving.models[1].source": nil, "serving.models[1].args": []any{"--model-id", "BAAI/bge-large-en-v1.5"}},
			"llm-platform:serving.models[1].modelCache.accessMode: ReadOnlyMany: the server cannot write weights into the claim", "the server cannot write weights into the claim"},
		{"no source", "dev", map[string]any{"serving.models[0].source": nil, "serving.models[0].args": []any{"--model", "meta-llama/Meta-Llama-3-8B-Instruct"}},
			"llm-platform:serving.models[0].source: not set: the server downloads its weights itself at every start", "the server downloads its weights itself at every start"},
		{"hub revision that can move", "dev", map[string]any{"serving.models[0].source.revision": "main"},
			"llm-platform:serving.models[0].source.revision: main is a branch or tag: it is fetched once and not again when it moves", "is a branch or tag: it is fetched once"},
		{"fetch keys with a claim source", "dev", map[string]any{"serving.models[0].source": map[string]any{"uri": "claim://weights/llama", "revision": "r1"}},
			"llm-platform:serving.models[0].source.revision: has no effect with a claim source", "has no effect with a claim source"},
		{"oci source needs image volumes", "dev", map[string]any{"serving.models[0].source": map[string]any{"uri": "oci://ghcr.io/acme/weights/llama-3-8b:5f0b02c"}},
			"llm-platform:serving.models[0].source.uri: oci: needs image volumes (Kubernetes 1.35, or 1.33 and 1.34 with the ImageVolume feature gate)", "needs image volumes"},
		{"cache with room for one revision", "dev", map[string]any{"serving.models[0].source.size": "30Gi"},
			"llm-platform:serving.models[0].modelCache.size: 40Gi holds one copy of the 30Gi weights", "holds one copy of the"},
		{"autoscaling bound while off", "dev", map[string]any{"pipeline.transformation.autoscaling.maxReplicas": 4},
			"llm-platform:pipeline.transformation.autoscaling.maxReplicas: has no effect while pipeline.transformation.autoscaling.enabled is false", "has no effect while <workload>.autoscaling.enabled is false"},
		{"replicas while autoscaling", "prod", map[string]any{"serving.models[0].replicas": 4},
			"llm-platform:serving.models[0].replicas: has no effect while serving.models[0].autoscaling.enabled is true: the HPA owns the count", "has no effect while <workload>.autoscaling.enabled is true"},
		{"HPA that cannot scale", "prod", map[string]any{"pipeline.transformation.autoscaling.maxReplicas": 2},
			"llm-platform:pipeline.transformation.autoscaling.maxReplicas: equals minReplicas (2): the HPA can never change the count", "equals minReplicas"},
		{"cpu target with the pods metric", "prod", map[string]any{"serving.models[0].autoscaling.targetCPUUtilization": 80},
			"llm-platform:serving.models[0].autoscaling.targetCPUUtilization: has no effect with metric pods", "has no effect with metric pods"},
		{"pods metric needs an adapter", "prod", nil,
			"llm-platform:serving.models[0].autoscaling.metric: pods: the HPA reads vllm_num_requests_waiting from the custom.metrics.k8s.io API, which a preview cannot check",
			"which a preview cannot check"},
		{"scale-down window shorter than its policy period", "dev", map[string]any{"pipeline.transformation.autoscaling": map[string]any{"enabled": true, "maxReplicas": 2, "scaleDownStabilizationSeconds": 30}},
			"llm-platform:pipeline.transformation.autoscaling.scaleDownStabilizationSeconds: 30 is shorter than the scale-down policy's 120 s period",
			"is shorter than the scale-down policy's 120 s period"},
		{"keda needs its operator", "prod", map[string]any{"serving.models[0].autoscaling.driver": "keda", "serving.models[0].autoscaling.prometheusAddress": "http://prometheus:9090"},
			"llm-platform:serving.models[0].autoscaling.driver: keda: needs the KEDA operator on the cluster and Prometheus at http://prometheus:9090, which a preview cannot check",
			"needs the KEDA operator on the cluster and Prometheus at"},
		{"keda keys with driver hpa", "prod", map[string]any{"serving.models[0].autoscaling.query": "sum(q)"},
			"llm-platform:serving.models[0].autoscaling.query: has no effect with driver hpa", "has no effect with driver hpa"},
		{"GPU selector CEL beyond the example inventory", "dev", map[string]any{"gpuPool.allocation": "dra",
			"serving.models[0].gpuSelector.cel": `device.attributes["gpu.nvidia.com"].driverVersion.isGreaterThan(semver("585.0.0"))`},
			"llm-platform:serving.models[0].gpuSelector.cel: no device of the example inventory satisfies it", "a preview cannot see your cluster's devices, so it is kept"},
		{"scheduled runs deleted at once", "dev", map[string]any{"cron.ttlSecondsAfterFinished": 0},
			"llm-platform:cron.ttlSecondsAfterFinished: 0: each scheduled run's Job, its pods and their logs are deleted as soon as it finishes", "deleted as soon as it finishes"},
		{"no time to pull", "dev", map[string]any{"serving.models[0].imagePullBudgetSeconds": 0},
			"llm-platform:serving.models[0].imagePullBudgetSeconds: 0: the rollout's deadline and Pulumi's timeouts leave no time to pull the image", "leave no time to pull the image"},
		{"another vendor's resource with DRA", "dev", map[string]any{"gpuPool.allocation": "dra", "gpuPool.resourceName": "amd.com/gpu"},
			"llm-platform:gpuPool.resourceName: amd.com/gpu has no effect with allocation dra: GPUs are claimed from DeviceClass gpu.nvidia.com", "has no effect with allocation dra"},
		{"a group without a gang scheduler", "prod", multiNode(nil),
			"llm-platform:serving.models[0].scheduling: unset: the default scheduler places a group's 2 pods one by one", "places a group's <n> pods one by one"},
		{"a group under a scheduler LeaderWorkerSet makes no PodGroup for", "prod", multiNode(map[string]any{"serving.models[0].scheduling": map[string]any{"schedulerName": "yunikorn"}}),
			"llm-platform:serving.models[0].scheduling.schedulerName: yunikorn: LeaderWorkerSet creates a group's PodGroup only for volcano", "LeaderWorkerSet creates a group's PodGroup only for volcano"},
		{"a group and the cluster it needs", "prod", multiNode(nil),
			"llm-platform:serving.models[0].nodes: 2: a model of groups needs Kubernetes 1.31 or later", "a model of groups needs Kubernetes 1.31 or later"},
		{"a group with spare capacity", "prod", multiNode(nil),
			"llm-platform:serving.models[0].nodes: 2 with gpuPool.spareCapacity: the model's groups roll one at a time in place", "the model's groups roll one at a time in place"},
		{"a group of a server that is not vLLM", "prod", multiNode(map[string]any{"serving.models[0].image": "ghcr.io/acme/llm-server:1.2"}),
			"llm-platform:serving.models[0].image: ghcr.io/acme/llm-server:1.2: with nodes 2 the stack launches vLLM's multi-node runtime", "a server that is not vLLM must accept those flags"},
		{"a group on an existing claim", "prod", multiNode(map[string]any{"serving.models[0].source": map[string]any{"uri": "claim://weights/llama"}}),
			"llm-platform:serving.models[0].source.uri: claim://weights/llama: with nodes 2 every pod of a group mounts the claim on its own node", "every pod of a group mounts the claim on its own node"},
		{"metric name with the cpu metric", "prod", map[string]any{"pipeline.transformation.autoscaling.metricName": "queue"},
			"llm-platform:pipeline.transformation.autoscaling.metricName: has no effect with metric cpu", "has no effect with metric cpu"},
	}
	readme, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "docs", "config.md"))
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := stacktest.Load(t, tc.stack)
			for k, v := range tc.set {
				c.Set(t, k, v)
			}
			res, err := load(c)
			require.NoError(t, err, "a warning never blocks")
			assert.Contains(t, strings.Join(res.Warnings, "\n"), tc.want)
			assert.True(t, strings.Contains(string(readme), tc.readme), "the warning list of docs/config.md has %q", tc.readme)
		})
	}

	res, err := load(stacktest.Load(t, "prod"))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"llm-platform:serving.models[0].autoscaling.metric: pods: the HPA reads vllm_num_requests_waiting from the custom.metrics.k8s.io API, which a preview cannot check; " +
			"without an adapter serving it (prometheus-adapter with the rule in the stack output metricsAdapterRules) the HPA never scales",
		"llm-platform:serving.routing: 1 model(s) route through an inference pool: the cluster needs the Gateway API CRDs (gateway.networking.k8s.io/v1), the InferencePool CRD (inference.networking.k8s.io/v1) " +
			"and a gateway implementation that supports InferencePool v1 behind Gateway llm-gateway/inference-gateway; a preview cannot check them (see docs/serving.md, \"Routing\")",
	}, res.Warnings, "prod runs every workload with more than one replica and writes nothing that does nothing; "+
		"only the prerequisite a preview cannot know is said")
}

func TestDefaultsApplyToEveryModel(t *testing.T) {
	res, err := load(stacktest.Load(t, "prod"))
	require.NoError(t, err)
	embed := res.Config.Serving.Models[1]
	assert.Equal(t, 8000, embed.MetricsPort, "metrics default to the serving port")
	assert.Equal(t, "/metrics", embed.MetricsPath)
	assert.Equal(t, 10, embed.LivenessPeriodSeconds)
	assert.Equal(t, config.Quantity("16Gi"), embed.Resources.Limits.Memory, "a limit left out equals its request")
	assert.Equal(t, config.SpreadScheduleAnyway, embed.TopologySpread.Zone)
}

func TestParseImage(t *testing.T) {
	const hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		ref             string
		repo, tag, dgst string
		pinned          bool
		err             string
	}{
		{ref: "vllm/vllm-openai:v0.6.3", repo: "docker.io/vllm/vllm-openai", tag: "v0.6.3", pinned: true},
		{ref: "registry.local:5000/team/app", repo: "registry.local:5000/team/app"},
		{ref: "registry.local:5000/team/app:1.2", repo: "registry.local:5000/team/app", tag: "1.2", pinned: true},
		{ref: "app:latest", repo: "docker.io/library/app", tag: "latest"},
		{ref: "app@sha256:" + hex, repo: "docker.io/library/app", dgst: "sha256:" + hex, pinned: true},
		{ref: "app:latest@sha256:" + hex, repo: "docker.io/library/app", tag: "latest", dgst: "sha256:" + hex, pinned: true},
		{ref: "app:", err: "invalid reference format"},
		{ref: "App/Server:1", err: "must be lowercase"},
		{ref: "app@sha256:12", err: "invalid checksum digest length"},
		{ref: "app@sha256:" + strings.Repeat("z", 64), err: "invalid checksum digest format"},
		{ref: "app@md5:" + hex[:32], err: "unsupported digest algorithm"},
		{ref: "app:v1.2.3!", err: "invalid reference format"},
		{ref: "app:" + strings.Repeat("a", 129), err: "invalid reference format"},
	}
	for _, tc := range cases {
		img, err := config.ParseImage(tc.ref)
		if tc.err != "" {
			require.Error(t, err, tc.ref)
			assert.Contains(t, err.Error(), tc.err, tc.ref)
			continue
		}
		require.NoError(t, err, tc.ref)
		assert.Equal(t, config.Image{Repository: tc.repo, Tag: tc.tag, Digest: tc.dgst}, img, tc.ref)
		assert.Equal(t, tc.pinned, img.Pinned(), tc.ref)
	}
}

// A secure value nested in a section is refused at its own path: from
// Pulumi's placeholder when the value is not decrypted (the render), and
// from the stack file when the engine hands the program the value in clear.
func TestSecretInsideASectionIsRefusedAtItsPath(t *testing.T) {
	c := stacktest.Load(t, "dev")
	dir := t.TempDir()
	file := filepath.Join(dir, "Pulumi.dev.yaml")
	text, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Pulumi.dev.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte(strings.Replace(string(text), "  llm-platform:cron:\n", "  llm-platform:cron:\n    timeZone:\n      secure: v1:abc\n", 1)), 0o644))
	secret := func(key string) bool { return key == "cron" }
	const want = `llm-platform:cron.timeZone: "<secret>" is invalid: is a secret inside a section`

	placeholder := func(key string) (string, bool) {
		if key == "cron" {
			return `{"schedule": "0 2 * * *", "suspend": true, "timeZone": "[secret]"}`, true
		}
		return c.Lookup(key)
	}
	_, err = config.LoadStack(placeholder, secret, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)

	decrypted := func(key string) (string, bool) {
		if key == "cron" {
			return `{"schedule": "0 2 * * *", "suspend": true, "timeZone": "Europe/Paris"}`, true
		}
		return c.Lookup(key)
	}
	_, err = config.LoadStack(decrypted, secret, file)
	require.Error(t, err)
	assert.Contains(t, err.Error(), want)
	assert.NotContains(t, err.Error(), "Europe/Paris", "the value is never echoed")
}

// multiNode is what makes prod's 70B model a 2-node model, with set on top
// (and no gang scheduler, unless set names one).
func multiNode(set map[string]any) map[string]any {
	out := stacktest.MultiNode()
	delete(out, "serving.models[0].scheduling.schedulerName")
	for k, v := range set {
		out[k] = v
	}
	return out
}
