package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones validate the same on every machine

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"llm-platform/internal/names"
	"llm-platform/internal/rollout"
)

// Probe periods of the startup and liveness probes of the stages that are
// not models (a model's is its livenessPeriodSeconds).
const (
	TransformationProbePeriodSeconds = 10
	CheckpointProbePeriodSeconds     = 20
)

// startupBudgets checks a stage's startup and image-pull budgets.
func (c *checker) startupBudgets(key string, startup, imagePull, period int) {
	if startup < period {
		c.fail(key+".startupBudgetSeconds", startup, fmt.Sprintf("must be at least the probe period (%d s)", period), "300")
	}
	c.atMostDay(key+".startupBudgetSeconds", startup)
	c.pullBudget(key, imagePull)
}

// pullBudget checks an image-pull budget: 0 to a day, and a written 0 warned
// about, since it leaves a rollout no time to pull onto an uncached node.
func (c *checker) pullBudget(key string, seconds int) {
	k := key + ".imagePullBudgetSeconds"
	c.atLeast(k, seconds, 0)
	c.atMostDay(k, seconds)
	if seconds == 0 && c.wrote(k) {
		c.warn(k, "0: the rollout's deadline and Pulumi's timeouts leave no time to pull the image, so a node without it cached can fail the rollout; 0 is not \"no limit\" (leave the key out for 300)")
	}
}

// Values with a fixed set of choices.
const (
	MetricCPU  = "cpu"
	MetricPods = "pods"

	DriverHPA  = "hpa"
	DriverKEDA = "keda"

	SpreadScheduleAnyway = "ScheduleAnyway"
	SpreadDoNotSchedule  = "DoNotSchedule"
	SpreadNone           = "None"

	AccessReadWriteOnce = "ReadWriteOnce"
	AccessReadWriteMany = "ReadWriteMany"
	AccessReadOnlyMany  = "ReadOnlyMany"
)

// checker collects every problem and warning of one validation pass.
type checker struct {
	// prod turns written intent that would not run into an error.
	prod bool
	// decodeErrs are the values refused while decoding: what follows from
	// them (the zero they left) is not refused again.
	decodeErrs []error
	errs       []error
	warnings   []string
	// written holds the keys the stack file set (see decoder.written).
	written map[string]bool
}

// wrote reports whether the stack file set key, rather than a default.
func (c *checker) wrote(key string) bool { return c.written[key] }

func (c *checker) fail(key string, value any, rule, example string) {
	for _, err := range c.decodeErrs {
		if fe, ok := err.(*FieldError); ok && fe.Key == key {
			// The value was refused as written; the zero it left is not
			// the user's, and is not refused again.
			return
		}
	}
	if strings.HasPrefix(rule, "required") && !c.wrote(key) && (value == "" || value == 0) {
		// A key nobody wrote is missing, not an invalid zero.
		value = nil
	} else if hint, def := c.noLimitHint(key, value); hint != "" && !strings.Contains(rule, "left out") {
		rule += "; " + hint
		if def != "" {
			example = def
		}
	}
	c.errs = append(c.errs, &FieldError{Key: key, Value: value, Rule: rule, Example: example})
}

// failed reports whether key already has a problem: a value refused once is
// not refused again for what follows from it.
func (c *checker) failed(key string) bool {
	for _, err := range c.errs {
		if fe, ok := err.(*FieldError); ok && fe.Key == key {
			return true
		}
	}
	return false
}

// warn records a value that is valid but probably not what was meant, in the
// form `llm-platform:<key>: <what it does>`.
func (c *checker) warn(key, format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf("%s:%s: %s", Project, key, fmt.Sprintf(format, args...)))
}

func validate(cfg *Config, written map[string]bool, decodeErrs []error) (warnings []string, errs []error) {
	prod := cfg.Environment == EnvProd
	c := &checker{written: written, prod: prod, decodeErrs: decodeErrs}
	switch cfg.Environment {
	case EnvDev, EnvStaging, EnvProd:
	default:
		c.fail("environment", cfg.Environment, "must be one of dev, staging, prod", `"dev"`)
	}
	c.namespace("namespace", cfg.Namespace)
	c.gpuPool("gpuPool", cfg.GPUPool)
	c.serving("serving", cfg.Serving, cfg.GPUPool, prod)
	c.routing(cfg, prod)
	c.pipeline("pipeline", cfg.Pipeline, prod)
	c.checkpoint("checkpoint", cfg.Checkpoint, prod)
	c.cron("cron", cfg.Cron)
	c.labels("monitoring.labels", cfg.Monitoring.Labels)
	if !promDuration.MatchString(cfg.Monitoring.Interval) {
		c.fail("monitoring.interval", cfg.Monitoring.Interval, "must be a Prometheus duration such as 30s or 1m", `"30s"`)
	}
	if errs := validation.IsDNS1123Subdomain(cfg.ClusterDomain); len(errs) > 0 {
		c.fail("clusterDomain", cfg.ClusterDomain, "must be a DNS domain such as cluster.local: "+strings.Join(errs, "; "), `"cluster.local"`)
	}
	if cfg.AcceptCluster != "" && !kubernetesUID.MatchString(cfg.AcceptCluster) {
		c.fail("acceptCluster", cfg.AcceptCluster, "must be the UID of the cluster's kube-system namespace, as `kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'` prints it", `"0b9e5a1c-3f4d-4e2a-9c61-7d2f8e4b5a10"`)
	}
	c.secretsInArgs(cfg)
	c.replicasFitNamespace(cfg)
	for i, m := range cfg.Serving.Models {
		c.modelRolloutFits(fmt.Sprintf("serving.models[%d]", i), m)
	}
	t := cfg.Pipeline.Transformation
	c.rolloutFits(rollout.Budgets{
		ModelLoadSeconds: t.StartupBudgetSeconds, ImagePullSeconds: t.ImagePullBudgetSeconds,
		ProbePeriodSeconds: TransformationProbePeriodSeconds, MaxReplicas: MaxReplicas(t.Replicas, t.Autoscaling),
	}, map[string]keyed{
		"ModelLoadSeconds": {"pipeline.transformation.startupBudgetSeconds", t.StartupBudgetSeconds},
		"MaxReplicas":      {replicasKey("pipeline.transformation", t.Autoscaling), MaxReplicas(t.Replicas, t.Autoscaling)},
	})
	cp := cfg.Checkpoint
	c.rolloutFits(rollout.Budgets{
		ModelLoadSeconds: cp.StartupBudgetSeconds, ImagePullSeconds: cp.ImagePullBudgetSeconds,
		ProbePeriodSeconds: CheckpointProbePeriodSeconds, MaxReplicas: cp.Replicas,
	}, map[string]keyed{
		"ModelLoadSeconds": {"checkpoint.startupBudgetSeconds", cp.StartupBudgetSeconds},
		"MaxReplicas":      {"checkpoint.replicas", cp.Replicas},
	})
	if len(c.errs) == 0 {
		// Only a stack whose parts are each valid can be summed against its quota.
		c.quotaFits(cfg)
	} else if c.onlyFailedAt("namespace.quota.gpus", "namespace.quota.pods") {
		// A refused count (negative, zero) is best answered with what the
		// stack needs, not with the least the key allows.
		d := StackDemand(cfg)
		c.setExample("namespace.quota.gpus", strconv.Itoa(d.GPUs))
		c.setExample("namespace.quota.pods", strconv.Itoa(d.Pods))
	}
	return c.warnings, c.errs
}

