// Package workload is the one builder of a long-running workload of the
// stack: a Deployment with its probes, rollout, drain and timeouts derived
// from its budgets, its ClusterIP Service, its PodDisruptionBudget and its
// autoscaler (an HPA, or a KEDA ScaledObject that owns one). Serving and the
// pipeline's transformation stage are built with it, so the rules for
// rollouts, probes, drain and who owns `replicas` are written once.
package workload

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/labels"
	"llm-platform/internal/podspec"
	"llm-platform/internal/rollout"
)

// Port is a named container port; the first of a workload's ports serves
// its traffic and its probes.
type Port struct {
	Name string
	Port int
}

// Probes are a server's health endpoints on its first port.
type Probes struct {
	// StartupPath holds off liveness until the server has started; it is
	// tried every PeriodSeconds until the startup budget is spent.
	StartupPath string
	// ReadinessPath answers only once the server can serve.
	ReadinessPath string
	// LivenessPath is a cheap check; a server failing it three times in a
	// row is restarted.
	LivenessPath string
	// PeriodSeconds of the startup and liveness probes.
	PeriodSeconds int
	// ReadinessPeriodSeconds of the readiness probe.
	ReadinessPeriodSeconds int
	// GRPC, when set, replaces the three HTTP checks by the gRPC health
	// service (grpc.health.v1) of a port: how gRPC servers such as the
	// endpoint picker report.
	GRPC *GRPCHealth
}

// GRPCHealth is a gRPC health service (grpc.health.v1.Health/Check).
type GRPCHealth struct {
	// Port is the container port by number (a gRPC probe takes no name).
	Port int
	// Readiness and Liveness are the service names asked by the readiness
	// probe and by the startup and liveness probes.
	Readiness, Liveness string
}

// Apply sets the container's probes and, with a preStop sleep, its preStop
// hook. Every server of the stack, Deployment or StatefulSet, is probed so.
func (p Probes) Apply(c *corev1.ContainerArgs, port string, t rollout.Timings, preStopSleepSeconds int) {
	if g := p.GRPC; g != nil {
		c.StartupProbe = podspec.GRPCProbe(g.Port, g.Liveness, p.PeriodSeconds, t.StartupFailureThreshold)
		c.ReadinessProbe = podspec.GRPCProbe(g.Port, g.Readiness, p.ReadinessPeriodSeconds, 3)
		c.LivenessProbe = podspec.GRPCProbe(g.Port, g.Liveness, p.PeriodSeconds, 3)
	} else {
		c.StartupProbe = podspec.HTTPProbe(p.StartupPath, port, p.PeriodSeconds, t.StartupFailureThreshold)
		c.ReadinessProbe = podspec.HTTPProbe(p.ReadinessPath, port, p.ReadinessPeriodSeconds, 3)
		c.LivenessProbe = podspec.HTTPProbe(p.LivenessPath, port, p.PeriodSeconds, 3)
	}
	if preStopSleepSeconds > 0 {
		// Endpoints stop routing to a terminating pod a few seconds late; keep
		// serving until they have, then SIGTERM starts the drain.
		c.Lifecycle = &corev1.LifecycleArgs{PreStop: &corev1.LifecycleHandlerArgs{
			Sleep: &corev1.SleepActionArgs{Seconds: pulumi.Int(preStopSleepSeconds)},
		}}
	}
}

// Budgets are what starting and stopping one pod may take.
type Budgets struct {
	// StartupSeconds is how long the server may take to start (a model to load).
	StartupSeconds int
	// ImagePullSeconds is how long pulling its image may take.
	ImagePullSeconds int
	// PreStopSleepSeconds and DrainSeconds make up the grace period; both 0
	// leaves Kubernetes' default of 30 s.
	PreStopSleepSeconds, DrainSeconds int
}

// Plan derives the timings of a workload of at most maxReplicas pods (see
// rollout.Plan).
func (b Budgets) Plan(p Probes, maxReplicas int) (rollout.Timings, error) {
	return rollout.Plan(rollout.Budgets{
		ModelLoadSeconds:    b.StartupSeconds,
		ImagePullSeconds:    b.ImagePullSeconds,
		ProbePeriodSeconds:  p.PeriodSeconds,
		MaxReplicas:         maxReplicas,
		PreStopSleepSeconds: b.PreStopSleepSeconds,
		DrainSeconds:        b.DrainSeconds,
	})
}

// GracePeriod is the pod's terminationGracePeriodSeconds: the preStop sleep
// and the drain, or nil (Kubernetes' default of 30 s) when both are 0.
func (b Budgets) GracePeriod(t rollout.Timings) pulumi.IntPtrInput {
	if b.PreStopSleepSeconds+b.DrainSeconds == 0 {
		return nil
	}
	return pulumi.IntPtr(t.TerminationGracePeriodSeconds)
}

