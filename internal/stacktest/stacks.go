package stacktest

import (
	"path/filepath"
	"sort"
	"strings"
)

// Stacks are the shipped stacks, one per Pulumi.<stack>.yaml at the
// repository root (dev, prod, quickstart), sorted: the set every test that
// means "each of our stacks" walks, so a new stack file is covered at once.
func Stacks() []string {
	files, _ := filepath.Glob(filepath.Join(RepoRoot(), "Pulumi.*.yaml"))
	var stacks []string
	for _, f := range files {
		stacks = append(stacks, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml"))
	}
	sort.Strings(stacks)
	return stacks
}
