package workload_test

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"

	"llm-platform/internal/availability"
	"llm-platform/internal/labels"
	"llm-platform/internal/mock"
	"llm-platform/internal/podspec"
	"llm-platform/internal/workload"
)

func args() workload.Args {
	small := podspec.ResourceList{CPU: "1", Memory: "1Gi", EphemeralStorage: "1Gi"}
	shared := podspec.Shared{Namespace: pulumi.String("team-a"), Security: podspec.DefaultSecurity(), ServiceAccount: pulumi.String("sa")}
	return workload.Args{
		Name:      "reranker",
		Workload:  labels.Workload{Name: "reranker", Instance: "reranker", Component: "serving"},
		Shared:    shared,
		Container: shared.Security.Container(podspec.ContainerSpec{Name: "server", Image: "reranker:1", Resources: podspec.Resources{Requests: small, Limits: small}}),
		Ports:     []workload.Port{{Name: "http", Port: 9000}},
		Probes:    workload.Probes{StartupPath: "/health", ReadinessPath: "/ready", LivenessPath: "/health", PeriodSeconds: 10, ReadinessPeriodSeconds: 5},
		Budgets:   workload.Budgets{StartupSeconds: 60, ImagePullSeconds: 30},
		Replicas:  2, MaxUnavailable: "50%", Service: true,
	}
}

func run(t *testing.T, a workload.Args) *mock.Recorder {
	t.Helper()
	rec, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := workload.New(ctx, "reranker", a)
		return err
	}, "test", nil, nil)
	require.NoError(t, err)
	return rec
}

// Who owns the replica count, and what comes with the Deployment, follow
// from the autoscaling alone, for every workload built here.
func TestReplicaOwnershipAndCompanions(t *testing.T) {
	for _, tc := range []struct {
		name        string
		autoscaling availability.Autoscaling
		replicas    int
		// kinds that must exist (true) or not (false) beside the Deployment.
		kinds map[string]bool
		owned bool
	}{
		{"fixed count", availability.Autoscaling{}, 2, map[string]bool{"Service": true, "PodDisruptionBudget": true, "HorizontalPodAutoscaler": false, "ScaledObject": false}, true},
		{"one replica: no budget", availability.Autoscaling{}, 1, map[string]bool{"PodDisruptionBudget": false}, true},
		{"an HPA", availability.Autoscaling{Enabled: true, MinReplicas: 1, MaxReplicas: 3, Metric: availability.MetricCPU, Driver: availability.DriverHPA, TargetCPUUtilization: 70},
			1, map[string]bool{"HorizontalPodAutoscaler": true, "ScaledObject": false, "PodDisruptionBudget": true}, false},
		{"KEDA owns the HPA", availability.Autoscaling{Enabled: true, MinReplicas: 0, MaxReplicas: 3, Metric: availability.MetricPods, Driver: availability.DriverKEDA, Series: "queue", TargetAverageValue: "5", PrometheusAddress: "http://prom:9090"},
			1, map[string]bool{"HorizontalPodAutoscaler": false, "ScaledObject": true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := args()
			a.Autoscaling, a.Replicas = tc.autoscaling, tc.replicas
			rec := run(t, a)
			for kind, want := range tc.kinds {
				_, ok := rec.Find(kind, "reranker")
				assert.Equal(t, want, ok, kind)
			}
			o, ok := rec.Find("Deployment", "reranker")
			require.True(t, ok)
			var d appsv1.Deployment
			require.NoError(t, o.Decode(&d))
			res, _ := rec.Resource("kubernetes:apps/v1:Deployment", "reranker-deployment")
			if tc.owned {
				require.NotNil(t, d.Spec.Replicas)
				assert.Equal(t, int32(tc.replicas), *d.Spec.Replicas)
				assert.Equal(t, "true", d.Annotations[availability.PatchForce], "pulumi up takes the count back from an HPA that owned it")
				assert.Empty(t, res.IgnoreChanges)
			} else {
				assert.Nil(t, d.Spec.Replicas, "the autoscaler owns the count")
				assert.Equal(t, []string{"spec.replicas"}, res.IgnoreChanges)
			}
		})
	}
}

func TestProbesRolloutAndTimeoutsFromTheBudgets(t *testing.T) {
	a := args()
	a.Budgets.PreStopSleepSeconds, a.Budgets.DrainSeconds = 5, 20
	rec := run(t, a)
	o, _ := rec.Find("Deployment", "reranker")
	var d appsv1.Deployment
	require.NoError(t, o.Decode(&d))
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, int32(6), c.StartupProbe.FailureThreshold, "60 s at 10 s periods")
	assert.Equal(t, "/ready", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, int64(5), c.Lifecycle.PreStop.Sleep.Seconds)
	assert.Equal(t, int64(25), *d.Spec.Template.Spec.TerminationGracePeriodSeconds)
	assert.Equal(t, int32(30+60+60), *d.Spec.ProgressDeadlineSeconds)
	assert.Equal(t, 0, d.Spec.Strategy.RollingUpdate.MaxSurge.IntValue(), "no spare room: replace in place")
	res, _ := rec.Resource("kubernetes:apps/v1:Deployment", "reranker-deployment")
	assert.Equal(t, "15m0s", res.UpdateTimeout, "two pods replaced in turn, each within the deadline, plus a node")
}

// A workload without a port has nothing to probe or serve: refused, not a panic.
func TestWorkloadNeedsAPort(t *testing.T) {
	a := args()
	a.Ports = nil
	_, err := mock.Run(func(ctx *pulumi.Context) error {
		_, err := workload.New(ctx, "reranker", a)
		return err
	}, "test", nil, nil)
	assert.ErrorContains(t, err, "at least one port")
}
