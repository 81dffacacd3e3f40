//go:build e2e

package e2epulumi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
)

// The tests run in order, each building on what the one before left: the
// stacks are created once, deployed once, and destroyed at the end.
var stacks = []string{"dev", "prod"}

// A user's first steps: `pulumi stack init` writes the secrets provider's salt
// into the stack file, `pulumi config set --secret` an encrypted value. The
// render must read that file exactly as before, and source mode must preview.
func TestStackInitAndSecretsThenRenderAndSourcePreview(t *testing.T) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			sh(t, 3*time.Minute, "make render STACK="+s)
			before := readFile(t, filepath.Join("out", s, "manifests.yaml"))
			sh(t, time.Minute, "pulumi stack init "+s)
			file := readFile(t, "Pulumi."+s+".yaml")
			require.Contains(t, file, "encryptionsalt:", "pulumi stack init wrote the passphrase salt")
			if s == "prod" {
				sh(t, time.Minute, "pulumi config set --secret modelRegistryToken local-test-token --stack prod")
				sh(t, time.Minute, "pulumi config set --secret registryCredentials '{\"auths\":{}}' --stack prod")
				require.Contains(t, readFile(t, "Pulumi.prod.yaml"), "secure: v1:")
			}
			sh(t, 3*time.Minute, "make render STACK="+s)
			after := readFile(t, filepath.Join("out", s, "manifests.yaml"))
			if s == "dev" {
				assert.Equal(t, before, after, "the salt changes nothing in the render")
			}
			// Source mode: Pulumi.yaml as a user runs it, the Go compile included.
			out := sh(t, 10*time.Minute, "pulumi preview --non-interactive --stack "+s)
			assert.Regexp(t, `\+ \d+ to create`, out)
		})
	}
}

// `make up-pulumi` is `make up` through `pulumi up`: nodes, then the stack,
// awaited by the provider; what `make up` checks must then hold.
func TestUpPulumiConverges(t *testing.T) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			out := sh(t, 15*time.Minute, "make up-pulumi STACK="+s)
			assert.Regexp(t, `\d+ created`, out)
			cfg := stackConfig(t, s)
			var progress strings.Builder
			require.NoError(t, localcluster.Wait(kubectl, cfg.Namespace.Name, localcluster.Checks(kubectl, cfg), 2*time.Minute, &progress), progress.String())
		})
	}
}

// After `pulumi up`, the next preview and the drift workflow's refresh find
// nothing to do: the program and the cluster agree.
func TestNoChangesAfterUp(t *testing.T) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			sh(t, 5*time.Minute, "make preview STACK="+s+" PULUMI_FLAGS=--expect-no-changes")
			pulumi(t, 5*time.Minute, "preview --stack "+s+" --refresh --expect-no-changes")
		})
	}
}

