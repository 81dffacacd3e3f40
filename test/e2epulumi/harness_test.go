//go:build e2e

// Package e2epulumi runs the user's own commands with the real Pulumi engine
// (the pulumi CLI, the Go language host and pulumi-resource-kubernetes) against
// the local control plane: `pulumi stack init`, `pulumi preview` in source
// mode, `make up-pulumi`, `make preview`, `make deploy`, the GitHub workflows'
// commands, `pulumi stack output` and `pulumi destroy`. It works in a copy of
// the repository, as a user's clone would, so the stack files Pulumi rewrites
// and the state it keeps never touch the developer's tree. Run with
// `make e2e-pulumi`; without the engine it says SKIPPED and passes.
package e2epulumi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"llm-platform/internal/engine"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/stacktest"
)

var (
	root = stacktest.RepoRoot()
	// clone is the user's clone: a copy of the repository's files.
	clone *engine.Clone
	// work is the clone's directory.
	work = filepath.Join(root, "build", "e2e-pulumi")
	// kubectl talks to the clone's local cluster, the one `make up-pulumi` starts.
	kubectl = localcluster.ForRepo(work)
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if missing := engine.Missing(); len(missing) > 0 {
		fmt.Printf("e2e-pulumi: SKIPPED, no Pulumi engine found; see CONTRIBUTING.md (missing: %s)\n", strings.Join(missing, ", "))
		return 0
	}
	var err error
	if clone, err = engine.NewClone(root, work); err != nil {
		fmt.Fprintln(os.Stderr, "e2e-pulumi: cannot copy the repository:", err)
		return 1
	}
	// Always a fresh cluster: a run that was killed must not leave state behind.
	_, _ = clone.Run(2*time.Minute, "hack/cluster.sh down")
	if out, err := clone.Run(5*time.Minute, "hack/cluster.sh up"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e-pulumi: cannot start the local control plane: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if os.Getenv("KEEP_CLUSTER") == "" {
		_, _ = clone.Run(2*time.Minute, "hack/cluster.sh down")
	} else {
		fmt.Printf("e2e-pulumi: cluster kept: KUBECONFIG=%s, clone in %s\n", kubectl.Kubeconfig, work)
	}
	return code
}

// sh runs a shell command line in the clone and fails the test if it fails.
func sh(t *testing.T, timeout time.Duration, line string, extra ...string) string {
	t.Helper()
	start := time.Now()
	out, err := clone.Run(timeout, line, extra...)
	t.Logf("$ %s  (%s)", line, time.Since(start).Round(100*time.Millisecond))
	require.NoError(t, err, "%s", out)
	return out
}

// shFails runs a command line that must fail and returns its output.
func shFails(t *testing.T, timeout time.Duration, line string, extra ...string) string {
	t.Helper()
	out, err := clone.Run(timeout, line, extra...)
	t.Logf("$ %s  (fails, as it must)", line)
	require.Error(t, err, "%s must fail\n%s", line, out)
	return out
}

// fastProject is the binary-mode project `make preview` and `make deploy` run.
const fastProject = "build/pulumi"

// pulumi runs the CLI on the binary-mode project.
func pulumi(t *testing.T, timeout time.Duration, args string, extra ...string) string {
	t.Helper()
	return sh(t, timeout, "pulumi --cwd "+fastProject+" --non-interactive "+args, extra...)
}

// stackResourceTypes lists the types of the resources in a stack's state.
func stackResourceTypes(t *testing.T, stack string) []string {
	t.Helper()
	out := pulumi(t, time.Minute, "stack export --stack "+stack)
	var state struct {
		Deployment struct {
			Resources []struct {
				Type string `json:"type"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &state), out)
	var types []string
	for _, r := range state.Deployment.Resources {
		types = append(types, r.Type)
	}
	return types
}
