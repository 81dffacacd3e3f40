// Package stackfile reads a Pulumi stack file (Pulumi.<stack>.yaml) into the
// configuration map Pulumi hands a Go program: "project:key" to a string, with
// objects and lists as JSON text. It reads the file with the Pulumi SDK's own
// loader, so YAML 1.2 scalars, keys written without the project namespace, and
// secure values nested inside objects read exactly as `pulumi preview` reads
// them. Secrets are never decrypted: a secure value becomes a placeholder
// (inside an object, Pulumi's "[secret]") and its key is reported as secret.
package stackfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/encoding"
	pulumiconfig "github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"go.yaml.in/yaml/v3"

	"llm-platform/internal/config"
)

// TopLevelKeys are the keys Pulumi itself writes at the top of a stack file:
// `pulumi stack init` adds the secrets provider's fields, and an ESC
// environment may be imported. Anything else is a mistake (a misspelled
// `config:` would hide the whole configuration).
var TopLevelKeys = []string{"config", "encryptedkey", "encryptionsalt", "environment", "secretsprovider"}

// Placeholder stands in for a secret value that cannot be decrypted offline.
func Placeholder(key string) string { return "<secret " + key + ">" }

// Stack is a stack file's configuration in the form Pulumi hands a program.
type Stack struct {
	// Name of the stack, from the file name.
	Name string
	// Config maps "llm-platform:key" to its value.
	Config map[string]string
	// SecretKeys lists the keys whose values are secret, or hold a secret.
	SecretKeys []string
}

// Lookup returns the value of a project key ("serving"), as config.Load wants it.
func (s Stack) Lookup(key string) (string, bool) {
	v, ok := s.Config[config.Project+":"+key]
	return v, ok
}

// IsSecret reports whether a project key was set as a secret.
func (s Stack) IsSecret(key string) bool {
	return slices.Contains(s.SecretKeys, config.Project+":"+key)
}

// Load reads Pulumi.<stack>.yaml from dir. Keys of this project that the
// program does not know are an error: a misspelled key would otherwise be
// ignored in silence. Keys of other namespaces (kubernetes:context) pass.
func Load(dir, stack string) (Stack, error) {
	path := filepath.Join(dir, "Pulumi."+stack+".yaml")
	text, err := os.ReadFile(path)
	if err != nil {
		return Stack{}, fmt.Errorf("stack %q: %w", stack, err)
	}
	return Parse(stack, path, text)
}

// Parse reads a stack file's text; path is only used in messages.
func Parse(stack, path string, text []byte) (Stack, error) {
	if err := checkTopLevelKeys(path, text); err != nil {
		return Stack{}, err
	}
	project := &workspace.Project{Name: config.Project}
	ps, err := workspace.LoadProjectStackBytes(nil, project, text, path, encoding.YAML)
	if err != nil {
		return Stack{}, fmt.Errorf("%s: not a valid stack file: %w", path, err)
	}

	s := Stack{Name: stack, Config: map[string]string{}}
	var problems []string
	keys := make([]pulumiconfig.Key, 0, len(ps.Config))
	for k := range ps.Config {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, key := range keys {
		if key.Namespace() != config.Project {
			continue
		}
		full := key.String()
		if !slices.Contains(config.Keys, key.Name()) {
			problems = append(problems, fmt.Sprintf("%s: %s is not a key of this project; valid keys are %s", path, full, strings.Join(config.Keys, ", ")))
			continue
		}
		value := ps.Config[key]
		if value.Secure() {
			s.SecretKeys = append(s.SecretKeys, full)
			if !value.Object() {
				s.Config[full] = Placeholder(full)
				continue
			}
		}
		// What the engine hands the program: the blinding decrypter only
		// touches secure parts, which become "[secret]".
		text, err := value.Value(pulumiconfig.NewBlindingDecrypter())
		if err != nil {
			return Stack{}, fmt.Errorf("%s: %s: %w", path, full, err)
		}
		s.Config[full] = text
	}
	if len(problems) > 0 {
		return Stack{}, errors.New(strings.Join(problems, "\n"))
	}
	return s, nil
}

// checkTopLevelKeys refuses a stack file whose top level holds a key Pulumi
// never writes. Pulumi itself would ignore it, and a misspelled `config`
// would then hide every value.
func checkTopLevelKeys(path string, text []byte) error {
	var top map[string]any
	if err := yaml.Unmarshal(text, &top); err != nil {
		return fmt.Errorf("%s: not a valid stack file: %w", path, err)
	}
	var unknown []string
	for k := range top {
		if !slices.Contains(TopLevelKeys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("%s: not a valid stack file: unknown top-level key %s; a stack file holds only %s",
		path, strings.Join(quoteAll(unknown), ", "), strings.Join(TopLevelKeys, ", "))
}

func quoteAll(items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
