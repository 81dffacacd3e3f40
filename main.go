// Command llm-platform is the Pulumi program that stands up the LLM platform:
// run it with `pulumi up -s <stack>`, or render it offline with `make render`.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/config"
	"llm-platform/internal/preflight"
	"llm-platform/internal/stack"
)

func main() {
	stack.BeforePreview = checkPreviewAccess
	stack.IdentifyCluster = identifyCluster
	pulumi.Run(stack.Program)
}

// checkPreviewAccess fails a preview whose identity could not dry-run the
// stack's changes (see internal/preflight), reaching the cluster the way the
// stack's provider does: the `kubernetes:` config, else KUBECONFIG.
func checkPreviewAccess(ctx *pulumi.Context, namespace string, cluster config.Cluster) error {
	client, err := preflight.Client(cluster.KubeconfigText, cluster.Context, cluster.Cluster)
	if err != nil {
		return err
	}
	return preflight.Check(ctx.Context(), client, namespace)
}

// identifyCluster reads the identity of the cluster the stack's provider
// reaches (see internal/preflight.ClusterUID) and its API server's address.
func identifyCluster(ctx *pulumi.Context, cluster config.Cluster) (string, string, error) {
	client, err := preflight.Client(cluster.KubeconfigText, cluster.Context, cluster.Cluster)
	if err != nil {
		return "", "", err
	}
	uid, err := preflight.ClusterUID(ctx.Context(), client)
	if err != nil {
		return "", "", err
	}
	return uid, preflight.Server(client), nil
}
