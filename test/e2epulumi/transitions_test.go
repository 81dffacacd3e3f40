//go:build e2e

package e2epulumi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"llm-platform/internal/config"
	"llm-platform/internal/dra"
	"llm-platform/internal/labels"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
	jobrun "llm-platform/internal/run"
)

// transition is one change a user makes to a running stack: the stack file
// edited from N to N+1, and what the cluster must look like after `pulumi up`.
type transition struct {
	name  string
	stack string
	// edit turns the stack file's text into the changed one.
	edit func(t *testing.T, text string) string
	// check asserts the objects ended as the change table of docs/config.md says.
	check func(t *testing.T, ns string)
	// prepare, when set, readies the cluster for the changed stack first
	// (what an operator does before such a change: a new node pool).
	prepare func(t *testing.T, after config.Config)
}

// Each class of the change table (docs/config.md), applied to the deployed stack with
// `make deploy`, then rolled back the same way. During both, a poller watches
// every serving Deployment: available replicas never fall below the replicas
// before or after the change, less the model's maxUnavailable. After each,
// `pulumi preview --expect-no-changes`, with and without --refresh, passes.
func TestTransitions(t *testing.T) {
	// The checkpoint pods before their StatefulSet's replacement, and the
	// poller of their readiness during it.
	var checkpointPods map[string]string
	var stopCheckpointWatch func() int
	for _, tr := range []transition{{
		name: "model image: rolled out", stack: "prod",
		edit: replace("image: vllm/vllm-openai:v0.11.0", "image: vllm/vllm-openai:v0.11.1"),
		check: func(t *testing.T, ns string) {
			d := getDeployment(t, ns, names.Inference("llama-3-70b"))
			assert.Equal(t, "vllm/vllm-openai:v0.11.1", d.Spec.Template.Spec.Containers[0].Image)
		},
	}, {
		name: "quota and autoscaling bounds: in place, no pod replaced", stack: "prod",
		edit: func(t *testing.T, text string) string {
			text = replace(`cpu: "320"`, `cpu: "330"`)(t, text)
			return replace("maxReplicas: 6", "maxReplicas: 5")(t, text)
		},
		check: func(t *testing.T, ns string) {
			var quota corev1.ResourceQuota
			require.NoError(t, kubectl.GetJSON(&quota, "-n", ns, "resourcequota", names.ResourceQuota))
			cpu := quota.Spec.Hard[corev1.ResourceRequestsCPU]
			assert.Equal(t, "330", cpu.String())
			var hpa autoscalingv2.HorizontalPodAutoscaler
			require.NoError(t, kubectl.GetJSON(&hpa, "-n", ns, "hpa", names.Inference("llama-3-70b")))
			assert.Equal(t, int32(5), hpa.Spec.MaxReplicas)
			d := getDeployment(t, ns, names.Inference("llama-3-70b"))
			assert.Equal(t, d.Generation, d.Status.ObservedGeneration)
			assert.Equal(t, d.Status.Replicas, d.Status.UpdatedReplicas, "no rollout started")
		},
	}, {
		// And back: the rollback adds the pool, its picker and the route again.
		name: "model routing: inference pool to Service alone, in place", stack: "prod",
		edit: replace("        routing: inferencePool\n", ""),
		check: func(t *testing.T, ns string) {
			for _, kind := range []string{"inferencepool", "httproute"} {
				out, stderr, err := kubectl.Run(nil, "-n", ns, "get", kind, "-o", "name")
				require.NoError(t, err, stderr)
				assert.Empty(t, strings.TrimSpace(out), "no %s left", kind)
			}
			_, _, err := kubectl.Run(nil, "-n", ns, "get", "deployment", names.Picker("llama-3-70b"))
			assert.Error(t, err, "the picker is gone")
			get(t, "-n", ns, "service", names.Inference("llama-3-70b"))
			d := getDeployment(t, ns, names.Inference("llama-3-70b"))
			assert.Equal(t, d.Status.Replicas, d.Status.UpdatedReplicas, "the model's pods did not roll")
		},
	}, {
		// As on a real cluster: the DRA driver runs on a new pool (never beside
		// the device plugin on one node), and the models roll onto it with the
		// floor held; the way back rolls them onto the old pool.
		name: "GPU allocation: device plugin to DRA on a new pool, rolled out", stack: "prod",
		edit: replace("    nodeLabelValue: gpu-a100\n", "    nodeLabelValue: gpu-a100-dra\n    allocation: dra\n"),
		prepare: func(t *testing.T, after config.Config) {
			require.NoError(t, localcluster.PrepareNodes(kubectl, after), "the new pool's nodes and the stand-in driver's ResourceSlices")
		},
		check: func(t *testing.T, ns string) {
			for _, model := range []string{"llama-3-70b", "bge-embed"} {
				d := getDeployment(t, ns, names.Inference(model))
				spec := d.Spec.Template.Spec
				require.Len(t, spec.ResourceClaims, 1, model)
				_, extended := spec.Containers[0].Resources.Limits["nvidia.com/gpu"]
				assert.False(t, extended, "%s asks for no extended resource", model)
				var pods corev1.PodList
				require.NoError(t, kubectl.GetJSON(&pods, "-n", ns, "pods", "-l", "app.kubernetes.io/instance="+names.Inference(model)))
				for _, p := range pods.Items {
					if p.DeletionTimestamp != nil {
						continue
					}
					assert.Contains(t, p.Spec.NodeName, "gpu-a100-dra", "%s runs on the DRA pool", p.Name)
					assert.Len(t, p.Status.ResourceClaimStatuses, 1, "%s has its claim", p.Name)
				}
			}
			var quota corev1.ResourceQuota
			require.NoError(t, kubectl.GetJSON(&quota, "-n", ns, "resourcequota", names.ResourceQuota))
			_, ok := quota.Spec.Hard[corev1.ResourceName(dra.QuotaResource(dra.GPUClass))]
			assert.True(t, ok, "the quota caps the claimed class")
		},
	}, {
		// Replaced with orphaning deletion: no checkpoint pod ever stops.
		name: "checkpoint claim template: StatefulSet replaced, its pods kept and adopted, claims kept", stack: "prod",
		edit: replace("size: 500Gi", "size: 600Gi"),
		prepare: func(t *testing.T, after config.Config) {
			out := pulumi(t, 5*time.Minute, "preview --stack prod")
			assert.Contains(t, out, "replaces StatefulSet checkpoint with orphaning deletion: its pods keep serving")
			assert.Contains(t, out, "claim "+names.CheckpointClaimOf(0)+" (500Gi) can grow in place (StorageClass gp3 allows volume expansion)")
			checkpointPods = podUIDs(t, after.Namespace.Name, names.Checkpoint)
			require.Len(t, checkpointPods, 3)
			stopCheckpointWatch = watchReadyPods(after.Namespace.Name, names.Checkpoint)
		},
		check: func(t *testing.T, ns string) {
			assert.Equal(t, 3, stopCheckpointWatch(), "the fewest checkpoint pods ready at once during the replacement")
			assert.Equal(t, checkpointPods, podUIDs(t, ns, names.Checkpoint), "the same pods, adopted by the new StatefulSet")
			var sts appsv1.StatefulSet
			require.NoError(t, kubectl.GetJSON(&sts, "-n", ns, "statefulset", names.Checkpoint))
			assert.Equal(t, "600Gi", sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String())
			assert.Equal(t, int32(3), sts.Status.ReadyReplicas)
			var pods corev1.PodList
			require.NoError(t, kubectl.GetJSON(&pods, "-n", ns, "pods", "-l", labels.Instance+"="+names.Checkpoint))
			for _, p := range pods.Items {
				owner := metav1.GetControllerOf(&p)
				require.NotNil(t, owner, "pod %s is adopted", p.Name)
				assert.Equal(t, sts.UID, owner.UID, "pod %s is owned by the new StatefulSet", p.Name)
			}
			for i := range 3 {
				get(t, "-n", ns, "pvc", names.CheckpointClaimOf(i))
			}
		},
	}, {
		name: "ingestion image: a new run beside the old one", stack: "prod",
		edit: replace("image: ghcr.io/llm-platform/ingest:0.3.1", "image: ghcr.io/llm-platform/ingest:0.3.2"),
		check: func(t *testing.T, ns string) {
			jobs := ingestionJobs(t, ns)
			require.Len(t, jobs, 1, "the old run's Job is gone, the new one exists")
			assert.Equal(t, "ghcr.io/llm-platform/ingest:0.3.2", jobs[0].Spec.Template.Spec.Containers[0].Image)
		},
	}, {
		// The way to run an ingestion again after a failure outside the
		// file: the same inputs, a new run; the rollback is one more.
		name: "ingestion rerun: the same run again, beside the old one", stack: "dev",
		edit: replace("      failFastExitCodes: [2]\n", "      failFastExitCodes: [2]\n      rerun: 1\n"),
		check: func(t *testing.T, ns string) {
			jobs := ingestionJobs(t, ns)
			require.Len(t, jobs, 1, "the old run's Job is gone, the new one exists")
			assert.Equal(t, "1", jobs[0].Spec.Template.Annotations[jobrun.RerunAnnotation])
			assert.Equal(t, "ghcr.io/llm-platform/ingest:0.3.1", jobs[0].Spec.Template.Spec.Containers[0].Image, "the same inputs")
		},
	}, {
		name: "model revision: fetched while the old pods serve, then rolled out", stack: "prod",
		edit: replace("revision: 7129260dd854a80eb10ace5f61c20324b472b31c", "revision: 0cac6d727e4cdf117e1bde11e4c7badd8b963919"),
		check: func(t *testing.T, ns string) {
			jobs := fetchJobs(t, ns, "llama-3-70b")
			require.Len(t, jobs, 1, "the old revision's run is gone, the new one exists")
			require.NotNil(t, jobs[0].Status.CompletionTime)
			assert.Contains(t, jobs[0].Spec.Template.Spec.Containers[0].Env, corev1.EnvVar{Name: "SOURCE_REVISION", Value: "0cac6d727e4cdf117e1bde11e4c7badd8b963919"})
			d := getDeployment(t, ns, names.Inference("llama-3-70b"))
			env := d.Spec.Template.Spec.Containers[0].Env
			assert.Equal(t, corev1.EnvVar{Name: "MODEL_PATH", Value: "/models/llama-3-70b/0cac6d727e4cdf117e1bde11e4c7badd8b963919"}, env[len(env)-1])
			var sets appsv1.ReplicaSetList
			require.NoError(t, kubectl.GetJSON(&sets, "-n", ns, "replicasets", "-l", "app.kubernetes.io/instance="+names.Inference("llama-3-70b")))
			for _, rs := range sets.Items {
				if rs.Annotations["deployment.kubernetes.io/revision"] == d.Annotations["deployment.kubernetes.io/revision"] {
					assert.False(t, rs.CreationTimestamp.Before(jobs[0].Status.CompletionTime),
						"the rollout (%s) began only after the new revision was fetched (%s)", rs.CreationTimestamp, jobs[0].Status.CompletionTime)
				}
			}
		},
	}, {
		// A fetched source writes into its cache: the read-only mode needs the
		// model without a source, its server downloading for itself again.
		name: "model cache access mode: a new claim, the old one kept", stack: "prod",
		edit: func(t *testing.T, text string) string {
			text = replaceNth("accessMode: ReadWriteMany", "accessMode: ReadOnlyMany", 2)(t, text) // bge-embed's cache
			text = replace(`args: ["--model-id", "$(MODEL_PATH)", "--port", "8000"]`, `args: ["--model-id", "BAAI/bge-large-en-v1.5", "--port", "8000"]`)(t, text)
			start := strings.Index(text, "        source:\n          uri: hf://BAAI/bge-large-en-v1.5\n")
			end := strings.Index(text[start:], "        gpus: 1\n")
			require.True(t, start > 0 && end > 0)
			return text[:start] + text[start+end:]
		},
		check: func(t *testing.T, ns string) {
			d := getDeployment(t, ns, names.Inference("bge-embed"))
			assert.Contains(t, claimsOf(d), names.ModelCache("bge-embed", "efs-sc", "ReadOnlyMany"))
			get(t, "-n", ns, "pvc", names.ModelCache("bge-embed", "efs-sc", "ReadWriteMany")) // retained
		},
	}, {
		name: "autoscaling off, replicas 4: pulumi up takes the count back", stack: "prod",
		edit: func(t *testing.T, text string) string {
			text = replace("gpus: 4\n", "gpus: 4\n        replicas: 4\n")(t, text)
			return replace("enabled: true\n          minReplicas: 3", "enabled: false\n          minReplicas: 3")(t, text)
		},
		check: func(t *testing.T, ns string) {
			d := getDeployment(t, ns, names.Inference("llama-3-70b"))
			assert.Equal(t, int32(4), *d.Spec.Replicas)
			assert.Equal(t, int32(4), d.Status.AvailableReplicas)
			_, _, err := kubectl.Run(nil, "get", "-n", ns, "hpa", names.Inference("llama-3-70b"))
			assert.Error(t, err, "the HPA is gone")
		},
	}, {
		name: "a model added", stack: "prod",
		edit: func(t *testing.T, text string) string {
			text = replace("gpus: 32", "gpus: 34")(t, text)
			return replace("  llm-platform:pipeline:\n", `      - name: bge-rerank
        image: ghcr.io/huggingface/text-embeddings-inference:1.5
        args: ["--model-id", "BAAI/bge-reranker-large", "--port", "8000"]
        gpus: 1
        readinessPath: /health
        livenessPath: /info
        resources:
          requests: {cpu: "2", memory: 8Gi, ephemeralStorage: 10Gi}
        modelCache:
          size: 10Gi
          storageClass: efs-sc
  llm-platform:pipeline:
`)(t, text)
		},
		check: func(t *testing.T, ns string) {
			d := getDeployment(t, ns, names.Inference("bge-rerank"))
			assert.Equal(t, int32(1), d.Status.AvailableReplicas)
			get(t, "-n", ns, "service", names.Inference("bge-rerank"))
		},
	}, {
		// The way back adds the model again: its kept cache claim is adopted.
		name: "a model removed: its claim kept, and adopted when it comes back", stack: "prod",
		edit: func(t *testing.T, text string) string {
			start := strings.Index(text, "      - name: bge-embed\n")
			end := strings.Index(text, "  llm-platform:pipeline:\n")
			require.True(t, start > 0 && end > start)
			return text[:start] + text[end:]
		},
		check: func(t *testing.T, ns string) {
			_, _, err := kubectl.Run(nil, "get", "-n", ns, "deployment", names.Inference("bge-embed"))
			assert.Error(t, err, "the Deployment is gone")
			get(t, "-n", ns, "pvc", names.ModelCache("bge-embed", "efs-sc", "ReadWriteMany"))
		},
	}, {
		// The way back finds the kept namespace and claims and adopts them.
		name: "namespace renamed: everything recreated there, the old namespace and claims kept", stack: "dev",
		edit: replace("name: llm-platform-dev\n", "name: llm-platform-dev-renamed\n"),
		check: func(t *testing.T, ns string) {
			require.Equal(t, "llm-platform-dev-renamed", ns)
			d := getDeployment(t, ns, names.Inference("llama-3-8b"))
			assert.Equal(t, int32(1), d.Status.AvailableReplicas)
			require.Len(t, ingestionJobs(t, ns), 1)
			assert.NotEmpty(t, claimUIDs(t, "llm-platform-dev"), "the old namespace keeps its claims")
			_, _, err := kubectl.Run(nil, "get", "-n", "llm-platform-dev", "deployment", names.Inference("llama-3-8b"))
			assert.Error(t, err, "the old namespace's workloads are gone")
		},
	}, {
		name: "registry credentials added: every pod pulls with them", stack: "dev",
		edit: func(t *testing.T, text string) string {
			sh(t, time.Minute, `pulumi config set --secret registryCredentials '{"auths":{}}' --stack dev`)
			return readFile(t, "Pulumi.dev.yaml")
		},
		check: func(t *testing.T, ns string) {
			get(t, "-n", ns, "secret", names.RegistryCredentials)
			for _, name := range []string{names.Inference("llama-3-8b"), names.Transformation} {
				d := getDeployment(t, ns, name)
				require.NotEmpty(t, d.Spec.Template.Spec.ImagePullSecrets, name)
				assert.Equal(t, names.RegistryCredentials, d.Spec.Template.Spec.ImagePullSecrets[0].Name)
			}
			require.Len(t, ingestionJobs(t, ns), 1)
		},
	}} {
		t.Run(tr.name, func(t *testing.T) {
			file := filepath.Join(work, "Pulumi."+tr.stack+".yaml")
			original := readFile(t, "Pulumi."+tr.stack+".yaml")
			before := stackConfig(t, tr.stack)
			changed := tr.edit(t, original)
			require.NotEqual(t, original, changed)

			require.NoError(t, os.WriteFile(file, []byte(changed), 0o644))
			after := stackConfig(t, tr.stack)
			if tr.prepare != nil {
				tr.prepare(t, after)
			}
			applyWatched(t, tr.stack, before, after)
			tr.check(t, after.Namespace.Name)

			// Rolling back is a change like any other.
			require.NoError(t, os.WriteFile(file, []byte(original), 0o644))
			applyWatched(t, tr.stack, after, before)
		})
	}
}