// Timeouts are the Pulumi customTimeouts of the object that t is for.
func Timeouts(t rollout.Timings) pulumi.ResourceOption {
	return pulumi.Timeouts(&pulumi.CustomTimeouts{Create: t.Create.String(), Update: t.Update.String(), Delete: t.Delete.String()})
}

// Args describes one Deployment and what comes with it.
type Args struct {
	// Name of the Deployment, its Service, budget and autoscaler.
	Name string
	// Workload labels every object and selects the pods.
	Workload labels.Workload
	// Shared is the pods' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
	// Container is the server, without ports and probes: the builder adds them.
	Container corev1.ContainerArgs
	// Ports of the server; the first serves traffic and probes.
	Ports []Port
	// Pod is the pod spec without containers and grace period.
	Pod corev1.PodSpecArgs
	// PodAnnotations are the pod template's annotations.
	PodAnnotations pulumi.StringMap
	// Service creates a ClusterIP Service for Ports, with ServiceAnnotations.
	Service            bool
	ServiceAnnotations pulumi.StringMap
	// Probes of the server, and Budgets its timings derive from.
	Probes  Probes
	Budgets Budgets
	// Replicas while autoscaling is off; Autoscaling otherwise owns them.
	Replicas    int
	Autoscaling availability.Autoscaling
	// MaxUnavailable of the disruption budget: a count or a percentage.
	MaxUnavailable string
	// Surge: the pods' nodes keep room for one more pod during a rollout
	// (maxSurge 1, maxUnavailable 0). Without it a rollout replaces in place
	// (maxSurge 0, maxUnavailable 1): a surge pod would wait for room (a GPU)
	// that does not exist, and the rollout would never finish.
	Surge bool
	// After are resources the Deployment is created and updated after (a
	// fetch run of its weights): a change of both waits for them first.
	After []pulumi.Resource
	// FormerDeploymentName is an earlier Pulumi name of the Deployment: an
	// alias, so stacks deployed before the rename update it in place.
	FormerDeploymentName string
	// Group, when set, makes the workload a LeaderWorkerSet of Replicas
	// groups instead of a Deployment: Container and Pod are the leader's,
	// which serves Ports and is probed; Group adds the workers.
	Group *Group
}

// Workload is what New built.
type Workload struct {
	// Deployment is the name of the Deployment, or of the LeaderWorkerSet
	// with a Group.
	Deployment pulumi.StringOutput
	// Service is the Service's name; empty without one.
	Service pulumi.StringOutput
	// Timings are the derived probe thresholds, deadlines and timeouts.
	Timings rollout.Timings
	// MaxSurge and MaxUnavailable of the rolling update.
	MaxSurge, MaxUnavailable int
}

// Strategy is the rolling update of a workload (see Args.Surge).
func Strategy(surge bool) (maxSurge, maxUnavailable int) {
	if surge {
		return 1, 0
	}
	return 0, 1
}

// New creates the Deployment, its Service (when asked), its budget (when it
// can run more than one pod) and its autoscaler (when enabled), as children
// of whatever opts name as parent. name prefixes the Pulumi resource names.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Workload, error) {
	a := args.Autoscaling
	if len(args.Ports) == 0 {
		return nil, fmt.Errorf("%s: a workload serves on at least one port", args.Name)
	}
	t, err := args.Budgets.Plan(args.Probes, a.MaxReplicasOf(args.Replicas))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", args.Name, err)
	}
	w := &Workload{Timings: t}
	w.MaxSurge, w.MaxUnavailable = Strategy(args.Surge)
	meta := func() *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(args.Name), Namespace: args.Shared.Namespace, Labels: args.Workload.AllInput()}
	}

	container := args.Container
	var ports corev1.ContainerPortArray
	for _, p := range args.Ports {
		ports = append(ports, corev1.ContainerPortArgs{
			Name: pulumi.String(p.Name), ContainerPort: pulumi.Int(p.Port), Protocol: pulumi.String("TCP"),
		})
	}
	container.Ports = ports
	args.Probes.Apply(&container, args.Ports[0].Name, t, args.Budgets.PreStopSleepSeconds)
	pod := args.Pod
	pod.Containers = corev1.ContainerArray{container}
	pod.TerminationGracePeriodSeconds = args.Budgets.GracePeriod(t)

	deploymentMeta := meta()
	deploymentMeta.Annotations = podspec.WorkloadAnnotations(availability.ReplicaOwnership(a))
	deploymentOpts := append([]pulumi.ResourceOption{Timeouts(t)}, opts...)
	deploymentOpts = append(deploymentOpts, availability.ReplicaOptions(a)...)
	if len(args.After) > 0 {
		deploymentOpts = append(deploymentOpts, pulumi.DependsOn(args.After))
	}
	target := availability.DeploymentTarget
	budgetPods := map[string]string(nil)
	if g := args.Group; g != nil {
		built, err := newLeaderWorkerSet(ctx, name, args, t, w, pod, deploymentMeta, deploymentOpts)
		if err != nil {
			return nil, err
		}
		w.Deployment = built
		target = groupTarget
		budgetPods = g.Pods
	} else if err := newDeployment(ctx, name, args, t, w, pod, deploymentMeta, deploymentOpts); err != nil {
		return nil, err
	}
	if err := newCompanions(ctx, name, args, w, meta, target, budgetPods, opts); err != nil {
		return nil, err
	}
	return w, nil
}

