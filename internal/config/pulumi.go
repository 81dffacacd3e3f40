package config

import (
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumiconfig "github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Secrets are the secret values of a stack, still Pulumi secrets: they reach
// Kubernetes Secrets without ever being seen in clear by the program's logs,
// previews or state. A nil field was not set.
type Secrets struct {
	ModelRegistryToken  pulumi.StringInput
	RegistryCredentials pulumi.StringInput
}

// FromPulumi loads the stack's configuration from the Pulumi context.
func FromPulumi(ctx *pulumi.Context) (Result, Secrets, error) {
	full := func(key string) string { return Project + ":" + key }
	res, err := LoadStack(
		func(key string) (string, bool) { return ctx.GetConfig(full(key)) },
		func(key string) bool { return ctx.IsConfigSecret(full(key)) },
		// The engine runs the program in the project's folder.
		StackFilePath(ctx.Stack()),
	)
	if err != nil {
		return res, Secrets{}, err
	}
	var secrets Secrets
	if res.Config.Secrets.ModelRegistryToken {
		v, err := pulumiconfig.TrySecret(ctx, full(SecretModelRegistryToken))
		if err != nil {
			return res, Secrets{}, err
		}
		secrets.ModelRegistryToken = v
	}
	if res.Config.Secrets.RegistryCredentials {
		v, err := pulumiconfig.TrySecret(ctx, full(SecretRegistryCredentials))
		if err != nil {
			return res, Secrets{}, err
		}
		secrets.RegistryCredentials = v
	}
	return res, secrets, nil
}

// Cluster is how the stack's Kubernetes provider reaches the cluster, as the
// user set it in the stack's `kubernetes:` config (all optional: without them
// the provider uses KUBECONFIG or ~/.kube/config, as Pulumi's default one does).
type Cluster struct {
	// Kubeconfig is `kubernetes:kubeconfig` (a path or the file's text), as a
	// secret for the provider's input; nil when unset.
	Kubeconfig pulumi.StringInput
	// KubeconfigText is the same value in clear, "" when unset, for the
	// checks the program makes itself (internal/preflight). Never give it to
	// a resource: it may hold credentials.
	KubeconfigText string
	// Context is `kubernetes:context`.
	Context string
	// Cluster is `kubernetes:cluster`.
	Cluster string
	// Identifier is `kubernetes:clusterIdentifier`, the default provider's
	// name for the cluster: while it is set and unchanged, pulumi-kubernetes
	// never replaces the provider. "" when unset.
	Identifier string
	// UID is the identity of the cluster this run reaches: the UID of its
	// kube-system namespace, which lives as long as the cluster (Kubernetes
	// has no cluster ID; the namespace's UID is the usual stand-in). Not
	// config: the program reads it from the cluster (stack.IdentifyCluster),
	// and it is "" where there is no cluster (the offline render, mocks).
	UID string
}

// ClusterFromPulumi reads the `kubernetes:` keys that choose the cluster, so
// an explicit provider of the stack talks to the same cluster as the default.
// It refuses `kubernetes:kubeconfig` without `kubernetes:clusterIdentifier`:
// pulumi-kubernetes reads the file the key names (or the text it holds) and,
// when that file's current cluster entry differs from the last run's (another
// server address, a proxy URL, another file), replaces the provider and with
// it every object of the stack, unless clusterIdentifier is set and unchanged
// (provider.go DiffConfig, pulumi-kubernetes v4.33).
func ClusterFromPulumi(ctx *pulumi.Context) (Cluster, error) {
	var c Cluster
	if v, ok := ctx.GetConfig("kubernetes:kubeconfig"); ok {
		c.Kubeconfig = pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
		c.KubeconfigText = v
	}
	c.Context, _ = ctx.GetConfig("kubernetes:context")
	c.Cluster, _ = ctx.GetConfig("kubernetes:cluster")
	c.Identifier, _ = ctx.GetConfig("kubernetes:clusterIdentifier")
	if c.KubeconfigText != "" && c.Identifier == "" {
		return c, errors.New("kubernetes:clusterIdentifier is required when kubernetes:kubeconfig is set: without it pulumi-kubernetes replaces its provider, " +
			"and with it every object of the stack, whenever the kubeconfig's current cluster entry changes (another file, server address or proxy URL for the same cluster); " +
			"set a name for this cluster that stays as long as the cluster does, for example: pulumi config set kubernetes:clusterIdentifier prod-eu-1 " +
			"(the program checks for itself that every run reaches the cluster the stack was deployed to)")
	}
	return c, nil
}
