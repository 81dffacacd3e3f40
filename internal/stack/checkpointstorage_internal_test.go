package stack

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"llm-platform/checkpoint"
	"llm-platform/internal/config"
	"llm-platform/internal/names"
)

func claimSpec(size, class string) corev1.PersistentVolumeClaimSpec {
	return corev1.PersistentVolumeClaimSpec{
		StorageClassName: &class,
		AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
	}
}

// The store as an earlier release or this one deployed it: 3 replicas, a
// 500Gi gp3 template; claims 0 and 1 of gp3 (expandable), claim 2 of a
// class that is not.
func runningStore(annotations map[string]string) *fake.Clientset {
	yes, no := true, false
	objects := []runtime.Object{
		&appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: names.Checkpoint, Namespace: "ns", Annotations: annotations},
			Spec: appsv1.StatefulSetSpec{VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: names.CheckpointClaim}, Spec: claimSpec("500Gi", "gp3"),
			}}},
			Status: appsv1.StatefulSetStatus{Replicas: 3},
		},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gp3"}, AllowVolumeExpansion: &yes},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fixed"}, AllowVolumeExpansion: &no},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: names.CheckpointClaimOf(0), Namespace: "ns"}, Spec: claimSpec("500Gi", "gp3")},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: names.CheckpointClaimOf(1), Namespace: "ns"}, Spec: claimSpec("500Gi", "gp3")},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: names.CheckpointClaimOf(2), Namespace: "ns"}, Spec: claimSpec("500Gi", "fixed")},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "model-cache", Namespace: "ns"}, Spec: claimSpec("10Gi", "gp3")},
	}
	return fake.NewClientset(objects...)
}

func checkpointOf(size, class string) config.Checkpoint {
	return config.Checkpoint{Storage: config.Storage{Size: config.Quantity(size), StorageClass: class, AccessMode: "ReadWriteOnce"}}
}

var orphaned = map[string]string{checkpoint.DeletionPropagation: checkpoint.Orphan}

// A larger size on a store deployed by this release: the preview says the
// pods are kept, and for each claim whether and how it can grow.
func TestCheckpointStorageChangeSaysWhichClaimsCanGrow(t *testing.T) {
	warning, err := checkpointStorageChange(context.Background(), runningStore(orphaned), "ns", checkpointOf("600Gi", "gp3"))
	require.NoError(t, err)
	for _, want := range []string{
		"the claim template changes (size 500Gi -> 600Gi)",
		"orphaning deletion: its pods keep serving",
		"claim checkpoints-checkpoint-0 (500Gi) can grow in place (StorageClass gp3 allows volume expansion): kubectl patch pvc -n ns checkpoints-checkpoint-0",
		`"storage":"600Gi"`,
		"claim checkpoints-checkpoint-1 (500Gi) can grow in place",
		"claim checkpoints-checkpoint-2 (500Gi) will not grow: StorageClass fixed does not allow volume expansion",
	} {
		assert.Contains(t, warning, want)
	}
	assert.NotContains(t, warning, "model-cache", "only the checkpoint claims")
}

// The same template, or no store yet: nothing to say.
func TestCheckpointStorageUnchangedOrNewSaysNothing(t *testing.T) {
	for name, client := range map[string]*fake.Clientset{"unchanged": runningStore(orphaned), "no store yet": fake.NewClientset()} {
		warning, err := checkpointStorageChange(context.Background(), client, "ns", checkpointOf("500Gi", "gp3"))
		require.NoError(t, err, name)
		assert.Empty(t, warning, name)
	}
}

// A store deployed by an earlier release lacks orphaning deletion: its
// replacement would stop every pod at once. Refused, naming the key, both
// templates and the way forward.
func TestCheckpointStorageChangeOnAnEarlierReleasesStoreIsRefused(t *testing.T) {
	_, err := checkpointStorageChange(context.Background(), runningStore(nil), "ns", checkpointOf("500Gi", "efs-sc"))
	require.Error(t, err)
	for _, want := range []string{
		"llm-platform:checkpoint.storage:",
		`storageClass "gp3" -> "efs-sc"`,
		"has no orphaning deletion (pulumi.com/deletionPropagationPolicy: orphan; deployed by an earlier release",
		"with all its pods (3) at once",
		`First run ` + "`pulumi up --refresh`" + ` with checkpoint.storage as deployed ({size: 500Gi, storageClass: "gp3", accessMode: ReadWriteOnce})`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}
