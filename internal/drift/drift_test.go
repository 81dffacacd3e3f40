package drift_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metadatafake "k8s.io/client-go/metadata/fake"

	"llm-platform/internal/drift"
	"llm-platform/internal/render"
	"llm-platform/internal/stacktest"
)

func entry(manager, subresource, fields string, at time.Time) metav1.ManagedFieldsEntry {
	op := metav1.ManagedFieldsOperationUpdate
	if strings.HasPrefix(manager, "pulumi-kubernetes-") {
		op = metav1.ManagedFieldsOperationApply
	}
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}, Time: &metav1.Time{Time: at}}
}

var at = time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)

// The managedFields of a model's Deployment after `kubectl set env`,
// `kubectl rollout restart`, an autoscaler's and a controller's writes:
// only the env entry is drift, named by its path, and kubectl's is
// restored.
func TestFindNamesWhatAKubectlCommandSetAndNothingElse(t *testing.T) {
	found, err := drift.Find([]metav1.ManagedFieldsEntry{
		entry("pulumi-kubernetes-94fd0129", "", `{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{}}}`, at),
		entry("kube-controller-manager", "", `{"f:metadata":{"f:annotations":{"f:deployment.kubernetes.io/revision":{}}}}`, at),
		entry("kube-controller-manager", "status", `{"f:status":{"f:replicas":{}}}`, at),
		entry("kubectl-scale", "scale", `{"f:spec":{"f:replicas":{}}}`, at),
		entry("kubectl-rollout", "", `{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/restartedAt":{}}}}}}`, at),
		entry("kubectl-set", "", `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"server\"}":{"f:env":{"k:{\"name\":\"EXTRA\"}":{".":{},"f:name":{},"f:value":{}}}}}}}}}`, at),
	})
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, "kubectl-set", found[0].Manager)
	assert.Equal(t, []string{"spec.template.spec.containers[name=server].env[name=EXTRA]"}, found[0].Paths)
	assert.True(t, found[0].Restored())
}

// A NetworkPolicy's egress list is atomic: `kubectl patch` takes the whole
// list; a label, an annotation and a ConfigMap key are named as such; a
// script's own client is found but not restored.
func TestFindNamesAtomicListsLabelsDataAndOtherManagers(t *testing.T) {
	found, err := drift.Find([]metav1.ManagedFieldsEntry{
		entry("kubectl-patch", "", `{"f:spec":{"f:egress":{}}}`, at),
		entry("kubectl-label", "", `{"f:metadata":{"f:labels":{"f:team":{}}}}`, at),
		entry("sync-script", "", `{"f:data":{"f:extra.yaml":{}},"f:metadata":{"f:annotations":{"f:note":{}},"f:finalizers":{"v:\"x\"":{}}}}`, at),
	})
	require.NoError(t, err)
	require.Len(t, found, 3)
	assert.Equal(t, []string{"metadata.labels[team]"}, found[0].Paths)
	assert.Equal(t, []string{"spec.egress"}, found[1].Paths)
	assert.Equal(t, "sync-script", found[2].Manager)
	assert.Equal(t, []string{"data[extra.yaml]", "metadata.annotations[note]"}, found[2].Paths, "finalizers are not declared by the stack")
	assert.False(t, found[2].Restored())
	described := drift.Describe("ConfigMap x", found)
	for _, want := range []string{"ConfigMap x was changed outside the stack", "kubectl-patch set spec.egress", "`pulumi up` puts back", "sync-script set data[extra.yaml]", "does not take these back"} {
		assert.Contains(t, described, want)
	}
}

// The annotation's value changes when the same field is set again, so a
// second drift after a restoration is a change again.
func TestDigestChangesWhenAFieldIsSetAgain(t *testing.T) {
	first := []drift.Finding{{Manager: "kubectl-set", Time: "2026-12-02T17:00:00Z", Paths: []string{"spec.x"}}}
	again := []drift.Finding{{Manager: "kubectl-set", Time: "2026-12-03T09:00:00Z", Paths: []string{"spec.x"}}}
	assert.Equal(t, drift.Digest(first), drift.Digest(first))
	assert.NotEqual(t, drift.Digest(first), drift.Digest(again))
	assert.Len(t, drift.Digest(first), 12)
}

func liveOf(t *testing.T, objects ...*metav1.PartialObjectMetadata) *drift.Live {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, metav1.AddMetaToScheme(scheme))
	var objs []runtime.Object
	for _, o := range objects {
		objs = append(objs, o)
	}
	client := metadatafake.NewSimpleMetadataClient(scheme, objs...)
	live, err := drift.Read(context.Background(), client, "ns")
	require.NoError(t, err)
	return live
}

func deployment(name string, annotations map[string]string, entries ...metav1.ManagedFieldsEntry) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: annotations, ManagedFields: entries},
	}
}

