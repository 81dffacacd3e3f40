// Package serving runs one model on the GPU node pool: a Deployment with
// startup, readiness and liveness probes derived from the model-load budget, a
// ClusterIP Service, a PodDisruptionBudget, an HPA and a model-cache claim kept
// on destroy. The stack creates one per configured model.
package serving

import (
	"fmt"
	"maps"
	"strconv"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/config"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/rollout"
)

// Timing derived from a model's budgets.
const (
	// ReadinessPeriodSeconds is how often readiness is checked once started.
	ReadinessPeriodSeconds = 5
)

// Args configures one served model.
type Args struct {
	// Model is the validated model configuration.
	Model config.Model
	// GPUPool places the pods: node selector, toleration, GPU resource name.
	GPUPool config.GPUPool
	// Shared carries the namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
	// ModelRegistryTokenSecret, when set, names a Secret whose "token" key is
	// exposed as MODEL_REGISTRY_TOKEN.
	ModelRegistryTokenSecret pulumi.StringInput
	// Adopter, when set, is the provider of the claims the stack keeps on
	// delete: it adopts a kept claim of the same name instead of failing.
	Adopter pulumi.ProviderResource
}

// Inference is one served model.
type Inference struct {
	pulumi.ResourceState

	// Model is the model's name.
	Model string
	// Workload identifies the model server's pods.
	Workload labels.Workload
	// MetricsPort is the name of the container port serving metrics.
	MetricsPort string
	// Endpoint is the in-cluster URL of the model's Service.
	Endpoint pulumi.StringOutput
	// ServiceName is the Service's name.
	ServiceName pulumi.StringOutput
	// CacheClaim is the model-cache claim's name.
	CacheClaim pulumi.StringOutput
}

// Rollout is what a model's rollout may take, derived from its budgets.
type Rollout struct {
	rollout.Timings
	// MaxSurge and MaxUnavailable of the rolling update.
	MaxSurge, MaxUnavailable int
}

// PlanRollout derives every timing of a model from its configuration (see
// rollout.Plan). Validation has already refused budgets whose timings would
// not fit, so an error here is a programming error reported, not a panic.
func PlanRollout(m config.Model, pool config.GPUPool) (Rollout, error) {
	t, err := rollout.Plan(rollout.Budgets{
		ModelLoadSeconds:    m.ModelLoadBudgetSeconds,
		ImagePullSeconds:    m.ImagePullBudgetSeconds,
		ProbePeriodSeconds:  m.LivenessPeriodSeconds,
		MaxReplicas:         config.MaxReplicas(m.Replicas, m.Autoscaling),
		PreStopSleepSeconds: m.Drain.PreStopSleepSeconds,
		DrainSeconds:        m.Drain.DrainSeconds,
	})
	if err != nil {
		return Rollout{}, err
	}
	r := Rollout{Timings: t}
	// Without spare GPU capacity a surge pod would wait for a GPU that does not
	// exist, and the rollout would never finish.
	if pool.SpareCapacity {
		r.MaxSurge, r.MaxUnavailable = 1, 0
	} else {
		r.MaxSurge, r.MaxUnavailable = 0, 1
	}
	return r, nil
}

