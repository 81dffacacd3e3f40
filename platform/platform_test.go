package platform_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"

	"llm-platform/internal/stacktest"
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

	var clients networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-inference-clients", &clients)
	assert.Equal(t, "inference", clients.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"])
	require.Len(t, clients.Spec.Ingress, 1)
	assert.Equal(t, []string{"llm-gateway", "batch-eval"}, clients.Spec.Ingress[0].From[0].NamespaceSelector.MatchExpressions[0].Values)
	require.Len(t, clients.Spec.Ingress[0].Ports, 1, "both models serve on 8000")
	assert.Equal(t, int32(8000), clients.Spec.Ingress[0].Ports[0].Port.IntVal)

	var egress networkingv1.NetworkPolicy
	res.Decode(t, "NetworkPolicy", "allow-egress", &egress)
	require.Len(t, egress.Spec.Egress, 2)
	assert.Equal(t, "10.50.12.0/24", egress.Spec.Egress[1].To[0].IPBlock.CIDR)

	c := stacktest.Load(t, "dev").Set(t, "namespace.network.egress", []any{})
	assert.False(t, stacktest.Run(t, c).Has("NetworkPolicy", "allow-egress"), "no egress rules, no egress allow")
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
		if tpl.Labels["app.kubernetes.io/name"] == "inference" || tpl.Labels["app.kubernetes.io/name"] == "checkpoint" {
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
