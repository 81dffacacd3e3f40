package checkpoint_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/checkpoint"
	"llm-platform/internal/stacktest"
)

func TestCheckpointStatefulSet(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "prod"))
	var sts appsv1.StatefulSet
	res.Decode(t, "StatefulSet", "checkpoint", &sts)
	var svc corev1.Service
	res.Decode(t, "Service", "checkpoint", &svc)

	assert.Equal(t, svc.Name, sts.Spec.ServiceName, "serviceName names the headless Service")
	assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP)
	assert.Equal(t, appsv1.ParallelPodManagement, sts.Spec.PodManagementPolicy)
	assert.Equal(t, int32(3), *sts.Spec.Replicas)
	assert.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
	assert.Equal(t, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled)

	require.Len(t, sts.Spec.VolumeClaimTemplates, 1)
	tpl := sts.Spec.VolumeClaimTemplates[0]
	assert.Equal(t, "checkpoints", tpl.Name)
	assert.Equal(t, "gp3", *tpl.Spec.StorageClassName)
	assert.Equal(t, "500Gi", tpl.Spec.Resources.Requests.Storage().String())
	assert.Equal(t, []corev1.PersistentVolumeAccessMode{"ReadWriteOnce"}, tpl.Spec.AccessModes)
	assert.Contains(t, sts.Spec.Template.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "checkpoints", MountPath: "/checkpoints"})

	assert.True(t, res.Resource(t, "kubernetes:apps/v1:StatefulSet", "checkpoint-statefulset").DeleteBeforeReplace,
		"a claim-template change replaces the StatefulSet under the same name")
	assert.Equal(t, checkpoint.Orphan, sts.Annotations[checkpoint.DeletionPropagation],
		"its replacement deletes it with orphaning deletion: the pods keep serving and the new StatefulSet adopts them")
	assert.True(t, res.Has("PodDisruptionBudget", "checkpoint"))
	assert.False(t, stacktest.Run(t, stacktest.Load(t, "dev")).Has("PodDisruptionBudget", "checkpoint"))
}
