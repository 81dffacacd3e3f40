package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// secretPlaceholder is what Pulumi puts in place of a secure value nested in
// an object when it cannot or will not decrypt it (the offline render, the
// mocks): the render and the tests see it, the engine sees the value.
const secretPlaceholder = "[secret]"

// nestedSecrets refuses a section (serving, pipeline, ...) that holds a
// secure value, as `pulumi config set --secret --path
// 'pipeline.ingestion.args[1]'` writes it. Pulumi hands the program the
// whole section as one value and marks only the section secret: the stack
// would put the value in clear into pod specs and the state (and the render
// would deploy the placeholder). Each secure leaf is named: from the
// placeholders when the value is not decrypted, else from the stack file
// (stackFile, "" when there is none to read), else the section.
func (d *decoder) nestedSecrets(section, text, stackFile string) {
	paths := placeholderPaths(section, text)
	if len(paths) == 0 && stackFile != "" {
		paths = securePaths(stackFile, section)
	}
	if len(paths) == 0 {
		paths = []string{section}
	}
	for _, p := range paths {
		d.fail(p, "<secret>", "is a secret inside a section, which the stack cannot carry as a secret: Pulumi hands the program the whole section as one value, "+
			"so it would reach the pod spec and the state in clear. Remove it (pulumi config rm --path '"+p+"'); keep credentials in "+SecretModelRegistryToken+
			" or "+SecretRegistryCredentials+" (pulumi config set --secret), or in a Kubernetes Secret your workload reads, and pass a reference such as $(VAR) or a file path", "")
	}
}

// placeholderPaths are the paths under section whose value is Pulumi's
// placeholder for a secret.
func placeholderPaths(section, text string) []string {
	var v any
	if json.Unmarshal([]byte(text), &v) != nil {
		return nil
	}
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(joinKey(path, quoteKey(k)), e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			if v == secretPlaceholder {
				out = append(out, path)
			}
		}
	}
	walk(section, v)
	sort.Strings(out)
	return out
}

// securePaths are the paths under section of the stack file at path whose
// values are `secure:` (encrypted) ones.
func securePaths(path, section string) []string {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var file struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	if yaml.Unmarshal(text, &file) != nil {
		return nil
	}
	node, ok := file.Config[Project+":"+section]
	if !ok {
		node, ok = file.Config[section]
	}
	if !ok {
		return nil
	}
	var out []string
	var walk func(p string, n *yaml.Node)
	walk = func(p string, n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			if len(n.Content) == 2 && n.Content[0].Value == "secure" {
				out = append(out, p)
				return
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(joinKey(p, quoteKey(n.Content[i].Value)), n.Content[i+1])
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				walk(fmt.Sprintf("%s[%d]", p, i), e)
			}
		}
	}
	walk(section, &node)
	sort.Strings(out)
	return out
}

// StackFilePath is the stack file Pulumi reads a stack's configuration
// from, seen from the project's folder (where the engine runs the program):
// Pulumi.<stack>.yaml there, or in the project's stackConfigDir.
func StackFilePath(stack string) string {
	name := "Pulumi." + strings.TrimSpace(stack) + ".yaml"
	var project struct {
		StackConfigDir string `yaml:"stackConfigDir"`
	}
	if text, err := os.ReadFile("Pulumi.yaml"); err == nil && yaml.Unmarshal(text, &project) == nil && project.StackConfigDir != "" {
		return filepath.Join(project.StackConfigDir, name)
	}
	return name
}
