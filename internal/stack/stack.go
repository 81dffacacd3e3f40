// Package stack composes the whole LLM platform from its components. It is the
// body of the Pulumi program: main runs it under the Pulumi engine, tests and
// the offline render run it under mocks.
package stack

import (
	"errors"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/checkpoint"
	"llm-platform/cron"
	"llm-platform/internal/availability"
	"llm-platform/internal/config"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/monitoring"
	"llm-platform/pipeline"
	"llm-platform/platform"
	"llm-platform/serving"
)

// Stack is what the program built.
type Stack struct {
	Platform   *platform.Platform
	Pipeline   *pipeline.Pipeline
	Models     []*serving.Inference
	Checkpoint *checkpoint.Store
	Schedule   *cron.Schedule
	// Monitoring is nil when monitoring.enabled is false.
	Monitoring *monitoring.Monitoring
	// AdapterRules are the prometheus-adapter rules the Pods metrics need.
	AdapterRules []map[string]any
}

// Program loads the configuration, builds the stack and exports its outputs.
// On a configuration error it registers no resource at all.
func Program(ctx *pulumi.Context) error {
	res, secrets, err := config.FromPulumi(ctx)
	if err != nil {
		return fmt.Errorf("invalid configuration of stack %q:\n%w", ctx.Stack(), err)
	}
	for _, w := range res.Warnings {
		if err := ctx.Log.Warn(w, nil); err != nil {
			return err
		}
	}
	s, err := Build(ctx, res.Config, secrets)
	if err != nil {
		return err
	}
	Export(ctx, s)
	return nil
}

