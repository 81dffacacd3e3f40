// Package config reads the stack configuration once, at the edge of the program,
// into typed structs: defaults first, then one validation pass that reports
// every problem at once. Components never read configuration themselves.
package config

import (
	"slices"
	"strings"
)

// Project is the Pulumi project name; every key lives under it.
const Project = "llm-platform"

// Environments the stack knows. Production rules (pinned images) apply to "prod".
const (
	EnvDev     = "dev"
	EnvStaging = "staging"
	EnvProd    = "prod"
)

// Config is the whole stack configuration after defaults and validation.
type Config struct {
	// Environment is dev, staging or prod (key `environment`, required).
	Environment string `json:"environment"`
	// Namespace is the platform namespace and its guards (key `namespace`).
	Namespace Namespace `json:"namespace"`
	// GPUPool describes the node pool inference pods run on (key `gpuPool`).
	GPUPool GPUPool `json:"gpuPool"`
	// Serving holds the models to serve (key `serving`).
	Serving Serving `json:"serving"`
	// Pipeline holds the ingestion and transformation stages (key `pipeline`).
	Pipeline Pipeline `json:"pipeline"`
	// Checkpoint is the checkpoint store (key `checkpoint`).
	Checkpoint Checkpoint `json:"checkpoint"`
	// Cron schedules pipeline runs (key `cron`).
	Cron Cron `json:"cron"`
	// Monitoring configures the prometheus-operator objects (key `monitoring`,
	// optional).
	Monitoring Monitoring `json:"monitoring"`
	// ClusterDomain is the cluster's DNS domain, which in-cluster endpoints
	// end with (key `clusterDomain`, optional, default cluster.local).
	ClusterDomain string `json:"clusterDomain"`
	// AcceptCluster is the UID (of its kube-system namespace) of a cluster
	// the stack may be deployed to although it was deployed to another: a
	// cluster rebuilt after a disaster (key `acceptCluster`, optional; ""
	// accepts none). The program checks it against the cluster reached.
	AcceptCluster string `json:"acceptCluster"`
	// Secrets says which optional secrets the stack was given; their values stay
	// Pulumi secrets and are read by main, never stored here.
	Secrets SecretsPresent `json:"-"`
}

// SecretsPresent records which optional secret keys are set.
type SecretsPresent struct {
	// ModelRegistryToken is true when `modelRegistryToken` is set.
	ModelRegistryToken bool
	// RegistryCredentials is true when `registryCredentials` is set.
	RegistryCredentials bool
}

// Namespace configures the platform namespace and what guards it.
type Namespace struct {
	// Name of the namespace (DNS-1123 label, required).
	Name string `json:"name"`
	// Quota is the namespace's ResourceQuota (required).
	Quota Quota `json:"quota"`
	// LimitRange gives containers that set nothing a request and a limit.
	LimitRange LimitRange `json:"limitRange"`
	// Network lists the traffic the default-deny policy lets through.
	Network Network `json:"network"`
}

// Quota is the namespace's hard ResourceQuota. Validation checks that the whole
// stack, at its autoscaling maximum and during a rollout, fits inside it.
type Quota struct {
	// CPU caps requests.cpu, for example "64".
	CPU Quantity `json:"cpu"`
	// Memory caps requests.memory and limits.memory, for example "512Gi".
	Memory Quantity `json:"memory"`
	// GPUs caps requests of the GPU pool's resource (nvidia.com/gpu by default).
	GPUs int `json:"gpus"`
	// Pods caps the number of pods.
	Pods int `json:"pods"`
	// Storage caps requests.storage over all claims, for example "2Ti".
	Storage Quantity `json:"storage"`
}

// LimitRange holds the defaults a container that sets nothing receives.
type LimitRange struct {
	// DefaultRequest is the request given to containers without one (default 100m, 128Mi, 256Mi).
	DefaultRequest ResourceList `json:"defaultRequest"`
	// Default is the limit given to containers without one (default 1, 1Gi, 1Gi).
	Default ResourceList `json:"default"`
}