// A fetch run that fails for a reason outside the stack file (here: no GPU
// node will take its pod, every one cordoned, until its budget runs out) fails
// `pulumi up` while the model keeps serving its revision; once the reason is
// gone, `pulumi up` with the same file runs it again and then rolls the model.
func TestFailedFetchRunsAgainWithTheSameFile(t *testing.T) {
	const stack = "dev"
	file := filepath.Join(work, "Pulumi."+stack+".yaml")
	original := readFile(t, "Pulumi."+stack+".yaml")
	before := stackConfig(t, stack)
	ns, model := before.Namespace.Name, before.Serving.Models[0].Name
	pool := before.GPUPool.NodeLabelKey + "=" + before.GPUPool.NodeLabelValue
	changed := replace("          size: 16Gi\n", "          size: 16Gi\n          fetch: {budgetSeconds: 60}\n")(t,
		replace("revision: 5f0b02c75b57c5855da9ae460ce51323ea669d8a", "revision: 8afb486c1db24fe5011ec46dfbe5b5dccdb575c2")(t, original))
	require.NoError(t, os.WriteFile(file, []byte(changed), 0o644))
	defer func() {
		sh(t, time.Minute, "build/bin/kubectl uncordon -l "+pool)
		require.NoError(t, os.WriteFile(file, []byte(original), 0o644))
		applyWatched(t, stack, stackConfig(t, stack), before)
	}()
	servedPath := func() string {
		env := getDeployment(t, ns, names.Inference(model)).Spec.Template.Spec.Containers[0].Env
		return env[len(env)-1].Value
	}
	path := servedPath()

	sh(t, time.Minute, "build/bin/kubectl cordon -l "+pool)
	out := shFails(t, 10*time.Minute, "make deploy STACK="+stack+" PULUMI_FLAGS='--yes --skip-preview'")
	assert.Regexp(t, `(?i)deadline`, out, "the fetch run failed on its budget")
	assert.Equal(t, path, servedPath(), "the model still serves its revision")
	assert.Equal(t, int32(1), getDeployment(t, ns, names.Inference(model)).Status.AvailableReplicas)

	sh(t, time.Minute, "build/bin/kubectl uncordon -l "+pool)
	sh(t, 15*time.Minute, "make deploy STACK="+stack+" PULUMI_FLAGS='--yes --skip-preview'")
	jobs := fetchJobs(t, ns, model)
	require.Len(t, jobs, 1)
	require.NotNil(t, jobs[0].Status.CompletionTime, "the run ran again and completed")
	assert.Contains(t, servedPath(), "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2", "then the model rolled onto the new revision")
	pulumi(t, 5*time.Minute, "preview --stack "+stack+" --expect-no-changes")
}

