// Package serving runs one model on the GPU node pool: a Deployment with
// startup, readiness and liveness probes derived from the model-load budget, a
// ClusterIP Service, a PodDisruptionBudget, an HPA and a model-cache claim kept
// on destroy. The stack creates one per configured model.
package serving

import (
	"fmt"
	"maps"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/group"
	"llm-platform/internal/intent"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/rollout"
	"llm-platform/internal/workload"
)

// ReadinessPeriodSeconds is how often readiness is checked once started.
const ReadinessPeriodSeconds = 5

// Args describes one served model.
type Args struct {
	// Model names the model; its objects are named inference-<Model>.
	Model string
	// Image and Args of the model server.
	Image string
	Args  []string
	// GPUs per replica, requested as the pool's resource, or claimed
	// through GPUClaim.
	GPUs int
	// GPUClaim, when set, claims the GPUs through Dynamic Resource
	// Allocation instead of the pool's extended resource.
	GPUClaim *GPUClaim
	// Pool places the pods on the GPU nodes.
	Pool GPUPool
	// Resources of the server's container (cpu, memory, ephemeral storage).
	Resources podspec.Resources
	// ShmSize sizes /dev/shm, a memory-backed emptyDir.
	ShmSize string
	// Port serves inference; MetricsPort serves metrics at MetricsPath (it
	// may be Port).
	Port, MetricsPort int
	MetricsPath       string
	// Probes: the startup and liveness probes use the liveness path at
	// Probes.PeriodSeconds, readiness every ReadinessPeriodSeconds.
	Probes workload.Probes
	// Budgets: the model load (StartupSeconds), the image pull and the drain.
	Budgets workload.Budgets
	// Replicas while autoscaling is off; Autoscaling otherwise owns them.
	Replicas    int
	Autoscaling availability.Autoscaling
	// MaxUnavailable of the disruption budget: a count or a percentage.
	MaxUnavailable string
	// Spread keeps replicas apart: the whenUnsatisfiable of the zone and the
	// host constraint, each "" for none.
	Spread Spread
	// Source, when set, delivers the weights before the server starts: from
	// an existing claim, or fetched into the cache. The server then runs
	// offline (HF_HUB_OFFLINE=1) and reads them at $(MODEL_PATH).
	Source *Source
	// Cache is the claim model weights are cached on, kept on destroy and
	// mounted at CacheMountPath; CacheClaimName is its object name. With a
	// claim source no cache is created: that claim is mounted instead.
	Cache          podspec.Claim
	CacheClaimName string
	CacheMountPath string
	// TokenSecret, when set, names a Secret whose "token" key is exposed as
	// HF_TOKEN, the variable vLLM, TGI and SGLang read for gated models: to
	// the fetch run when the weights are fetched, else to the server.
	TokenSecret pulumi.StringInput
	// ClusterDomain completes the endpoint's host name (cluster.local by default).
	ClusterDomain string
	// Clients may reach Port; Scrapers are namespaces that may reach MetricsPort.
	Clients  intent.Peers
	Scrapers []string
	// Picker, when the model routes through an inference pool, selects its
	// endpoint picker's pods, which read MetricsPort.
	Picker map[string]string
	// Egress are the networks outside the cluster the server reaches.
	Egress []intent.Egress
	// Shared is the pods' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
	// Adopter, when set, is the provider of the claims the stack keeps on
	// delete: it adopts a kept claim of the same name instead of failing.
	Adopter pulumi.ProviderResource
	// Nodes one replica spans (0 or 1: one pod). Above 1 the model is a
	// LeaderWorkerSet of Replicas groups of Nodes pods, each with GPUs
	// GPUs, launched as vLLM's multi-node runtime (see internal/group);
	// MaxUnavailable then counts pods, of which each broken group holds at
	// least one (group.MaxUnavailablePods).
	Nodes int
	// SchedulerName is the pods' scheduler ("" for the default), a gang
	// scheduler for groups.
	SchedulerName string
	// QueueName, for groups under Volcano, is the Volcano Queue of their
	// PodGroups.
	QueueName string
	// GroupDomainLabel, when set, is a node label naming NVLink or network
	// domains: each group runs alone in one (LeaderWorkerSet's exclusive
	// topology).
	GroupDomainLabel string
}

// multiNode says a replica is a group of pods.
func (a Args) multiNode() bool { return a.Nodes > 1 }