// onlyFailedAt reports whether every problem found is at one of keys.
func (c *checker) onlyFailedAt(keys ...string) bool {
	for _, err := range c.errs {
		if fe, ok := err.(*FieldError); !ok || !slices.Contains(keys, fe.Key) {
			return false
		}
	}
	return len(c.decodeErrs) == 0
}

// setExample replaces the example of the problem at key, if any.
func (c *checker) setExample(key, example string) {
	for _, err := range c.errs {
		if fe, ok := err.(*FieldError); ok && fe.Key == key {
			fe.Example = example
		}
	}
}

func (c *checker) namespace(key string, ns Namespace) {
	c.namespaceName(key+".name", ns.Name)
	c.cpu(key+".quota.cpu", ns.Quota.CPU, `"64"`)
	c.bytes(key+".quota.memory", ns.Quota.Memory, `"512Gi"`)
	c.bytes(key+".quota.storage", ns.Quota.Storage, `"2Ti"`)
	c.atLeast(key+".quota.gpus", ns.Quota.GPUs, 0)
	c.atLeast(key+".quota.pods", ns.Quota.Pods, 1)
	c.resourceList(key+".limitRange.defaultRequest", ns.LimitRange.DefaultRequest)
	c.resourceList(key+".limitRange.default", ns.LimitRange.Default)
	c.notAbove(key+".limitRange.defaultRequest", ns.LimitRange.DefaultRequest, ns.LimitRange.Default, key+".limitRange.default")

	nw := ns.Network
	for i, n := range nw.InferenceClients.Namespaces {
		c.dns1123Label(fmt.Sprintf("%s.network.inferenceClients.namespaces[%d]", key, i), n)
	}
	c.labels(key+".network.inferenceClients.podLabels", nw.InferenceClients.PodLabels)
	if len(nw.InferenceClients.Namespaces) == 0 && len(nw.InferenceClients.PodLabels) == 0 {
		c.warn(key+".network.inferenceClients", "is empty: nothing may call the inference port; add namespaces or podLabels")
	}
	for i, n := range nw.MetricsScrapers {
		c.dns1123Label(fmt.Sprintf("%s.network.metricsScrapers[%d]", key, i), n)
	}
	for i, rule := range nw.Egress {
		k := fmt.Sprintf("%s.network.egress[%d]", key, i)
		if len(rule.Workloads) == 0 {
			c.fail(k+".workloads", rule.Workloads, fmt.Sprintf("required: name the workloads that may reach %s (%s); every other pod stays cut off from it", rule.CIDR, strings.Join(EgressWorkloads, ", ")), `["ingestion"]`)
		}
		for j, w := range rule.Workloads {
			if !slices.Contains(EgressWorkloads, w) {
				c.fail(fmt.Sprintf("%s.workloads[%d]", k, j), w, "must be one of "+strings.Join(EgressWorkloads, ", "), `"ingestion"`)
			}
		}
		if ip, network, err := net.ParseCIDR(rule.CIDR); err != nil {
			c.fail(k+".cidr", rule.CIDR, "must be a CIDR", `"10.20.0.0/16"`)
		} else if !ip.Equal(network.IP) {
			c.fail(k+".cidr", rule.CIDR, fmt.Sprintf("has host bits set: the range it names is %s, write that (the API server refuses a network address with host bits)", network), strconv.Quote(network.String()))
		}
		if len(rule.Ports) == 0 {
			c.fail(k+".ports", rule.Ports, "must list at least one port", "[443]")
		}
		for j, p := range rule.Ports {
			c.port(fmt.Sprintf("%s.ports[%d]", k, j), p)
		}
	}
	c.dns1123Label(key+".network.dns.namespace", nw.DNS.Namespace)
	if len(nw.DNS.PodLabels) == 0 {
		c.fail(key+".network.dns.podLabels", nw.DNS.PodLabels, "must select the DNS pods", `{"k8s-app": "kube-dns"}`)
	}
	c.labels(key+".network.dns.podLabels", nw.DNS.PodLabels)
}