// applyWatched runs `make deploy` while watching every serving Deployment,
// then checks that the stack has no changes left, with and without refresh.
func applyWatched(t *testing.T, stack string, from, to config.Config) {
	t.Helper()
	applyWithFloors(t, stack, availabilityFloors(from, to), to)
}

// applyWithFloors is applyWatched with the floors given.
func applyWithFloors(t *testing.T, stack string, floors map[string]int, to config.Config) {
	t.Helper()
	claims := claimUIDs(t, to.Namespace.Name)
	watch := watchAvailability(to.Namespace.Name, floors)
	sh(t, 15*time.Minute, "make deploy STACK="+stack+" PULUMI_FLAGS='--yes --skip-preview'")
	for _, breach := range watch() {
		t.Errorf("availability fell below the floor during the change: %s", breach)
	}
	// No change ever deletes or replaces a claim: data stays where it was.
	after := claimUIDs(t, to.Namespace.Name)
	for name, uid := range claims {
		assert.Equal(t, uid, after[name], "claim %s is the same object, on the same volume", name)
	}
	pulumi(t, 5*time.Minute, "preview --stack "+stack+" --expect-no-changes")
	pulumi(t, 5*time.Minute, "preview --stack "+stack+" --refresh --expect-no-changes")
}

// availabilityFloors is, per serving Deployment that exists before and after,
// the fewest available replicas allowed during the change: the smaller of
// the two sizes, less maxUnavailable.
func availabilityFloors(from, to config.Config) map[string]int {
	size := func(cfg config.Config) map[string]config.Model {
		out := map[string]config.Model{}
		for _, m := range cfg.Serving.Models {
			out[m.Name] = m
		}
		return out
	}
	effective := func(m config.Model) int {
		if m.Autoscaling.Enabled {
			return m.Autoscaling.MinReplicas
		}
		return m.Replicas
	}
	old, new := size(from), size(to)
	floors := map[string]int{}
	for name, m := range new {
		o, ok := old[name]
		if !ok {
			continue
		}
		replicas := min(effective(o), effective(m))
		budget := intstr.Parse(string(m.Disruption.MaxUnavailable))
		unavailable, err := intstr.GetScaledValueFromIntOrPercent(&budget, replicas, true)
		if err != nil {
			unavailable = 1
		}
		floors[names.Inference(name)] = max(replicas-unavailable, 0)
	}
	return floors
}

