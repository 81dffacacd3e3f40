// Package stackfile reads a Pulumi stack file (Pulumi.<stack>.yaml) into the
// configuration map Pulumi hands a Go program: "project:key" to a string, with
// objects and lists as JSON text. Secrets are never decrypted: a secure value
// becomes a placeholder and its key is reported as secret.
package stackfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"llm-platform/internal/config"
)

// Placeholder stands in for a secret value that cannot be decrypted offline.
func Placeholder(key string) string { return "<secret " + key + ">" }

// Stack is a stack file's configuration in the form Pulumi hands a program.
type Stack struct {
	// Name of the stack, from the file name.
	Name string
	// Config maps "llm-platform:key" to its value.
	Config map[string]string
	// SecretKeys lists the keys whose values are secret.
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
	var file struct {
		Config map[string]any `json:"config"`
	}
	if err := yaml.UnmarshalStrict(text, &file); err != nil {
		return Stack{}, fmt.Errorf("%s: not a valid stack file: %w", path, err)
	}
	s := Stack{Name: stack, Config: map[string]string{}}
	var problems []string
	keys := make([]string, 0, len(file.Config))
	for k := range file.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		value := file.Config[key]
		project, name, ok := strings.Cut(key, ":")
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: key %q has no namespace; write %s:%s", path, key, config.Project, key))
			continue
		}
		if project != config.Project {
			continue
		}
		if !slices.Contains(config.Keys, name) {
			problems = append(problems, fmt.Sprintf("%s: %s is not a key of this project; valid keys are %s", path, key, strings.Join(config.Keys, ", ")))
			continue
		}
		if m, ok := value.(map[string]any); ok && len(m) == 1 && m["secure"] != nil {
			s.Config[key] = Placeholder(key)
			s.SecretKeys = append(s.SecretKeys, key)
			continue
		}
		switch v := value.(type) {
		case string:
			s.Config[key] = v
		case map[string]any, []any:
			b, err := json.Marshal(v)
			if err != nil {
				return Stack{}, err
			}
			s.Config[key] = string(b)
		default:
			s.Config[key] = fmt.Sprint(v)
		}
	}
	if len(problems) > 0 {
		return Stack{}, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return s, nil
}
