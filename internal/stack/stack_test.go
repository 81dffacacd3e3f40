package stack_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"llm-platform/internal/availability"
	"llm-platform/internal/mock"
	"llm-platform/internal/stack"
	"llm-platform/internal/stackfile"
	"llm-platform/internal/stacktest"
)

var stacks = stacktest.Stacks()

func each(t *testing.T, check func(t *testing.T, res *stacktest.Result)) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) { check(t, stacktest.Run(t, stacktest.Load(t, s))) })
	}
}

func TestEveryPodPassesPodSecurityRestricted(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		tpls := res.PodTemplates(t)
		require.NotEmpty(t, tpls)
		for _, tpl := range tpls {
			psc := tpl.Spec.SecurityContext
			require.NotNil(t, psc, tpl.Owner)
			assert.True(t, *psc.RunAsNonRoot, tpl.Owner)
			assert.NotZero(t, *psc.RunAsUser, tpl.Owner)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type, tpl.Owner)
			// Only the endpoint picker talks to the API server.
			picker := strings.HasPrefix(tpl.Owner, "Deployment/") && strings.HasSuffix(tpl.Owner, "-epp")
			assert.Equal(t, picker, *tpl.Spec.AutomountServiceAccountToken, "%s: the token is mounted only where the API is read", tpl.Owner)
			for _, c := range append(tpl.Spec.InitContainers, tpl.Spec.Containers...) {
				sc := c.SecurityContext
				require.NotNil(t, sc, "%s/%s", tpl.Owner, c.Name)
				assert.False(t, *sc.AllowPrivilegeEscalation, "%s/%s", tpl.Owner, c.Name)
				assert.True(t, *sc.ReadOnlyRootFilesystem, "%s/%s", tpl.Owner, c.Name)
				assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s/%s", tpl.Owner, c.Name)
				assert.Empty(t, sc.Capabilities.Add, "%s/%s", tpl.Owner, c.Name)
				assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "tmp", MountPath: "/tmp"}, "a writable /tmp beside the read-only root")
			}
			for _, v := range tpl.Spec.Volumes {
				assert.True(t, v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.ConfigMap != nil, "%s: volume %s is of a type restricted admits", tpl.Owner, v.Name)
			}
		}
	})
}

// Inference pods run on the GPU pool; so does the fetch run of a
// ReadWriteOnce model cache (the claim attaches to the server's node), which
// asks for no GPU. Nothing else tolerates the taint.
func TestOnlyInferencePodsTolerateTheGPUTaint(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		inference := 0
		for _, tpl := range res.PodTemplates(t) {
			isInference := tpl.Labels["app.kubernetes.io/name"] == "inference"
			if tpl.Labels["app.kubernetes.io/name"] == "fetch" {
				_, asksGPU := tpl.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]
				assert.False(t, asksGPU, "%s asks for no GPU", tpl.Owner)
				continue
			}
			tolerates := false
			for _, tol := range tpl.Spec.Tolerations {
				if tol.Key == "nvidia.com/gpu" || tol.Operator == corev1.TolerationOpExists && tol.Key == "" {
					tolerates = true
				}
			}
			assert.Equal(t, isInference, tolerates, "%s tolerates the GPU taint: %v", tpl.Owner, tolerates)
			if isInference {
				inference++
				assert.Len(t, tpl.Spec.Tolerations, 1, "%s tolerates nothing else", tpl.Owner)
			}
			_, asksGPU := tpl.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]
			assert.Equal(t, isInference, asksGPU, "%s asks for a GPU", tpl.Owner)
		}
		assert.Positive(t, inference)
	})
}

func TestEveryContainerHasRequestsAndLimits(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		for _, tpl := range res.PodTemplates(t) {
			for _, c := range tpl.Spec.Containers {
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
					req, hasReq := c.Resources.Requests[r]
					lim, hasLim := c.Resources.Limits[r]
					assert.True(t, hasReq && hasLim, "%s/%s: %s request and limit", tpl.Owner, c.Name, r)
					assert.LessOrEqual(t, req.Cmp(lim), 0, "%s/%s: %s request <= limit", tpl.Owner, c.Name, r)
				}
			}
		}
	})
}

