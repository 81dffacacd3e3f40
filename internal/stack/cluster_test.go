package stack_test

import (
	"context"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/config"
	"llm-platform/internal/drift"
	"llm-platform/internal/mock"
	"llm-platform/internal/stack"
	"llm-platform/internal/stacktest"
)

// lastDeployment answers the stack's reference to itself with the outputs
// of a last deployment (none when deployed is nil).
type lastDeployment struct {
	*mock.Recorder
	deployed map[string]any
}

// lastReferenced is the stack name the last StackReference read.
var lastReferenced string

func (l lastDeployment) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	id, state, err := l.Recorder.NewResource(args)
	if args.TypeToken == "pulumi:pulumi:StackReference" {
		lastReferenced = args.ID
		state = resource.NewPropertyMapFromMap(map[string]any{"name": args.ID, "outputs": l.deployed, "secretOutputNames": []string{}})
	}
	return id, state, err
}

// runOnCluster runs the dev stack as main does, on the cluster of the UID
// given, after a last deployment with the outputs given.
func runOnCluster(t *testing.T, uid string, deployed map[string]any, kubernetesConfig ...string) (*mock.Recorder, error) {
	t.Helper()
	old := stack.Connect
	t.Cleanup(func() { stack.Connect = old })
	stack.Connect = func(config.Cluster) (stack.LiveCluster, error) { return fakeCluster{uid}, nil }
	c := stacktest.Load(t, "dev")
	cfg := c.PulumiConfig()
	for i := 0; i+1 < len(kubernetesConfig); i += 2 {
		cfg[kubernetesConfig[i]] = kubernetesConfig[i+1]
	}
	rec := mock.NewRecorder()
	err := pulumi.RunErr(stack.Program, pulumi.WithMocks("llm-platform", "dev", lastDeployment{rec, deployed}), func(info *pulumi.RunInfo) {
		info.Config = cfg
		info.ConfigSecretKeys = c.Secrets
	})
	return rec, err
}

// A run that reaches another cluster than the stack was deployed to is
// refused before any object is registered, naming both clusters and the
// ways forward; the same cluster (or a stack never deployed) goes on, and
// names the adopter provider's cluster for good.
func TestAnotherClusterIsRefused(t *testing.T) {
	rec, err := runOnCluster(t, "uid-b", map[string]any{stack.ClusterUIDOutput: "uid-a"})
	require.Error(t, err)
	for _, want := range []string{`stack "dev" was deployed to another cluster`, "uid-a", "uid-b", "https://10.0.0.1:6443", "pulumi stack init", "pulumi destroy", "do not run this program", "pulumi up --refresh --config llm-platform:acceptCluster=uid-b"} {
		assert.Contains(t, err.Error(), want)
	}
	for _, r := range rec.Resources() {
		assert.NotContains(t, r.Type, "kubernetes", "refused before any object is registered, yet %s %s was", r.Type, r.Name)
	}
	assert.Equal(t, "dev", lastReferenced, "a file backend's stack references itself by its bare name")

	for name, deployed := range map[string]map[string]any{
		"same cluster":               {stack.ClusterUIDOutput: "uid-b"},
		"never deployed":             nil,
		"deployed before the record": {"namespace": "llm-platform-dev"},
	} {
		t.Run(name, func(t *testing.T) {
			rec, err := runOnCluster(t, "uid-b", deployed)
			require.NoError(t, err)
			adopter, ok := rec.Resource("pulumi:providers:kubernetes", "platform-adopter")
			require.True(t, ok, "the adopter provider")
			assert.Equal(t, "uid-b", adopter.Inputs["clusterIdentifier"].StringValue(), "the adopter's clusterIdentifier is the cluster's UID: only a change of it replaces the provider")
		})
	}
}

// Without a cluster (the offline render) no identity is set and nothing is
// read back.
func TestNoClusterNoIdentity(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "dev"))
	adopter := res.Resource(t, "pulumi:providers:kubernetes", "platform-adopter")
	assert.NotContains(t, adopter.Inputs, resource.PropertyKey("clusterIdentifier"))
	_, ok := res.Recorder.Resource("pulumi:pulumi:StackReference", "last-deployment")
	assert.False(t, ok)
}

