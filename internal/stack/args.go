package stack

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/checkpoint"
	"llm-platform/cron"
	"llm-platform/internal/availability"
	"llm-platform/internal/config"
	"llm-platform/internal/group"
	"llm-platform/internal/intent"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/rollout"
	"llm-platform/internal/run"
	"llm-platform/internal/workload"
	"llm-platform/monitoring"
	"llm-platform/pipeline"
	"llm-platform/platform"
	"llm-platform/routing"
	"llm-platform/serving"
)

// This file is the one place where validated configuration becomes the
// components' Args. Components never see a config type; what they get from
// other resources (the namespace, ServiceAccounts, Secrets) is filled in by
// Build once the platform exists.

func platformArgs(cfg config.Config, secrets config.Secrets, cluster config.Cluster, workloads []intent.Workload) platform.Args {
	ns := cfg.Namespace
	return platform.Args{
		Namespace: ns.Name,
		Quota: platform.Quota{
			CPU: string(ns.Quota.CPU), Memory: string(ns.Quota.Memory), Storage: string(ns.Quota.Storage),
			GPUs: ns.Quota.GPUs, Pods: ns.Quota.Pods, GPUResourceName: cfg.GPUPool.ResourceName,
			DeviceClasses: deviceClasses(cfg),
		},
		DefaultRequest:      resourceList(ns.LimitRange.DefaultRequest),
		DefaultLimit:        resourceList(ns.LimitRange.Default),
		DNS:                 platform.DNS{Namespace: ns.Network.DNS.Namespace, PodLabels: ns.Network.DNS.PodLabels},
		Workloads:           workloads,
		ModelRegistryToken:  secrets.ModelRegistryToken,
		RegistryCredentials: secrets.RegistryCredentials,
		Cluster:             platform.Cluster{Kubeconfig: cluster.Kubeconfig, Context: cluster.Context, Cluster: cluster.Cluster, Identifier: cluster.UID},
	}
}

// clients may reach a model's port: the configured clients and, for a
// pooled model, the gateway's data plane.
func clients(cfg config.Config, m config.Model) intent.Peers {
	c := cfg.Namespace.Network.InferenceClients
	peers := intent.Peers{Namespaces: slices.Clone(c.Namespaces), PodLabels: c.PodLabels}
	if m.Routing == config.RoutingInferencePool {
		for _, ns := range gatewayDataPlane(cfg.Serving.Routing.Gateway) {
			if !slices.Contains(peers.Namespaces, ns) {
				peers.Namespaces = append(peers.Namespaces, ns)
			}
		}
	}
	return peers
}

// gatewayDataPlane are the namespaces the gateway's proxies run in: those
// configured, else the Gateway's own.
func gatewayDataPlane(g config.GatewayRef) []string {
	if len(g.DataPlaneNamespaces) > 0 {
		return g.DataPlaneNamespaces
	}
	return []string{g.Namespace}
}

// deviceClasses are the DRA device classes the models claim from, in the
// order of the models; none with the device plugin.
func deviceClasses(cfg config.Config) []string {
	var out []string
	for _, m := range cfg.Serving.Models {
		if c := gpuClaim(cfg, m); c != nil && !slices.Contains(out, c.DeviceClassName) {
			out = append(out, c.DeviceClassName)
		}
	}
	return out
}

// gpuClaim is the model's DRA claim, nil with the device plugin.
func gpuClaim(cfg config.Config, m config.Model) *serving.GPUClaim {
	pool := cfg.GPUPool
	if pool.Allocation != config.AllocationDRA {
		return nil
	}
	sel := m.DRASelector()
	return &serving.GPUClaim{
		DeviceClassName: sel.Class(pool.DRA.DeviceClassName, pool.DRA.MIGDeviceClassName),
		Selectors:       sel.Expressions(),
		MatchAttribute:  pool.DRA.MatchAttribute,
	}
}

