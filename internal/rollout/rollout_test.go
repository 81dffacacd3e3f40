package rollout_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/rollout"
)

func TestPlanDerivesEveryTiming(t *testing.T) {
	got, err := rollout.Plan(rollout.Budgets{ModelLoadSeconds: 95, ImagePullSeconds: 300, ProbePeriodSeconds: 10,
		MaxReplicas: 3, PreStopSleepSeconds: 5, DrainSeconds: 30})
	require.NoError(t, err)
	assert.Equal(t, 10, got.StartupFailureThreshold, "95 s at 10 s periods needs 10 tries")
	assert.Equal(t, 300+100+rollout.MarginSeconds, got.ProgressDeadlineSeconds)
	assert.Equal(t, 35, got.TerminationGracePeriodSeconds)
	assert.Equal(t, time.Duration(460+rollout.NodeProvisioningSeconds)*time.Second, got.Create)
	assert.Equal(t, time.Duration(3*460+rollout.NodeProvisioningSeconds)*time.Second, got.Update, "pods are replaced one at a time")
	assert.Equal(t, time.Duration(35+rollout.MarginSeconds)*time.Second, got.Delete)
}

// Each derived value that would not fit where it goes names the budget that
// made it overflow, so validation can name the key.
func TestPlanRefusesWhatDoesNotFit(t *testing.T) {
	huge := math.MaxInt32
	cases := []struct {
		name    string
		budgets rollout.Budgets
		budget  string
	}{
		{"progress deadline beyond int32", rollout.Budgets{ModelLoadSeconds: huge, ImagePullSeconds: huge, ProbePeriodSeconds: 1}, "ModelLoadSeconds"},
		{"grace period beyond int32", rollout.Budgets{ProbePeriodSeconds: 1, PreStopSleepSeconds: huge, DrainSeconds: huge}, "DrainSeconds"},
		{"update timeout beyond a Go duration", rollout.Budgets{ModelLoadSeconds: 86400, ProbePeriodSeconds: 10, MaxReplicas: huge}, "MaxReplicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rollout.Plan(tc.budgets)
			var tooLarge *rollout.TooLarge
			require.True(t, errors.As(err, &tooLarge), "%v", err)
			assert.Equal(t, tc.budget, tooLarge.Budget)
			assert.Greater(t, tooLarge.Seconds, tooLarge.Max)
		})
	}
}