// Network lists the allows on top of the namespace's default deny.
type Network struct {
	// InferenceClients may reach the inference port.
	InferenceClients PeerSelector `json:"inferenceClients"`
	// MetricsScrapers are namespaces whose pods may reach metrics ports (for example "monitoring").
	MetricsScrapers []string `json:"metricsScrapers"`
	// Egress lists the CIDRs and ports outside the cluster, each with the
	// workloads that may reach it: data sources, the model registry.
	Egress []EgressRule `json:"egress"`
	// DNS says where cluster DNS runs (default namespace kube-system, pods k8s-app=kube-dns).
	DNS DNS `json:"dns"`
}

// PeerSelector names the pods allowed in: by namespace, by pod labels, or both.
type PeerSelector struct {
	// Namespaces whose pods may connect (matched on kubernetes.io/metadata.name).
	Namespaces []string `json:"namespaces"`
	// PodLabels selects pods in the platform namespace that may connect.
	PodLabels map[string]string `json:"podLabels"`
}

// EgressRule allows traffic to a CIDR on the given TCP ports.
type EgressRule struct {
	// CIDR is the destination range, for example "10.20.0.0/16".
	CIDR string `json:"cidr"`
	// Ports are TCP ports (at least one).
	Ports []int `json:"ports"`
	// Description says what lives there.
	Description string `json:"description"`
	// Workloads may reach it (required): ingestion (the first run and the
	// schedule's runs), transformation, checkpoint, inference (every model's
	// server), fetch (every model's fetch run).
	Workloads []string `json:"workloads"`
}

// The workloads an egress rule may name.
const (
	EgressIngestion      = "ingestion"
	EgressTransformation = "transformation"
	EgressCheckpoint     = "checkpoint"
	EgressInference      = "inference"
	EgressFetch          = "fetch"
	// EgressEndpointPicker is every pooled model's endpoint picker, which
	// watches the API server.
	EgressEndpointPicker = "endpoint-picker"
)

// EgressWorkloads are the values of network.egress[].workloads.
var EgressWorkloads = []string{EgressIngestion, EgressTransformation, EgressCheckpoint, EgressInference, EgressFetch, EgressEndpointPicker}

// EgressFor is every rule that names workload.
func (n Network) EgressFor(workload string) []EgressRule {
	var out []EgressRule
	for _, e := range n.Egress {
		if slices.Contains(e.Workloads, workload) {
			out = append(out, e)
		}
	}
	return out
}

// DNS locates the cluster DNS pods for the DNS egress allow.
type DNS struct {
	// Namespace of the DNS pods (default kube-system).
	Namespace string `json:"namespace"`
	// PodLabels of the DNS pods (default k8s-app: kube-dns).
	PodLabels map[string]string `json:"podLabels"`
}

// GPUPool describes the GPU node pool; every field of placement comes from here
// so that GKE, EKS, AKS and Karpenter pools all fit.
type GPUPool struct {
	// NodeLabelKey selects the pool's nodes (required), for example
	// "cloud.google.com/gke-accelerator" or "karpenter.k8s.aws/instance-gpu-name".
	NodeLabelKey string `json:"nodeLabelKey"`
	// NodeLabelValue is the label's value on the pool's nodes (required).
	NodeLabelValue string `json:"nodeLabelValue"`
	// TaintKey is the key of the taint that keeps other pods off the pool (default nvidia.com/gpu).
	TaintKey string `json:"taintKey"`
	// TaintEffect is the taint's effect: NoSchedule (default), PreferNoSchedule or NoExecute.
	TaintEffect string `json:"taintEffect"`
	// ResourceName is the extended resource GPUs are requested as (default nvidia.com/gpu).
	ResourceName string `json:"resourceName"`
	// GPUsPerNode is how many GPUs one node of the pool has (required).
	GPUsPerNode int `json:"gpusPerNode"`
	// SpareCapacity says the pool keeps room for one more inference pod during a
	// rollout. With it rollouts surge (maxSurge 1, maxUnavailable 0); without it
	// they replace in place (maxSurge 0, maxUnavailable 1). Default false.
	SpareCapacity bool `json:"spareCapacity"`
	// Allocation is how inference pods get their GPUs: "devicePlugin"
	// (default: a count of ResourceName, from the device plugin) or "dra"
	// (Dynamic Resource Allocation, resource.k8s.io/v1: a ResourceClaim per
	// pod from a ResourceClaimTemplate per model, allocated by the scheduler).
	Allocation string `json:"allocation"`
	// DRA configures allocation "dra".
	DRA DRA `json:"dra"`
	// MaxNodes is the most nodes the pool can have (its autoscaler's
	// maximum; optional). A multi-node model whose group needs more is
	// refused at preview: it could never start.
	MaxNodes int `json:"maxNodes"`
	// GroupDomainLabel is a node label whose value names an NVLink or
	// network domain, for example "nvidia.com/gpu.clique" (optional). Each
	// group of a multi-node model then runs in one domain, alone, through
	// LeaderWorkerSet's exclusive-topology annotation.
	GroupDomainLabel string `json:"groupDomainLabel"`
}