// watchAvailability polls the Deployments and LeaderWorkerSets (ready
// groups) every half second until the
// returned stop function is called, which reports every breach seen.
func watchAvailability(ns string, floors map[string]int) func() []string {
	var mu sync.Mutex
	var breaches []string
	stop := pollUntilStopped(func() {
		// A model serves from its Deployment and, while it moves to
		// or from groups, its LeaderWorkerSet: both behind its Service.
		var list appsv1.DeploymentList
		if err := kubectl.GetJSON(&list, "-n", ns, "deployments"); err != nil {
			return
		}
		var groups struct {
			Items []localcluster.LeaderWorkerSetStatus `json:"items"`
		}
		if err := kubectl.GetJSON(&groups, "-n", ns, "leaderworkersets.leaderworkerset.x-k8s.io"); err != nil {
			return
		}
		available := map[string]int{}
		for _, d := range list.Items {
			available[d.Name] += int(d.Status.AvailableReplicas)
		}
		for _, l := range groups.Items {
			available[l.Metadata.Name] += int(l.Status.ReadyReplicas)
		}
		for name, n := range available {
			floor, watched := floors[name]
			if watched && n < floor {
				mu.Lock()
				breaches = append(breaches, fmt.Sprintf("%s at %s: %d available, floor %d", name, time.Now().Format("15:04:05.0"), n, floor))
				mu.Unlock()
			}
		}
	})
	return func() []string {
		stop()
		mu.Lock()
		defer mu.Unlock()
		return breaches
	}
}

