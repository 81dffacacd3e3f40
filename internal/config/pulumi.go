package config

import (
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
}

// ClusterFromPulumi reads the `kubernetes:` keys that choose the cluster, so
// an explicit provider of the stack talks to the same cluster as the default.
func ClusterFromPulumi(ctx *pulumi.Context) Cluster {
	var c Cluster
	if v, ok := ctx.GetConfig("kubernetes:kubeconfig"); ok {
		c.Kubeconfig = pulumi.ToSecret(pulumi.String(v)).(pulumi.StringOutput)
		c.KubeconfigText = v
	}
	c.Context, _ = ctx.GetConfig("kubernetes:context")
	c.Cluster, _ = ctx.GetConfig("kubernetes:cluster")
	return c
}
