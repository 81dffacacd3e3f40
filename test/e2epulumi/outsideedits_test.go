//go:build e2e

package e2epulumi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"

	"llm-platform/internal/drift"
	"llm-platform/internal/names"
)

// An operator's edits of the stack's objects with kubectl (an env variable
// on a model's Deployment, an egress rule to anywhere on port 22 in an
// allow-out NetworkPolicy, a looser budget in prod) are seen by the drift
// workflow's own command, which fails naming each object and the fields
// set; `pulumi up --refresh` puts back what the stack declares; the
// command then passes again. Without internal/drift the command passes
// with every edit in place ("N unchanged") and `pulumi up` leaves them.
func TestOutsideEditsAreSeenAndUndone(t *testing.T) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) {
			cfg := stackConfig(t, s)
			ns := cfg.Namespace.Name
			model := names.Inference(cfg.Serving.Models[0].Name)
			policy := "allow-out-ingestion"
			var beforePolicy networkingv1.NetworkPolicy
			require.NoError(t, kubectl.GetJSON(&beforePolicy, "-n", ns, "networkpolicy", policy))
			beforeEnv := getDeployment(t, ns, model).Spec.Template.Spec.Containers[0].Env

			edit(t, "-n", ns, "set", "env", "deployment/"+model, "DRIFTED=1")
			edit(t, "-n", ns, "patch", "networkpolicy", policy, "--type=json", "-p",
				`[{"op":"add","path":"/spec/egress/-","value":{"to":[{"ipBlock":{"cidr":"0.0.0.0/0"}}],"ports":[{"port":22,"protocol":"TCP"}]}}]`)
			wants := []string{
				"drift: Deployment " + model + " was changed outside the stack: kubectl-set set spec.template.spec.containers[name=server].env[name=DRIFTED]",
				"drift: NetworkPolicy " + policy + " was changed outside the stack: kubectl-patch set spec.egress",
			}
			var beforeBudget policyv1.PodDisruptionBudget
			if s == "prod" {
				require.NoError(t, kubectl.GetJSON(&beforeBudget, "-n", ns, "pdb", "checkpoint"))
				edit(t, "-n", ns, "patch", "pdb", "checkpoint", "--type=merge", "-p", `{"spec":{"maxUnavailable":3}}`)
				wants = append(wants, "drift: PodDisruptionBudget checkpoint was changed outside the stack: kubectl-patch set spec.maxUnavailable")
			}

			// The drift workflow's command (drift.yml) fails, naming them.
			out := shFails(t, 5*time.Minute, "pulumi --cwd "+fastProject+" --non-interactive preview --stack "+s+" --refresh --expect-no-changes")
			for _, want := range wants {
				assert.Contains(t, out, want)
			}
			assert.Contains(t, out, drift.Annotation)

			pulumi(t, 10*time.Minute, "up --yes --refresh --stack "+s)
			assert.Equal(t, beforeEnv, getDeployment(t, ns, model).Spec.Template.Spec.Containers[0].Env, "the variable set outside the stack is gone")
			var policyAfter networkingv1.NetworkPolicy
			require.NoError(t, kubectl.GetJSON(&policyAfter, "-n", ns, "networkpolicy", policy))
			assert.Equal(t, beforePolicy.Spec.Egress, policyAfter.Spec.Egress, "the egress rule added outside the stack is gone")
			if s == "prod" {
				var budgetAfter policyv1.PodDisruptionBudget
				require.NoError(t, kubectl.GetJSON(&budgetAfter, "-n", ns, "pdb", "checkpoint"))
				assert.Equal(t, beforeBudget.Spec.MaxUnavailable, budgetAfter.Spec.MaxUnavailable, "the budget is the stack's again")
			}
			pulumi(t, 5*time.Minute, "preview --stack "+s+" --refresh --expect-no-changes")

			// `kubectl rollout restart` is an operation, not drift.
			edit(t, "-n", ns, "rollout", "restart", "deployment/"+model)
			out = pulumi(t, 5*time.Minute, "preview --stack "+s+" --refresh --expect-no-changes")
			assert.NotContains(t, out, "drift:")
		})
	}
}

// edit runs a kubectl command as an operator would, on the clone's cluster.
func edit(t *testing.T, args ...string) {
	t.Helper()
	_, stderr, err := kubectl.Run(nil, args...)
	require.NoError(t, err, stderr)
}
