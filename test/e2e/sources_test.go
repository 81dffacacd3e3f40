//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/mock"
	"llm-platform/internal/names"
	"llm-platform/internal/render"
	"llm-platform/serving"
)

// fetchJobs are the fetch runs of a model, by name.
func fetchJobs(t *testing.T, ns, model string) map[string]batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, "jobs", "-l", "app.kubernetes.io/instance="+serving.FetchWorkload(model).Instance))
	out := map[string]batchv1.Job{}
	for _, j := range list.Items {
		out[j.Name] = j
	}
	return out
}

// The fetch run of a model's pinned revision completes before its server
// exists; a revision change fetches again while the old pod serves, and
// rolls the Deployment only after the new run completed. Only the fetch run
// may reach the hub: every egress policy that selects the server's pods
// lets them reach nothing outside the cluster.
func TestFetchRunsBeforeTheServerAndAloneReachesTheSources(t *testing.T) {
	cfg := deployTestStack(t, "sources")
	ns, model := cfg.Namespace.Name, cfg.Serving.Models[0].Name
	server := names.Inference(model)

	jobs := fetchJobs(t, ns, model)
	require.Len(t, jobs, 1)
	var first batchv1.Job
	for _, j := range jobs {
		first = j
	}
	require.NotNil(t, first.Status.CompletionTime, "the fetch run completed")
	d := deployment(t, ns, server)
	assert.False(t, d.CreationTimestamp.Before(first.Status.CompletionTime),
		"the Deployment (created %s) exists only after the fetch run completed (%s)", d.CreationTimestamp, first.Status.CompletionTime)

	t.Run("only the fetch run reaches the sources", func(t *testing.T) {
		var policies networkingv1.NetworkPolicyList
		require.NoError(t, kubectl.GetJSON(&policies, "-n", ns, "networkpolicies"))
		reach := func(podLabels map[string]string) []string {
			var cidrs []string
			for _, p := range policies.Items {
				selector, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
				require.NoError(t, err)
				if !selector.Matches(labels.Set(podLabels)) {
					continue
				}
				for _, rule := range p.Spec.Egress {
					for _, to := range rule.To {
						if to.IPBlock != nil {
							cidrs = append(cidrs, p.Name+": "+to.IPBlock.CIDR)
						}
					}
				}
			}
			return cidrs
		}
		serverPod := podsOf(t, ns, server)
		require.NotEmpty(t, serverPod)
		assert.Empty(t, reach(serverPod[0].Labels), "the server's pods reach nothing outside the cluster")
		assert.Equal(t, []string{"allow-out-fetch-" + model + ": 0.0.0.0/0"}, reach(first.Spec.Template.Labels), "the fetch run reaches the hub")
	})

	t.Run("a revision change fetches, then rolls", func(t *testing.T) {
		const next = "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2"
		dir := t.TempDir()
		text, err := os.ReadFile(filepath.Join(testdata, "Pulumi.sources.yaml"))
		require.NoError(t, err)
		changed := strings.Replace(string(text), cfg.Serving.Models[0].Source.Revision, next, 1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.sources.yaml"), []byte(changed), 0o644))

		var mu sync.Mutex
		lowest := int32(1)
		stop := pollDeployment(ns, server, func(d appsv1.Deployment) {
			mu.Lock()
			defer mu.Unlock()
			lowest = min(lowest, d.Status.AvailableReplicas)
		})
		var out bytes.Buffer
		_, err = localcluster.Deploy(dir, "sources", kubectl, 3*time.Minute, &out)
		stop()
		require.NoError(t, err, out.String())
		assert.Equal(t, int32(1), lowest, "the old pod served until the new one was ready")

		var fetched batchv1.Job
		for name, j := range fetchJobs(t, ns, model) {
			if name != first.Name {
				fetched = j
			}
		}
		require.NotNil(t, fetched.Status.CompletionTime, "a new fetch run, of the new revision, completed")
		var sets appsv1.ReplicaSetList
		require.NoError(t, kubectl.GetJSON(&sets, "-n", ns, "replicasets", "-l", "app.kubernetes.io/instance="+server))
		var newest appsv1.ReplicaSet
		for _, rs := range sets.Items {
			if newest.Name == "" || newest.CreationTimestamp.Before(&rs.CreationTimestamp) {
				newest = rs
			}
		}
		assert.Contains(t, newest.Spec.Template.Spec.Containers[0].Env[len(newest.Spec.Template.Spec.Containers[0].Env)-1].Value, next,
			"the new pods read the new revision")
		assert.False(t, newest.CreationTimestamp.Before(fetched.Status.CompletionTime),
			"the rollout (%s) began only after the new revision was fetched (%s)", newest.CreationTimestamp, fetched.Status.CompletionTime)
	})
}

// An oci:// source is an image volume: with the ImageVolume gate on (as the
// local cluster has it), the API server admits the Deployment strictly and
// keeps the volume's reference.
func TestImageSourceIsAdmitted(t *testing.T) {
	cfg := deployTestStack(t, "sources")
	dir := t.TempDir()
	text, err := os.ReadFile(filepath.Join(testdata, "Pulumi.sources.yaml"))
	require.NoError(t, err)
	start := strings.Index(string(text), "        source:\n")
	end := strings.Index(string(text), "        drain:")
	require.True(t, start > 0 && end > start)
	const image = "ghcr.io/llm-platform/weights/llama-3-8b:5f0b02c"
	variant := string(text)[:start] + "        source: {uri: \"oci://" + image + "\"}\n" + string(text)[end:]
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Pulumi.sources.yaml"), []byte(variant), 0o644))
	objs, err := render.Objects(dir, "sources")
	require.NoError(t, err)
	var deploymentOnly []mock.Object
	for _, o := range objs {
		if o.Kind() == "Deployment" && o.Name() == names.Inference(cfg.Serving.Models[0].Name) {
			// A name of its own: applied over the running Deployment, the
			// claim volume another field manager owns would merge with it.
			o.Fields["metadata"].(map[string]any)["name"] = "oci-variant"
			deploymentOnly = append(deploymentOnly, o)
		}
	}
	require.Len(t, deploymentOnly, 1)
	manifest, err := render.Manifests(deploymentOnly)
	require.NoError(t, err)
	out, stderr, err := kubectl.Run(manifest, "create", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-")
	require.NoError(t, err, stderr)
	var admitted appsv1.Deployment
	require.NoError(t, json.Unmarshal([]byte(out), &admitted))
	var found bool
	for _, v := range admitted.Spec.Template.Spec.Volumes {
		if v.Image != nil {
			found = true
			assert.Equal(t, image, v.Image.Reference, "the API server kept the image volume")
		}
	}
	assert.True(t, found, "an image volume in the admitted Deployment")
}