func transformed(t *testing.T, live *drift.Live, name string, annotations pulumi.Map) (pulumi.Map, []string) {
	t.Helper()
	var reported []string
	metadata := pulumi.Map{"name": pulumi.String(name), "namespace": pulumi.String("ns")}
	if annotations != nil {
		metadata["annotations"] = annotations
	}
	res := drift.Transform(live, func(object string, found []drift.Finding) {
		reported = append(reported, drift.Describe(object, found))
	})(context.Background(), &pulumi.ResourceTransformArgs{
		Custom: true, Type: "kubernetes:apps/v1:Deployment", Name: "x",
		Props: pulumi.Map{"metadata": metadata, "spec": pulumi.Map{}},
	})
	if res == nil {
		return nil, reported
	}
	got, _ := res.Props["metadata"].(pulumi.Map)["annotations"].(pulumi.Map)
	return got, reported
}

// The transform: a kubectl edit changes the annotation (an update that
// restores); afterwards the live value is declared again (no change); an
// object never touched, or only by another manager, keeps its props (the
// other manager is reported); the stack's own annotations are kept.
func TestTransformChangesOnlyObjectsWithKubectlEdits(t *testing.T) {
	edited := deployment("edited", nil, entry("kubectl-set", "", `{"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"s\"}":{"f:env":{"k:{\"name\":\"E\"}":{".":{}}}}}}}}}`, at))
	restored := deployment("restored", map[string]string{drift.Annotation: "0123456789ab"})
	other := deployment("other", nil, entry("sync-script", "", `{"f:spec":{"f:paused":{}}}`, at))
	live := liveOf(t, edited, restored, other, deployment("untouched", nil))

	got, reported := transformed(t, live, "edited", pulumi.Map{"kube-score/ignore": pulumi.String("x")})
	require.NotNil(t, got)
	assert.Len(t, string(got[drift.Annotation].(pulumi.String)), 12)
	assert.Equal(t, pulumi.String("x"), got["kube-score/ignore"], "the stack's own annotations are kept")
	require.Len(t, reported, 1)
	assert.Contains(t, reported[0], "Deployment edited was changed outside the stack: kubectl-set set spec.template.spec.containers[name=s].env[name=E]")

	// The same drift still there under its own digest (the run that
	// declared it created the object, and a create takes nothing): the
	// value alternates, so every run shows a change until an update.
	digest := string(mustAnnotation(t, live, "edited"))
	for _, stale := range []string{digest, digest + "-again"} {
		again := liveOf(t, deployment("edited", map[string]string{drift.Annotation: stale}, edited.ManagedFields...))
		got, _ := transformed(t, again, "edited", nil)
		assert.NotEqual(t, pulumi.String(stale), got[drift.Annotation], "a drift that outlived its restoration is a change again")
	}

	got, reported = transformed(t, live, "restored", nil)
	assert.Equal(t, pulumi.String("0123456789ab"), got[drift.Annotation], "the value it has is declared again")
	assert.Empty(t, reported)

	got, reported = transformed(t, live, "other", nil)
	assert.Nil(t, got, "another manager's fields are not taken back by an update")
	require.Len(t, reported, 1)
	assert.Contains(t, reported[0], "does not take these back")

	for _, name := range []string{"untouched", "new"} {
		got, reported = transformed(t, live, name, nil)
		assert.Nil(t, got, name)
		assert.Empty(t, reported, name)
	}
}

// Every kind of object any stack declares (the repository's stacks and the
// end-to-end tiers') is a kind the drift check reads, Secrets apart.
func TestKindsCoverEveryRenderedKind(t *testing.T) {
	read := map[string]bool{}
	for _, k := range drift.Kinds {
		read[schema.GroupVersion{Group: k.Group, Version: k.Version}.String()+"/"+k.Kind] = true
	}
	dirs := map[string][]string{stacktest.RepoRoot(): stacktest.Stacks()}
	matches, err := filepath.Glob(filepath.Join(stacktest.RepoRoot(), "test/e2e/testdata/Pulumi.*.yaml"))
	require.NoError(t, err)
	for _, m := range matches {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "Pulumi."), ".yaml")
		dirs[filepath.Dir(m)] = append(dirs[filepath.Dir(m)], name)
	}
	seen := 0
	for dir, stacks := range dirs {
		for _, s := range stacks {
			objs, err := render.Objects(dir, s)
			require.NoError(t, err, "%s/%s", dir, s)
			for _, o := range objs {
				if o.Kind() == "Secret" {
					continue
				}
				apiVersion, _ := o.Fields["apiVersion"].(string)
				assert.True(t, read[apiVersion+"/"+o.Kind()], "stack %s declares %s %s, a kind drift.Kinds does not read", s, apiVersion, o.Kind())
				seen++
			}
		}
	}
	assert.Greater(t, seen, 100)
}

func mustAnnotation(t *testing.T, live *drift.Live, name string) pulumi.String {
	t.Helper()
	got, _ := transformed(t, live, name, nil)
	require.NotNil(t, got)
	return got[drift.Annotation].(pulumi.String)
}