// GPUPool is where inference pods run.
type GPUPool struct {
	// NodeLabelKey and NodeLabelValue select the pool's nodes.
	NodeLabelKey, NodeLabelValue string
	// TaintKey and TaintEffect are the taint the pods tolerate.
	TaintKey, TaintEffect string
	// ResourceName is the extended resource GPUs are requested as.
	ResourceName string
	// SpareCapacity: the pool has room for one more pod during a rollout.
	SpareCapacity bool
}

// Spread says what to do when replicas cannot be spread evenly across zones
// and hosts: "ScheduleAnyway", "DoNotSchedule", or "" for no constraint.
type Spread struct {
	Zone, Host string
}

// Workload labels a model's pods: every pod of a single-node model, the
// leaders of a multi-node one.
func Workload(model string) labels.Workload {
	return labels.Workload{Name: "inference", Instance: names.Inference(model), Component: "serving"}
}

// WorkerWorkload labels the workers of a multi-node model's groups: the
// same instance as the leaders, another name, so that what selects
// Workload (the Service, the scrape, an inference pool) selects leaders only.
func WorkerWorkload(model string) labels.Workload {
	return labels.Workload{Name: "inference-worker", Instance: names.Inference(model), Component: "serving"}
}

// GroupPods select every pod of a multi-node model, leaders and workers.
func GroupPods(model string) map[string]string {
	return map[string]string{labels.Instance: names.Inference(model)}
}

// Intents are what the model serves and reaches: clients on its port,
// scrapers on its metrics port, and its egress; and, when its weights are
// fetched, the fetch run, the only one that reaches the sources.
func (a Args) Intents() []intent.Workload {
	out := []intent.Workload{{
		Name: names.Inference(a.Model),
		Pods: Workload(a.Model).Selector(),
		Serves: []intent.Ingress{
			{Port: a.Port, From: a.Clients},
			{Port: a.MetricsPort, From: intent.Peers{Namespaces: a.Scrapers}},
		},
		Reaches: a.Egress,
	}}
	if a.Picker != nil {
		out[0].Serves = append(out[0].Serves, intent.Ingress{Port: a.MetricsPort, From: intent.Peers{PodLabels: a.Picker}})
	}
	if a.multiNode() {
		// The pods of a group reach each other on the leader's store and on
		// the narrowed ephemeral range, and on nothing else.
		pods := GroupPods(a.Model)
		out[0].Pods = pods
		out[0].Serves = append(out[0].Serves,
			intent.Ingress{Port: group.MasterPort, From: intent.Peers{PodLabels: pods}},
			intent.Ingress{Port: group.FirstEphemeralPort, EndPort: group.LastEphemeralPort, From: intent.Peers{PodLabels: pods}},
		)
		out[0].Calls = append(out[0].Calls,
			intent.Call{Pods: pods, Port: group.MasterPort},
			intent.Call{Pods: pods, Port: group.FirstEphemeralPort, EndPort: group.LastEphemeralPort},
		)
	}
	if a.fetched() {
		out = append(out, intent.Workload{Name: names.Fetch(a.Model), Pods: FetchWorkload(a.Model).Selector(), Reaches: a.Source.Fetch.Egress})
	}
	return out
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
	// CacheClaim is the name of the claim the weights are on, when HasClaim
	// (an OCI image source has none).
	CacheClaim pulumi.StringOutput
	HasClaim   bool
	// Timings are the probe thresholds, deadlines and timeouts derived from
	// the budgets.
	Timings rollout.Timings
}

