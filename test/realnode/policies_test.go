//go:build realnode

package realnode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"llm-platform/internal/names"
	"llm-platform/serving"
)

// probeTimeout is how long a connection may take before it counts as not
// made: kube-router rejects what a policy denies, and an agent that drops
// it instead leaves the connection to time out.
const probeTimeout = 3 * time.Second

// enforcementDelay bounds how long the agent may take to apply the policies
// to a pod it has just seen.
const enforcementDelay = 20 * time.Second

// firstPod is the first running pod of a workload instance.
func firstPod(t *testing.T, ns, instance string) corev1.Pod {
	t.Helper()
	for _, p := range pods(t, ns, "app.kubernetes.io/instance="+instance) {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p
		}
	}
	t.Fatalf("no running pod of %s in %s", instance, ns)
	return corev1.Pod{}
}

// fetchProbe starts a pod from the fetch run's own pod template (its labels,
// its ServiceAccount, its security context) that sleeps instead of
// downloading, so the policies that apply to the fetch run apply to it, and
// returns its network namespace.
func fetchProbe(t *testing.T, ns, model string) string {
	t.Helper()
	var jobs batchv1.JobList
	require.NoError(t, kubectl.GetJSON(&jobs, "-n", ns, "jobs", "-l", "app.kubernetes.io/instance="+serving.FetchWorkload(model).Instance))
	require.NotEmpty(t, jobs.Items, "the fetch run")
	tmpl := jobs.Items[0].Spec.Template
	labels := map[string]string{}
	for k, v := range tmpl.Labels {
		if strings.HasPrefix(k, "app.kubernetes.io/") {
			labels[k] = v
		}
	}
	spec := tmpl.Spec
	spec.Containers[0].Command = []string{"/bin/sleep", "600"}
	spec.Containers[0].Args = nil
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "fetch-probe", Namespace: ns, Labels: labels},
		Spec:       spec,
	}
	data, err := json.Marshal(pod)
	require.NoError(t, err)
	_, stderr, err := kubectl.Run(data, "apply", "-f", "-")
	require.NoError(t, err, stderr)
	_, stderr, err = kubectl.Run(nil, "-n", ns, "wait", "--for=condition=Ready", "--timeout=120s", "pod/fetch-probe")
	require.NoError(t, err, stderr)
	var p corev1.Pod
	require.NoError(t, kubectl.GetJSON(&p, "-n", ns, "pod", "fetch-probe"))
	path, err := podNetns(p.Status.PodIP)
	require.NoError(t, err)
	return path
}

// The NetworkPolicies hold on real nodes, enforced by kube-router: a server
// reaches nothing outside the cluster and no other workload; the fetch run
// reaches its source and nothing else; the inference clients reach the model
// and others do not; the scrapers reach the metrics ports. Each denial
// is beside an allowed connection to the same server, so a denial is the
// policy's, not a dead server's.
func TestPoliciesHold(t *testing.T) {
	cfg := deployStack(t)
	ns, model := cfg.Namespace.Name, cfg.Serving.Models[0]
	servers := servingPods(t, cfg)
	require.GreaterOrEqual(t, len(servers), 2, "two model pods")
	server, peer := servers[0], servers[1]
	transformation := firstPod(t, ns, "transformation")
	checkpoint := firstPod(t, ns, "checkpoint")
	var svc corev1.Service
	require.NoError(t, kubectl.GetJSON(&svc, "-n", ns, "service", names.Inference(model.Name)))

	modelAddr := fmt.Sprintf("%s:%d", server.Status.PodIP, model.Port)
	peerAddr := fmt.Sprintf("%s:%d", peer.Status.PodIP, model.Port)
	serviceAddr := fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, model.Port)
	transformationAddr := fmt.Sprintf("%s:%d", transformation.Status.PodIP, cfg.Pipeline.Transformation.Port)
	checkpointAddr := fmt.Sprintf("%s:%d", checkpoint.Status.PodIP, cfg.Checkpoint.Port)
	hub, elsewhere := internetAddr+":80", internetAddr+":8081"

	netnsOf := func(p corev1.Pod) string {
		path, err := podNetns(p.Status.PodIP)
		require.NoError(t, err, "pod %s", p.Name)
		return path
	}
	clientNetns := map[string]string{}
	for _, cns := range clientNamespaces {
		var p corev1.Pod
		require.NoError(t, kubectl.GetJSON(&p, "-n", cns, "pod", "client"))
		clientNetns[cns] = netnsOf(p)
	}

	cases := []struct {
		from, fromNetns, to, addr string
		want                      bool
	}{
		// The controls: the stand-in answers, and the model answers its clients.
		{"the router (no policy)", routerNetns(), "the hub", hub, true},
		{"the router (no policy)", routerNetns(), "another internet port", elsewhere, true},
		{"a client in llm-gateway", clientNetns["llm-gateway"], "the model pod", modelAddr, true},
		{"a client in llm-gateway", clientNetns["llm-gateway"], "the model's Service", serviceAddr, true},
		{"a client in llm-gateway", clientNetns["llm-gateway"], "another model pod", peerAddr, true},

		{"the model server", netnsOf(server), "the internet", hub, false},
		{"the model server", netnsOf(server), "another internet port", elsewhere, false},
		{"the model server", netnsOf(server), "another model pod", peerAddr, false},
		// The pipeline and checkpoint store serve the stack's own pods.
		{"the model server", netnsOf(server), "the transformation stage", transformationAddr, true},

		{"the fetch run", fetchProbe(t, ns, model.Name), "its source", hub, true},
		{"the fetch run", netnsOf(podByName(t, ns, "fetch-probe")), "another internet port", elsewhere, false},
		{"the fetch run", netnsOf(podByName(t, ns, "fetch-probe")), "the model pod", modelAddr, false},

		{"a client in llm-gateway", clientNetns["llm-gateway"], "the transformation stage", transformationAddr, false},
		{"a pod in another namespace", clientNetns["outsider"], "the checkpoint store", checkpointAddr, false},
		{"a pod in another namespace", clientNetns["outsider"], "the model pod", modelAddr, false},
		{"a pod in another namespace", clientNetns["outsider"], "the model's Service", serviceAddr, false},

		{"a scraper in monitoring", clientNetns["monitoring"], "the model's metrics port", modelAddr, true},
		{"a scraper in monitoring", clientNetns["monitoring"], "the checkpoint store's metrics port", checkpointAddr, true},
	}
	for _, c := range cases {
		verb := "reaches"
		if !c.want {
			verb = "does not reach"
		}
		t.Run(fmt.Sprintf("%s %s %s", c.from, verb, c.to), func(t *testing.T) {
			// The agent applies a policy to a new pod within moments of
			// seeing it: wait for the verdict, then a denial must hold.
			deadline := time.Now().Add(enforcementDelay)
			got := reachable(c.fromNetns, c.addr, probeTimeout)
			for got != c.want && time.Now().Before(deadline) {
				time.Sleep(time.Second)
				got = reachable(c.fromNetns, c.addr, probeTimeout)
			}
			require.Equal(t, c.want, got, "%s -> %s within %s", c.from, c.addr, enforcementDelay)
			if !c.want {
				for range 2 {
					assert.False(t, reachable(c.fromNetns, c.addr, probeTimeout), "%s -> %s stays denied", c.from, c.addr)
				}
			}
		})
	}
}

func podByName(t *testing.T, ns, name string) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	require.NoError(t, kubectl.GetJSON(&p, "-n", ns, "pod", name))
	return p
}