// kubernetes:kubeconfig without kubernetes:clusterIdentifier is refused, as
// is a new identifier for the same cluster: either would let
// pulumi-kubernetes replace its default provider and every object of the
// stack. Another identifier with another kubeconfig for the same cluster,
// and an identifier dropped, go on.
func TestClusterIdentifier(t *testing.T) {
	kubeconfig := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443'}}]\ncontexts: [{name: c, context: {cluster: c}}]\ncurrent-context: c\n"
	_, err := runOnCluster(t, "uid-a", nil, "kubernetes:kubeconfig", kubeconfig)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kubernetes:clusterIdentifier is required when kubernetes:kubeconfig is set")

	deployed := map[string]any{stack.ClusterUIDOutput: "uid-a", stack.ClusterIdentifierOutput: "prod-eu-1"}
	_, err = runOnCluster(t, "uid-a", deployed, "kubernetes:kubeconfig", kubeconfig, "kubernetes:clusterIdentifier", "prod-eu-2")
	require.Error(t, err)
	for _, want := range []string{`kubernetes:clusterIdentifier changed from "prod-eu-1" to "prod-eu-2"`, "would replace every object", "pulumi config set kubernetes:clusterIdentifier prod-eu-1"} {
		assert.Contains(t, err.Error(), want)
	}

	rec, err := runOnCluster(t, "uid-a", deployed, "kubernetes:kubeconfig", "/ci/kubeconfig", "kubernetes:clusterIdentifier", "prod-eu-1", "kubernetes:context", "ci")
	require.NoError(t, err)
	adopter, _ := rec.Resource("pulumi:providers:kubernetes", "platform-adopter")
	assert.Equal(t, "uid-a", adopter.Inputs["clusterIdentifier"].StringValue(), "the adopter keeps the cluster's UID, whatever the default provider is named")

	_, err = runOnCluster(t, "uid-a", deployed)
	require.NoError(t, err, "dropping the identifier with the kubeconfig is not refused: pulumi-kubernetes replaces nothing for a removed identifier")
}

// A cluster rebuilt after a disaster is accepted for the run that names its
// UID in llm-platform:acceptCluster, and only that cluster's; the adopter
// then names the new cluster.
func TestAcceptCluster(t *testing.T) {
	deployed := map[string]any{stack.ClusterUIDOutput: "0b9e5a1c-3f4d-4e2a-9c61-7d2f8e4b5a10"}
	rebuilt := "5d1c7e2a-8b4f-4a6e-9d3c-2f1e0a9b8c7d"

	rec, err := runOnCluster(t, rebuilt, deployed, "llm-platform:acceptCluster", rebuilt)
	require.NoError(t, err)
	adopter, _ := rec.Resource("pulumi:providers:kubernetes", "platform-adopter")
	assert.Equal(t, rebuilt, adopter.Inputs["clusterIdentifier"].StringValue())

	_, err = runOnCluster(t, rebuilt, deployed, "llm-platform:acceptCluster", "7a7a7a7a-0000-4000-8000-000000000000")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "it accepts a cluster this run does not reach")
	assert.Contains(t, err.Error(), "set acceptCluster to "+rebuilt)

	_, err = runOnCluster(t, rebuilt, deployed, "llm-platform:acceptCluster", "rebuilt-cluster")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `llm-platform:acceptCluster: "rebuilt-cluster" is invalid: must be the UID of the cluster's kube-system namespace`)
}

// fakeCluster is a cluster of the UID given, on which this identity may
// preview, with no drift to read.
type fakeCluster struct{ uid string }

func (c fakeCluster) Identify(context.Context) (string, string, error) {
	return c.uid, "https://10.0.0.1:6443", nil
}
func (fakeCluster) CheckPreview(context.Context, string) error { return nil }
func (fakeCluster) ReadDrift(context.Context, string) (*drift.Live, error) {
	return nil, nil
}
func (fakeCluster) Kubernetes() kubernetes.Interface { return fake.NewClientset() }
