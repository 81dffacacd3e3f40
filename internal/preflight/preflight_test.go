package preflight

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// reviewer answers SelfSubjectAccessReviews with allow.
func reviewer(allow func(authorizationv1.ResourceAttributes) bool, err error) *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if err != nil {
			return true, nil, err
		}
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		r.Status.Allowed = allow(*r.Spec.ResourceAttributes)
		return true, r, nil
	})
	return c
}

func TestAnIdentityThatMayOnlyReadCannotPreview(t *testing.T) {
	readOnly := reviewer(func(a authorizationv1.ResourceAttributes) bool { return a.Verb == "get" }, nil)
	err := Check(t.Context(), readOnly, "llm-platform")
	require.Error(t, err)
	for _, want := range []string{"create deployments.apps", "patch namespaces", "patch networkpolicies.networking.k8s.io", "deploy/ci-preview-identity.yaml"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "get ")
}

func TestNamespacedKindsAreCheckedInTheStacksNamespace(t *testing.T) {
	onlyThere := reviewer(func(a authorizationv1.ResourceAttributes) bool {
		return a.Namespace == "llm-platform" || a.Resource == "namespaces" || a.Resource == "priorityclasses"
	}, nil)
	assert.NoError(t, Check(t.Context(), onlyThere, "llm-platform"))
	assert.Error(t, Check(t.Context(), onlyThere, "another"))
}

func TestAnUnreachableAPIServerFailsThePreview(t *testing.T) {
	err := Check(t.Context(), reviewer(nil, errors.New("connection refused")), "llm-platform")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the preview cannot check the cluster")
}

// A kubeconfig given as text, YAML or JSON, is read as text; one that is
// neither a document nor a file is refused without being repeated.
func TestConnectReadsTheKubeconfigAsTheProviderDoes(t *testing.T) {
	const doc = `{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:6443"}}],` +
		`"users":[{"name":"u","user":{"token":"s3cr3t-token"}}],"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}`
	_, err := Connect(doc, "", "")
	assert.NoError(t, err, "JSON text")
	_, err = Connect(`{"apiVersion":"v1","users":[{"name":"u","user":{"token":"s3cr3t-token"}}]}`, "", "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t-token", "the error never repeats the kubeconfig")
	_, err = Connect("/nonexistent/kubeconfig", "", "")
	assert.Error(t, err)
}

// The cluster's identity is its kube-system namespace's UID; a cluster whose
// namespace cannot be read fails, saying what was read and what it needs.
func TestClusterUIDIsTheKubeSystemNamespaces(t *testing.T) {
	cluster := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "5f0c9d1e-0000-4000-8000-000000000001"}})
	uid, err := ClusterUID(t.Context(), cluster)
	require.NoError(t, err)
	assert.Equal(t, "5f0c9d1e-0000-4000-8000-000000000001", uid)
	assert.Equal(t, "the API server reached", Server(cluster), "a fake has no address")

	_, err = ClusterUID(t.Context(), fake.NewClientset())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "namespace kube-system, which needs get on namespaces")
}

// The address in messages is the API server's, as the kubeconfig gives it.
func TestServerIsTheAPIServersAddress(t *testing.T) {
	cluster, err := Connect("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.9.8.7:6443/k8s/clusters/c-1'}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n", "", "")
	require.NoError(t, err)
	assert.Equal(t, "https://10.9.8.7:6443/k8s/clusters/c-1", Server(cluster.Kubernetes()))
}
