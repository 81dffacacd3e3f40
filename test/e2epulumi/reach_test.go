//go:build e2e

package e2epulumi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"llm-platform/internal/stack"
)

// How a run reaches its cluster changes for years: a CI runner's kubeconfig
// at another path, with its own context and user names and another address
// of the same API server, then the kubeconfig named in the stack's config.
// None of it is a change of cluster, and none of it plans to replace the
// adopter provider, the default one or anything they own: every object
// keeps its UID through `pulumi up`. What would replace everything is
// refused at preview, naming the way forward: kubernetes:kubeconfig without
// kubernetes:clusterIdentifier, a new identifier for the same cluster, and a
// run that reaches another cluster than the stack's record says.
func TestAnotherWayToTheSameClusterReplacesNothing(t *testing.T) {
	const s = "dev"
	ns := stackConfig(t, s).Namespace.Name
	other := runnerKubeconfig(t)
	t.Cleanup(func() {
		_, _ = clone.Run(time.Minute, "pulumi config rm kubernetes:kubeconfig --stack "+s+"; pulumi config rm kubernetes:context --stack "+s+"; pulumi config rm kubernetes:clusterIdentifier --stack "+s)
	})
	before := objectUIDs(t, ns)

	// The runner's kubeconfig, the stack's config naming none: nothing to do.
	pulumi(t, 5*time.Minute, "preview --stack "+s+" --expect-no-changes", "KUBECONFIG="+other)
	pulumi(t, 5*time.Minute, "preview --stack "+s+" --refresh --expect-no-changes", "KUBECONFIG="+other)

	// The deployer's kubeconfig named in the config, without an identifier.
	sh(t, time.Minute, "pulumi config set kubernetes:kubeconfig "+kubectl.Kubeconfig+" --stack "+s)
	out := shFails(t, 5*time.Minute, "pulumi --cwd "+fastProject+" --non-interactive preview --stack "+s)
	assert.Contains(t, out, "kubernetes:clusterIdentifier is required when kubernetes:kubeconfig is set")

	sh(t, time.Minute, "pulumi config set kubernetes:clusterIdentifier local-dev --stack "+s)
	out = pulumi(t, 10*time.Minute, "up --yes --stack "+s)
	assert.NotContains(t, out, "replaced", "naming the kubeconfig and the identifier updates the providers in place")

	// The runner's file, its context named: the providers' inputs change,
	// nothing is replaced.
	sh(t, time.Minute, "pulumi config set kubernetes:kubeconfig "+other+" --stack "+s+" && pulumi config set kubernetes:context llm-platform-ci --stack "+s)
	out = pulumi(t, 5*time.Minute, "preview --diff --stack "+s)
	assert.NotContains(t, out, "to replace", "another way to the same cluster replaces nothing")
	assert.NotContains(t, out, "to delete")
	pulumi(t, 10*time.Minute, "up --yes --stack "+s)
	pulumi(t, 5*time.Minute, "preview --stack "+s+" --expect-no-changes")
	assert.Equal(t, before, objectUIDs(t, ns), "every object of the stack is the same object")

	// A new identifier for the same cluster: pulumi-kubernetes would replace
	// every object; refused, naming the identifier to set back.
	sh(t, time.Minute, "pulumi config set kubernetes:clusterIdentifier renamed --stack "+s)
	out = shFails(t, 5*time.Minute, "pulumi --cwd "+fastProject+" --non-interactive preview --stack "+s)
	assert.Contains(t, out, `kubernetes:clusterIdentifier changed from "local-dev" to "renamed"`)
	assert.Contains(t, out, "pulumi config set kubernetes:clusterIdentifier local-dev")
	sh(t, time.Minute, "pulumi config set kubernetes:clusterIdentifier local-dev --stack "+s)

	// Another cluster: the record says the stack was deployed elsewhere
	// (as it would after the kubeconfig was pointed at another cluster).
	// Refused before anything is planned, naming both clusters.
	uid := strings.TrimSpace(pulumi(t, time.Minute, "stack output "+stack.ClusterUIDOutput+" --stack "+s))
	require.Len(t, uid, 36, "the stack records the cluster's UID")
	elsewhere := "00000000-0000-0000-0000-00000000c1a5"
	setRecordedCluster(t, s, elsewhere)
	out = shFails(t, 5*time.Minute, "pulumi --cwd "+fastProject+" --non-interactive preview --stack "+s)
	for _, want := range []string{`stack "dev" was deployed to another cluster`, elsewhere, uid, "pulumi stack init", "pulumi destroy"} {
		assert.Contains(t, out, want)
	}
	// The way onto a rebuilt cluster: accepted for the run that names it.
	out = pulumi(t, 5*time.Minute, "preview --stack "+s+" --config llm-platform:acceptCluster="+uid)
	assert.Contains(t, out, "as accepted")
	sh(t, time.Minute, "pulumi config rm llm-platform:acceptCluster --stack "+s)
	setRecordedCluster(t, s, uid)

	// Back to the stack file as it was: in place again.
	sh(t, time.Minute, "pulumi config rm kubernetes:kubeconfig --stack "+s+" && pulumi config rm kubernetes:context --stack "+s+" && pulumi config rm kubernetes:clusterIdentifier --stack "+s)
	out = pulumi(t, 10*time.Minute, "up --yes --stack "+s)
	assert.NotContains(t, out, "replaced")
	pulumi(t, 5*time.Minute, "preview --stack "+s+" --expect-no-changes")
	assert.Equal(t, before, objectUIDs(t, ns))
}