func TestEverySelectorMatchesItsTemplate(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		podLabels := map[string]map[string]string{}
		for _, o := range res.Objects {
			var sel map[string]string
			var tplLabels map[string]string
			switch o.Kind() {
			case "Deployment":
				var d appsv1.Deployment
				require.NoError(t, o.Decode(&d))
				sel, tplLabels = d.Spec.Selector.MatchLabels, d.Spec.Template.Labels
			case "StatefulSet":
				var s appsv1.StatefulSet
				require.NoError(t, o.Decode(&s))
				sel, tplLabels = s.Spec.Selector.MatchLabels, s.Spec.Template.Labels
			default:
				continue
			}
			for k, v := range sel {
				assert.Equal(t, v, tplLabels[k], "%s/%s: selector %s is in the template", o.Kind(), o.Name(), k)
			}
			assert.NotContains(t, sel, "app.kubernetes.io/version", "selectors use only labels that never change")
			podLabels[o.Name()] = tplLabels
		}
		// Every Service and PDB selects the pods of exactly one workload.
		for _, o := range res.Objects {
			var sel map[string]string
			switch o.Kind() {
			case "Service":
				var s corev1.Service
				require.NoError(t, o.Decode(&s))
				sel = s.Spec.Selector
			case "PodDisruptionBudget":
				sel = toStrings(o.Fields["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"])
			default:
				continue
			}
			matches := 0
			for _, l := range podLabels {
				if labels.SelectorFromSet(sel).Matches(labels.Set(l)) {
					matches++
				}
			}
			assert.Equal(t, 1, matches, "%s/%s selects one workload", o.Kind(), o.Name())
		}
	})
}

func toStrings(v any) map[string]string {
	out := map[string]string{}
	for k, s := range v.(map[string]any) {
		out[k] = fmt.Sprint(s)
	}
	return out
}

func TestNoHPATargetSetsReplicas(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		for _, o := range res.Objects {
			if o.Kind() != "HorizontalPodAutoscaler" {
				continue
			}
			target := o.Fields["spec"].(map[string]any)["scaleTargetRef"].(map[string]any)["name"].(string)
			assert.Nil(t, res.Deployment(t, target).Spec.Replicas, "%s is scaled by an HPA", target)
		}
	})
}

func TestEveryObjectIsExplicitlyNamedAndValidForItsType(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		for _, o := range res.Objects {
			assert.NotEmpty(t, o.Name(), "%s has metadata.name: no random suffix", o.Resource.Name)
			clusterScoped := o.Kind() == "Namespace" || o.Kind() == "PriorityClass"
			assert.Equal(t, !clusterScoped, o.Namespace() != "", "%s/%s namespace", o.Kind(), o.Name())
			assert.Equal(t, "llm-platform", o.Fields["metadata"].(map[string]any)["labels"].(map[string]any)["app.kubernetes.io/part-of"], "%s/%s", o.Kind(), o.Name())
		}
	})
}

func TestKubeScoreIgnoresAreNarrow(t *testing.T) {
	each(t, func(t *testing.T, res *stacktest.Result) {
		for _, o := range res.Objects {
			annotations, _ := o.Fields["metadata"].(map[string]any)["annotations"].(map[string]any)
			ignore, has := annotations["kube-score/ignore"]
			switch o.Kind() {
			case "Deployment", "StatefulSet", "Job", "CronJob":
				assert.Equal(t, "container-image-pull-policy", ignore, "%s/%s", o.Kind(), o.Name())
			default:
				assert.False(t, has, "%s/%s ignores no check", o.Kind(), o.Name())
			}
		}
	})
}

func TestEveryResourceBelongsToAComponent(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	components := map[string]bool{}
	for _, r := range res.Resources() {
		if !r.Custom {
			components[r.Type] = true
		}
	}
	assert.Subset(t, keys(components), []string{"llm-platform:index:Platform", "llm-platform:index:Pipeline", "llm-platform:index:Inference", "llm-platform:index:CheckpointStore", "llm-platform:index:PipelineSchedule"})
	for _, r := range res.Resources() {
		if r.Custom {
			assert.Contains(t, r.Parent, "llm-platform:index:", "%s %s is parented to a component", r.Type, r.Name)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBadConfigRegistersNothing(t *testing.T) {
	c := stacktest.Load(t, "prod").Set(t, "serving.models[0].gpus", -1)
	res, err := stacktest.TryRun(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `llm-platform:serving.models[0].gpus: -1 is invalid: must be at least 1`)
	for _, r := range res.Resources() {
		assert.Equal(t, "pulumi:pulumi:Stack", r.Type, "only the root stack is registered, never %s %s", r.Type, r.Name)
	}
}

func TestSecretsReachKubernetesSecretsOnlyAsSecrets(t *testing.T) {
	c := stacktest.Load(t, "dev").Set(t, "modelRegistryToken", "hunter2").Set(t, "registryCredentials", `{"auths":{}}`)
	c.Secrets = []string{"llm-platform:modelRegistryToken", "llm-platform:registryCredentials"}
	res := stacktest.Run(t, c)
	token := res.Find(t, "Secret", "model-registry-token")
	assert.Equal(t, mock.SecretPlaceholder, token.Fields["stringData"].(map[string]any)["token"])
	for _, o := range res.Objects {
		assert.NotContains(t, fmt.Sprint(o.Fields), "hunter2")
	}
	d := res.Deployment(t, "inference-llama-3-8b")
	assert.Equal(t, []corev1.LocalObjectReference{{Name: "registry-credentials"}}, d.Spec.Template.Spec.ImagePullSecrets)
	var env []string
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			env = append(env, e.Name+"="+e.ValueFrom.SecretKeyRef.Name)
		}
	}
	assert.Empty(t, env, "the server runs offline: the token goes to the fetch run only")
	for _, o := range res.Objects {
		if o.Kind() != "Job" || !strings.HasPrefix(o.Name(), "fetch-") {
			continue
		}
		var job batchv1.Job
		require.NoError(t, o.Decode(&job))
		env = nil
		for _, e := range job.Spec.Template.Spec.Containers[0].Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				env = append(env, e.Name+"="+e.ValueFrom.SecretKeyRef.Name)
			}
		}
		assert.Equal(t, []string{"HF_TOKEN=model-registry-token"}, env, "the variable huggingface_hub reads")
	}
	c = c.Set(t, "serving.models[0].source", nil).Set(t, "serving.models[0].args", []any{"--model", "meta-llama/Meta-Llama-3-8B-Instruct"})
	d = stacktest.Run(t, c).Deployment(t, "inference-llama-3-8b")
	assert.Equal(t, "HF_TOKEN", d.Spec.Template.Spec.Containers[0].Env[len(d.Spec.Template.Spec.Containers[0].Env)-1].Name,
		"without a source the server downloads, and reads the token as vLLM, TGI and SGLang do")
	assert.False(t, stacktest.Run(t, stacktest.Load(t, "dev")).Has("Secret", "model-registry-token"), "no secret set, no Secret")
}