// Allocation modes of gpuPool.allocation.
const (
	AllocationDevicePlugin = "devicePlugin"
	AllocationDRA          = "dra"
)

// DRA configures GPUs claimed through Dynamic Resource Allocation.
type DRA struct {
	// DeviceClassName is the DeviceClass whole GPUs are claimed from
	// (default gpu.nvidia.com, which the NVIDIA DRA driver creates).
	DeviceClassName string `json:"deviceClassName"`
	// MIGDeviceClassName is the DeviceClass MIG slices are claimed from
	// (default mig.nvidia.com).
	MIGDeviceClassName string `json:"migDeviceClassName"`
	// MatchAttribute, when set, is a device attribute every GPU of one
	// replica must share when gpus > 1 (a claim constraint's matchAttribute),
	// for example resource.kubernetes.io/pcieRoot or the driver's NVLink
	// domain attribute. A fully qualified name: domain/name.
	MatchAttribute string `json:"matchAttribute"`
	// Devices are devices beyond the built-in example inventory
	// (internal/dra.KnownDevices) that a model's selector is checked against
	// at preview: the products of your pool, when the inventory lacks them.
	Devices []DRADevice `json:"devices"`
}

// DRADevice is a device as the DRA driver publishes it, for the preview's check.
type DRADevice struct {
	// ProductName is the attribute productName, for example "NVIDIA H100 80GB HBM3".
	ProductName string `json:"productName"`
	// Memory is the capacity memory, for example 80Gi.
	Memory Quantity `json:"memory"`
	// MIGProfiles are the MIG profiles its slices may have, for example ["1g.10gb"].
	MIGProfiles []string `json:"migProfiles"`
}

// GPUSelector says which devices a model's replica may get, with
// gpuPool.allocation "dra". Every field is optional; together they must
// all hold. The stack turns them into the claim's CEL selectors.
type GPUSelector struct {
	// ProductName is the exact product name the driver publishes, for
	// example "NVIDIA H100 80GB HBM3".
	ProductName string `json:"productName,omitempty"`
	// MinMemory is the least memory one device must have, for example 80Gi.
	MinMemory Quantity `json:"minMemory,omitempty"`
	// MIGProfile claims a MIG slice of this profile (for example "1g.10gb")
	// from gpuPool.dra.migDeviceClassName instead of a whole GPU.
	MIGProfile string `json:"migProfile,omitempty"`
	// CEL is one more selector expression over `device`, as a
	// ResourceClaim's selectors take it; it must compile.
	CEL string `json:"cel,omitempty"`
}

// Serving lists the models to serve; one model is the common case.
type Serving struct {
	// Models each get a Deployment, Service, PDB and HPA (at least one).
	Models []Model `json:"models"`
	// Routing is how requests reach the models' replicas: the stack's
	// default, the gateway and the endpoint picker (key `serving.routing`).
	Routing Routing `json:"routing"`
}

// Routing modes of a model (serving.routing.mode, serving.models[].routing).
const (
	// RoutingService is a ClusterIP Service: kube-proxy picks a replica at
	// random, blind to its queue and its prefix cache.
	RoutingService = "service"
	// RoutingInferencePool routes through the Gateway API Inference
	// Extension: an InferencePool, its endpoint picker and an HTTPRoute on
	// the configured gateway. The Service stays for in-cluster clients.
	RoutingInferencePool = "inferencePool"
)

// RoutingModes are the values of serving.routing.mode and serving.models[].routing.
var RoutingModes = []string{RoutingService, RoutingInferencePool}

// Failure modes of an InferencePool's endpoint picker (InferencePool v1
// spec.endpointPickerRef.failureMode).
const (
	// FailClose: with the picker unreachable the gateway refuses the request.
	FailClose = "FailClose"
	// FailOpen: with the picker unreachable the gateway picks an endpoint
	// itself (if the implementation honours it).
	FailOpen = "FailOpen"
)