func (c *checker) gpuPool(key string, p GPUPool) {
	c.qualifiedName(key+".nodeLabelKey", p.NodeLabelKey, `"cloud.google.com/gke-accelerator"`)
	if p.NodeLabelValue == "" {
		c.fail(key+".nodeLabelValue", p.NodeLabelValue, "required: the value of nodeLabelKey on the pool's nodes", `"nvidia-l4"`)
	} else if errs := validation.IsValidLabelValue(p.NodeLabelValue); len(errs) > 0 {
		c.fail(key+".nodeLabelValue", p.NodeLabelValue, "must be a label value: "+strings.Join(errs, "; "), `"nvidia-l4"`)
	}
	c.qualifiedName(key+".taintKey", p.TaintKey, `"nvidia.com/gpu"`)
	switch p.TaintEffect {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		c.fail(key+".taintEffect", p.TaintEffect, "must be one of NoSchedule, PreferNoSchedule, NoExecute", `"NoSchedule"`)
	}
	if !strings.Contains(p.ResourceName, "/") {
		c.fail(key+".resourceName", p.ResourceName, "must be an extended resource name with a domain", `"nvidia.com/gpu"`)
	} else {
		c.qualifiedName(key+".resourceName", p.ResourceName, `"nvidia.com/gpu"`)
	}
	c.atLeast(key+".gpusPerNode", p.GPUsPerNode, 1)
	if c.wrote(key + ".maxNodes") {
		c.atLeast(key+".maxNodes", p.MaxNodes, 1)
	}
	if p.GroupDomainLabel != "" {
		c.qualifiedName(key+".groupDomainLabel", p.GroupDomainLabel, `"nvidia.com/gpu.clique"`)
	}
	c.allocation(key, p)
}

func (c *checker) serving(key string, s Serving, pool GPUPool, prod bool) {
	if len(s.Models) == 0 {
		c.fail(key+".models", s.Models, "must list at least one model", `[{"name": "llama", "image": "vllm/vllm-openai:v0.6.3"}]`)
	}
	seen := map[string]int{}
	for i, m := range s.Models {
		k := fmt.Sprintf("%s.models[%d]", key, i)
		if j, dup := seen[m.Name]; dup && m.Name != "" {
			c.fail(k+".name", m.Name, fmt.Sprintf("must be unique; models[%d] has it too", j), "")
		}
		seen[m.Name] = i
		c.model(k, m, pool, prod)
	}
	c.groupNames(key, s.Models)
}

func (c *checker) model(key string, m Model, pool GPUPool, prod bool) {
	if m.Name == "" {
		c.fail(key+".name", m.Name, "required", `"llama-3-8b"`)
	} else if errs := validation.IsDNS1035Label(m.Name); len(errs) > 0 || len(m.Name) > names.MaxModelNameLength {
		c.fail(key+".name", m.Name, fmt.Sprintf("must be a DNS-1035 label of at most %d characters (lower case letters, digits and '-', starting with a letter)", names.MaxModelNameLength), `"llama-3-8b"`)
	}
	c.image(key+".image", m.Image, prod)
	c.atLeast(key+".gpus", m.GPUs, 1)
	if m.GPUs > pool.GPUsPerNode && pool.GPUsPerNode >= 1 {
		why := "a pod cannot span nodes; for a model larger than one node, set nodes and give gpus per node"
		if m.MultiNode() {
			why = fmt.Sprintf("with nodes %d, gpus is per node of a replica", m.Nodes)
		}
		c.fail(key+".gpus", m.GPUs, fmt.Sprintf("must be at most gpuPool.gpusPerNode (%d): %s", pool.GPUsPerNode, why), strconv.Itoa(pool.GPUsPerNode))
	}
	c.multiNode(key, m, pool)
	c.parallelMatchesGPUs(key, m)
	c.gpuSelector(key, m, pool)
	c.atLeast(key+".replicas", m.Replicas, 1)
	c.port(key+".port", m.Port)
	if m.MetricsPort == 0 {
		c.fail(key+".metricsPort", m.MetricsPort, fmt.Sprintf("must be a port from 1 to 65535; leave the key out to serve metrics on port (%d)", m.Port), strconv.Itoa(m.Port))
	} else if m.MetricsPort != m.Port || c.wrote(key+".metricsPort") || !c.failed(key+".port") {
		// Unwritten, it is port's value: refused there already.
		c.port(key+".metricsPort", m.MetricsPort)
	}
	c.portMatchesArgs(key, m.Port, m.Args)
	c.httpPath(key+".metricsPath", m.MetricsPath)
	c.probePaths(key, m.ReadinessPath, m.LivenessPath)
	c.between(key+".livenessPeriodSeconds", m.LivenessPeriodSeconds, 1, 3600, "an hour")
	if m.ModelLoadBudgetSeconds < m.LivenessPeriodSeconds {
		c.fail(key+".modelLoadBudgetSeconds", m.ModelLoadBudgetSeconds,
			fmt.Sprintf("must be at least one liveness period (livenessPeriodSeconds = %d): the startup probe needs one try", m.LivenessPeriodSeconds), "600")
	}
	c.atMostDay(key+".modelLoadBudgetSeconds", m.ModelLoadBudgetSeconds)
	c.pullBudget(key, m.ImagePullBudgetSeconds)
	c.resources(key+".resources", m.Resources)
	if shm, ok := c.bytes(key+".shmSize", m.ShmSize, `"8Gi"`); ok {
		if limit, err := resource.ParseQuantity(string(m.Resources.Limits.Memory)); err == nil && shm.Cmp(limit) >= 0 {
			c.fail(key+".shmSize", m.ShmSize, fmt.Sprintf("must be less than the memory limit (%s): /dev/shm is memory and counts against it", m.Resources.Limits.Memory), "")
		}
	}
	c.bytes(key+".modelCache.size", m.ModelCache.Size, `"100Gi"`)
	if m.ModelCache.StorageClass != "" {
		c.dns1123Subdomain(key+".modelCache.storageClass", m.ModelCache.StorageClass, `"premium-rwo"`)
	}
	c.accessMode(key+".modelCache.accessMode", m.ModelCache.AccessMode)
	if m.ModelCache.AccessMode == AccessReadOnlyMany && m.Source.URI == "" {
		c.warn(key+".modelCache.accessMode", "ReadOnlyMany: the server cannot write weights into the claim, so it serves only what was put there outside the stack")
	}
	c.source(key, m, prod)
	c.modelPathInArgs(key, m)
	c.absolutePath(key+".modelCache.mountPath", m.ModelCache.MountPath)
	if MaxReplicas(m.Replicas, m.Autoscaling) > 1 && m.ModelCache.AccessMode == AccessReadWriteOnce && !c.failed(key+".modelCache.accessMode") {
		c.fail(key+".modelCache.accessMode", m.ModelCache.AccessMode,
			"must be ReadWriteMany or ReadOnlyMany when the model runs more than one replica: replicas are spread over nodes and a ReadWriteOnce claim attaches to one", `"ReadWriteMany"`)
	}
	if pool.SpareCapacity && m.Source.Cached() && m.ModelCache.AccessMode == AccessReadWriteOnce {
		c.warn(key+".modelCache.accessMode", "ReadWriteOnce with gpuPool.spareCapacity: the model rolls one pod at a time (maxSurge 0, maxUnavailable 1), not with a surge: a surge pod on another node could not attach the claim")
	}
	if pool.SpareCapacity && m.MultiNode() {
		c.warn(key+".nodes", "%d with gpuPool.spareCapacity: the model's groups roll one at a time in place (maxSurge 0, maxUnavailable 1), not with a surge: the pool's spare room is one pod, and a surge group needs %d nodes", m.Nodes, m.Nodes)
	}
	c.autoscaling(key+".autoscaling", m.Autoscaling, true)
	c.replicasOwner(key, m.Autoscaling)
	c.disruption(key, m.Disruption, m.Replicas, m.Autoscaling, names.Inference(m.Name))
	c.atLeast(key+".drain.preStopSleepSeconds", m.Drain.PreStopSleepSeconds, 0)
	c.atMostDay(key+".drain.preStopSleepSeconds", m.Drain.PreStopSleepSeconds)
	c.atLeast(key+".drain.drainSeconds", m.Drain.DrainSeconds, 1)
	c.atMostDay(key+".drain.drainSeconds", m.Drain.DrainSeconds)
	c.spread(key+".topologySpread.zone", m.TopologySpread.Zone)
	c.spread(key+".topologySpread.host", m.TopologySpread.Host)
}

