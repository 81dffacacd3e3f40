package platform_test

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"

	"llm-platform/internal/intent"
	"llm-platform/internal/mock"
	"llm-platform/internal/stacktest"
	"llm-platform/platform"
)

func TestNamespaceEnforcesRestrictedAndOutlivesDestroy(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var ns corev1.Namespace
	res.Decode(t, "Namespace", "llm-platform", &ns)
	for _, mode := range []string{"enforce", "audit", "warn"} {
		assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/"+mode], mode)
	}
	assert.True(t, res.Resource(t, "kubernetes:core/v1:Namespace", "platform-namespace").RetainOnDelete,
		"deleting the namespace would delete the claims it holds")
}

func TestQuotaAndLimits(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var q corev1.ResourceQuota
	res.Decode(t, "ResourceQuota", "platform", &q)
	hard := q.Spec.Hard
	assert.Equal(t, "32", hard.Name("requests.nvidia.com/gpu", "").String())
	assert.Equal(t, "320", hard.Name("requests.cpu", "").String())
	assert.Equal(t, "2Ti", hard.Name("requests.memory", "").String())
	assert.Equal(t, "60", hard.Name("pods", "").String())
	assert.Equal(t, "8Ti", hard.Name("requests.storage", "").String())

	var lr corev1.LimitRange
	res.Decode(t, "LimitRange", "defaults", &lr)
	require.Len(t, lr.Spec.Limits, 1)
	assert.Equal(t, corev1.LimitTypeContainer, lr.Spec.Limits[0].Type)
	assert.Equal(t, "100m", lr.Spec.Limits[0].DefaultRequest.Cpu().String())
}

func TestNetworkIsDeniedExceptWhatTheStackNeeds(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var deny networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "default-deny", &deny)
	assert.Empty(t, deny.Spec.PodSelector.MatchLabels, "selects every pod")
	assert.ElementsMatch(t, []networkingv1.PolicyType{"Ingress", "Egress"}, deny.Spec.PolicyTypes)
	assert.Empty(t, deny.Spec.Ingress)
	assert.Empty(t, deny.Spec.Egress)

	var dns networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-dns", &dns)
	require.Len(t, dns.Spec.Egress, 1)
	assert.Len(t, dns.Spec.Egress[0].Ports, 2, "DNS over UDP and TCP")
	assert.Equal(t, int32(53), dns.Spec.Egress[0].Ports[0].Port.IntVal)

	// Each model lets its clients in on its port (a pooled model: the
	// gateway's namespace among them) and the scrapers on its metrics port,
	// and a pooled model its endpoint picker there too; nothing else
	// reaches it.
	var llama networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-in-inference-llama-3-70b", &llama)
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "inference", "app.kubernetes.io/instance": "inference-llama-3-70b"},
		llama.Spec.PodSelector.MatchLabels, "selects exactly the model's pods")
	require.Len(t, llama.Spec.Ingress, 3)
	assert.Equal(t, []string{"llm-gateway", "batch-eval"}, llama.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions[0].Values)
	assert.Equal(t, int32(8000), llama.Spec.Ingress[0].Ports[0].Port.IntVal)
	assert.Equal(t, []string{"monitoring"}, llama.Spec.Ingress[1].From[0].NamespaceSelector.MatchExpressions[0].Values)
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "endpoint-picker", "app.kubernetes.io/instance": "inference-llama-3-70b-epp"},
		llama.Spec.Ingress[2].From[0].PodSelector.MatchLabels, "the picker reads the queue and KV-cache metrics")
	assert.Nil(t, llama.Spec.Ingress[2].From[0].NamespaceSelector)

	// The picker: the gateway in on ext-proc, the scrapers on its metrics;
	// out only to the model's metrics port and the API server.
	var pickerIn, pickerOut networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-in-inference-llama-3-70b-epp", &pickerIn)
	require.Len(t, pickerIn.Spec.Ingress, 2)
	assert.Equal(t, []string{"llm-gateway"}, pickerIn.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions[0].Values)
	assert.Equal(t, int32(9002), pickerIn.Spec.Ingress[0].Ports[0].Port.IntVal)
	res.Decode(t, "NetworkPolicy", "allow-out-inference-llama-3-70b-epp", &pickerOut)
	require.Len(t, pickerOut.Spec.Egress, 2)
	assert.Equal(t, llama.Spec.PodSelector.MatchLabels, pickerOut.Spec.Egress[0].To[0].PodSelector.MatchLabels)
	assert.Equal(t, int32(8000), pickerOut.Spec.Egress[0].Ports[0].Port.IntVal)
	assert.Equal(t, "10.0.0.2/32", pickerOut.Spec.Egress[1].To[0].IPBlock.CIDR, "the API server")

	// Egress is per workload: the corpus only for ingestion runs, the
	// registry only for the models' fetch runs; the servers reach nothing.
	cidrs := func(policy string) []string {
		var p networkingv1.NetworkPolicy
		res.Decode(t, "NetworkPolicy", policy, &p)
		var out []string
		for _, rule := range p.Spec.Egress {
			out = append(out, rule.To[0].IPBlock.CIDR)
		}
		return out
	}
	assert.Equal(t, []string{"10.40.0.0/16"}, cidrs("allow-out-ingestion"))
	assert.Equal(t, []string{"10.40.0.0/16"}, cidrs("allow-out-pipeline-schedule"), "a scheduled run reaches what the first run reaches")
	assert.Equal(t, []string{"10.50.12.0/24"}, cidrs("allow-out-fetch-llama-3-70b"))
	assert.Equal(t, []string{"10.50.12.0/24"}, cidrs("allow-out-fetch-bge-embed"))
	for _, none := range []string{"transformation", "checkpoint", "inference-llama-3-70b", "inference-bge-embed"} {
		assert.False(t, res.Has("NetworkPolicy", "allow-out-"+none), "%s reaches nothing outside", none)
	}

	// The transformation and checkpoint stages serve the stack's pods, which
	// may reach exactly them on their ports.
	var internal networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-platform-internal-egress", &internal)
	require.Len(t, internal.Spec.Egress, 2)
	assert.Equal(t, "transformation", internal.Spec.Egress[0].To[0].PodSelector.MatchLabels["app.kubernetes.io/name"])
	assert.Equal(t, "checkpoint", internal.Spec.Egress[1].To[0].PodSelector.MatchLabels["app.kubernetes.io/name"])
	var transformation networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-in-transformation", &transformation)
	require.Len(t, transformation.Spec.Ingress, 2, "the stack's pods, and the scrapers of its /metrics")
	assert.Equal(t, "llm-platform", transformation.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/part-of"])

	c := stacktest.Load(t, "dev").Set(t, "namespace.network.egress", []any{})
	for _, o := range stacktest.Run(t, c).Objects {
		assert.False(t, strings.HasPrefix(o.Name(), "allow-out-"), "no egress rules, no egress allow: %s", o.Name())
	}
}