// New creates the model's objects.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Inference, error) {
	w := Workload(args.Model)
	inf := &Inference{Model: args.Model, Workload: w, MetricsPort: "http"}
	if err := ctx.RegisterComponentResource("llm-platform:index:Inference", name, inf, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(inf)
	ports := []workload.Port{{Name: "http", Port: args.Port}}
	if args.MetricsPort != args.Port {
		inf.MetricsPort = "metrics"
		ports = append(ports, workload.Port{Name: "metrics", Port: args.MetricsPort})
	}

	var after []pulumi.Resource
	switch {
	case args.Source != nil && args.Source.Image != "":
		// The kubelet pulls the image; there is no claim.
	case args.Source != nil && args.Source.Claim != "":
		inf.CacheClaim = pulumi.String(args.Source.Claim).ToStringOutput()
		inf.HasClaim = true
	default:
		cache, err := corev1.NewPersistentVolumeClaim(ctx, name+"-model-cache", &corev1.PersistentVolumeClaimArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name: pulumi.String(args.CacheClaimName), Namespace: args.Shared.Namespace, Labels: w.AllInput(),
				Annotations: availability.Adopted(),
			},
			Spec: podspec.ClaimSpec(args.Cache),
		}, append([]pulumi.ResourceOption{parent}, availability.Kept(args.Adopter)...)...)
		if err != nil {
			return nil, fmt.Errorf("serving %q: model cache: %w", name, err)
		}
		inf.CacheClaim = cache.Metadata.Name().Elem()
		inf.HasClaim = true
	}
	if args.fetched() {
		job, err := newFetch(ctx, name, args, inf.CacheClaim, parent)
		if err != nil {
			return nil, err
		}
		after = append(after, job)
	}

	var claimTemplate pulumi.StringPtrInput
	if args.GPUClaim != nil {
		t, err := newClaimTemplate(ctx, name, args, parent)
		if err != nil {
			return nil, err
		}
		claimTemplate = t.Metadata.Name()
	}

	scrape := pulumi.StringMap{
		"prometheus.io/scrape": pulumi.String("true"),
		"prometheus.io/port":   pulumi.String(strconv.Itoa(args.MetricsPort)),
		"prometheus.io/path":   pulumi.String(args.MetricsPath),
	}
	serviceAnnotations := pulumi.StringMap{}
	maps.Copy(serviceAnnotations, scrape)
	maps.Copy(serviceAnnotations, availability.ServiceAwait())
	leader := container(args, args.Args)
	var g *workload.Group
	if args.multiNode() {
		g = newGroup(args, inf.CacheClaim, claimTemplate)
		leader = container(args, group.Launch(args.Args, args.Nodes, true))
	}
	built, err := workload.New(ctx, name, workload.Args{
		Name:               names.Inference(args.Model),
		Workload:           w,
		Shared:             args.Shared,
		Container:          leader,
		Ports:              ports,
		Group:              g,
		Pod:                podSpec(args, w, inf.CacheClaim, claimTemplate),
		PodAnnotations:     scrape,
		Service:            true,
		ServiceAnnotations: serviceAnnotations,
		Probes:             args.Probes,
		Budgets:            args.Budgets,
		Replicas:           args.Replicas,
		Autoscaling:        args.Autoscaling,
		MaxUnavailable:     args.MaxUnavailable,
		Surge:              args.surge(),
		After:              after,
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("serving %q: %w", name, err)
	}
	inf.Timings = built.Timings
	inf.ServiceName = built.Service
	domain := args.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	inf.Endpoint = pulumi.Sprintf("http://%s.%s.svc.%s:%d", inf.ServiceName, args.Shared.Namespace, domain, args.Port)

	outputs := pulumi.Map{"endpoint": inf.Endpoint, "serviceName": inf.ServiceName}
	if inf.HasClaim {
		outputs["cacheClaim"] = inf.CacheClaim
	}
	if err := ctx.RegisterResourceOutputs(inf, outputs); err != nil {
		return nil, err
	}
	return inf, nil
}

// surge says whether a rollout may start a new pod before an old one stops:
// the pool must have room for it, and the model's cache must attach to a
// second node (a ReadWriteOnce claim cannot: the surge pod would wait on
// Multi-Attach until the rollout's deadline). A group never surges: the
// pool's spare capacity is room for one pod, and a surge group would need
// Nodes nodes of it, its first pods holding GPUs while the rest stay Pending.
func (a Args) surge() bool {
	cached := a.Source == nil || (a.Source.Image == "" && a.Source.Claim == "")
	return a.Pool.SpareCapacity && !a.multiNode() && !(cached && a.Cache.AccessMode == "ReadWriteOnce")
}

