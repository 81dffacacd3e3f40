package stack_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/mock"
	"llm-platform/internal/render"
	"llm-platform/internal/stack"
	"llm-platform/internal/stackfile"
	"llm-platform/internal/stacktest"
)

// Every problem line has the form `llm-platform:<key>: <value> is invalid: <rule>`.
var problemLine = regexp.MustCompile(`^llm-platform:[A-Za-z0-9_.\[\]"/-]+: .+ is invalid: .+$`)

// caseDeadline bounds each case: validation never scales with the values it
// validates, so a billion replicas takes as long as one.
const caseDeadline = 5 * time.Second

// Each file under testdata/invalid is a small stack file with one mistake (or
// two values that are only wrong together) and a `# want:` line. Each runs
// through the real program under the mock engine, and through the offline
// render: both must fail with that message within caseDeadline, never panic,
// register nothing but the root stack and render nothing.
func TestInvalidStackFiles(t *testing.T) {
	cases := stacktest.InvalidCases(t, stacktest.RepoRoot())
	require.GreaterOrEqual(t, len(cases), 80)
	for _, tc := range cases {
		dir, name, wants := tc.Dir, tc.Name, tc.Wants
		t.Run(name, func(t *testing.T) {
			sf, err := stackfile.Load(dir, name)
			require.NoError(t, err)
			var rec *mock.Recorder
			withinDeadline(t, func() { rec, err = runWithoutPanic(name, sf) })
			require.Error(t, err)
			for _, want := range wants {
				assert.Contains(t, err.Error(), want, "every mistake is named in the one run")
			}

			var objs []mock.Object
			var renderErr error
			withinDeadline(t, func() { objs, _, renderErr = render.Run(dir, name) })
			require.Error(t, renderErr)
			assert.Equal(t, err.Error(), renderErr.Error(), "the render says what the program says")
			assert.Empty(t, objs)
			// Pulumi wraps the program's error ("1 error occurred: * ..."), as
			// `pulumi preview` shows it; every problem line inside is key, value, rule.
			header := fmt.Sprintf("invalid configuration of stack %q:", name)
			_, problems, found := strings.Cut(err.Error(), header)
			require.True(t, found, err.Error())
			for _, line := range strings.Split(strings.TrimSpace(problems), "\n") {
				assert.Regexp(t, problemLine, strings.TrimSpace(line))
			}
			for _, r := range rec.Resources() {
				assert.Equal(t, "pulumi:pulumi:Stack", r.Type, "registered %s %s", r.Type, r.Name)
			}
		})
	}
}

// withinDeadline runs f and fails the test, without waiting for it, when it
// takes longer than caseDeadline.
func withinDeadline(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(caseDeadline):
		t.Fatalf("did not finish within %s", caseDeadline)
	}
}

func runWithoutPanic(name string, sf stackfile.Stack) (rec *mock.Recorder, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return mock.Run(stack.Program, name, sf.Config, sf.SecretKeys)
}

// A weight refused while decoding is not refused again as the 0 it left.
func TestABadScorerWeightIsOneError(t *testing.T) {
	_, _, err := render.Run(stacktest.RepoRoot()+"/testdata/invalid", "routing-scorer-weight-string")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "needs at least one scorer")
}