// The three workflows' own steps, replayed with the CLI: what a workflow
// builds (`run:` steps) and how it calls pulumi/actions (command, stack,
// work-dir, refresh, expect-no-changes). A broken work-dir or stack fails here.
func TestWorkflowsReplay(t *testing.T) {
	workflows, err := filepath.Glob(filepath.Join(work, ".github", "workflows", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, workflows)
	replayed := 0
	for _, path := range workflows {
		for _, step := range workflowSteps(t, path) {
			t.Run(step.Name, func(t *testing.T) {
				if step.Run != "" {
					sh(t, 5*time.Minute, step.Run)
					return
				}
				// The stacks are converged: a replayed `up` must change nothing too.
				step.ExpectNoChanges = true
				sh(t, 10*time.Minute, step.CLI())
				replayed++
			})
		}
	}
	assert.GreaterOrEqual(t, replayed, 6, "preview x2, deploy x2, drift x2")
}

// `pulumi stack output` gives every output docs/delivery.md documents, and each
// names what the cluster has.
func TestStackOutputsNameWhatTheClusterHas(t *testing.T) {
	documented := documentedOutputs(t)
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			cfg := stackConfig(t, s)
			ns := cfg.Namespace.Name
			var outputs struct {
				Namespace         string            `json:"namespace"`
				Endpoints         map[string]string `json:"endpoints"`
				CheckpointService string            `json:"checkpointService"`
				CronJob           string            `json:"cronJob"`
				IngestionJob      string            `json:"ingestionJob"`
				Claims            []string          `json:"claims"`
				AdapterRules      []struct {
					Name struct {
						As string `json:"as"`
					} `json:"name"`
				} `json:"metricsAdapterRules"`
			}
			text := pulumi(t, time.Minute, "stack output --json --stack "+s)
			var raw map[string]any
			require.NoError(t, json.Unmarshal([]byte(text), &raw))
			assert.ElementsMatch(t, documented, slices.Collect(maps.Keys(raw)), "outputs vs docs/delivery.md")
			require.NoError(t, json.Unmarshal([]byte(text), &outputs))

			assert.Equal(t, ns, outputs.Namespace)
			get(t, "namespace", outputs.Namespace)
			require.Len(t, outputs.Endpoints, len(cfg.Serving.Models))
			for _, m := range cfg.Serving.Models {
				u, err := url.Parse(outputs.Endpoints[m.Name])
				require.NoError(t, err, m.Name)
				host, port, _ := strings.Cut(u.Host, ":")
				service, _, _ := strings.Cut(host, ".")
				assert.Equal(t, fmt.Sprintf("%s.%s.svc.cluster.local", service, ns), host)
				var svc corev1.Service
				require.NoError(t, kubectl.GetJSON(&svc, "-n", ns, "service", service))
				assert.Equal(t, strconv.Itoa(int(svc.Spec.Ports[0].Port)), port, "endpoint port is the Service's")
			}
			var served []string
			for _, m := range cfg.Serving.Models {
				if m.Autoscaling.Enabled && m.Autoscaling.Metric == config.MetricPods {
					served = append(served, m.Autoscaling.MetricName)
				}
			}
			var rules []string
			for _, r := range outputs.AdapterRules {
				rules = append(rules, r.Name.As)
			}
			assert.Equal(t, served, rules, "one adapter rule per Pods metric, serving the HPA's metric name")
			get(t, "-n", ns, "service", outputs.CheckpointService)
			get(t, "-n", ns, "cronjob", outputs.CronJob)
			get(t, "-n", ns, "job", outputs.IngestionJob)
			require.NotEmpty(t, outputs.Claims)
			for _, c := range outputs.Claims {
				get(t, "-n", ns, "pvc", c)
			}
		})
	}
}

// A config error fails `pulumi preview` and `pulumi up` with the very lines
// `make render` prints, and nothing is created.
func TestConfigErrorFailsPreviewWithTheRenderMessage(t *testing.T) {
	dev := readFile(t, "Pulumi.dev.yaml")
	broken := strings.Replace(dev, "gpus: 1\n        replicas: 1", "gpus: -1\n        replicas: 1", 1)
	broken = strings.Replace(broken, "timeZone: Etc/UTC", "timeZone: Mars/Olympus", 1)
	broken = strings.Replace(broken, "name: llm-platform-dev", "name: llm-platform-broken", 1)
	require.NotEqual(t, dev, broken)
	require.NoError(t, os.WriteFile(filepath.Join(work, "Pulumi.broken.yaml"), []byte(broken), 0o644))
	defer os.Remove(filepath.Join(work, "Pulumi.broken.yaml"))

	render := shFails(t, 3*time.Minute, "make render STACK=broken")
	var want []string
	for _, line := range strings.Split(render, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), config.Project+":") {
			want = append(want, strings.TrimSpace(line))
		}
	}
	require.Len(t, want, 2, render)

	pulumi(t, time.Minute, "stack init broken")
	preview := shFails(t, 5*time.Minute, "make preview STACK=broken")
	up := shFails(t, 5*time.Minute, "make deploy STACK=broken PULUMI_FLAGS='--yes --skip-preview'")
	for _, line := range want {
		assert.Contains(t, preview, line, "pulumi preview shows what make render shows")
		assert.Contains(t, up, line, "pulumi up shows what make render shows")
	}
	for _, typ := range stackResourceTypes(t, "broken") {
		assert.NotContains(t, typ, "kubernetes:", "a config error created %s", typ)
	}
	_, _, err := kubectl.Run(nil, "get", "namespace", "llm-platform-broken")
	assert.Error(t, err, "the broken stack's namespace must not exist")
	pulumi(t, time.Minute, "stack rm --yes --force broken")
}