// newDeployment creates the workload's Deployment and sets w.Deployment.
func newDeployment(ctx *pulumi.Context, name string, args Args, t rollout.Timings, w *Workload, pod corev1.PodSpecArgs, deploymentMeta *metav1.ObjectMetaArgs, deploymentOpts []pulumi.ResourceOption) error {
	a := args.Autoscaling
	if args.FormerDeploymentName != "" {
		deploymentOpts = append(deploymentOpts, pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(args.FormerDeploymentName)}}))
	}
	deployment, err := appsv1.NewDeployment(ctx, name+"-deployment", &appsv1.DeploymentArgs{
		Metadata: deploymentMeta,
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas:                availability.Replicas(args.Replicas, a),
			Selector:                &metav1.LabelSelectorArgs{MatchLabels: args.Workload.SelectorInput()},
			ProgressDeadlineSeconds: pulumi.Int(t.ProgressDeadlineSeconds),
			RevisionHistoryLimit:    pulumi.Int(5),
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
					MaxSurge: pulumi.Int(w.MaxSurge), MaxUnavailable: pulumi.Int(w.MaxUnavailable),
				},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: args.Workload.AllInput(), Annotations: args.PodAnnotations},
				Spec:     args.Shared.PodSpec(pod),
			},
		},
	}, deploymentOpts...)
	if err != nil {
		return fmt.Errorf("%s: deployment: %w", args.Name, err)
	}
	w.Deployment = deployment.Metadata.Name().Elem()
	return nil
}

// newCompanions creates the workload's Service, budget and autoscaler.
// budgetPods, when set, are the pods the budget counts instead of the
// workload's selector.
func newCompanions(ctx *pulumi.Context, name string, args Args, w *Workload, meta func() *metav1.ObjectMetaArgs, target func(pulumi.StringInput) availability.ScaleTarget, budgetPods map[string]string, opts []pulumi.ResourceOption) error {
	a := args.Autoscaling
	if args.Service {
		var ports corev1.ServicePortArray
		for _, p := range args.Ports {
			ports = append(ports, corev1.ServicePortArgs{
				Name: pulumi.String(p.Name), Port: pulumi.Int(p.Port), TargetPort: pulumi.String(p.Name), Protocol: pulumi.String("TCP"),
			})
		}
		serviceMeta := meta()
		serviceMeta.Annotations = args.ServiceAnnotations
		service, err := corev1.NewService(ctx, name+"-service", &corev1.ServiceArgs{
			Metadata: serviceMeta,
			Spec: &corev1.ServiceSpecArgs{
				Type:     pulumi.String("ClusterIP"),
				Selector: args.Workload.SelectorInput(),
				Ports:    ports,
			},
		}, opts...)
		if err != nil {
			return fmt.Errorf("%s: service: %w", args.Name, err)
		}
		w.Service = service.Metadata.Name().Elem()
	}

	if availability.NeedsBudget(args.Replicas, a) {
		if _, err := availability.NewBudget(ctx, name+"-pdb", availability.BudgetArgs{
			Metadata: meta(), Workload: args.Workload, Pods: budgetPods, MaxUnavailable: args.MaxUnavailable,
		}, opts...); err != nil {
			return fmt.Errorf("%s: disruption budget: %w", args.Name, err)
		}
	}
	switch {
	case a.Enabled && a.Driver == availability.DriverKEDA:
		query := pulumi.String(a.Query).ToStringOutput()
		if a.Query == "" {
			// The workload's whole queue; KEDA divides it by the replicas (AverageValue).
			query = pulumi.Sprintf(`sum(%s{namespace="%s",pod=~"%s-.+"})`, a.Series, args.Shared.Namespace, args.Name)
		}
		if _, err := availability.NewScaledObject(ctx, name+"-scaledobject", availability.ScaledObjectArgs{
			Metadata: meta(), Target: target(w.Deployment), HPAName: args.Name, Autoscaling: a, Query: query,
		}, opts...); err != nil {
			return fmt.Errorf("%s: scaled object: %w", args.Name, err)
		}
	case a.Enabled:
		if _, err := availability.NewAutoscaler(ctx, name+"-hpa", availability.AutoscalerArgs{
			Metadata: meta(), Target: target(w.Deployment), Autoscaling: a,
		}, opts...); err != nil {
			return fmt.Errorf("%s: autoscaler: %w", args.Name, err)
		}
	}
	return nil
}
