package config

import (
	"errors"
	"fmt"
)

// RequiredKeys are the top-level keys every stack file sets, in the order a
// stack file usually holds them. Pulumi.yaml declares exactly these: Pulumi
// treats every declared key without a default as required.
var RequiredKeys = []string{"environment", "namespace", "gpuPool", "serving", "pipeline", "checkpoint", "cron"}

// SecretKeys are optional, and only ever set with `pulumi config set --secret`.
var SecretKeys = []string{SecretModelRegistryToken, SecretRegistryCredentials}

// OptionalKeys may be left out of a stack file; like the secrets, Pulumi.yaml
// does not declare them (Pulumi requires every declared key without a default).
var OptionalKeys = []string{"monitoring", "clusterDomain", "acceptCluster"}

// Keys lists every top-level key of the project. Render uses it to reject
// unknown keys in stack files.
var Keys = append(append(append([]string{}, RequiredKeys...), OptionalKeys...), SecretKeys...)

// The secret keys.
const (
	SecretModelRegistryToken  = "modelRegistryToken"
	SecretRegistryCredentials = "registryCredentials"
)

// Lookup returns the raw value of a project key ("serving", not
// "llm-platform:serving") and whether it is set. Objects come as JSON text, as
// Pulumi hands them to a program.
type Lookup func(key string) (value string, ok bool)

// Result is a loaded configuration and the warnings it deserves.
type Result struct {
	Config   Config
	Warnings []string
}

// Load reads every key through lookup, applies defaults and validates the
// whole. The error joins one FieldError per problem; on error the Config must
// not be used. isSecret reports whether a key was set as a secret; it may be nil
// when no secret keys are set.
func Load(lookup Lookup, isSecret func(key string) bool) (Result, error) {
	return LoadStack(lookup, isSecret, "")
}

// LoadStack is Load for a program that can read the stack file at
// stackFile (Pulumi.<stack>.yaml in the project's folder, "" when unknown):
// a secure value nested in a section is then named at its own path even
// when the engine has decrypted it.
func LoadStack(lookup Lookup, isSecret func(key string) bool, stackFile string) (Result, error) {
	cfg := Defaults()
	d := &decoder{}

	env, ok := lookup("environment")
	if !ok {
		d.fail("environment", nil, "required: one of dev, staging, prod", `"dev"`)
	}
	cfg.Environment = env

	sections := []struct {
		key string
		dst any
	}{
		{"namespace", &cfg.Namespace},
		{"gpuPool", &cfg.GPUPool},
		{"serving", &cfg.Serving},
		{"pipeline", &cfg.Pipeline},
		{"checkpoint", &cfg.Checkpoint},
		{"cron", &cfg.Cron},
	}
	for _, s := range sections {
		text, ok := lookup(s.key)
		if !ok {
			d.fail(s.key, nil, "required: the stack file has no "+Project+":"+s.key+" section", "see Pulumi.dev.yaml")
			continue
		}
		if isSecret != nil && isSecret(s.key) {
			// Refused, and still read: every other problem is reported too.
			d.nestedSecrets(s.key, text, stackFile)
		}
		d.decodeJSON(s.key, text, s.dst)
	}

	if text, ok := lookup("monitoring"); ok {
		if isSecret != nil && isSecret("monitoring") {
			d.nestedSecrets("monitoring", text, stackFile)
		}
		d.decodeJSON("monitoring", text, &cfg.Monitoring)
	}
	if domain, ok := lookup("clusterDomain"); ok {
		cfg.ClusterDomain = domain
	}
	if uid, ok := lookup("acceptCluster"); ok {
		cfg.AcceptCluster = uid
	}

	for _, key := range SecretKeys {
		value, set := lookup(key)
		if !set {
			continue
		}
		if isSecret == nil || !isSecret(key) {
			// Never echo the value: it is meant to be secret.
			d.fail(key, "<redacted>", "must be stored encrypted", fmt.Sprintf("pulumi config set --secret %s <value>", key))
			continue
		}
		if value == "" {
			d.fail(key, "", "must not be empty when set", "")
		}
		switch key {
		case SecretModelRegistryToken:
			cfg.Secrets.ModelRegistryToken = true
		case SecretRegistryCredentials:
			cfg.Secrets.RegistryCredentials = true
		}
	}

	// A value that failed to decode keeps its default, so validating the rest
	// still reports every other problem in the same run.
	if !d.written["monitoring.enabled"] {
		cfg.Monitoring.Enabled = cfg.Environment == EnvProd
	}
	applyDerivedDefaults(&cfg, d.written)
	warnings, errs := validate(&cfg, d.written, d.errs)
	if errs = append(d.errs, errs...); len(errs) > 0 {
		return Result{Warnings: warnings}, errors.Join(errs...)
	}
	return Result{Config: cfg, Warnings: warnings}, nil
}
