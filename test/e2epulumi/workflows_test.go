//go:build e2e

package e2epulumi

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// replayStep is one step of a workflow that can run here: a `run:` line, or a
// pulumi/actions call turned into the CLI command the action runs.
type replayStep struct {
	Name string
	// Run is a shell line (a build step), empty for a Pulumi step.
	Run string
	// Command, Stack, WorkDir, Refresh, ExpectNoChanges are the
	// pulumi/actions inputs.
	Command, Stack, WorkDir  string
	Refresh, ExpectNoChanges bool
}

// CLI is the pulumi command the action runs for this step.
func (s replayStep) CLI() string {
	args := []string{"pulumi", "--cwd", s.WorkDir, "--non-interactive", s.Command, "--stack", s.Stack}
	if s.Command == "up" {
		args = append(args, "--yes", "--skip-preview")
	}
	if s.Refresh {
		args = append(args, "--refresh")
	}
	if s.ExpectNoChanges {
		args = append(args, "--expect-no-changes")
	}
	return strings.Join(args, " ")
}

type workflowFile struct {
	Jobs map[string]struct {
		Strategy struct {
			Matrix map[string]any `json:"matrix"`
		} `json:"strategy"`
		Steps []workflowStep `json:"steps"`
	} `json:"jobs"`
}

type workflowStep struct {
	Name string         `json:"name"`
	Uses string         `json:"uses"`
	Run  string         `json:"run"`
	With map[string]any `json:"with"`
}

var matrixRef = regexp.MustCompile(`^\$\{\{\s*matrix\.([a-zA-Z_-]+)\s*\}\}$`)

// workflowSteps lists what a workflow does that can be replayed locally. The
// job that runs `make test` is this very suite and is left out; so are steps
// that only fetch secrets (the kubeconfig is the local cluster's here).
func workflowSteps(t *testing.T, path string) []replayStep {
	t.Helper()
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	var wf workflowFile
	require.NoError(t, yaml.Unmarshal(text, &wf), path)
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var jobs []string
	for name := range wf.Jobs {
		jobs = append(jobs, name)
	}
	sort.Strings(jobs)
	var out []replayStep
	seenRun := map[string]bool{}
	for _, jobName := range jobs {
		job := wf.Jobs[jobName]
		if runsTheTests(job.Steps) {
			continue
		}
		for _, step := range job.Steps {
			switch {
			case step.Run != "":
				line := strings.TrimSpace(step.Run)
				if strings.Contains(line, "${{") || strings.Contains(line, "KUBECONFIG") || seenRun[line] {
					continue
				}
				seenRun[line] = true
				out = append(out, replayStep{Name: fmt.Sprintf("%s/%s/run", base, jobName), Run: line})
			case strings.HasPrefix(step.Uses, "pulumi/actions@"):
				stacks := []string{fmt.Sprint(step.With["stack-name"])}
				if m := matrixRef.FindStringSubmatch(stacks[0]); m != nil {
					values, ok := job.Strategy.Matrix[m[1]].([]any)
					require.True(t, ok, "%s: job %s: matrix.%s is not a list", path, jobName, m[1])
					stacks = nil
					for _, v := range values {
						stacks = append(stacks, fmt.Sprint(v))
					}
				}
				for _, stack := range stacks {
					s := replayStep{
						Command: fmt.Sprint(step.With["command"]), Stack: stack,
						WorkDir: fmt.Sprint(step.With["work-dir"]),
						Refresh: step.With["refresh"] == true, ExpectNoChanges: step.With["expect-no-changes"] == true,
					}
					require.NotEqual(t, "<nil>", s.WorkDir, "%s: job %s: pulumi/actions without work-dir runs Pulumi.yaml in source mode", path, jobName)
					s.Name = fmt.Sprintf("%s/%s/%s-%s", base, jobName, s.Command, stack)
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func runsTheTests(steps []workflowStep) bool {
	for _, s := range steps {
		if strings.Contains(s.Run, "make test") {
			return true
		}
	}
	return false
}