func (c *checker) pipeline(key string, p Pipeline, prod bool) {
	c.storage(key+".storage", p.Storage)
	if p.Storage.AccessMode == AccessReadWriteOnce {
		msg := "the shared claim is ReadWriteOnce: ingestion and transformation pods can only use it together when they land on the same node"
		if prod {
			c.fail(key+".storage.accessMode", p.Storage.AccessMode, msg, `"ReadWriteMany"`)
		} else {
			c.warn(key+".storage.accessMode", "%s (fine on a one-node dev cluster)", msg)
		}
	}
	if p.Storage.AccessMode == AccessReadOnlyMany {
		c.fail(key+".storage.accessMode", p.Storage.AccessMode, "must be writable: ingestion writes to the shared claim", `"ReadWriteMany"`)
	}
	c.absolutePath(key+".mountPath", p.MountPath)

	in := p.Ingestion
	k := key + ".ingestion"
	c.image(k+".image", in.Image, prod)
	c.resources(k+".resources", in.Resources)
	c.atLeast(k+".backoffLimit", in.BackoffLimit, 0)
	c.atLeast(k+".activeDeadlineSeconds", in.ActiveDeadlineSeconds, 1)
	c.exitCodes(k+".failFastExitCodes", in.FailFastExitCodes)
	c.atLeast(k+".completions", in.Completions, 1)
	c.atLeast(k+".parallelism", in.Parallelism, 1)
	c.atLeast(k+".rerun", in.Rerun, 0)
	if in.Indexed {
		// The API server's limits for Indexed Jobs.
		c.atMost(k+".completions", in.Completions, maxIndexedCompletions)
		c.atMost(k+".parallelism", in.Parallelism, maxIndexedCompletions)
	}
	if in.Parallelism > in.Completions && in.Completions >= 1 {
		c.fail(k+".parallelism", in.Parallelism, fmt.Sprintf("must be at most completions (%d): extra pods would have no shard", in.Completions), strconv.Itoa(in.Completions))
	}

	t := p.Transformation
	k = key + ".transformation"
	c.image(k+".image", t.Image, prod)
	c.atLeast(k+".replicas", t.Replicas, 1)
	c.resources(k+".resources", t.Resources)
	c.port(k+".port", t.Port)
	c.portMatchesArgs(k, t.Port, t.Args)
	c.probePaths(k, t.ReadinessPath, t.LivenessPath)
	c.startupBudgets(k, t.StartupBudgetSeconds, t.ImagePullBudgetSeconds, TransformationProbePeriodSeconds)
	c.autoscaling(k+".autoscaling", t.Autoscaling, false)
	c.replicasOwner(k, t.Autoscaling)
	c.disruption(k, t.Disruption, t.Replicas, t.Autoscaling, names.Transformation)
}