func replace(old, new string) func(*testing.T, string) string {
	return replaceNth(old, new, 1)
}

// replaceNth replaces the nth occurrence of old, which must exist.
func replaceNth(old, new string, n int) func(*testing.T, string) string {
	return func(t *testing.T, text string) string {
		t.Helper()
		at := -1
		for range n {
			i := strings.Index(text[at+1:], old)
			require.GreaterOrEqual(t, i, 0, "occurrence %d of %q", n, old)
			at += 1 + i
		}
		return text[:at] + new + text[at+len(old):]
	}
}

func getDeployment(t *testing.T, ns, name string) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	require.NoError(t, kubectl.GetJSON(&d, "-n", ns, "deployment", name))
	return d
}

func ingestionJobs(t *testing.T, ns string) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "jobs", "-l", labels.Instance+"="+names.Ingestion))
	var live []batchv1.Job
	for _, j := range list.Items {
		if j.DeletionTimestamp == nil {
			live = append(live, j)
		}
	}
	return live
}

// fetchJobs are the live fetch runs of a model.
func fetchJobs(t *testing.T, ns, model string) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "jobs", "-l", labels.Instance+"="+names.Fetch(model)))
	var live []batchv1.Job
	for _, j := range list.Items {
		if j.DeletionTimestamp == nil {
			live = append(live, j)
		}
	}
	return live
}

