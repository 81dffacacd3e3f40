package stacktest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// InvalidCase is one stack file of testdata/invalid: a small stack with one
// mistake (or two values only wrong together) and the line it must fail with.
type InvalidCase struct {
	// Name is the stack's name, from Pulumi.<name>.yaml.
	Name string
	// Dir holds the file.
	Dir string
	// Text is the file's content.
	Text []byte
	// Wants are its `# want:` lines: the problem lines every path must
	// print, all in one run (a file with several mistakes names each).
	Wants []string
}

// InvalidCases reads every case under dir/testdata/invalid (dir is a
// repository, or a copy of one). A case without its `# want:` line fails the test.
func InvalidCases(t testing.TB, dir string) []InvalidCase {
	t.Helper()
	dir = filepath.Join(dir, "testdata", "invalid")
	files, err := filepath.Glob(filepath.Join(dir, "Pulumi.*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid stack files in %s: %v", dir, err)
	}
	var cases []InvalidCase
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		c := InvalidCase{Name: strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "Pulumi."), ".yaml"), Dir: dir, Text: text}
		for _, line := range strings.Split(string(text), "\n") {
			if w, ok := strings.CutPrefix(line, "# want: "); ok {
				c.Wants = append(c.Wants, w)
			}
		}
		if len(c.Wants) == 0 {
			t.Fatalf("%s says nothing of what it expects: add a `# want:` line", file)
		}
		cases = append(cases, c)
	}
	return cases
}