// `pulumi destroy` keeps exactly what docs/operations.md says (the namespace and
// every claim, with their volumes), and a plain `pulumi up` brings the stack
// back over them with the data untouched.
func TestDestroyKeepsTheClaimsAndTheStackComesBack(t *testing.T) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			cfg := stackConfig(t, s)
			ns := cfg.Namespace.Name
			claimsBefore := claimUIDs(t, ns)
			require.NotEmpty(t, claimsBefore)
			checkpointPods := podUIDs(t, ns, names.Checkpoint)
			require.NotEmpty(t, checkpointPods)

			pulumi(t, 10*time.Minute, "destroy --yes --stack "+s)
			get(t, "namespace", ns)
			assert.Equal(t, claimsBefore, claimUIDs(t, ns), "every claim kept, the same objects")
			assert.Empty(t, leftovers(t, ns), "destroy keeps only the namespace and the claims")
			assert.Equal(t, checkpointPods, podUIDs(t, ns, names.Checkpoint),
				"the checkpoint StatefulSet is deleted with orphaning deletion: its pods run on (docs/operations.md)")
			for _, pc := range []string{names.PriorityServing(ns), names.PriorityBatch(ns)} {
				_, _, err := kubectl.Run(nil, "get", "priorityclass", pc)
				assert.Error(t, err, "PriorityClass %s is not kept", pc)
			}

			// The way back is a plain `pulumi up`: the kept namespace and
			// claims are adopted by the stack's adopter provider.
			sh(t, 15*time.Minute, "make deploy STACK="+s+" PULUMI_FLAGS='--yes --skip-preview'")
			assert.Equal(t, claimsBefore, claimUIDs(t, ns), "the claims were adopted, not recreated")
			assert.Equal(t, checkpointPods, podUIDs(t, ns, names.Checkpoint), "the checkpoint pods were adopted, not recreated")
			var progress strings.Builder
			require.NoError(t, localcluster.Wait(kubectl, ns, localcluster.Checks(kubectl, cfg), 2*time.Minute, &progress), progress.String())
			pulumi(t, 5*time.Minute, "preview --stack "+s+" --expect-no-changes")
		})
	}
}

// --- helpers ---

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(work, rel))
	require.NoError(t, err)
	return string(b)
}

func stackConfig(t *testing.T, s string) config.Config {
	t.Helper()
	cfg, err := localcluster.LoadConfig(work, s)
	require.NoError(t, err)
	return cfg
}

func get(t *testing.T, args ...string) {
	t.Helper()
	_, _, err := kubectl.Run(nil, append([]string{"get"}, args...)...)
	assert.NoError(t, err)
}

func claimUIDs(t *testing.T, ns string) map[string]string {
	t.Helper()
	var list corev1.PersistentVolumeClaimList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "pvc"))
	out := map[string]string{}
	for _, c := range list.Items {
		out[c.Name] = string(c.UID) + " " + c.Spec.VolumeName
	}
	return out
}

// stackKinds are the namespaced kinds of object a stack keeps, as kubectl
// get takes them (claims, secrets and configmaps apart: who asks says).
const stackKinds = "deployments,statefulsets,jobs,cronjobs,services,serviceaccounts,networkpolicies,resourcequotas,limitranges,poddisruptionbudgets,horizontalpodautoscalers"

// leftovers lists what is still in the namespace besides its claims and what
// Kubernetes itself puts in every namespace.
func leftovers(t *testing.T, ns string) []string {
	t.Helper()
	out, _, err := kubectl.Run(nil, "get", "-n", ns, "-o", "name", stackKinds+",secrets,configmaps")
	require.NoError(t, err)
	var left []string
	for _, name := range strings.Fields(out) {
		switch name {
		case "serviceaccount/default", "configmap/kube-root-ca.crt":
			continue // every namespace has them
		}
		left = append(left, name)
	}
	return left
}

// documentedOutputs reads the "Stack outputs:" line of docs/delivery.md.
func documentedOutputs(t *testing.T) []string {
	t.Helper()
	doc := readFile(t, "docs/delivery.md")
	_, rest, ok := strings.Cut(doc, "Stack outputs: ")
	require.True(t, ok, "docs/delivery.md has a 'Stack outputs:' line")
	line, _, _ := strings.Cut(rest, ".\n")
	var out []string
	for _, m := range regexp.MustCompile("`([a-zA-Z]+)`").FindAllStringSubmatch(line, -1) {
		out = append(out, m[1])
	}
	require.NotEmpty(t, out)
	return out
}
