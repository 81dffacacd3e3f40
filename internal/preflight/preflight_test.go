package preflight

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authorizationv1 "k8s.io/api/authorization/v1"
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
func TestClientReadsTheKubeconfigAsTheProviderDoes(t *testing.T) {
	const doc = `{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:6443"}}],` +
		`"users":[{"name":"u","user":{"token":"s3cr3t-token"}}],"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}`
	_, err := Client(doc, "", "")
	assert.NoError(t, err, "JSON text")
	_, err = Client(`{"apiVersion":"v1","users":[{"name":"u","user":{"token":"s3cr3t-token"}}]}`, "", "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t-token", "the error never repeats the kubeconfig")
	_, err = Client("/nonexistent/kubeconfig", "", "")
	assert.Error(t, err)
}
