package localcluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kubectl runs the project's kubectl against the local cluster only.
type Kubectl struct {
	// Binary is the kubectl to run (build/bin/kubectl).
	Binary string
	// Kubeconfig is the local cluster's kubeconfig (build/kubeconfig).
	Kubeconfig string
}

// ForRepo returns the kubectl that hack/ builds and the kubeconfig hack/cluster.sh writes.
func ForRepo(root string) Kubectl {
	return Kubectl{Binary: filepath.Join(root, "build", "bin", "kubectl"), Kubeconfig: filepath.Join(root, "build", "kubeconfig")}
}

// Run runs kubectl with args and stdin, returning stdout and stderr.
func (k Kubectl) Run(stdin []byte, args ...string) (stdout, stderr string, err error) {
	// A discovery cache of the cluster's own: every local cluster listens on
	// the same address, and kubectl's shared cache (~/.kube/cache, kept for
	// hours) would answer for a previous cluster without the CRDs of this one.
	cmd := exec.Command(k.Binary, append([]string{"--kubeconfig", k.Kubeconfig, "--cache-dir", k.Kubeconfig + ".cache"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}

// GetJSON decodes `kubectl get args -o json` into out.
func (k Kubectl) GetJSON(out any, args ...string) error {
	stdout, _, err := k.Run(nil, append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(stdout), out)
}

// ApplyResult is what one server-side apply reported.
type ApplyResult struct {
	// Output is kubectl's stdout.
	Output string
	// Warnings are the "Warning:" lines the API server sent back.
	Warnings []string
}

// FieldManager names this project's server-side apply manager.
const FieldManager = "llm-platform"

// Apply server-side applies manifests with strict validation: a field the API
// server does not know is an error, not a silent drop.
func (k Kubectl) Apply(manifests []byte) (ApplyResult, error) {
	stdout, stderr, err := k.Run(manifests, "apply", "--server-side", "--field-manager", FieldManager, "--validate=strict", "-f", "-")
	res := ApplyResult{Output: stdout}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Warning:") {
			res.Warnings = append(res.Warnings, strings.TrimSpace(line))
		}
	}
	return res, err
}

// Diff reports what applying manifests would change; empty means nothing.
func (k Kubectl) Diff(manifests []byte) (string, error) {
	stdout, _, err := k.Run(manifests, "diff", "--server-side", "--field-manager", FieldManager, "-f", "-")
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return stdout, nil // exit 1: differences found
	}
	return stdout, err
}

// ToYAML joins objects into one multi-document YAML.
func ToYAML(objs []map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