// New creates the model's objects.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Inference, error) {
	m := args.Model
	inf := &Inference{Model: m.Name}
	if err := ctx.RegisterComponentResource("llm-platform:index:Inference", name, inf, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(inf)
	workload := labels.Workload{Name: "inference", Instance: names.Inference(m.Name), Component: "serving"}
	inf.Workload, inf.MetricsPort = workload, "http"
	if m.MetricsPort != m.Port {
		inf.MetricsPort = "metrics"
	}
	meta := func(objectName string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(objectName), Namespace: args.Shared.Namespace, Labels: workload.AllInput()}
	}
	objectName := names.Inference(m.Name)

	cache, err := corev1.NewPersistentVolumeClaim(ctx, name+"-model-cache", &corev1.PersistentVolumeClaimArgs{
		Metadata: withAnnotations(meta(names.ModelCache(m.Name, m.ModelCache.StorageClass, m.ModelCache.AccessMode)), availability.Adopted()),
		Spec: podspec.ClaimSpec(config.Storage{
			Size: m.ModelCache.Size, StorageClass: m.ModelCache.StorageClass, AccessMode: m.ModelCache.AccessMode,
		}),
	}, parent, pulumi.RetainOnDelete(true), pulumi.Provider(args.Adopter))
	if err != nil {
		return nil, fmt.Errorf("serving %q: model cache: %w", name, err)
	}
	inf.CacheClaim = cache.Metadata.Name().Elem()

	plan, err := PlanRollout(m, args.GPUPool)
	if err != nil {
		return nil, fmt.Errorf("serving %q: %w", name, err)
	}
	scrape := pulumi.StringMap{
		"prometheus.io/scrape": pulumi.String("true"),
		"prometheus.io/port":   pulumi.String(strconv.Itoa(m.MetricsPort)),
		"prometheus.io/path":   pulumi.String(m.MetricsPath),
	}
	deploymentMeta := meta(objectName)
	deploymentMeta.Annotations = podspec.WorkloadAnnotations(availability.ReplicaOwnership(m.Autoscaling))
	deployment, err := appsv1.NewDeployment(ctx, name+"-deployment", &appsv1.DeploymentArgs{
		Metadata: deploymentMeta,
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas:                availability.Replicas(m.Replicas, m.Autoscaling),
			Selector:                &metav1.LabelSelectorArgs{MatchLabels: workload.SelectorInput()},
			ProgressDeadlineSeconds: pulumi.Int(plan.ProgressDeadlineSeconds),
			RevisionHistoryLimit:    pulumi.Int(5),
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{
					MaxSurge: pulumi.Int(plan.MaxSurge), MaxUnavailable: pulumi.Int(plan.MaxUnavailable),
				},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: workload.AllInput(), Annotations: scrape},
				Spec:     podSpec(args, workload, plan, inf.CacheClaim),
			},
		},
	}, append([]pulumi.ResourceOption{parent, pulumi.Timeouts(&pulumi.CustomTimeouts{
		Create: plan.Create.String(), Update: plan.Update.String(), Delete: plan.Delete.String(),
	})}, availability.ReplicaOptions(m.Autoscaling)...)...)
	if err != nil {
		return nil, fmt.Errorf("serving %q: deployment: %w", name, err)
	}

	ports := corev1.ServicePortArray{corev1.ServicePortArgs{
		Name: pulumi.String("http"), Port: pulumi.Int(m.Port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
	}}
	if m.MetricsPort != m.Port {
		ports = append(ports, corev1.ServicePortArgs{
			Name: pulumi.String("metrics"), Port: pulumi.Int(m.MetricsPort), TargetPort: pulumi.String("metrics"), Protocol: pulumi.String("TCP"),
		})
	}
	svcMeta := meta(objectName)
	svcAnnotations := pulumi.StringMap{}
	maps.Copy(svcAnnotations, scrape)
	maps.Copy(svcAnnotations, availability.ServiceAwait())
	svcMeta.Annotations = svcAnnotations
	service, err := corev1.NewService(ctx, name+"-service", &corev1.ServiceArgs{
		Metadata: svcMeta,
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: workload.SelectorInput(),
			Ports:    ports,
		},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("serving %q: service: %w", name, err)
	}
	inf.ServiceName = service.Metadata.Name().Elem()
	inf.Endpoint = pulumi.Sprintf("http://%s.%s.svc.cluster.local:%d", inf.ServiceName, args.Shared.Namespace, m.Port)

	if availability.NeedsBudget(m.Replicas, m.Autoscaling) {
		if _, err := availability.NewBudget(ctx, name+"-pdb", availability.BudgetArgs{
			Metadata: meta(objectName), Workload: workload, Disruption: m.Disruption,
		}, parent); err != nil {
			return nil, fmt.Errorf("serving %q: disruption budget: %w", name, err)
		}
	}
	switch a := m.Autoscaling; {
	case a.Enabled && a.Driver == config.DriverKEDA:
		query := pulumi.String(a.Query).ToStringOutput()
		if a.Query == "" {
			// The model's whole queue; KEDA divides it by the replicas (AverageValue).
			query = pulumi.Sprintf(`sum(%s{namespace="%s",pod=~"%s-.+"})`, a.SeriesName(), args.Shared.Namespace, objectName)
		}
		if _, err := availability.NewScaledObject(ctx, name+"-scaledobject", availability.ScaledObjectArgs{
			Metadata: meta(objectName), Deployment: deployment.Metadata.Name().Elem(), HPAName: objectName,
			Autoscaling: a, Query: query,
		}, parent); err != nil {
			return nil, fmt.Errorf("serving %q: scaled object: %w", name, err)
		}
	case a.Enabled:
		if _, err := availability.NewAutoscaler(ctx, name+"-hpa", availability.AutoscalerArgs{
			Metadata: meta(objectName), Deployment: deployment.Metadata.Name().Elem(), Autoscaling: a,
		}, parent); err != nil {
			return nil, fmt.Errorf("serving %q: autoscaler: %w", name, err)
		}
	}

	if err := ctx.RegisterResourceOutputs(inf, pulumi.Map{
		"endpoint": inf.Endpoint, "serviceName": inf.ServiceName, "cacheClaim": inf.CacheClaim,
	}); err != nil {
		return nil, err
	}
	return inf, nil
}

