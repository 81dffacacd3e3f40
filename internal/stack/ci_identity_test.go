package stack_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"llm-platform/internal/drift"
	"llm-platform/internal/preflight"
	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

// The preview identity (deploy/ci-preview-identity.yaml) can preview every
// object each shipped stack and each e2e stack renders: get, list, watch,
// create and patch on its kind, and every permission a Role of the stack
// grants (RBAC refuses to create a Role with more than the creator holds).
// A new kind added to the stack without the identity fails here, not in a
// user's pull-request preview.
func TestPreviewIdentityCoversEveryRenderedKind(t *testing.T) {
	role := previewClusterRole(t)
	root := stacktest.RepoRoot()
	dirs := map[string]string{}
	for _, dir := range []string{root, filepath.Join(root, "test", "e2e", "testdata")} {
		files, err := filepath.Glob(filepath.Join(dir, "Pulumi.*.yaml"))
		require.NoError(t, err)
		for _, f := range files {
			dirs[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")] = dir
		}
	}
	require.Contains(t, dirs, "prod")
	for stackName, dir := range dirs {
		objs, _, err := render.Run(dir, stackName)
		require.NoError(t, err, stackName)
		for _, o := range objs {
			group, _, _ := strings.Cut(o.Fields["apiVersion"].(string), "/")
			if !strings.Contains(o.Fields["apiVersion"].(string), "/") {
				group = ""
			}
			res := resourceOf(o.Kind())
			for _, verb := range []string{"get", "list", "watch", "create", "patch"} {
				assert.True(t, allows(role, group, res, verb), "stack %s: %s %s/%s: the preview identity cannot %s %s", stackName, o.Kind(), group, o.Name(), verb, res)
			}
			if o.Kind() != "Role" {
				continue
			}
			var r rbacv1.Role
			b, _ := yaml.Marshal(o.Fields)
			require.NoError(t, yaml.Unmarshal(b, &r))
			for _, rule := range r.Rules {
				for _, g := range rule.APIGroups {
					for _, res := range rule.Resources {
						for _, verb := range rule.Verbs {
							assert.True(t, allows(role, g, res, verb), "stack %s: Role %s grants %s %s/%s, which the preview identity lacks: its dry-run create is refused as an escalation", stackName, r.Name, verb, g, res)
						}
					}
				}
			}
		}
	}
}

// The identity's writes can only be dry runs: its policy matches it by name.
func TestPreviewIdentityIsDryRunOnly(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "deploy", "ci-preview-identity.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(text), `request.userInfo.username == "system:serviceaccount:llm-platform-ci:llm-platform-preview"`)
	assert.Contains(t, string(text), "expression: request.dryRun == true")
	assert.Contains(t, string(text), "validationActions: [Deny]")
	assert.Less(t, strings.Index(string(text), "kind: ValidatingAdmissionPolicy"), strings.Index(string(text), "kind: ClusterRole"),
		"the policy is applied before any permission: a cluster that cannot take it gets none")
}

// previewClusterRole is the rules of both ClusterRoles of the identity: the
// cluster-scoped kinds' (bound cluster-wide) and the namespaced kinds' (bound
// in each stack namespace). Only namespaces and PriorityClasses are granted
// cluster-wide, and StorageClasses read: nothing namespaced, Secrets above
// all, is readable outside the stack's namespaces.
func previewClusterRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "deploy", "ci-preview-identity.yaml"))
	require.NoError(t, err)
	var all rbacv1.ClusterRole
	var boundClusterWide []string
	for _, doc := range strings.Split(string(text), "\n---\n") {
		var r rbacv1.ClusterRole
		require.NoError(t, yaml.Unmarshal([]byte(doc), &r))
		if r.Kind == "ClusterRole" {
			all.Rules = append(all.Rules, r.Rules...)
			for _, rule := range r.Rules {
				if r.Name == "llm-platform-preview-cluster" {
					for _, res := range rule.Resources {
						assert.Contains(t, []string{"namespaces", "priorityclasses", "storageclasses"}, res, "granted cluster-wide")
						if res == "storageclasses" {
							assert.Equal(t, []string{"get"}, rule.Verbs, "StorageClasses are only read")
						}
					}
				}
				if slices.Contains(rule.Resources, "secrets") {
					assert.NotContains(t, rule.Verbs, "list", "Secrets are read one by one, never listed")
					assert.NotContains(t, rule.Verbs, "watch")
				}
			}
		}
		var b rbacv1.ClusterRoleBinding
		require.NoError(t, yaml.Unmarshal([]byte(doc), &b))
		if b.Kind == "ClusterRoleBinding" {
			boundClusterWide = append(boundClusterWide, b.RoleRef.Name)
		}
	}
	require.NotEmpty(t, all.Rules, "deploy/ci-preview-identity.yaml has ClusterRoles")
	require.Equal(t, []string{"llm-platform-preview-cluster"}, boundClusterWide, "only the cluster-scoped kinds' role is bound cluster-wide")
	return all
}

// resourceOf is the resource name of a kind, as the API server's discovery
// names the kinds the stack renders.
func resourceOf(kind string) string {
	r := strings.ToLower(kind)
	switch {
	case strings.HasSuffix(r, "y"):
		return strings.TrimSuffix(r, "y") + "ies"
	case strings.HasSuffix(r, "s"):
		return r + "es"
	}
	return r + "s"
}

func allows(role rbacv1.ClusterRole, group, resource, verb string) bool {
	for _, rule := range role.Rules {
		if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
			return true
		}
	}
	return false
}

// What the program checks before a preview is what the preview identity
// grants: a user who applies deploy/ci-preview-identity.yaml passes it.
func TestPreviewIdentityPassesThePreflightCheck(t *testing.T) {
	role := previewClusterRole(t)
	for _, a := range preflight.Previewed {
		for _, verb := range preflight.Verbs {
			assert.True(t, allows(role, a.Group, a.Resource, verb), "deploy/ci-preview-identity.yaml lacks %s %s/%s", verb, a.Group, a.Resource)
		}
	}
}

// The drift check lists each kind it reads (internal/drift): the preview
// identity, which runs the drift workflow, may list every one.
func TestPreviewIdentityMayReadTheDrift(t *testing.T) {
	role := previewClusterRole(t)
	for _, k := range drift.Kinds {
		assert.True(t, allows(role, k.Group, k.Resource, "list"), "deploy/ci-preview-identity.yaml lacks list %s/%s, which the drift check reads", k.Group, k.Resource)
	}
}
