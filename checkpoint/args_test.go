package checkpoint_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"llm-platform/checkpoint"
	"llm-platform/internal/mock"
	"llm-platform/internal/podspec"
	"llm-platform/internal/workload"
)

func TestStoreFromHandWrittenArgs(t *testing.T) {
	small := podspec.ResourceList{CPU: "1", Memory: "1Gi", EphemeralStorage: "1Gi"}
	args := checkpoint.Args{
		Image: "store:1", Replicas: 3, Storage: podspec.Claim{Size: "10Gi", AccessMode: "ReadWriteOnce"}, MountPath: "/ckpt",
		Resources: podspec.Resources{Requests: small, Limits: small}, Port: 7000, Scrapers: []string{"monitoring"},
		Probes:         workload.Probes{StartupPath: "/healthz", ReadinessPath: "/readyz", LivenessPath: "/healthz", PeriodSeconds: 20, ReadinessPeriodSeconds: 10},
		Budgets:        workload.Budgets{StartupSeconds: 200, ImagePullSeconds: 100},
		MaxUnavailable: "1",
		Shared:         podspec.Shared{Namespace: pulumi.String("team-a"), Security: podspec.DefaultSecurity(), ServiceAccount: pulumi.String("sa")},
	}
	var claims []string
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		s, err := checkpoint.New(ctx, "checkpoint", args)
		if err != nil {
			return err
		}
		s.ClaimNames.ApplyT(func(c []string) []string { claims = c; return c })
		return nil
	}, "test", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"checkpoints-checkpoint-0", "checkpoints-checkpoint-1", "checkpoints-checkpoint-2"}, claims,
		"the claims the StatefulSet controller makes, read from the StatefulSet")

	o, ok := rec.Find("StatefulSet", "checkpoint")
	require.True(t, ok)
	var sts appsv1.StatefulSet
	require.NoError(t, o.Decode(&sts))
	c := sts.Spec.Template.Spec.Containers[0]
	require.NotNil(t, c.StartupProbe)
	assert.Equal(t, int32(10), c.StartupProbe.FailureThreshold, "200 s at 20 s periods")
	res, ok := rec.Resource("kubernetes:apps/v1:StatefulSet", "checkpoint-statefulset")
	require.True(t, ok)
	assert.NotEmpty(t, res.UpdateTimeout, "Pulumi waits for the rolling update of every replica, not its default")
	assert.True(t, args.Intent().Serves[0].From.Stack)
	assert.Equal(t, 7000, args.Intent().Serves[0].Port)
}