func modelArgs(cfg config.Config, m config.Model) serving.Args {
	nw := cfg.Namespace.Network
	pool := cfg.GPUPool
	return serving.Args{
		Model: m.Name, Image: m.Image, Args: m.Args, GPUs: m.GPUs, GPUClaim: gpuClaim(cfg, m),
		Pool: serving.GPUPool{
			NodeLabelKey: pool.NodeLabelKey, NodeLabelValue: pool.NodeLabelValue,
			TaintKey: pool.TaintKey, TaintEffect: pool.TaintEffect,
			ResourceName: pool.ResourceName, SpareCapacity: pool.SpareCapacity,
		},
		Resources: resources(m.Resources), ShmSize: string(m.ShmSize),
		Port: m.Port, MetricsPort: m.MetricsPort, MetricsPath: m.MetricsPath,
		Probes: workload.Probes{
			StartupPath: m.LivenessPath, ReadinessPath: m.ReadinessPath, LivenessPath: m.LivenessPath,
			PeriodSeconds: m.LivenessPeriodSeconds, ReadinessPeriodSeconds: serving.ReadinessPeriodSeconds,
		},
		Budgets: workload.Budgets{
			StartupSeconds: m.ModelLoadBudgetSeconds, ImagePullSeconds: m.ImagePullBudgetSeconds,
			PreStopSleepSeconds: m.Drain.PreStopSleepSeconds, DrainSeconds: m.Drain.DrainSeconds,
		},
		Replicas:         m.Replicas,
		Autoscaling:      autoscaling(m.Autoscaling),
		MaxUnavailable:   maxUnavailable(m),
		Nodes:            m.Nodes,
		SchedulerName:    m.Scheduling.SchedulerName,
		QueueName:        m.Scheduling.QueueName,
		GroupDomainLabel: pool.GroupDomainLabel,
		Spread:           serving.Spread{Zone: spread(m.TopologySpread.Zone), Host: spread(m.TopologySpread.Host)},
		Cache:            podspec.Claim{Size: string(m.ModelCache.Size), StorageClass: m.ModelCache.StorageClass, AccessMode: m.ModelCache.AccessMode},
		CacheClaimName:   names.ModelCache(m.Name, m.ModelCache.StorageClass, m.ModelCache.AccessMode),
		CacheMountPath:   m.ModelCache.MountPath,
		ClusterDomain:    cfg.ClusterDomain,
		Clients:          clients(cfg, m),
		Scrapers:         nw.MetricsScrapers,
		Egress:           egress(nw, config.EgressInference),
		Source:           source(nw, m.Source),
		Picker:           picker(m),
	}
}

// maxUnavailable is a model's disruption budget: as written, or for a
// multi-node model the groups' budget in pods (group.MaxUnavailablePods),
// of the fewest groups it runs.
func maxUnavailable(m config.Model) string {
	written := string(m.Disruption.MaxUnavailable)
	if !m.MultiNode() {
		return written
	}
	groups := m.Replicas
	if m.Autoscaling.Enabled {
		groups = m.Autoscaling.MinReplicas
	}
	pods, err := group.MaxUnavailablePods(written, groups)
	if err != nil {
		// Validated config never gets here; the budget builder refuses it.
		return written
	}
	return strconv.Itoa(pods)
}

// picker selects a pooled model's endpoint picker pods; nil for others.
func picker(m config.Model) map[string]string {
	if m.Routing != config.RoutingInferencePool {
		return nil
	}
	return routing.PickerWorkload(m.Name).Selector()
}

// routingArgs is a pooled model's routing; ok is false for a model the
// Service alone serves.
func routingArgs(cfg config.Config, m config.Model) (a routing.Args, ok bool) {
	if m.Routing != config.RoutingInferencePool {
		return routing.Args{}, false
	}
	r := cfg.Serving.Routing
	var scorers []routing.Scorer
	for _, t := range slices.Sorted(maps.Keys(r.Picker.Scorers)) {
		scorers = append(scorers, routing.Scorer{Type: t, Weight: r.Picker.Scorers[t]})
	}
	return routing.Args{
		Model: m.Name, ServedModelNames: m.ServedModelNames(),
		Pods:       serving.Workload(m.Name).Selector(),
		TargetPort: m.Port, MetricsPort: m.MetricsPort, MetricsPath: m.MetricsPath,
		FailureMode: r.FailureMode,
		Gateway: routing.Gateway{
			Name: r.Gateway.Name, Namespace: r.Gateway.Namespace, SectionName: r.Gateway.SectionName,
			DataPlane: gatewayDataPlane(r.Gateway),
		},
		Picker: routing.Picker{
			Image: r.Picker.Image, Scorers: scorers, Resources: resources(r.Picker.Resources),
		},
		Scrapers: cfg.Namespace.Network.MetricsScrapers,
		Egress:   egress(cfg.Namespace.Network, config.EgressEndpointPicker),
	}, true
}