// Routing configures the inference-aware routing of models whose mode is
// inferencePool.
type Routing struct {
	// Mode is the default of every model: service (default) or inferencePool.
	Mode string `json:"mode"`
	// Gateway the models' HTTPRoutes attach to (required when a model routes
	// through an inference pool).
	Gateway GatewayRef `json:"gateway"`
	// FailureMode is what the gateway does when the picker does not answer:
	// FailClose (default) or FailOpen.
	FailureMode string `json:"failureMode"`
	// Picker is the endpoint picker each pooled model gets.
	Picker Picker `json:"picker"`
}

// GatewayRef names a Gateway (gateway.networking.k8s.io/v1).
type GatewayRef struct {
	// Name of the Gateway (DNS-1123 subdomain).
	Name string `json:"name"`
	// Namespace of the Gateway (DNS-1123 label); its pods are the data
	// plane the models' policies admit.
	Namespace string `json:"namespace"`
	// SectionName is the listener the routes attach to (optional: all).
	SectionName string `json:"sectionName"`
	// DataPlaneNamespaces are where the gateway's proxies run, whose pods
	// the model's and the picker's policies admit (default: Namespace).
	// Envoy Gateway runs them in envoy-gateway-system, for example.
	DataPlaneNamespaces []string `json:"dataPlaneNamespaces"`
}

// Picker configures the endpoint picker (the Gateway API Inference
// Extension's EPP) of each pooled model.
type Picker struct {
	// Image of the picker (default the upstream v1.5.0 release); prod
	// requires a pinned tag or digest.
	Image string `json:"image"`
	// Scorers weigh the replicas: plugin type => weight, at least one weight
	// above 0 (default the upstream's: queue-scorer 2,
	// kv-cache-utilization-scorer 2, prefix-cache-scorer 3). A map written
	// in the stack file replaces the default whole.
	Scorers map[string]int `json:"scorers"`
	// Resources of the picker's container.
	Resources Resources `json:"resources"`
}

// Model is one served model.
type Model struct {
	// Name of the model; objects are named inference-<name> (DNS-1035 label, required).
	Name string `json:"name"`
	// Image of the model server (required); prod requires a pinned tag or digest.
	Image string `json:"image"`
	// Args passed to the server.
	Args []string `json:"args"`
	// GPUs per replica (default 1); requests equal limits. With Nodes > 1,
	// GPUs per node of a replica: at most gpuPool.gpusPerNode.
	GPUs int `json:"gpus"`
	// Nodes one replica spans (default 1). Above 1 the model is a
	// LeaderWorkerSet (leaderworkerset.x-k8s.io/v1) of Replicas groups, each
	// a leader serving the API and Nodes-1 workers, started, scaled, rolled
	// and restarted as a unit; vLLM's multi-node launch flags are added to
	// Args.
	Nodes int `json:"nodes"`
	// Replicas when autoscaling is off (default 1); with Nodes > 1, groups.
	Replicas int `json:"replicas"`
	// Port serves inference (default 8000).
	Port int `json:"port"`
	// MetricsPort serves Prometheus metrics (default 8000: same as Port, as vLLM does).
	MetricsPort int `json:"metricsPort"`
	// MetricsPath is scraped for metrics (default /metrics).
	MetricsPath string `json:"metricsPath"`
	// ReadinessPath answers only once the model can serve (default /v1/models).
	ReadinessPath string `json:"readinessPath"`
	// LivenessPath is a cheap health check, also used by the startup probe (default /health).
	LivenessPath string `json:"livenessPath"`
	// LivenessPeriodSeconds is the liveness probe's period (default 10).
	LivenessPeriodSeconds int `json:"livenessPeriodSeconds"`
	// ModelLoadBudgetSeconds is how long the model may take to load before the
	// startup probe gives up (default 600). It also sets progressDeadlineSeconds
	// and the Pulumi customTimeouts.
	ModelLoadBudgetSeconds int `json:"modelLoadBudgetSeconds"`
	// ImagePullBudgetSeconds is how long pulling the image may take (default 300);
	// it adds to the rollout deadline, not to the startup probe.
	ImagePullBudgetSeconds int `json:"imagePullBudgetSeconds"`
	// Resources are the container's cpu, memory and ephemeral-storage.
	Resources Resources `json:"resources"`
	// ShmSize sizes /dev/shm, a memory-backed emptyDir (default 1Gi); it counts
	// against the memory limit.
	ShmSize Quantity `json:"shmSize"`
	// Source is where the weights come from and how they are fetched before
	// the server starts (optional: without it the server downloads them
	// itself, at every start, with a warning).
	Source Source `json:"source"`
	// ModelCache is the claim model weights are cached on, kept on destroy.
	ModelCache ModelCache `json:"modelCache"`
	// Autoscaling configures the HPA.
	Autoscaling Autoscaling `json:"autoscaling"`
	// Disruption configures the PodDisruptionBudget.
	Disruption Disruption `json:"disruption"`
	// Drain configures graceful shutdown.
	Drain Drain `json:"drain"`
	// TopologySpread configures spreading across zones and hosts.
	TopologySpread TopologySpread `json:"topologySpread"`
	// Routing overrides serving.routing.mode for this model: service or
	// inferencePool (default: the stack's mode).
	Routing string `json:"routing"`
	// GPUSelector narrows the devices a replica may get, with
	// gpuPool.allocation "dra" (optional).
	GPUSelector GPUSelector `json:"gpuSelector"`
	// Scheduling configures how the model's pods are scheduled.
	Scheduling Scheduling `json:"scheduling"`
}

