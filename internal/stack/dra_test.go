package stack_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	"sigs.k8s.io/yaml"

	"llm-platform/internal/dra"
	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

// With gpuPool.allocation: dra, each inference pod claims its GPUs from its
// model's ResourceClaimTemplate and asks for no extended resource; no other
// pod claims a device; the quota caps each class the models claim from.
func TestDRAModelsClaimTheirGPUsAndNothingElseDoes(t *testing.T) {
	objs, err := render.Objects(filepath.Join(stacktest.RepoRoot(), "test", "e2e", "testdata"), "dra")
	require.NoError(t, err)
	res := &stacktest.Result{Objects: objs}
	templates := map[string]resourcev1.ResourceClaimTemplate{}
	var quota corev1.ResourceQuota
	for _, o := range objs {
		b, err := yaml.Marshal(o.Fields)
		require.NoError(t, err)
		switch o.Kind() {
		case "ResourceClaimTemplate":
			var rct resourcev1.ResourceClaimTemplate
			require.NoError(t, yaml.Unmarshal(b, &rct))
			templates[rct.Name] = rct
		case "ResourceQuota":
			require.NoError(t, yaml.Unmarshal(b, &quota))
		}
	}
	require.Len(t, templates, 2, "one template per model")
	inference := 0
	for _, tpl := range res.PodTemplates(t) {
		if tpl.Labels["app.kubernetes.io/name"] != "inference" {
			assert.Empty(t, tpl.Spec.ResourceClaims, "%s claims no device", tpl.Owner)
			continue
		}
		inference++
		require.Len(t, tpl.Spec.ResourceClaims, 1, tpl.Owner)
		rct, ok := templates[*tpl.Spec.ResourceClaims[0].ResourceClaimTemplateName]
		require.True(t, ok, "%s names a template of the stack", tpl.Owner)
		assert.True(t, strings.HasPrefix(rct.Name, strings.TrimPrefix(tpl.Owner, "Deployment/")+"-gpus-"), "%s: its own template %s", tpl.Owner, rct.Name)
		c := tpl.Spec.Containers[0]
		assert.Equal(t, []corev1.ResourceClaim{{Name: tpl.Spec.ResourceClaims[0].Name}}, c.Resources.Claims, tpl.Owner)
		_, extended := c.Resources.Limits["nvidia.com/gpu"]
		assert.False(t, extended, "%s asks for no extended resource", tpl.Owner)
		for _, r := range rct.Spec.Spec.Devices.Requests {
			for _, s := range r.Exactly.Selectors {
				_, err := dra.Compile(s.CEL.Expression)
				assert.NoError(t, err, "%s: %s", rct.Name, s.CEL.Expression)
			}
		}
	}
	assert.Equal(t, 2, inference)
	for _, class := range []string{dra.GPUClass, dra.MIGClass} {
		q := quota.Spec.Hard[corev1.ResourceName(dra.QuotaResource(class))]
		assert.Equal(t, "24", q.String(), "the quota caps %s", class)
	}
}