// source is where a model's weights come from; nil without a source.
func source(nw config.Network, s config.Source) *serving.Source {
	switch s.Scheme() {
	case "":
		return nil
	case config.SourceClaim:
		claim, path, _ := strings.Cut(s.Path(), "/")
		return &serving.Source{Claim: claim, Path: path}
	case config.SourceImage:
		return &serving.Source{Image: s.Path()}
	}
	f := s.Fetch
	return &serving.Source{
		Scheme: s.Scheme(), URI: s.URI, Repo: s.Path(), Revision: s.Revision, Endpoint: s.Endpoint,
		Fetch: serving.Fetch{
			Image: f.Image, Args: f.Args, BudgetSeconds: f.BudgetSeconds, BackoffLimit: f.BackoffLimit,
			Resources: resources(f.Resources),
			Egress:    egress(nw, config.EgressFetch),
		},
	}
}

// ModelTimings are the probe thresholds, deadlines and timeouts a model's
// Deployment gets, derived as serving derives them.
func ModelTimings(cfg config.Config, m config.Model) (rollout.Timings, error) {
	a := modelArgs(cfg, m)
	return a.Budgets.Plan(a.Probes, a.Autoscaling.MaxReplicasOf(a.Replicas))
}

func pipelineArgs(cfg config.Config) pipeline.Args {
	p, t, nw := cfg.Pipeline, cfg.Pipeline.Transformation, cfg.Namespace.Network
	in := p.Ingestion
	return pipeline.Args{
		Data:            storage(p.Storage),
		DataClaimName:   names.PipelineData(p.Storage.StorageClass, p.Storage.AccessMode),
		MountPath:       p.MountPath,
		Ingestion:       runDefinition(p),
		IngestionLimits: run.Limits{BackoffLimit: in.BackoffLimit, ActiveDeadlineSeconds: in.ActiveDeadlineSeconds, Rerun: in.Rerun},
		IngestionEgress: egress(nw, config.EgressIngestion),
		Transformation: pipeline.Transformation{
			Image: t.Image, Args: t.Args, Resources: resources(t.Resources),
			Port: t.Port, Scrapers: nw.MetricsScrapers,
			Probes:         stageProbes(t.LivenessPath, t.ReadinessPath, config.TransformationProbePeriodSeconds, 10),
			Budgets:        workload.Budgets{StartupSeconds: t.StartupBudgetSeconds, ImagePullSeconds: t.ImagePullBudgetSeconds},
			Replicas:       t.Replicas,
			Autoscaling:    autoscaling(t.Autoscaling),
			MaxUnavailable: string(t.Disruption.MaxUnavailable),
			Egress:         egress(nw, config.EgressTransformation),
		},
	}
}

// runDefinition is what every ingestion run does, the first and the
// scheduled ones; the claim is filled in where it exists.
func runDefinition(p config.Pipeline) run.Definition {
	in := p.Ingestion
	return run.Definition{
		Image: in.Image, Args: in.Args, Resources: resources(in.Resources),
		Indexed: in.Indexed, Completions: in.Completions, Parallelism: in.Parallelism,
		FailFastExitCodes: in.FailFastExitCodes, MountPath: p.MountPath,
	}
}

func checkpointArgs(cfg config.Config) checkpoint.Args {
	cp := cfg.Checkpoint
	return checkpoint.Args{
		Image: cp.Image, Args: cp.Args, Replicas: cp.Replicas,
		Storage: storage(cp.Storage), MountPath: cp.MountPath,
		Resources: resources(cp.Resources),
		Port:      cp.Port, Scrapers: cfg.Namespace.Network.MetricsScrapers,
		Probes:         stageProbes(cp.LivenessPath, cp.ReadinessPath, config.CheckpointProbePeriodSeconds, 10),
		Budgets:        workload.Budgets{StartupSeconds: cp.StartupBudgetSeconds, ImagePullSeconds: cp.ImagePullBudgetSeconds},
		MaxUnavailable: string(cp.Disruption.MaxUnavailable),
		Egress:         egress(cfg.Namespace.Network, config.EgressCheckpoint),
	}
}

