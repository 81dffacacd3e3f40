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
	"llm-platform/routing"
	"llm-platform/serving"
)

// Stack is what the program built.
type Stack struct {
	Platform *platform.Platform
	Pipeline *pipeline.Pipeline
	Models   []*serving.Inference
	// Routes are the pooled models' InferencePools, pickers and HTTPRoutes.
	Routes     []*routing.Routing
	Checkpoint *checkpoint.Store
	Schedule   *cron.Schedule
	// Monitoring is nil when monitoring.enabled is false.
	Monitoring *monitoring.Monitoring
	// AdapterRules are the prometheus-adapter rules the Pods metrics need.
	AdapterRules []map[string]any
	// Cluster is how the stack reaches its cluster, and which one it is
	// (its UID is "" when the program had no cluster to ask).
	Cluster config.Cluster
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
	cluster, err := config.ClusterFromPulumi(ctx)
	if err != nil {
		return fmt.Errorf("invalid configuration of stack %q:\n%w", ctx.Stack(), err)
	}
	if Connect != nil {
		if err := onCluster(ctx, res.Config, &cluster); err != nil {
			return err
		}
	}
	s, err := Build(ctx, res.Config, secrets, cluster)
	if err != nil {
		return err
	}
	Export(ctx, s)
	return nil
}

// Build creates every component from a validated configuration: first each
// component's Args, whose intents the platform turns into ServiceAccounts and
// NetworkPolicies, then the platform, then the components inside it. cluster
// is how the platform's own provider reaches the cluster.
func Build(ctx *pulumi.Context, cfg config.Config, secrets config.Secrets, cluster config.Cluster) (*Stack, error) {
	if cfg.Environment == "" {
		return nil, errors.New("stack: configuration was not loaded")
	}
	pipelineArgs, checkpointArgs, cronArgs := pipelineArgs(cfg), checkpointArgs(cfg), cronArgs(cfg)
	var models []serving.Args
	intents := append(pipelineArgs.Intents(), checkpointArgs.Intent(), cronArgs.Intent())
	for _, m := range cfg.Serving.Models {
		a := modelArgs(cfg, m)
		models = append(models, a)
		intents = append(intents, a.Intents()...)
		if r, ok := routingArgs(cfg, m); ok {
			intents = append(intents, r.Intents()...)
		}
	}
	plat, err := platform.New(ctx, "platform", platformArgs(cfg, secrets, cluster, intents))
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
	s := &Stack{Platform: plat, Cluster: cluster}

	pipelineArgs.IngestionShared = shared(names.Ingestion, plat.PriorityBatch)
	pipelineArgs.Ingestion.TokenSecret = plat.ModelRegistryTokenSecret
	pipelineArgs.Transformation.Shared = shared(names.Transformation, plat.PriorityBatch)
	pipelineArgs.Adopter = plat.Adopter
	if s.Pipeline, err = pipeline.New(ctx, "pipeline", pipelineArgs, after); err != nil {
		return nil, err
	}

	for i, m := range cfg.Serving.Models {
		args := models[i]
		args.Shared = shared(names.Inference(m.Name), plat.PriorityServing)
		if args.Source != nil {
			args.Source.Fetch.Shared = shared(names.Fetch(m.Name), plat.PriorityServing)
		}
		args.TokenSecret = plat.ModelRegistryTokenSecret
		args.Adopter = plat.Adopter
		inf, err := serving.New(ctx, names.Inference(m.Name), args, after)
		if err != nil {
			return nil, err
		}
		s.Models = append(s.Models, inf)
		if r, ok := routingArgs(cfg, m); ok {
			r.Shared = shared(names.Picker(m.Name), plat.PriorityServing)
			route, err := routing.New(ctx, names.Inference(m.Name)+"-routing", r, after)
			if err != nil {
				return nil, err
			}
			s.Routes = append(s.Routes, route)
		}
		if a := m.Autoscaling; a.Enabled && a.Metric == config.MetricPods && a.Driver == config.DriverHPA {
			s.AdapterRules = append(s.AdapterRules, availability.AdapterRule(cfg.Namespace.Name, args.Autoscaling))
		}
	}

	checkpointArgs.Shared = shared(names.Checkpoint, plat.PriorityServing)
	if s.Checkpoint, err = checkpoint.New(ctx, "checkpoint", checkpointArgs, after); err != nil {
		return nil, err
	}

	cronArgs.Shared = shared(names.Cron, plat.PriorityBatch)
	cronArgs.Run.DataClaim = s.Pipeline.DataClaim
	cronArgs.Run.TokenSecret = plat.ModelRegistryTokenSecret
	if s.Schedule, err = cron.New(ctx, "schedule", cronArgs, after); err != nil {
		return nil, err
	}
	if cfg.Monitoring.Enabled {
		if s.Monitoring, err = monitoring.New(ctx, "monitoring", monitoringArgs(cfg, s), after); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Export publishes the stack outputs: what users and other stacks refer to.
func Export(ctx *pulumi.Context, s *Stack) {
	ctx.Export("namespace", s.Platform.Namespace)
	endpoints := pulumi.StringMap{}
	claims := pulumi.StringArray{s.Pipeline.DataClaim}
	for _, m := range s.Models {
		endpoints[m.Model] = m.Endpoint
		if m.HasClaim {
			claims = append(claims, m.CacheClaim)
		}
	}
	ctx.Export("endpoints", endpoints)
	ctx.Export("checkpointService", s.Checkpoint.ServiceName)
	ctx.Export("cronJob", s.Schedule.CronJobName)
	ctx.Export("ingestionJob", s.Pipeline.IngestionJob)
	ctx.Export("claims", pulumi.All(claims, s.Checkpoint.ClaimNames).ApplyT(func(v []any) []string {
		return append(v[0].([]string), v[1].([]string)...)
	}).(pulumi.StringArrayOutput))
	rules := pulumi.Array{}
	for _, r := range s.AdapterRules {
		rules = append(rules, pulumi.ToMap(r))
	}
	ctx.Export("metricsAdapterRules", rules)
	if s.Cluster.UID != "" {
		// The record sameCluster reads back at the next run.
		ctx.Export(ClusterUIDOutput, pulumi.String(s.Cluster.UID))
		ctx.Export(ClusterIdentifierOutput, pulumi.String(s.Cluster.Identifier))
	}
}
