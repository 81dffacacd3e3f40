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
	res, err := Load(
		func(key string) (string, bool) { return ctx.GetConfig(full(key)) },
		func(key string) bool { return ctx.IsConfigSecret(full(key)) },
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