func cronArgs(cfg config.Config) cron.Args {
	c := cfg.Cron
	return cron.Args{
		Schedule: c.Schedule, TimeZone: c.TimeZone, Suspend: c.Suspend,
		StartingDeadlineSeconds:    c.StartingDeadlineSeconds,
		SuccessfulJobsHistoryLimit: c.SuccessfulJobsHistoryLimit,
		FailedJobsHistoryLimit:     c.FailedJobsHistoryLimit,
		Run:                        runDefinition(cfg.Pipeline),
		Limits: run.Limits{
			BackoffLimit: c.BackoffLimit, ActiveDeadlineSeconds: c.ActiveDeadlineSeconds,
			TTLSecondsAfterFinished: pulumi.IntRef(c.TTLSecondsAfterFinished),
		},
		// The schedule's runs are ingestion runs: they reach what it reaches.
		Egress: egress(cfg.Namespace.Network, config.EgressIngestion),
	}
}

// monitoringArgs says what to scrape and what to alert on.
func monitoringArgs(cfg config.Config, s *Stack) monitoring.Args {
	args := monitoring.Args{
		Namespace:                 cfg.Namespace.Name,
		Labels:                    cfg.Monitoring.Labels,
		Interval:                  cfg.Monitoring.Interval,
		InferenceDeploymentPrefix: names.Inference(""),
		CronJob:                   names.Cron,
		// The controller gives up on a run this late; a minute more is a miss.
		MissedAfterSeconds: cfg.Cron.StartingDeadlineSeconds + 60,
		ClaimPattern:       names.CheckpointClaim + "-.+|" + names.ModelCachePrefix + "-.+",
		Targets: []monitoring.Target{
			{Workload: s.Pipeline.TransformationWorkload, Port: "http", Path: "/metrics"},
			{Workload: s.Checkpoint.Workload, Port: "http", Path: "/metrics"},
		},
	}
	for _, r := range s.Routes {
		args.Targets = append(args.Targets, monitoring.Target{Workload: r.PickerWorkload, Port: "metrics", Path: "/metrics"})
		args.Pickers = append(args.Pickers, r.Picker)
	}
	for i, m := range cfg.Serving.Models {
		args.Targets = append(args.Targets, monitoring.Target{Workload: s.Models[i].Workload, Port: s.Models[i].MetricsPort, Path: m.MetricsPath})
		if m.MultiNode() {
			args.Groups = append(args.Groups, names.Inference(m.Name))
		}
		if a := m.Autoscaling; a.Enabled && a.Metric == config.MetricPods {
			args.Queues = append(args.Queues, monitoring.QueueSignal{Model: m.Name, Deployment: names.Inference(m.Name), Series: a.SeriesName(), Target: string(a.TargetAverageValue)})
		}
	}
	return args
}

func stageProbes(liveness, readiness string, period, readinessPeriod int) workload.Probes {
	return workload.Probes{
		StartupPath: liveness, ReadinessPath: readiness, LivenessPath: liveness,
		PeriodSeconds: period, ReadinessPeriodSeconds: readinessPeriod,
	}
}

func autoscaling(a config.Autoscaling) availability.Autoscaling {
	return availability.Autoscaling{
		Enabled: a.Enabled, MinReplicas: a.MinReplicas, MaxReplicas: a.MaxReplicas,
		Metric: a.Metric, Driver: a.Driver,
		MetricName: a.MetricName, Series: a.SeriesName(), TargetAverageValue: string(a.TargetAverageValue),
		TargetCPUUtilization: a.TargetCPUUtilization,
		PrometheusAddress:    a.PrometheusAddress, Query: a.Query,
		ScaleUpStabilizationSeconds:   a.ScaleUpStabilizationSeconds,
		ScaleDownStabilizationSeconds: a.ScaleDownStabilizationSeconds,
	}
}

// egress is every rule of the network that names workload.
func egress(nw config.Network, workload string) []intent.Egress {
	var out []intent.Egress
	for _, e := range nw.EgressFor(workload) {
		out = append(out, intent.Egress{CIDR: e.CIDR, Ports: e.Ports, Description: e.Description})
	}
	return out
}

func spread(when string) string {
	if when == config.SpreadNone {
		return ""
	}
	return when
}

func resources(r config.Resources) podspec.Resources {
	return podspec.Resources{Requests: resourceList(r.Requests), Limits: resourceList(r.Limits)}
}

func resourceList(l config.ResourceList) podspec.ResourceList {
	return podspec.ResourceList{CPU: string(l.CPU), Memory: string(l.Memory), EphemeralStorage: string(l.EphemeralStorage)}
}

func storage(s config.Storage) podspec.Claim {
	return podspec.Claim{Size: string(s.Size), StorageClass: s.StorageClass, AccessMode: s.AccessMode}
}