// runnerKubeconfig writes the kubeconfig a CI runner would have for the
// local cluster: another path, its own cluster, context and user names, and
// the API server at localhost instead of 127.0.0.1 (the same server, and a
// new cluster entry for pulumi-kubernetes' heuristics).
func runnerKubeconfig(t *testing.T) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubectl.Kubeconfig)
	require.NoError(t, err)
	current := cfg.Contexts[cfg.CurrentContext]
	require.NotNil(t, current)
	cluster, user := *cfg.Clusters[current.Cluster], *cfg.AuthInfos[current.AuthInfo]
	cluster.Server = strings.Replace(cluster.Server, "127.0.0.1", "localhost", 1)
	require.Contains(t, cluster.Server, "localhost")
	runner := clientcmdapiConfig(&cluster, &user)
	path := filepath.Join(t.TempDir(), "runner", "config")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, clientcmd.WriteToFile(*runner, path))
	sh(t, time.Minute, "build/bin/kubectl --kubeconfig "+path+" get namespace kube-system")
	return path
}

// setRecordedCluster rewrites the stack's clusterUID output in its state,
// as pulumi stack export and import would by hand.
func setRecordedCluster(t *testing.T, s, uid string) {
	t.Helper()
	var state map[string]any
	require.NoError(t, json.Unmarshal([]byte(pulumi(t, time.Minute, "stack export --stack "+s)), &state))
	found := false
	for _, r := range state["deployment"].(map[string]any)["resources"].([]any) {
		res := r.(map[string]any)
		if res["type"] == "pulumi:pulumi:Stack" {
			res["outputs"].(map[string]any)[stack.ClusterUIDOutput] = uid
			found = true
		}
	}
	require.True(t, found, "the stack's root resource")
	b, err := json.Marshal(state)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	pulumi(t, time.Minute, "stack import --stack "+s+" --file "+path)
}

// objectUIDs are the UIDs of the namespace and of every object the stack
// keeps in it, by kind and name.
func objectUIDs(t *testing.T, ns string) map[string]string {
	t.Helper()
	var list struct {
		Items []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
				UID  string `json:"uid"`
			} `json:"metadata"`
		} `json:"items"`
	}
	require.NoError(t, kubectl.GetJSON(&list, "-n", ns, stackKinds+",persistentvolumeclaims"))
	out := map[string]string{}
	for _, o := range list.Items {
		out[o.Kind+"/"+o.Metadata.Name] = o.Metadata.UID
	}
	var namespace struct {
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	}
	require.NoError(t, kubectl.GetJSON(&namespace, "namespace", ns))
	out["Namespace/"+ns] = namespace.Metadata.UID
	require.Greater(t, len(out), 10)
	return out
}

func clientcmdapiConfig(cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["ci-runner-view"] = cluster
	cfg.AuthInfos["ci-runner"] = user
	cfg.Contexts["llm-platform-ci"] = &clientcmdapi.Context{Cluster: "ci-runner-view", AuthInfo: "ci-runner"}
	cfg.CurrentContext = "llm-platform-ci"
	return cfg
}