// Scheduling configures the scheduling of a model's pods.
type Scheduling struct {
	// SchedulerName is the scheduler that places the pods (optional: the
	// default scheduler). With nodes > 1, "volcano" places each group whole
	// or not at all, provided the LeaderWorkerSet controller runs with
	// gangSchedulingManagement.schedulerProvider: volcano (it then creates
	// a Volcano PodGroup of minMember nodes per group; LWS v0.9 knows no
	// other provider). The default scheduler places a group's pods one by
	// one, so a partial group can hold GPUs while the rest stays Pending.
	// Kueue is not a scheduler, and "kueue" is refused.
	SchedulerName string `json:"schedulerName"`
	// QueueName is the Volcano Queue of a model's groups (optional; nodes
	// > 1 and schedulerName "volcano" only): the LeaderWorkerSet's
	// scheduling.volcano.sh/queue-name annotation, which LWS copies onto
	// each PodGroup it creates. Kueue queues are refused: Kueue freezes a
	// queued LeaderWorkerSet's pod templates, and every later change of
	// the model would fail at pulumi up.
	QueueName string `json:"queueName"`
}

// MultiNode says the model's replicas span more than one node.
func (m Model) MultiNode() bool { return m.Nodes > 1 }

// ServedModelNames are the names clients send as the OpenAI "model" field:
// the values of --served-model-name in args (vLLM takes one or more, up to
// the next flag), or none when args do not name one.
func (m Model) ServedModelNames() []string {
	var names []string
	for i, a := range m.Args {
		if v, ok := strings.CutPrefix(a, "--served-model-name="); ok {
			if v != "" {
				names = append(names, v)
			}
			continue
		}
		if a != "--served-model-name" {
			continue
		}
		for _, v := range m.Args[i+1:] {
			if strings.HasPrefix(v, "-") {
				break
			}
			names = append(names, v)
		}
	}
	return names
}