func (c *checker) checkpoint(key string, cp Checkpoint, prod bool) {
	c.image(key+".image", cp.Image, prod)
	c.atLeast(key+".replicas", cp.Replicas, 1)
	c.resources(key+".resources", cp.Resources)
	c.port(key+".port", cp.Port)
	c.portMatchesArgs(key, cp.Port, cp.Args)
	c.probePaths(key, cp.ReadinessPath, cp.LivenessPath)
	c.startupBudgets(key, cp.StartupBudgetSeconds, cp.ImagePullBudgetSeconds, CheckpointProbePeriodSeconds)
	c.absolutePath(key+".mountPath", cp.MountPath)
	c.storage(key+".storage", cp.Storage)
	if cp.Storage.AccessMode == AccessReadOnlyMany {
		c.fail(key+".storage.accessMode", cp.Storage.AccessMode, "must be writable: the checkpoint store writes to its claims", `"ReadWriteOnce"`)
	}
	c.disruption(key, cp.Disruption, cp.Replicas, Autoscaling{}, names.Checkpoint)
}

// cronParser accepts what the CronJob controller accepts: five fields or a
// descriptor such as @daily.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (c *checker) cron(key string, cr Cron) {
	switch {
	case cr.Schedule == "":
		c.fail(key+".schedule", cr.Schedule, "required: a cron schedule", `"0 2 * * *"`)
	case strings.Contains(cr.Schedule, "TZ="):
		c.fail(key+".schedule", cr.Schedule, "must not set a time zone inside the schedule; use cron.timeZone", `"0 2 * * *"`)
	default:
		sched, err := cronParser.Parse(cr.Schedule)
		if err != nil {
			c.fail(key+".schedule", cr.Schedule, "must be a cron schedule of five fields or a descriptor such as @daily: "+err.Error(), `"0 2 * * *"`)
		} else if sched.Next(time.Now()).IsZero() {
			// The parser searches five years ahead; a date that never exists
			// (30 February) is found by none.
			c.fail(key+".schedule", cr.Schedule, "can never fire: no date matches it (a day of month the month never has?)", `"0 2 28 2 *"`)
		}
	}
	if cr.TimeZone == "" || cr.TimeZone == "Local" {
		c.fail(key+".timeZone", cr.TimeZone, "must be an IANA time zone name", `"Europe/Berlin"`)
	} else if zone, err := time.LoadLocation(cr.TimeZone); err != nil {
		c.fail(key+".timeZone", cr.TimeZone, "must be an IANA time zone name", `"Europe/Berlin"`)
	} else if sched, err := cronParser.Parse(cr.Schedule); err == nil && !c.failed(key+".schedule") {
		if day, window, forward, found := dstRuns(sched, zone, time.Now()); found {
			what := "is skipped the night the clocks go forward (%s) and the other change starts it twice"
			if !forward {
				what = "starts twice the night the clocks go back (%s) and the other change skips it"
			}
			c.warn(key+".schedule", "%q in %s (cron.timeZone) fires inside %s, the hour its daylight-saving changes shift: the run "+what+"; choose a time outside %s, or cron.timeZone Etc/UTC",
				cr.Schedule, cr.TimeZone, window, day.Format("2006-01-02"), window)
		}
	}
	// The CronJob controller checks schedules every 10 seconds; a shorter
	// deadline can miss every run.
	c.atLeast(key+".startingDeadlineSeconds", cr.StartingDeadlineSeconds, 10)
	c.atMostDay(key+".startingDeadlineSeconds", cr.StartingDeadlineSeconds)
	c.atLeast(key+".successfulJobsHistoryLimit", cr.SuccessfulJobsHistoryLimit, 0)
	c.atLeast(key+".failedJobsHistoryLimit", cr.FailedJobsHistoryLimit, 0)
	c.atLeast(key+".backoffLimit", cr.BackoffLimit, 0)
	c.atLeast(key+".activeDeadlineSeconds", cr.ActiveDeadlineSeconds, 1)
	c.atLeast(key+".ttlSecondsAfterFinished", cr.TTLSecondsAfterFinished, 0)
	if cr.TTLSecondsAfterFinished == 0 && c.wrote(key+".ttlSecondsAfterFinished") {
		c.warn(key+".ttlSecondsAfterFinished", "0: each scheduled run's Job, its pods and their logs are deleted as soon as it finishes, so a failed run leaves nothing to read; 0 is not \"keep forever\" (leave the key out for a day, 86400)")
	}
}