func claimsOf(d appsv1.Deployment) []string {
	var out []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			out = append(out, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return out
}

// A change that preview cannot refuse but Kubernetes does (a claim made
// smaller: validation cannot know the deployed size) fails `pulumi up` with
// Kubernetes' reason, leaves the running models serving, and the fix (the
// size back) applies cleanly, after which nothing is left to change.
func TestFailedChangeThenFix(t *testing.T) {
	file := filepath.Join(work, "Pulumi.prod.yaml")
	original := readFile(t, "Pulumi.prod.yaml")
	before := stackConfig(t, "prod")
	shrunk := replace("size: 20Gi", "size: 10Gi")(t, original) // bge-embed's cache
	require.NoError(t, os.WriteFile(file, []byte(shrunk), 0o644))
	defer os.WriteFile(file, []byte(original), 0o644)

	watch := watchAvailability(before.Namespace.Name, availabilityFloors(before, before))
	out := shFails(t, 15*time.Minute, "make deploy STACK=prod PULUMI_FLAGS='--yes --skip-preview'")
	assert.Regexp(t, `Forbidden.*(less than|smaller)`, out, "pulumi up shows Kubernetes' reason")
	for _, breach := range watch() {
		t.Errorf("availability fell below the floor during the failed change: %s", breach)
	}

	require.NoError(t, os.WriteFile(file, []byte(original), 0o644))
	applyWatched(t, "prod", before, before)
}

// A model grows beyond one node and lives there: prod's 70B model moves from a
// Deployment to groups of two nodes, its image changes, its groups grow to
// three nodes, and it comes back to one, each with one `make deploy`. The
// model never serves below its floor (ready pods of the Deployment plus
// ready groups), and the real LeaderWorkerSet controller runs the groups.
func TestMultiNodeModelDayTwo(t *testing.T) {
	const stack = "prod"
	file := filepath.Join(work, "Pulumi."+stack+".yaml")
	original := readFile(t, "Pulumi."+stack+".yaml")
	model := names.Inference("llama-3-70b")
	// roomy is the namespace quota the groups need: a change of workload
	// runs the new one beside the old (config.Regrouped), so the quota is
	// lowered only in a later change, once the old one is gone.
	roomy := func(t *testing.T, text string) string {
		text = replace("gpus: 32", "gpus: 72")(t, text)
		return replace("memory: 2Ti", "memory: 3Ti")(t, text)
	}
	groups := func(nodes int) func(*testing.T, string) string {
		return func(t *testing.T, text string) string {
			text = roomy(t, text)
			text = replace("maxReplicas: 6", "maxReplicas: 4")(t, text)
			text = replace(`"--tensor-parallel-size", "4", "--port", "8000"]`,
				fmt.Sprintf(`"--tensor-parallel-size", "4", "--pipeline-parallel-size", "%d", "--port", "8000"]`, nodes))(t, text)
			return replace("        gpus: 4\n", fmt.Sprintf("        gpus: 4\n        nodes: %d\n", nodes))(t, text)
		}
	}
	steps := []struct {
		name  string
		edit  func(*testing.T, string) string
		check func(t *testing.T, ns string)
		// serving, when set, is the floor instead of the budget's.
		serving int
	}{{
		name: "Deployment to groups of two nodes, serving throughout",
		edit: groups(2),
		check: func(t *testing.T, ns string) {
			_, _, err := kubectl.Run(nil, "-n", ns, "get", "deployment", model)
			assert.Error(t, err, "the Deployment is gone once the groups serve")
			l := getGroups(t, ns, model)
			assert.True(t, l.Available())
			assert.EqualValues(t, 3, l.Status.ReadyReplicas, "the HPA's minimum, in groups")
			assert.Len(t, runningPodsOf(t, ns, model), 3*2, "three groups of two")
		},
	}, {
		name: "a day-2 image change rolls group by group",
		edit: func(t *testing.T, text string) string {
			return replace("image: vllm/vllm-openai:v0.11.0", "image: vllm/vllm-openai:v0.11.1")(t, groups(2)(t, text))
		},
		check: func(t *testing.T, ns string) {
			for _, p := range runningPodsOf(t, ns, model) {
				assert.Equal(t, "vllm/vllm-openai:v0.11.1", p.Spec.Containers[0].Image, p.Name)
			}
		},
	}, {
		name: "groups of three nodes: rolled in place",
		edit: groups(3),
		check: func(t *testing.T, ns string) {
			assert.Len(t, runningPodsOf(t, ns, model), 3*3, "three groups of three")
			for _, p := range runningPodsOf(t, ns, model) {
				args := strings.Join(p.Spec.Containers[0].Args, " ")
				assert.Contains(t, args, "--nnodes 3", p.Name)
			}
		},
	}, {
		// The new Deployment starts at one replica, as every Deployment's
		// first create does (docs/serving.md), and the HPA raises it within
		// its sync period: the model serves throughout, at one replica at
		// least, not at its budget's floor.
		name:    "back to one node: groups to a Deployment, serving throughout",
		edit:    roomy,
		serving: 1,
		check: func(t *testing.T, ns string) {
			require.Eventually(t, func() bool { return getDeployment(t, ns, model).Status.AvailableReplicas == 3 }, 2*time.Minute, time.Second,
				"the HPA raises the new Deployment to its minimum")
			_, _, err := kubectl.Run(nil, "-n", ns, "get", "leaderworkersets.leaderworkerset.x-k8s.io", model)
			assert.Error(t, err, "the groups are gone")
		},
	}}
	prev := stackConfig(t, stack)
	defer func() {
		require.NoError(t, os.WriteFile(file, []byte(original), 0o644))
	}()
	for _, step := range steps {
		require.NoError(t, os.WriteFile(file, []byte(step.edit(t, original)), 0o644))
		next := stackConfig(t, stack)
		require.NoError(t, localcluster.PrepareNodes(kubectl, next), "room for the groups")
		t.Run(step.name, func(t *testing.T) {
			floors := availabilityFloors(prev, next)
			if step.serving > 0 {
				floors[model] = step.serving
			}
			applyWithFloors(t, stack, floors, next)
			step.check(t, next.Namespace.Name)
		})
		prev = next
	}
}

// getGroups reads a LeaderWorkerSet.
func getGroups(t *testing.T, ns, name string) localcluster.LeaderWorkerSetStatus {
	t.Helper()
	l, err := localcluster.GetLeaderWorkerSet(kubectl, ns, name)
	require.NoError(t, err)
	return l
}

// runningPodsOf are the live pods of a model: its Deployment's or its groups'.
func runningPodsOf(t *testing.T, ns, server string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "pods", "-l", labels.Instance+"="+server))
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// podUIDs are the UIDs of a workload's pods (by its instance label), by name.
func podUIDs(t *testing.T, ns, instance string) map[string]string {
	t.Helper()
	var pods corev1.PodList
	require.NoError(t, kubectl.GetJSON(&pods, "-n", ns, "pods", "-l", labels.Instance+"="+instance))
	out := map[string]string{}
	for _, p := range pods.Items {
		out[p.Name] = string(p.UID)
	}
	return out
}

// watchReadyPods polls a workload's Ready pods every half second until the
// returned function is called, which returns the fewest seen at once (-1
// when no poll succeeded).
func watchReadyPods(ns, instance string) func() int {
	fewest := -1
	stop := pollUntilStopped(func() {
		var pods corev1.PodList
		if err := kubectl.GetJSON(&pods, "-n", ns, "pods", "-l", labels.Instance+"="+instance); err != nil {
			return
		}
		ready := 0
		for _, p := range pods.Items {
			if localcluster.PodReady(p) && p.DeletionTimestamp == nil {
				ready++
			}
		}
		if fewest < 0 || ready < fewest {
			fewest = ready
		}
	})
	return func() int {
		stop()
		return fewest
	}
}

// pollUntilStopped calls poll every half second until the returned stop
// function is called; stop returns once no poll runs any more.
func pollUntilStopped(poll func()) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(500 * time.Millisecond):
			}
			poll()
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}
