package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/config"
	"llm-platform/internal/localcluster"
)

// userDocs are the documents a user or a contributor reads.
func userDocs(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join("docs", "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, docs)
	return append([]string{"README.md", "CONTRIBUTING.md"}, docs...)
}

// The README's sample of `make up` is what the code prints for the dev stack
// once it converged (only the times are fixed): regenerate it with
// `go run ./cmd/localcluster -sample`.
func TestREADMEMakeUpSampleIsGenerated(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, sample, ok := strings.Cut(string(readme), "```console\n$ make up\n")
	require.True(t, ok, "the README shows the output of make up")
	sample, _, ok = strings.Cut(sample, "```")
	require.True(t, ok)
	var want bytes.Buffer
	require.NoError(t, localcluster.Sample(".", "dev", &want))
	assert.Equal(t, want.String(), sample, "the README's make up sample; regenerate with: go run ./cmd/localcluster -sample")
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile("(?m)^#{1,6} (.+)$")
	fence   = regexp.MustCompile("(?s)```.*?```")
)

// anchors are the anchors GitHub gives a document's headings.
func anchors(text string) map[string]bool {
	text = fence.ReplaceAllString(text, "")
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
				b.WriteRune(r)
			}
		}
		a := b.String()
		for i := 1; out[a]; i++ {
			a = fmt.Sprintf("%s-%d", b.String(), i)
		}
		out[a] = true
	}
	return out
}

// Every relative link of the README, CONTRIBUTING.md and docs/ names a file
// inside the repository, and a heading of it when it has an anchor.
func TestDocLinksResolveInsideTheRepository(t *testing.T) {
	root, err := filepath.Abs(".")
	require.NoError(t, err)
	for _, doc := range userDocs(t) {
		text, err := os.ReadFile(doc)
		require.NoError(t, err)
		links := mdLink.FindAllStringSubmatch(fence.ReplaceAllString(string(text), ""), -1)
		for _, m := range links {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(link, "#")
			target := doc
			if file != "" {
				target = filepath.Join(filepath.Dir(doc), file)
			}
			abs, err := filepath.Abs(target)
			require.NoError(t, err)
			if !assert.True(t, abs == root || strings.HasPrefix(abs, root+string(filepath.Separator)), "%s: %s leaves the repository", doc, link) {
				continue
			}
			info, err := os.Stat(target)
			if !assert.NoError(t, err, "%s: %s", doc, link) || anchor == "" {
				continue
			}
			if assert.False(t, info.IsDir(), "%s: %s: an anchor in a directory", doc, link) {
				body, err := os.ReadFile(target)
				require.NoError(t, err)
				assert.True(t, anchors(string(body))[anchor], "%s: %s: no heading of %s has the anchor #%s", doc, link, target, anchor)
			}
		}
	}
}

// What a user reads names no path outside the repository: a user's clone has
// nothing beside it.
func TestUserDocsStayInsideTheRepository(t *testing.T) {
	for _, doc := range userDocs(t) {
		text, err := os.ReadFile(doc)
		require.NoError(t, err)
		for _, outside := range []string{"../shared", "../../", "/work/"} {
			assert.NotContains(t, string(text), outside, doc)
		}
	}
}

func TestAnchorsAreGitHubs(t *testing.T) {
	got := anchors("# Real nodes (`make realnode`): the pods actually run\n## Autoscaling: what your cluster needs\n## Autoscaling: what your cluster needs\n")
	assert.Equal(t, map[string]bool{
		"real-nodes-make-realnode-the-pods-actually-run": true,
		"autoscaling-what-your-cluster-needs":            true,
		"autoscaling-what-your-cluster-needs-1":          true,
	}, got)
}

// The config reference names every workload an egress rule may give a
// network to.
func TestConfigReferenceListsEveryEgressWorkload(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("docs", "config.md"))
	require.NoError(t, err)
	_, row, ok := strings.Cut(string(text), "| `namespace.network.egress[]` |")
	require.True(t, ok, "docs/config.md has the egress row")
	row, _, _ = strings.Cut(row, "\n")
	for _, w := range config.EgressWorkloads {
		assert.Contains(t, row, "`"+w+"`", "the egress row of docs/config.md")
	}
}