func (c *checker) autoscaling(key string, a Autoscaling, podsMetricAllowed bool) {
	if !a.Enabled {
		var bounds []string
		for _, k := range []string{"minReplicas", "maxReplicas", "metric", "driver", "prometheusAddress", "query", "metricName", "series", "targetAverageValue", "targetCPUUtilization", "scaleUpStabilizationSeconds", "scaleDownStabilizationSeconds"} {
			if !c.wrote(key + "." + k) {
				continue
			}
			// enabled: false written beside the bounds is a deliberate pause
			// (an incident); bounds with no word of enabled are a slip.
			if c.prod && !c.wrote(key+".enabled") && (k == "minReplicas" || k == "maxReplicas") {
				bounds = append(bounds, fmt.Sprintf("%s.%s", key, k))
				continue
			}
			c.warn(key+"."+k, "%s while %s.enabled is false", noEffect, key)
		}
		if len(bounds) > 0 {
			// In prod a sizing that would not run is a mistake, not a note.
			c.fail(key+".enabled", nil, fmt.Sprintf("must be written (true) when %s are: autoscaling is off by default, so the workload would run its fixed replicas instead of %d to %d; in prod, written intent that would not run is refused. Set enabled: true, or enabled: false to keep the bounds while it is off, or remove them",
				strings.Join(bounds, " and "), a.MinReplicas, a.MaxReplicas), "true")
		}
		return
	}
	if a.MinReplicas == a.MaxReplicas && a.MinReplicas >= 1 {
		c.warn(key+".maxReplicas", "equals minReplicas (%d): the HPA can never change the count; turn autoscaling off and set replicas", a.MinReplicas)
	}
	unused := map[string][]string{MetricCPU: {"metricName", "series", "targetAverageValue"}, MetricPods: {"targetCPUUtilization"}}[a.Metric]
	for _, k := range unused {
		if c.wrote(key + "." + k) {
			c.warn(key+"."+k, "%s with metric %s", noEffect, a.Metric)
		}
	}
	keda := a.Driver == DriverKEDA
	switch {
	case a.Driver != DriverHPA && !keda:
		c.fail(key+".driver", a.Driver, "must be hpa or keda", `"hpa"`)
	case keda && !podsMetricAllowed:
		c.fail(key+".driver", a.Driver, "must be hpa here: keda scales a model on its queue", `"hpa"`)
	case keda && a.Metric != MetricPods:
		c.fail(key+".metric", a.Metric, "must be pods with driver keda: KEDA scales on the same per-pod queue signal", `"pods"`)
	}
	if keda {
		c.atLeast(key+".minReplicas", a.MinReplicas, 0)
		if u, err := url.Parse(a.PrometheusAddress); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.fail(key+".prometheusAddress", a.PrometheusAddress, "required with driver keda: the URL KEDA queries Prometheus at", `"http://prometheus-operated.monitoring.svc:9090"`)
		}
		if a.MinReplicas == 0 && a.Query == "" {
			c.fail(key+".query", a.Query, "required with minReplicas 0: the servers' own series vanish with the last server, so nothing would ever scale the model up again; give a signal that exists with no server running, such as the gateway's queue for this model", `"sum(gateway_pending_requests{model=\"llama\"})"`)
		}
		c.warn(key+".driver", "keda: needs the KEDA operator on the cluster and Prometheus at %s, which a preview cannot check; without them nothing scales the model", a.PrometheusAddress)
	} else {
		c.atLeast(key+".minReplicas", a.MinReplicas, 1)
		for _, k := range []string{"prometheusAddress", "query"} {
			if c.wrote(key + "." + k) {
				c.warn(key+"."+k, "%s with driver hpa", noEffect)
			}
		}
	}
	if a.MaxReplicas < 1 {
		c.atLeast(key+".maxReplicas", a.MaxReplicas, 1)
	} else if a.MaxReplicas < a.MinReplicas {
		c.fail(key+".maxReplicas", a.MaxReplicas, fmt.Sprintf("must be at least minReplicas (%d)", a.MinReplicas), strconv.Itoa(max(a.MinReplicas, 1)+1))
	}
	switch a.Metric {
	case MetricCPU:
		if a.TargetCPUUtilization < 1 || a.TargetCPUUtilization > 100 {
			c.fail(key+".targetCPUUtilization", a.TargetCPUUtilization, "must be a percentage from 1 to 100", "70")
		}
	case MetricPods:
		if !podsMetricAllowed {
			c.fail(key+".metric", a.Metric, "must be cpu here", `"cpu"`)
			break
		}
		if a.MetricName == "" {
			c.fail(key+".metricName", a.MetricName, "required with metric pods: the per-pod metric to scale on", `"vllm_num_requests_waiting"`)
		} else if !customMetricName.MatchString(a.MetricName) {
			c.fail(key+".metricName", a.MetricName, "must be a name the custom metrics API can serve (letters, digits, _ and -; a Prometheus colon is written in series)", `"vllm_num_requests_waiting"`)
		}
		if a.Series != "" && !prometheusSeries.MatchString(a.Series) {
			c.fail(key+".series", a.Series, "must be a Prometheus metric name", `"vllm:num_requests_waiting"`)
		}
		if a.Driver == DriverHPA {
			c.warn(key+".metric", "pods: the HPA reads %s from the custom.metrics.k8s.io API, which a preview cannot check; "+
				"without an adapter serving it (prometheus-adapter with the rule in the stack output metricsAdapterRules) the HPA never scales", a.MetricName)
		}
		c.positiveQuantity(key+".targetAverageValue", a.TargetAverageValue, `"5"`)
	default:
		c.fail(key+".metric", a.Metric, "must be cpu or pods", `"pods"`)
	}
	c.atLeast(key+".scaleUpStabilizationSeconds", a.ScaleUpStabilizationSeconds, 0)
	c.atMost(key+".scaleUpStabilizationSeconds", a.ScaleUpStabilizationSeconds, 3600)
	c.atLeast(key+".scaleDownStabilizationSeconds", a.ScaleDownStabilizationSeconds, 0)
	c.atMost(key+".scaleDownStabilizationSeconds", a.ScaleDownStabilizationSeconds, 3600)
	if a.ScaleDownStabilizationSeconds < rollout.ScaleDownPeriodSeconds {
		c.warn(key+".scaleDownStabilizationSeconds", "%d is shorter than the scale-down policy's %d s period: the HPA counts that period from before a recent scale-up, so a fall right after one can undo it in one step",
			a.ScaleDownStabilizationSeconds, rollout.ScaleDownPeriodSeconds)
	}
}

