package names

import "testing"

// The checkpoint store's claims are told apart from any other claim of the
// namespace by the name the StatefulSet controller gives them.
func TestIsCheckpointClaim(t *testing.T) {
	for name, want := range map[string]bool{
		CheckpointClaimOf(0):        true,
		CheckpointClaimOf(12):       true,
		"checkpoints-checkpoint-":   false,
		"checkpoints-checkpoint-01": false,
		"checkpoints-checkpoint-x":  false,
		"checkpoints-checkpoint--1": false,
		"model-cache-checkpoint-0":  false,
		"checkpoints-checkpoint-1a": false,
	} {
		if got := IsCheckpointClaim(name); got != want {
			t.Errorf("IsCheckpointClaim(%q) = %v, want %v", name, got, want)
		}
	}
}