// ServedModelName is the first of ServedModelNames, or "".
func (m Model) ServedModelName() string {
	if names := m.ServedModelNames(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// Source says where a model's weights come from.
type Source struct {
	// URI is hf://<org>/<name> (a Hugging Face Hub repository),
	// s3://<bucket>/<prefix>, claim://<claim>[/<path>] (an existing claim
	// in the namespace that already holds them; nothing is fetched), or
	// oci://<image reference> (an OCI image or artifact holding them, mounted
	// as an image volume; the kubelet pulls it).
	URI string `json:"uri"`
	// Revision pins what is fetched: for hf a commit (40 hex digits; prod
	// requires one) or, outside prod, a branch or tag; for s3 a label of the
	// version under the prefix (required). A new revision is a new fetch.
	Revision string `json:"revision"`
	// Size of the weights, for example "16Gi" (optional): the model cache
	// must hold it.
	Size Quantity `json:"size"`
	// Endpoint of a mirror or private store (optional): HF_ENDPOINT for hf,
	// AWS_ENDPOINT_URL for s3.
	Endpoint string `json:"endpoint"`
	// Fetch is the run that fills the model cache (hf and s3).
	Fetch Fetch `json:"fetch"`
}

// Fetch configures the Job that downloads a model's weights.
type Fetch struct {
	// Image of the downloader (default DefaultFetchImage, KServe's storage
	// initializer); any image with /bin/sh and a downloader will do.
	Image string `json:"image"`
	// Args of the downloader (default, for hf and s3: KServe's
	// initializer-entrypoint $(SOURCE_PINNED_URI) $(MODEL_DIR)).
	Args []string `json:"args"`
	// BudgetSeconds bounds the whole fetch (default 3600): the Job's deadline
	// and what `pulumi up` waits for it.
	BudgetSeconds int `json:"budgetSeconds"`
	// BackoffLimit is how many failed fetch pods are retried (default 3).
	BackoffLimit int `json:"backoffLimit"`
	// Resources of the downloader (default requests 1 cpu, 2Gi memory, 1Gi
	// ephemeral storage; limits equal to requests).
	Resources Resources `json:"resources"`
}

// Source schemes.
const (
	SourceHub   = "hf"
	SourceS3    = "s3"
	SourceClaim = "claim"
	SourceImage = "oci"
)

// Scheme is the source's scheme ("hf", "s3", "claim"), "" without a source.
func (s Source) Scheme() string {
	scheme, _, _ := strings.Cut(s.URI, "://")
	return scheme
}

// Path is the source's URI without its scheme.
func (s Source) Path() string {
	_, path, _ := strings.Cut(s.URI, "://")
	return path
}

// Cached says the weights live in the model's cache claim (fetched there,
// or downloaded by the server itself without a source).
func (s Source) Cached() bool {
	return s.Scheme() != SourceClaim && s.Scheme() != SourceImage
}

// Fetched says the weights are downloaded by a fetch run.
func (s Source) Fetched() bool {
	return s.Scheme() == SourceHub || s.Scheme() == SourceS3
}

// ModelCache is a model's cache claim.
type ModelCache struct {
	// Size of the claim (default 50Gi).
	Size Quantity `json:"size"`
	// StorageClass of the claim (default: the cluster's default class).
	StorageClass string `json:"storageClass"`
	// AccessMode is ReadWriteOnce (default), ReadWriteMany or ReadOnlyMany; more
	// than one replica needs a Many mode.
	AccessMode string `json:"accessMode"`
	// MountPath in the container (default /models).
	MountPath string `json:"mountPath"`
}

// Autoscaling configures an autoscaling/v2 HPA.
type Autoscaling struct {
	// Enabled turns the HPA on; the Deployment then leaves replicas to it (default false).
	Enabled bool `json:"enabled"`
	// MinReplicas (default 1; 0 only with driver keda).
	MinReplicas int `json:"minReplicas"`
	// MaxReplicas (required when enabled).
	MaxReplicas int `json:"maxReplicas"`
	// Metric is "cpu" (default) or "pods" (a per-pod custom metric such as queue depth).
	Metric string `json:"metric"`
	// Driver is how the signal reaches the autoscaler: "hpa" (default: an HPA
	// of the stack, a Pods metric from the cluster's custom-metrics adapter) or
	// "keda" (a KEDA ScaledObject reading Prometheus; it owns the HPA and may
	// hold the model at zero).
	Driver string `json:"driver"`
	// PrometheusAddress is where KEDA queries Prometheus (driver keda).
	PrometheusAddress string `json:"prometheusAddress"`
	// Query replaces the KEDA trigger's query (default: the sum of Series over
	// the model's pods). Scale-from-zero needs one that exists with no server
	// running, such as the gateway's queue.
	Query string `json:"query"`
	// MetricName of the Pods metric, for example "vllm_num_requests_waiting":
	// the name the custom metrics API serves it under.
	MetricName string `json:"metricName"`
	// Series is the Prometheus series the adapter serves as MetricName (default:
	// MetricName). vLLM exports "vllm:num_requests_waiting".
	Series string `json:"series"`
	// TargetAverageValue of the Pods metric per pod, for example "5".
	TargetAverageValue Quantity `json:"targetAverageValue"`
	// TargetCPUUtilization in percent of the request for the cpu metric (default 70).
	TargetCPUUtilization int `json:"targetCPUUtilization"`
	// ScaleUpStabilizationSeconds (default 0: scale up at once).
	ScaleUpStabilizationSeconds int `json:"scaleUpStabilizationSeconds"`
	// ScaleDownStabilizationSeconds (default 300: scale down slowly).
	ScaleDownStabilizationSeconds int `json:"scaleDownStabilizationSeconds"`
}

// SeriesName is the Prometheus series of the Pods metric: Series, or the
// metric's own name.
func (a Autoscaling) SeriesName() string {
	if a.Series != "" {
		return a.Series
	}
	return a.MetricName
}

// Disruption configures a policy/v1 PodDisruptionBudget.
type Disruption struct {
	// MaxUnavailable is a count ("1", default) or a percentage ("25%"); never 0.
	MaxUnavailable IntOrPercent `json:"maxUnavailable"`
}

// Drain configures graceful shutdown: terminationGracePeriodSeconds is
// PreStopSleepSeconds + DrainSeconds.
type Drain struct {
	// PreStopSleepSeconds keeps the pod serving while endpoints stop routing to it (default 10).
	PreStopSleepSeconds int `json:"preStopSleepSeconds"`
	// DrainSeconds lets in-flight requests finish after SIGTERM (default 60).
	DrainSeconds int `json:"drainSeconds"`
}

// TopologySpread says what to do when pods cannot be spread evenly:
// "ScheduleAnyway" (default), "DoNotSchedule" or "None" (no constraint).
type TopologySpread struct {
	// Zone spreads across topology.kubernetes.io/zone.
	Zone string `json:"zone"`
	// Host spreads across kubernetes.io/hostname.
	Host string `json:"host"`
}

// Resources are a container's requests and limits. A limit left out equals its request.
type Resources struct {
	// Requests (cpu, memory, ephemeralStorage; all required).
	Requests ResourceList `json:"requests"`
	// Limits (default: equal to requests).
	Limits ResourceList `json:"limits"`
}

// ResourceList is cpu, memory and ephemeral storage.
type ResourceList struct {
	// CPU, for example "500m" or 4.
	CPU Quantity `json:"cpu"`
	// Memory, for example "16Gi".
	Memory Quantity `json:"memory"`
	// EphemeralStorage, for example "10Gi".
	EphemeralStorage Quantity `json:"ephemeralStorage"`
}

// Pipeline holds the data stages and the storage they share.
type Pipeline struct {
	// Storage is the shared claim for intermediate data, kept on destroy.
	Storage Storage `json:"storage"`
	// MountPath of the shared claim in every stage (default /data).
	MountPath string `json:"mountPath"`
	// Ingestion is the ingestion Job; the CronJob runs the same container.
	Ingestion Ingestion `json:"ingestion"`
	// Transformation is the transformation Deployment.
	Transformation Transformation `json:"transformation"`
}

// Storage is a claim's class, size and access mode.
type Storage struct {
	// Size of the claim (required).
	Size Quantity `json:"size"`
	// StorageClass (default: the cluster's default class).
	StorageClass string `json:"storageClass"`
	// AccessMode: ReadWriteOnce, ReadWriteMany or ReadOnlyMany (default depends on the use).
	AccessMode string `json:"accessMode"`
}

// Ingestion configures the ingestion Job.
type Ingestion struct {
	// Image of the ingestion program (required).
	Image string `json:"image"`
	// Args passed to it.
	Args []string `json:"args"`
	// Resources of its container.
	Resources Resources `json:"resources"`
	// BackoffLimit is how many failed pods are retried (default 3).
	BackoffLimit int `json:"backoffLimit"`
	// ActiveDeadlineSeconds bounds the whole Job (default 86400).
	ActiveDeadlineSeconds int `json:"activeDeadlineSeconds"`
	// FailFastExitCodes fail the Job at once, without retries (for example bad input: 2).
	FailFastExitCodes []int `json:"failFastExitCodes"`
	// Indexed runs sharded ingestion: each pod gets JOB_COMPLETION_INDEX (default false).
	Indexed bool `json:"indexed"`
	// Completions is the number of shards (default 1).
	Completions int `json:"completions"`
	// Parallelism is how many shards run at once (default 1).
	Parallelism int `json:"parallelism"`
	// Rerun runs ingestion again with the same inputs when raised (default
	// 0): after a run failed for a reason outside the stack file (a source
	// down, a credential not yet granted), or to ingest changed source data.
	// The first run's Job is named by its spec and this number is part of it,
	// so each new value is a new run; 0 adds nothing to the spec.
	Rerun int `json:"rerun"`
}

// Transformation configures the transformation Deployment.
type Transformation struct {
	// Image of the transformation service (required).
	Image string `json:"image"`
	// Args passed to it.
	Args []string `json:"args"`
	// Replicas when autoscaling is off (default 1).
	Replicas int `json:"replicas"`
	// Resources of its container.
	Resources Resources `json:"resources"`
	// Port it listens on (default 8080).
	Port int `json:"port"`
	// LivenessPath (default /healthz).
	LivenessPath string `json:"livenessPath"`
	// ReadinessPath (default /readyz).
	ReadinessPath string `json:"readinessPath"`
	// StartupBudgetSeconds is how long it may take to start before the
	// startup probe gives up (default 300); with ImagePullBudgetSeconds
	// (default 300) it sets the rollout's deadline and the Pulumi timeouts.
	StartupBudgetSeconds   int `json:"startupBudgetSeconds"`
	ImagePullBudgetSeconds int `json:"imagePullBudgetSeconds"`
	// Autoscaling configures its HPA (cpu metric).
	Autoscaling Autoscaling `json:"autoscaling"`
	// Disruption configures its PDB.
	Disruption Disruption `json:"disruption"`
}

// Checkpoint configures the checkpoint StatefulSet.
type Checkpoint struct {
	// Image of the checkpoint store (required).
	Image string `json:"image"`
	// Args passed to it.
	Args []string `json:"args"`
	// Replicas (default 1).
	Replicas int `json:"replicas"`
	// Resources of its container.
	Resources Resources `json:"resources"`
	// Port it listens on (default 8080).
	Port int `json:"port"`
	// LivenessPath (default /healthz).
	LivenessPath string `json:"livenessPath"`
	// ReadinessPath (default /readyz).
	ReadinessPath string `json:"readinessPath"`
	// StartupBudgetSeconds is how long it may take to start before the
	// startup probe gives up (default 300); with ImagePullBudgetSeconds
	// (default 300) it sets the Pulumi timeouts.
	StartupBudgetSeconds   int `json:"startupBudgetSeconds"`
	ImagePullBudgetSeconds int `json:"imagePullBudgetSeconds"`
	// MountPath of the checkpoint volume (default /checkpoints).
	MountPath string `json:"mountPath"`
	// Storage of each replica's claim (access mode default ReadWriteOnce).
	Storage Storage `json:"storage"`
	// Disruption configures its PDB.
	Disruption Disruption `json:"disruption"`
}

// Monitoring configures the PodMonitors and the PrometheusRule.
type Monitoring struct {
	// Enabled creates them (default: true in prod, false elsewhere); the
	// cluster needs the prometheus-operator CRDs.
	Enabled bool `json:"enabled"`
	// Labels the cluster's Prometheus selects monitors and rules by, for
	// example {"release": "kube-prometheus-stack"}.
	Labels map[string]string `json:"labels"`
	// Interval between scrapes (default 30s).
	Interval string `json:"interval"`
}

// Cron configures the CronJob that runs the pipeline's ingestion on a schedule.
type Cron struct {
	// Schedule in cron syntax, 5 fields or a descriptor such as @daily (required).
	Schedule string `json:"schedule"`
	// TimeZone of the schedule, an IANA name (default Etc/UTC).
	TimeZone string `json:"timeZone"`
	// Suspend stops scheduling (default false).
	Suspend bool `json:"suspend"`
	// StartingDeadlineSeconds is how late a missed run may still start (default 300).
	StartingDeadlineSeconds int `json:"startingDeadlineSeconds"`
	// SuccessfulJobsHistoryLimit (default 3).
	SuccessfulJobsHistoryLimit int `json:"successfulJobsHistoryLimit"`
	// FailedJobsHistoryLimit (default 3).
	FailedJobsHistoryLimit int `json:"failedJobsHistoryLimit"`
	// BackoffLimit of each run (default 2).
	BackoffLimit int `json:"backoffLimit"`
	// ActiveDeadlineSeconds of each run (default 21600).
	ActiveDeadlineSeconds int `json:"activeDeadlineSeconds"`
	// TTLSecondsAfterFinished of each run (default 86400).
	TTLSecondsAfterFinished int `json:"ttlSecondsAfterFinished"`
}
