package config

import (
	"fmt"
	"maps"
)

// Defaults returns the configuration a stack file's values are laid over.
// Defaults that depend on another value (a limit equal to its request) are
// applied after decoding, by applyDerivedDefaults.
func Defaults() Config {
	return Config{
		Namespace: Namespace{
			LimitRange: LimitRange{
				DefaultRequest: ResourceList{CPU: "100m", Memory: "128Mi", EphemeralStorage: "256Mi"},
				Default:        ResourceList{CPU: "1", Memory: "1Gi", EphemeralStorage: "1Gi"},
			},
			Network: Network{
				DNS: DNS{Namespace: "kube-system", PodLabels: map[string]string{"k8s-app": "kube-dns"}},
			},
		},
		GPUPool: GPUPool{
			TaintKey:     "nvidia.com/gpu",
			TaintEffect:  "NoSchedule",
			ResourceName: "nvidia.com/gpu",
			Allocation:   AllocationDevicePlugin,
			DRA:          DRA{DeviceClassName: "gpu.nvidia.com", MIGDeviceClassName: "mig.nvidia.com"},
		},
		Serving: Serving{Routing: Routing{
			Mode:        RoutingService,
			FailureMode: FailClose,
			Picker: Picker{
				Image:     DefaultPickerImage,
				Scorers:   maps.Clone(DefaultScorers),
				Resources: Resources{Requests: ResourceList{CPU: "500m", Memory: "512Mi", EphemeralStorage: "256Mi"}},
			},
		}},
		Pipeline: Pipeline{
			MountPath: "/data",
			// Ingestion and transformation pods run at once, on any node.
			Storage: Storage{AccessMode: "ReadWriteMany"},
			Ingestion: Ingestion{
				BackoffLimit:          3,
				ActiveDeadlineSeconds: 86400,
				Completions:           1,
				Parallelism:           1,
			},
			Transformation: Transformation{
				StartupBudgetSeconds:   300,
				ImagePullBudgetSeconds: 300,
				Replicas:               1,
				Port:                   8080,
				LivenessPath:           "/healthz",
				ReadinessPath:          "/readyz",
				Autoscaling:            defaultAutoscaling(),
				Disruption:             Disruption{MaxUnavailable: "1"},
			},
		},
		Checkpoint: Checkpoint{
			StartupBudgetSeconds:   300,
			ImagePullBudgetSeconds: 300,
			Replicas:               1,
			Port:                   8080,
			LivenessPath:           "/healthz",
			ReadinessPath:          "/readyz",
			MountPath:              "/checkpoints",
			Storage:                Storage{AccessMode: "ReadWriteOnce"},
			Disruption:             Disruption{MaxUnavailable: "1"},
		},
		Monitoring:    Monitoring{Interval: "30s"},
		ClusterDomain: "cluster.local",
		Cron: Cron{
			TimeZone:                   "Etc/UTC",
			StartingDeadlineSeconds:    300,
			SuccessfulJobsHistoryLimit: 3,
			FailedJobsHistoryLimit:     3,
			BackoffLimit:               2,
			ActiveDeadlineSeconds:      21600,
			TTLSecondsAfterFinished:    86400,
		},
	}
}

func defaultAutoscaling() Autoscaling {
	return Autoscaling{
		MinReplicas:                   1,
		Metric:                        MetricCPU,
		Driver:                        DriverHPA,
		TargetCPUUtilization:          70,
		ScaleUpStabilizationSeconds:   0,
		ScaleDownStabilizationSeconds: 300,
	}
}

// setDefaults gives a new model in serving.models its defaults.
func (m *Model) setDefaults() {
	*m = Model{
		GPUs:                   1,
		Nodes:                  1,
		Replicas:               1,
		Port:                   8000,
		MetricsPath:            "/metrics",
		ReadinessPath:          "/v1/models",
		LivenessPath:           "/health",
		LivenessPeriodSeconds:  10,
		ModelLoadBudgetSeconds: 600,
		ImagePullBudgetSeconds: 300,
		ShmSize:                "1Gi",
		ModelCache:             ModelCache{Size: "50Gi", AccessMode: "ReadWriteOnce", MountPath: "/models"},
		Source: Source{Fetch: Fetch{
			Image:         DefaultFetchImage,
			BudgetSeconds: 3600,
			BackoffLimit:  3,
			Resources:     Resources{Requests: ResourceList{CPU: "1", Memory: "2Gi", EphemeralStorage: "1Gi"}},
		}},
		Autoscaling:    defaultAutoscaling(),
		Disruption:     Disruption{MaxUnavailable: "1"},
		Drain:          Drain{PreStopSleepSeconds: 10, DrainSeconds: 60},
		TopologySpread: TopologySpread{Zone: SpreadScheduleAnyway, Host: SpreadScheduleAnyway},
	}
}

// DefaultFetchImage is the default downloader: KServe's storage
// initializer, which downloads hf:// (a revision after a colon) and s3://
// URIs, with huggingface_hub (HF_TOKEN, HF_ENDPOINT) and boto3
// (AWS_ENDPOINT_URL and the usual AWS credentials).
const DefaultFetchImage = "kserve/storage-initializer:v0.15.2"

// KServeEntrypoint is the storage initializer's entrypoint, which the fetch
// run's /bin/sh wrapper calls: `initializer-entrypoint SRC_URI DEST_PATH`.
const KServeEntrypoint = "/storage-initializer/scripts/initializer-entrypoint"

// DefaultFetchArgs are the downloader's args by source scheme, for
// DefaultFetchImage. The fetch container has SOURCE_URI, SOURCE_REPO (the
// URI without its scheme), SOURCE_REVISION, SOURCE_PINNED_URI (hf:
// hf://<repo>:<revision>, as KServe reads a revision; s3: the URI) and
// MODEL_DIR in its environment.
var DefaultFetchArgs = map[string][]string{
	SourceHub: {KServeEntrypoint, "$(SOURCE_PINNED_URI)", "$(MODEL_DIR)"},
	SourceS3:  {KServeEntrypoint, "$(SOURCE_PINNED_URI)", "$(MODEL_DIR)"},
}

// applyDerivedDefaults fills the defaults that depend on other values.
// A value the stack file wrote is kept, even 0, so validation can name it.
func applyDerivedDefaults(c *Config, written map[string]bool) {
	for i := range c.Serving.Models {
		m := &c.Serving.Models[i]
		if !written[fmt.Sprintf("serving.models[%d].metricsPort", i)] {
			m.MetricsPort = m.Port
		}
		defaultLimits(&m.Resources)
		defaultLimits(&m.Source.Fetch.Resources)
		if !written[fmt.Sprintf("serving.models[%d].source.fetch.args", i)] {
			m.Source.Fetch.Args = DefaultFetchArgs[m.Source.Scheme()]
		}
	}
	for i := range c.Serving.Models {
		if !written[fmt.Sprintf("serving.models[%d].routing", i)] {
			c.Serving.Models[i].Routing = c.Serving.Routing.Mode
		}
	}
	defaultLimits(&c.Serving.Routing.Picker.Resources)
	defaultLimits(&c.Pipeline.Ingestion.Resources)
	defaultLimits(&c.Pipeline.Transformation.Resources)
	defaultLimits(&c.Checkpoint.Resources)
}

func defaultLimits(r *Resources) {
	if r.Limits.CPU == "" {
		r.Limits.CPU = r.Requests.CPU
	}
	if r.Limits.Memory == "" {
		r.Limits.Memory = r.Requests.Memory
	}
	if r.Limits.EphemeralStorage == "" {
		r.Limits.EphemeralStorage = r.Requests.EphemeralStorage
	}
}