// Build creates every component from a validated configuration.
func Build(ctx *pulumi.Context, cfg config.Config, secrets config.Secrets) (*Stack, error) {
	if cfg.Environment == "" {
		return nil, errors.New("stack: configuration was not loaded")
	}
	workloads := []string{names.Ingestion, names.Transformation, names.Checkpoint, names.Cron}
	var inferencePorts, metricsPorts []int
	for _, m := range cfg.Serving.Models {
		workloads = append(workloads, names.Inference(m.Name))
		inferencePorts = append(inferencePorts, m.Port)
		metricsPorts = append(metricsPorts, m.MetricsPort)
	}
	plat, err := platform.New(ctx, "platform", platform.Args{
		Namespace:           cfg.Namespace,
		GPUResourceName:     cfg.GPUPool.ResourceName,
		Workloads:           workloads,
		InferencePorts:      inferencePorts,
		MetricsPorts:        metricsPorts,
		InternalPorts:       []int{cfg.Pipeline.Transformation.Port, cfg.Checkpoint.Port},
		ModelRegistryToken:  secrets.ModelRegistryToken,
		RegistryCredentials: secrets.RegistryCredentials,
		Cluster:             config.ClusterFromPulumi(ctx),
	})
	if err != nil {
		return nil, err
	}
	// Every component waits for the guards: its pods must meet quota, limits
	// and network policy from the first moment.
	after := pulumi.DependsOn([]pulumi.Resource{plat})
	shared := func(workload string, priority pulumi.StringInput) podspec.Shared {
		return podspec.Shared{
			Namespace:       plat.Namespace,
			Security:        podspec.DefaultSecurity(),
			ImagePullSecret: plat.ImagePullSecret,
			PriorityClass:   priority,
			ServiceAccount:  plat.ServiceAccounts[workload],
		}
	}
	s := &Stack{Platform: plat}

	s.Pipeline, err = pipeline.New(ctx, "pipeline", pipeline.Args{
		Pipeline:                 cfg.Pipeline,
		Ingestion:                shared(names.Ingestion, plat.PriorityBatch),
		Transformation:           shared(names.Transformation, plat.PriorityBatch),
		ModelRegistryTokenSecret: plat.ModelRegistryTokenSecret,
		Adopter:                  plat.Adopter,
	}, after)
	if err != nil {
		return nil, err
	}

	for _, m := range cfg.Serving.Models {
		inf, err := serving.New(ctx, names.Inference(m.Name), serving.Args{
			Model:                    m,
			GPUPool:                  cfg.GPUPool,
			Shared:                   shared(names.Inference(m.Name), plat.PriorityServing),
			ModelRegistryTokenSecret: plat.ModelRegistryTokenSecret,
			Adopter:                  plat.Adopter,
		}, after)
		if err != nil {
			return nil, err
		}
		s.Models = append(s.Models, inf)
		if a := m.Autoscaling; a.Enabled && a.Metric == config.MetricPods && a.Driver == config.DriverHPA {
			s.AdapterRules = append(s.AdapterRules, availability.AdapterRule(cfg.Namespace.Name, m.Autoscaling))
		}
	}

	s.Checkpoint, err = checkpoint.New(ctx, "checkpoint", checkpoint.Args{
		Checkpoint: cfg.Checkpoint,
		Shared:     shared(names.Checkpoint, plat.PriorityServing),
	}, after)
	if err != nil {
		return nil, err
	}

	scheduled := pipeline.IngestionWorkload(names.Cron)
	s.Schedule, err = cron.New(ctx, "schedule", cron.Args{
		Cron:      cfg.Cron,
		Namespace: plat.Namespace,
		Workload:  scheduled,
		Run: pipeline.RunSpec(pipeline.IngestionPodArgs{
			Ingestion:                cfg.Pipeline.Ingestion,
			MountPath:                cfg.Pipeline.MountPath,
			DataClaim:                s.Pipeline.DataClaim,
			Shared:                   shared(names.Cron, plat.PriorityBatch),
			Workload:                 scheduled,
			ModelRegistryTokenSecret: plat.ModelRegistryTokenSecret,
		}, pipeline.RunLimits{
			BackoffLimit:            cfg.Cron.BackoffLimit,
			ActiveDeadlineSeconds:   cfg.Cron.ActiveDeadlineSeconds,
			TTLSecondsAfterFinished: &cfg.Cron.TTLSecondsAfterFinished,
		}),
	}, after)
	if err != nil {
		return nil, err
	}
	if cfg.Monitoring.Enabled {
		if s.Monitoring, err = monitoring.New(ctx, "monitoring", monitoringArgs(cfg, s), after); err != nil {
			return nil, err
		}
	}
	return s, nil
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
	for i, m := range cfg.Serving.Models {
		args.Targets = append(args.Targets, monitoring.Target{Workload: s.Models[i].Workload, Port: s.Models[i].MetricsPort, Path: m.MetricsPath})
		if a := m.Autoscaling; a.Enabled && a.Metric == config.MetricPods {
			args.Queues = append(args.Queues, monitoring.QueueSignal{Model: m.Name, Deployment: names.Inference(m.Name), Series: a.SeriesName(), Target: string(a.TargetAverageValue)})
		}
	}
	return args
}

// Export publishes the stack outputs: what users and other stacks refer to.
func Export(ctx *pulumi.Context, s *Stack) {
	ctx.Export("namespace", s.Platform.Namespace)
	endpoints := pulumi.StringMap{}
	claims := pulumi.StringArray{s.Pipeline.DataClaim}
	for _, m := range s.Models {
		endpoints[m.Model] = m.Endpoint
		claims = append(claims, m.CacheClaim)
	}
	for _, c := range s.Checkpoint.ClaimNames {
		claims = append(claims, pulumi.String(c))
	}
	ctx.Export("endpoints", endpoints)
	ctx.Export("checkpointService", s.Checkpoint.ServiceName)
	ctx.Export("cronJob", s.Schedule.CronJobName)
	ctx.Export("ingestionJob", s.Pipeline.IngestionJob)
	ctx.Export("claims", claims)
	rules := pulumi.Array{}
	for _, r := range s.AdapterRules {
		rules = append(rules, pulumi.ToMap(r))
	}
	ctx.Export("metricsAdapterRules", rules)
}