// The platform knows no workload: what it creates comes from the intents it
// is handed. A workload it has never heard of gets its ServiceAccount and
// exactly the policies its declarations ask for.
func TestIntentsBecomeServiceAccountsAndPolicies(t *testing.T) {
	args := platform.Args{
		Namespace: "team-a",
		Quota:     platform.Quota{CPU: "8", Memory: "32Gi", Storage: "100Gi", GPUs: 1, Pods: 10, GPUResourceName: "nvidia.com/gpu"},
		DNS:       platform.DNS{Namespace: "kube-system", PodLabels: map[string]string{"k8s-app": "kube-dns"}},
		Workloads: []intent.Workload{{
			Name:    "reranker",
			Pods:    map[string]string{"app.kubernetes.io/name": "reranker"},
			Serves:  []intent.Ingress{{Port: 9000, From: intent.Peers{Namespaces: []string{"gateway"}}}, {Port: 9100, From: intent.Peers{}}},
			Reaches: []intent.Egress{{CIDR: "10.9.0.0/16", Ports: []int{443}}},
		}, {
			Name: "quiet",
			Pods: map[string]string{"app.kubernetes.io/name": "quiet"},
		}},
	}
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := platform.New(ctx, "platform", args)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	got := map[string]mock.Object{}
	for _, o := range rec.Objects() {
		got[o.Kind()+"/"+o.Name()] = o
	}
	assert.Contains(t, got, "ServiceAccount/reranker")
	assert.Contains(t, got, "ServiceAccount/quiet")
	var in networkingv1.NetworkPolicy
	require.NoError(t, got["NetworkPolicy/allow-in-reranker"].Decode(&in))
	require.Len(t, in.Spec.Ingress, 1, "peers that name nobody allow nothing")
	assert.Equal(t, int32(9000), in.Spec.Ingress[0].Ports[0].Port.IntVal)
	var out networkingv1.NetworkPolicy
	require.NoError(t, got["NetworkPolicy/allow-out-reranker"].Decode(&out))
	assert.Equal(t, "10.9.0.0/16", out.Spec.Egress[0].To[0].IPBlock.CIDR)
	for _, none := range []string{"allow-in-quiet", "allow-out-quiet", "allow-platform-internal-egress"} {
		assert.NotContains(t, got, "NetworkPolicy/"+none, "nothing declared, nothing allowed")
	}
}

func TestServingOutranksBatch(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var serving, batch schedulingv1.PriorityClass
	res.Decode(t, "PriorityClass", "llm-platform-serving", &serving)
	res.Decode(t, "PriorityClass", "llm-platform-batch", &batch)
	assert.Greater(t, serving.Value, batch.Value)
	assert.Equal(t, corev1.PreemptNever, *batch.PreemptionPolicy)
	for _, tpl := range res.PodTemplates(t) {
		want := "llm-platform-batch"
		// A fetch run is on its model's rollout path: serving priority.
		switch tpl.Labels["app.kubernetes.io/name"] {
		case "inference", "checkpoint", "fetch", "endpoint-picker":
			want = "llm-platform-serving"
		}
		assert.Equal(t, want, tpl.Spec.PriorityClassName, tpl.Owner)
	}
}

func TestOneServiceAccountPerWorkloadWithoutToken(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	for _, tpl := range res.PodTemplates(t) {
		var sa corev1.ServiceAccount
		res.Decode(t, "ServiceAccount", tpl.Spec.ServiceAccountName, &sa)
		assert.False(t, *sa.AutomountServiceAccountToken, sa.Name)
	}
	seen := map[string]string{}
	for _, tpl := range res.PodTemplates(t) {
		if other, dup := seen[tpl.Spec.ServiceAccountName]; dup {
			t.Errorf("%s and %s share ServiceAccount %s", tpl.Owner, other, tpl.Spec.ServiceAccountName)
		}
		seen[tpl.Spec.ServiceAccountName] = tpl.Owner
	}
}