func podSpec(args Args, workload labels.Workload, plan Rollout, cacheClaim pulumi.StringInput) *corev1.PodSpecArgs {
	m, pool := args.Model, args.GPUPool
	ports := corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(m.Port), Protocol: pulumi.String("TCP")}}
	if m.MetricsPort != m.Port {
		ports = append(ports, corev1.ContainerPortArgs{Name: pulumi.String("metrics"), ContainerPort: pulumi.Int(m.MetricsPort), Protocol: pulumi.String("TCP")})
	}
	// Hugging Face libraries (vLLM, TGI) cache weights under HF_HOME.
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("HF_HOME"), Value: pulumi.String(m.ModelCache.MountPath)}}
	if args.ModelRegistryTokenSecret != nil {
		env = append(env, podspec.SecretEnv("MODEL_REGISTRY_TOKEN", args.ModelRegistryTokenSecret, "token"))
	}
	container := args.Shared.Security.Container(podspec.ContainerSpec{
		Name: "server", Image: m.Image, Args: m.Args, Resources: m.Resources,
		Extended: map[string]int{pool.ResourceName: m.GPUs},
		Env:      env,
		Mounts: corev1.VolumeMountArray{
			corev1.VolumeMountArgs{Name: pulumi.String("shm"), MountPath: pulumi.String("/dev/shm")},
			corev1.VolumeMountArgs{Name: pulumi.String("model-cache"), MountPath: pulumi.String(m.ModelCache.MountPath)},
		},
	})
	container.Ports = ports
	// The startup probe holds off liveness until the model has loaded.
	container.StartupProbe = podspec.HTTPProbe(m.LivenessPath, "http", m.LivenessPeriodSeconds, plan.StartupFailureThreshold)
	container.ReadinessProbe = podspec.HTTPProbe(m.ReadinessPath, "http", ReadinessPeriodSeconds, 3)
	container.LivenessProbe = podspec.HTTPProbe(m.LivenessPath, "http", m.LivenessPeriodSeconds, 3)
	if m.Drain.PreStopSleepSeconds > 0 {
		// Endpoints stop routing to a terminating pod a few seconds late; keep
		// serving until they have, then SIGTERM starts the drain.
		container.Lifecycle = &corev1.LifecycleArgs{PreStop: &corev1.LifecycleHandlerArgs{
			Sleep: &corev1.SleepActionArgs{Seconds: pulumi.Int(m.Drain.PreStopSleepSeconds)},
		}}
	}
	return args.Shared.PodSpec(corev1.PodSpecArgs{
		Containers:                    corev1.ContainerArray{container},
		TerminationGracePeriodSeconds: pulumi.Int(plan.TerminationGracePeriodSeconds),
		NodeSelector:                  pulumi.StringMap{pool.NodeLabelKey: pulumi.String(pool.NodeLabelValue)},
		Tolerations: corev1.TolerationArray{corev1.TolerationArgs{
			Key: pulumi.String(pool.TaintKey), Operator: pulumi.String("Exists"), Effect: pulumi.String(pool.TaintEffect),
		}},
		TopologySpreadConstraints: spread(m.TopologySpread, workload),
		Volumes: corev1.VolumeArray{
			podspec.Tmp(m.Resources),
			corev1.VolumeArgs{Name: pulumi.String("shm"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{
				Medium: pulumi.String("Memory"), SizeLimit: pulumi.String(m.ShmSize),
			}},
			podspec.ClaimVolume("model-cache", cacheClaim),
		},
	})
}

// spread keeps replicas apart across zones and hosts. matchLabelKeys counts
// only pods of the same ReplicaSet, so a rollout is not skewed by old pods.
func spread(t config.TopologySpread, workload labels.Workload) corev1.TopologySpreadConstraintArray {
	var out corev1.TopologySpreadConstraintArray
	for _, c := range []struct{ key, when string }{
		{"topology.kubernetes.io/zone", t.Zone},
		{"kubernetes.io/hostname", t.Host},
	} {
		if c.when == config.SpreadNone {
			continue
		}
		out = append(out, corev1.TopologySpreadConstraintArgs{
			MaxSkew:           pulumi.Int(1),
			TopologyKey:       pulumi.String(c.key),
			WhenUnsatisfiable: pulumi.String(c.when),
			LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: workload.SelectorInput()},
			MatchLabelKeys:    pulumi.StringArray{pulumi.String("pod-template-hash")},
		})
	}
	return out
}

func withAnnotations(m *metav1.ObjectMetaArgs, annotations pulumi.StringMap) *metav1.ObjectMetaArgs {
	m.Annotations = annotations
	return m
}