func TestObjectCounts(t *testing.T) {
	// One model in dev, two in prod: each adds a Deployment, Service,
	// ServiceAccount, cache claim, and in prod a PDB (and one an HPA).
	count := func(s string) map[string]int {
		out := map[string]int{}
		for _, o := range stacktest.Run(t, stacktest.Load(t, s)).Objects {
			out[o.Kind()]++
		}
		return out
	}
	dev, prod := count("dev"), count("prod")
	assert.Equal(t, 2, dev["Deployment"])
	assert.Equal(t, 4, prod["Deployment"], "and the 70B model's endpoint picker")
	assert.Equal(t, 0, dev["PodDisruptionBudget"], "every dev workload runs one replica")
	assert.Equal(t, 4, prod["PodDisruptionBudget"])
	assert.Equal(t, 2, prod["HorizontalPodAutoscaler"])
	// Deny, DNS, internal egress; in: transformation, checkpoint, two models,
	// the picker; out: ingestion, the schedule, two models, the picker.
	assert.Equal(t, 13, prod["NetworkPolicy"])
	assert.Equal(t, 1, dev["Namespace"])
}

// What the stack keeps on delete is created through a provider that adopts a
// kept object of the same name (a model removed and added back, a claim class
// changed back, the stack brought back after a destroy); nothing else is.
func TestKeptObjectsAreAdoptedNotCollidedWith(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var adopter string
	for _, r := range res.Resources() {
		if r.Type == "pulumi:providers:kubernetes" {
			assert.Equal(t, true, r.Inputs["upsertExistingObjects"].V, "the adopter upserts: %v", r.Inputs)
			adopter = r.Name
		}
	}
	require.NotEmpty(t, adopter)
	for _, r := range res.Resources() {
		if !r.Custom || r.Type == "pulumi:providers:kubernetes" {
			continue
		}
		if r.RetainOnDelete {
			assert.Contains(t, r.Provider, "::"+adopter+"::", "%s %s is kept on delete", r.Type, r.Name)
			annotations := r.Inputs["metadata"].ObjectValue()["annotations"].ObjectValue()
			assert.Equal(t, "true", annotations[availability.PatchForce].V,
				"%s %s: an adopted object is co-owned by the manager of the provider that applied it before", r.Type, r.Name)
		} else {
			assert.NotContains(t, r.Provider, "::"+adopter+"::", "%s %s is not kept, so it must not adopt", r.Type, r.Name)
		}
	}
}

// The adopter must reach the cluster the default provider reaches: the
// `kubernetes:` keys that choose the cluster pass through to it.
func TestAdopterTalksToTheStacksCluster(t *testing.T) {
	sf, err := stackfile.Load(stacktest.RepoRoot(), "dev")
	require.NoError(t, err)
	sf.Config["kubernetes:context"] = "gpu-cluster-eu"
	sf.Config["kubernetes:cluster"] = "eu-west"
	sf.Config["kubernetes:kubeconfig"] = "/etc/kube/config"
	sf.Config["kubernetes:clusterIdentifier"] = "gpu-cluster-eu"
	rec, err := mock.Run(stack.Program, "dev", sf.Config, sf.SecretKeys)
	require.NoError(t, err)
	var found bool
	for _, r := range rec.Resources() {
		if r.Type != "pulumi:providers:kubernetes" {
			continue
		}
		found = true
		assert.Equal(t, "gpu-cluster-eu", r.Inputs["context"].V)
		assert.Equal(t, "eu-west", r.Inputs["cluster"].V)
		assert.True(t, r.Inputs["kubeconfig"].ContainsSecrets(), "a kubeconfig holds credentials: it stays a secret")
	}
	assert.True(t, found)
}