// container is the model server's container, running serverArgs.
func container(args Args, serverArgs []string) corev1.ContainerArgs {
	// Hugging Face libraries (vLLM, TGI) cache weights under HF_HOME. With
	// a source the cache is read-only and HF_HOME only holds what the
	// libraries write for themselves (remote code modules), on /tmp.
	home := args.CacheMountPath
	if args.Source != nil {
		home = "/tmp/hf"
	}
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("HF_HOME"), Value: pulumi.String(home)}}
	switch {
	case args.Source != nil:
		// The weights are on local disk: never reach for the hub.
		env = append(env,
			corev1.EnvVarArgs{Name: pulumi.String("HF_HUB_OFFLINE"), Value: pulumi.String("1")},
			corev1.EnvVarArgs{Name: pulumi.String("TRANSFORMERS_OFFLINE"), Value: pulumi.String("1")},
			corev1.EnvVarArgs{Name: pulumi.String("MODEL_PATH"), Value: pulumi.String(args.modelDir())},
		)
	case args.TokenSecret != nil:
		env = append(env, podspec.SecretEnv("HF_TOKEN", args.TokenSecret, "token"))
	}
	cacheMount := corev1.VolumeMountArgs{Name: pulumi.String("model-cache"), MountPath: pulumi.String(args.CacheMountPath)}
	if args.Source != nil {
		// The server only reads what was delivered.
		cacheMount.ReadOnly = pulumi.BoolPtr(true)
	}
	spec := podspec.ContainerSpec{
		Name: "server", Image: args.Image, Args: serverArgs, Resources: args.Resources,
		Env: env,
		Mounts: corev1.VolumeMountArray{
			corev1.VolumeMountArgs{Name: pulumi.String("shm"), MountPath: pulumi.String("/dev/shm")},
			cacheMount,
		},
	}
	if args.GPUClaim != nil {
		spec.Claims = []string{claimRequest}
	} else {
		spec.Extended = map[string]int{args.Pool.ResourceName: args.GPUs}
	}
	return args.Shared.Security.Container(spec)
}

// podSpec is the server's pod; claimTemplate, with a GPUClaim, names the
// ResourceClaimTemplate its GPUs come from.
func podSpec(args Args, w labels.Workload, cacheClaim pulumi.StringInput, claimTemplate pulumi.StringPtrInput) corev1.PodSpecArgs {
	pool := args.Pool
	spec := corev1.PodSpecArgs{
		NodeSelector: pulumi.StringMap{pool.NodeLabelKey: pulumi.String(pool.NodeLabelValue)},
		Tolerations: corev1.TolerationArray{corev1.TolerationArgs{
			Key: pulumi.String(pool.TaintKey), Operator: pulumi.String("Exists"), Effect: pulumi.String(pool.TaintEffect),
		}},
		TopologySpreadConstraints: spread(args.Spread, w),
		Volumes: corev1.VolumeArray{
			podspec.Tmp(args.Resources),
			corev1.VolumeArgs{Name: pulumi.String("shm"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{
				Medium: pulumi.String("Memory"), SizeLimit: pulumi.String(args.ShmSize),
			}},
			cacheVolume(args, cacheClaim),
		},
	}
	if claimTemplate != nil {
		spec.ResourceClaims = podClaims(claimTemplate)
	}
	if args.SchedulerName != "" {
		spec.SchedulerName = pulumi.String(args.SchedulerName)
	}
	if args.multiNode() {
		spec.Affinity = groupAffinity(args.Model)
		// Spread counts leaders only: a group's pods are kept together.
		spec.TopologySpreadConstraints = spreadBy(args.Spread, w, groupRevisionLabel)
	}
	return spec
}

// cacheVolume is where the weights are: the model's claim, or its OCI image.
func cacheVolume(args Args, claim pulumi.StringInput) corev1.VolumeArgs {
	if args.Source != nil && args.Source.Image != "" {
		return corev1.VolumeArgs{Name: pulumi.String("model-cache"), Image: &corev1.ImageVolumeSourceArgs{
			Reference: pulumi.String(args.Source.Image), PullPolicy: pulumi.String("IfNotPresent"),
		}}
	}
	return podspec.ClaimVolume("model-cache", claim)
}

// spread keeps replicas apart across zones and hosts. matchLabelKeys counts
// only pods of the same ReplicaSet, so a rollout is not skewed by old pods.
func spread(t Spread, w labels.Workload) corev1.TopologySpreadConstraintArray {
	return spreadBy(t, w, "pod-template-hash")
}

// spreadBy is spread with revisionLabel as the label that tells a
// rollout's new pods from the old.
func spreadBy(t Spread, w labels.Workload, revisionLabel string) corev1.TopologySpreadConstraintArray {
	var out corev1.TopologySpreadConstraintArray
	for _, c := range []struct{ key, when string }{
		{"topology.kubernetes.io/zone", t.Zone},
		{"kubernetes.io/hostname", t.Host},
	} {
		if c.when == "" {
			continue
		}
		out = append(out, corev1.TopologySpreadConstraintArgs{
			MaxSkew:           pulumi.Int(1),
			TopologyKey:       pulumi.String(c.key),
			WhenUnsatisfiable: pulumi.String(c.when),
			LabelSelector:     &metav1.LabelSelectorArgs{MatchLabels: w.SelectorInput()},
			MatchLabelKeys:    pulumi.StringArray{pulumi.String(revisionLabel)},
		})
	}
	return out
}