var (
	promDuration     = regexp.MustCompile(`^([0-9]+(ms|s|m|h))+$`)
	customMetricName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]*$`)
	prometheusSeries = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	// kubernetesUID is the form of an object's metadata.uid (a UUID, RFC 4122).
	kubernetesUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// disruption rejects budgets that would block every eviction and warns where
// no budget can help. key is the workload's.
func (c *checker) disruption(key string, d Disruption, replicas int, a Autoscaling, object string) {
	k := key + ".disruption.maxUnavailable"
	count, percent, err := ParseIntOrPercent(d.MaxUnavailable)
	switch {
	case err != nil:
		c.fail(k, d.MaxUnavailable, "must be a count or a percentage", `1 or "25%"`)
		return
	case percent && (count < 1 || count > 100):
		c.fail(k, d.MaxUnavailable, "must be a percentage from 1% to 100%: 0% would block every eviction, so no node could ever be drained", `"25%"`)
		return
	case !percent && count < 1:
		c.fail(k, d.MaxUnavailable, "must be at least 1: 0 would block every eviction, so no node could ever be drained", "1")
		return
	}
	switch {
	case MaxReplicas(replicas, a) == 1:
		c.warn(replicasKey(key, a), "%s runs one replica: no PodDisruptionBudget is created, and a node drain takes it down until it is rescheduled", object)
	case a.Enabled && a.MinReplicas == 0:
		c.warn(key+".autoscaling.minReplicas", "0: %s scales to zero at rest and wakes to one replica: while it runs one, the PodDisruptionBudget (maxUnavailable %s) lets a node drain evict it, and the model is down until it is rescheduled", object, d.MaxUnavailable)
	case a.Enabled && a.MinReplicas == 1:
		c.warn(key+".autoscaling.minReplicas", "1: at low load %s runs one replica, and the PodDisruptionBudget (maxUnavailable %s) then lets a node drain evict it: it is down until rescheduled; 2 keeps one serving", object, d.MaxUnavailable)
	}
}

// MaxReplicas is the most replicas a workload runs: the HPA's maximum when it
// scales, else its fixed count.
func MaxReplicas(replicas int, a Autoscaling) int {
	return rollout.MaxReplicas(replicas, a.Enabled, a.MaxReplicas)
}

// ParseIntOrPercent reads "3" as (3, false) and "25%" as (25, true).
func ParseIntOrPercent(v IntOrPercent) (n int, percent bool, err error) {
	s := string(v)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err = strconv.Atoi(p)
		return n, true, err
	}
	n, err = strconv.Atoi(s)
	return n, false, err
}

func (c *checker) storage(key string, s Storage) {
	c.bytes(key+".size", s.Size, `"100Gi"`)
	if s.StorageClass != "" {
		c.dns1123Subdomain(key+".storageClass", s.StorageClass, `"premium-rwo"`)
	}
	c.accessMode(key+".accessMode", s.AccessMode)
}

func (c *checker) accessMode(key, mode string) {
	switch mode {
	case AccessReadWriteOnce, AccessReadWriteMany, AccessReadOnlyMany:
	default:
		c.fail(key, mode, "must be ReadWriteOnce, ReadWriteMany or ReadOnlyMany", `"ReadWriteMany"`)
	}
}

func (c *checker) spread(key, v string) {
	switch v {
	case SpreadScheduleAnyway, SpreadDoNotSchedule, SpreadNone:
	default:
		c.fail(key, v, "must be ScheduleAnyway, DoNotSchedule or None", `"ScheduleAnyway"`)
	}
}

func (c *checker) resources(key string, r Resources) {
	c.resourceList(key+".requests", r.Requests)
	c.resourceList(key+".limits", r.Limits)
	c.notAbove(key+".requests", r.Requests, r.Limits, key+".limits")
}

// The most one machine offers, with room to spare: the largest cloud
// instances have a few hundred cores and up to 24 TiB of memory. A pod asking
// for more can never be scheduled; the likelier story is a missing unit.
var (
	maxMachineCPU    = resource.MustParse("1024")
	maxMachineMemory = resource.MustParse("32Ti")
)

func (c *checker) resourceList(key string, l ResourceList) {
	if v, ok := c.cpu(key+".cpu", l.CPU, `"500m"`); ok && v.Cmp(maxMachineCPU) > 0 {
		c.fail(key+".cpu", l.CPU, fmt.Sprintf("is more CPU than any one machine has (%s cores): no node could ever run the pod; millicores are written with m", maxMachineCPU.String()),
			fmt.Sprintf("%q", string(l.CPU)+"m"))
	}
	if v, ok := c.bytes(key+".memory", l.Memory, `"2Gi"`); ok && v.Cmp(maxMachineMemory) > 0 {
		c.fail(key+".memory", l.Memory, fmt.Sprintf("is more memory than any one machine has (%s): no node could ever run the pod; a unit too large (Ti for Gi, Gi for Mi)?", maxMachineMemory.String()), `"16Gi"`)
	}
	c.bytes(key+".ephemeralStorage", l.EphemeralStorage, `"1Gi"`)
}

// notAbove reports each request greater than its limit, under limitKey; a
// limit refused already is not held against its request.
func (c *checker) notAbove(key string, req, lim ResourceList, limitKey string) {
	pairs := []struct {
		name     string
		req, lim Quantity
	}{{"cpu", req.CPU, lim.CPU}, {"memory", req.Memory, lim.Memory}, {"ephemeralStorage", req.EphemeralStorage, lim.EphemeralStorage}}
	for _, p := range pairs {
		rq, err1 := resource.ParseQuantity(string(p.req))
		lq, err2 := resource.ParseQuantity(string(p.lim))
		if err1 == nil && err2 == nil && rq.Cmp(lq) > 0 && !c.failed(limitKey+"."+p.name) {
			limitName := limitKey[strings.LastIndex(limitKey, ".limit")+1:]
			c.fail(key+"."+p.name, p.req, fmt.Sprintf("must not exceed %s.%s (%s)", limitName, p.name, p.lim), string(p.lim))
		}
	}
}

func (c *checker) positiveQuantity(key string, q Quantity, example string) (resource.Quantity, bool) {
	if q == "" {
		var v any // not written: null, as a missing key reads
		if c.wrote(key) {
			v = q
		}
		c.fail(key, v, "required: a quantity", example)
		return resource.Quantity{}, false
	}
	v, err := resource.ParseQuantity(string(q))
	if err != nil {
		c.fail(key, q, "must be a Kubernetes quantity", example)
		return resource.Quantity{}, false
	}
	if v.Sign() <= 0 {
		c.fail(key, q, "must be greater than zero", example)
		return resource.Quantity{}, false
	}
	return v, true
}

func (c *checker) image(key, ref string, prod bool) {
	if ref == "" {
		c.fail(key, ref, "required: an image reference", `"registry.example.com/team/server:v1.2.3"`)
		return
	}
	if strings.ContainsAny(ref, " \t\n") {
		c.fail(key, ref, "must be an image reference: must not contain white space", `"registry.example.com/team/server:v1.2.3"`)
		return
	}
	img, err := ParseImage(ref)
	if err != nil {
		c.fail(key, ref, "must be an image reference: "+err.Error(), `"registry.example.com/team/server:v1.2.3" or "registry.example.com/team/server@sha256:<64 hex digits>"`)
		return
	}
	if first, rest, ok := strings.Cut(ref, "/"); ok && first != strings.ToLower(first) && !strings.ContainsAny(first, ".:") {
		// The reference grammar takes a first component with capitals for
		// a registry host, so "VLLM/vllm-openai" would be pulled from a host
		// named VLLM; repository names are lowercase.
		c.fail(key, ref, fmt.Sprintf("must be an image reference: %q would be read as a registry host because of its capitals, and repository names are lowercase", first), strconv.Quote(strings.ToLower(first)+"/"+rest))
		return
	}
	if !prod || img.Pinned() {
		return
	}
	if img.Tag == "" {
		c.fail(key, ref, "prod requires a pinned tag or digest; an untagged image means :latest", ref+":v1.2.3")
	} else {
		c.fail(key, ref, "prod must not use :latest; pin a version or a digest", strings.TrimSuffix(ref, "latest")+"v1.2.3")
	}
}

func (c *checker) exitCodes(key string, codes []int) {
	if len(codes) > 255 {
		c.fail(key, len(codes), "must list at most 255 exit codes", "[2]")
	}
	seen := map[int]bool{}
	for i, code := range codes {
		k := fmt.Sprintf("%s[%d]", key, i)
		if code < 1 || code > 255 {
			c.fail(k, code, "must be an exit code from 1 to 255 (0 means success)", "2")
		}
		if seen[code] {
			c.fail(k, code, "must not repeat", "")
		}
		seen[code] = true
	}
}

func (c *checker) atLeast(key string, v, min int) {
	switch {
	case v >= min:
	case v == 0 && !c.wrote(key):
		// Not an invalid 0: a value nobody wrote, and no default exists.
		c.fail(key, nil, fmt.Sprintf("required: a whole number of at least %d", min), strconv.Itoa(min))
	default:
		c.fail(key, v, fmt.Sprintf("must be at least %d", min), strconv.Itoa(min))
	}
}

func (c *checker) atMost(key string, v, max int) {
	if v > max {
		c.fail(key, v, fmt.Sprintf("must be at most %d", max), strconv.Itoa(max))
	}
}

func (c *checker) port(key string, p int) {
	if p < 1 || p > 65535 {
		c.fail(key, p, "must be a port from 1 to 65535", "8000")
	}
}

func (c *checker) httpPath(key, p string) {
	if !strings.HasPrefix(p, "/") {
		c.fail(key, p, "must be an HTTP path starting with /", `"/health"`)
	}
}

// probePaths checks a workload's probe paths. Liveness must not be the
// readiness check: a pod too busy to be ready would also be restarted, and
// under load every replica would restart at once.
func (c *checker) probePaths(key, readiness, liveness string) {
	c.httpPath(key+".readinessPath", readiness)
	c.httpPath(key+".livenessPath", liveness)
	if readiness == liveness && readiness != "" {
		c.fail(key+".livenessPath", liveness, "must differ from readinessPath: a pod too busy to be ready would also be restarted", `"/health"`)
	}
}

func (c *checker) absolutePath(key, p string) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		c.fail(key, p, "must be a clean absolute path", `"/data"`)
		return
	}
	for _, reserved := range []string{"/", "/tmp", "/dev/shm", "/dev", "/proc", "/sys"} {
		if p == reserved {
			c.fail(key, p, "must not be a path the platform or the kernel uses ("+reserved+")", `"/data"`)
		}
	}
	for _, system := range []string{"/bin", "/boot", "/etc", "/lib", "/lib64", "/run", "/sbin", "/usr", "/var", "/var/run"} {
		if p == system {
			c.fail(key, p, "must not be a directory of the image's system ("+system+"): a volume mounted there hides what the image has (its programs, libraries or certificates)", `"/data"`)
		}
	}
}

func (c *checker) dns1123Label(key, v string) {
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		c.fail(key, v, "must be a DNS-1123 label: "+strings.Join(errs, "; "), `"llm-platform"`)
	}
}

func (c *checker) dns1123Subdomain(key, v, example string) {
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		c.fail(key, v, "must be a DNS-1123 subdomain: "+strings.Join(errs, "; "), example)
	}
}

func (c *checker) qualifiedName(key, v, example string) {
	if errs := validation.IsQualifiedName(v); len(errs) > 0 {
		c.fail(key, v, "must be a label key: "+strings.Join(errs, "; "), example)
	}
}

func (c *checker) labels(key string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			c.fail(key, k, "must use label keys: "+strings.Join(errs, "; "), `"app.kubernetes.io/name"`)
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			c.fail(key+"."+quoteKey(k), v, "must be a label value: "+strings.Join(errs, "; "), `"gateway"`)
		}
	}
}
