package group_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/group"
)

// The budget in pods never lets evictions break more groups than asked.
func TestMaxUnavailablePods(t *testing.T) {
	for _, tc := range []struct {
		written string
		groups  int
		want    int
	}{
		{"1", 4, 1},
		{"2", 4, 2},
		{"25%", 4, 1},  // one group of four
		{"50%", 3, 2},  // 1.5 groups, rounded up as Kubernetes rounds a budget
		{"10%", 2, 1},  // never 0: a drain could never proceed
		{"100%", 0, 1}, // scaled to zero: at least 1
	} {
		got, err := group.MaxUnavailablePods(tc.written, tc.groups)
		require.NoError(t, err, tc.written)
		assert.Equal(t, tc.want, got, "%s of %d groups", tc.written, tc.groups)
	}
	for _, bad := range []string{"0", "-1", "0%", "101%", "half"} {
		_, err := group.MaxUnavailablePods(bad, 4)
		assert.Error(t, err, bad)
	}
}

func TestLaunchAndOwnedFlags(t *testing.T) {
	args := []string{"--model", "/m", "--tensor-parallel-size", "8", "--pipeline-parallel-size", "2"}
	leader := group.Launch(args, 2, true)
	worker := group.Launch(args, 2, false)
	assert.Equal(t, args, leader[:len(args)], "the model's args come first, unchanged")
	assert.Equal(t, []string{"--nnodes", "2", "--node-rank", "$(LWS_WORKER_INDEX)", "--master-addr", "$(LWS_LEADER_ADDRESS)", "--master-port", "29501"}, leader[len(args):])
	assert.Equal(t, append(leader, "--headless"), worker)

	assert.Equal(t, "", group.OwnedFlag(args))
	assert.Equal(t, "--node-rank", group.OwnedFlag([]string{"--node-rank=1"}))
	assert.Equal(t, "--headless", group.OwnedFlag([]string{"--model", "x", "--headless"}))
	assert.Equal(t, "40000 40999", group.PortRangeSysctl())
}
