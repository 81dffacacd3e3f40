//go:build e2e

package e2epulumi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"llm-platform/internal/stacktest"
)

// Every bad stack file of testdata/invalid fails `pulumi preview` with the
// line the render and the mocks expect (its `# want:`), within a deadline,
// and creates nothing. Where Pulumi itself refuses the file first (a key
// Pulumi.yaml declares is missing), its own message names the key.
func TestInvalidStackFilesFailPulumiPreviewTheSameWay(t *testing.T) {
	sh(t, 5*time.Minute, "make build && hack/pulumi.sh project")
	for _, tc := range stacktest.InvalidCases(t, work) {
		name, text, wants := tc.Name, tc.Text, tc.Wants
		want := wants[0]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stack := "invalid-" + name
			stackFile := filepath.Join(work, "Pulumi."+stack+".yaml")
			require.NoError(t, os.WriteFile(stackFile, text, 0o644))
			defer os.Remove(stackFile)

			pulumi(t, time.Minute, "stack init "+stack)
			defer pulumi(t, time.Minute, "stack rm --yes --force --preserve-config "+stack)
			// A secure value nested in a section: the file's ciphertext is not
			// this stack's, so the case writes it as a user does, with
			// `pulumi config set --secret --path`, and checks afterwards that
			// it is nowhere in clear.
			secretValue := ""
			if strings.Contains(string(text), nestedSecureLeaf) {
				key, _, _ := strings.Cut(strings.TrimPrefix(want, "llm-platform:"), ": ")
				require.NoError(t, os.WriteFile(stackFile, []byte(strings.Replace(string(text), nestedSecureLeaf, "set-below", 1)), 0o644))
				secretValue = "https://corpus.example/raw?X-Amz-Signature=" + name
				pulumi(t, time.Minute, "config set --stack "+stack+" --secret --path '"+key+"' '"+secretValue+"'")
				require.NotContains(t, readFile(t, "Pulumi."+stack+".yaml"), secretValue, "pulumi stored it encrypted")
			}
			out := shFails(t, 2*time.Minute, "pulumi --cwd "+fastProject+" --non-interactive preview --stack "+stack)
			if secretValue != "" {
				assert.NotContains(t, out, secretValue, "the preview never shows the secret")
				assert.NotContains(t, pulumi(t, time.Minute, "stack export --stack "+stack), secretValue, "nor does the state")
			}
			if key, missing := missingSection(want); missing {
				assert.Contains(t, out, "is missing configuration value '"+key+"'", "Pulumi refuses first, naming the key")
			} else {
				for _, w := range wants {
					assert.Contains(t, out, w)
				}
			}
			assert.NotContains(t, out, "panic")
			for _, typ := range stackResourceTypes(t, stack) {
				assert.NotContains(t, typ, "kubernetes:", "a bad stack file created %s", typ)
			}
		})
	}
}

// nestedSecureLeaf is how the bad stack files write a secure value nested in
// a section (its ciphertext is no stack's).
const nestedSecureLeaf = "secure: v1:c2FsdA==:Y2lwaGVydGV4dA=="

// missingSection reports whether want is the program's "section missing"
// error, which Pulumi pre-empts for every key Pulumi.yaml declares.
func missingSection(want string) (key string, ok bool) {
	rest, found := strings.CutPrefix(want, "llm-platform:")
	if !found {
		return "", false
	}
	key, rule, _ := strings.Cut(rest, ": ")
	// A section is a top-level key; a required key inside one (an egress
	// rule's workloads) is the program's to refuse.
	return key, !strings.ContainsAny(key, ".[") && strings.HasPrefix(rule, "null is invalid: required")
}
