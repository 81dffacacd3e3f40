package localcluster

import (
	"fmt"
	"io"
	"strings"
	"time"

	"llm-platform/internal/config"
	"llm-platform/internal/mock"
	"llm-platform/internal/names"
	"llm-platform/internal/render"
	"llm-platform/internal/stackfile"
)

// LoadConfig reads and validates a stack's configuration from its stack file.
func LoadConfig(root, stackName string) (config.Config, error) {
	sf, err := stackfile.Load(root, stackName)
	if err != nil {
		return config.Config{}, err
	}
	res, err := config.Load(sf.Lookup, sf.IsSecret)
	return res.Config, err
}

// Outcome is what one deploy did.
type Outcome struct {
	// Changed is false when the cluster already matched the render.
	Changed bool
	// Warnings the API server sent back while applying.
	Warnings []string
	// Checks are the convergence checks of the stack.
	Checks []Check
}

// PrepareNodes creates the fake nodes and StorageClasses the stacks expect,
// the ones that are missing only. Existing ones are left alone: once a node has
// been cordoned or drained, the node controller co-owns its taints, and
// re-applying ours would fight it.
func PrepareNodes(k Kubectl, cfgs ...config.Config) error {
	infra, err := ToYAML(Infrastructure(cfgs...))
	if err != nil {
		return err
	}
	_, stderr, err := k.Run(infra, "create", "-f", "-")
	if err == nil {
		return nil
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line != "" && !strings.Contains(line, "AlreadyExists") && !strings.Contains(line, "already exists") {
			return err
		}
	}
	return nil
}

// Deploy renders the stack, applies it server-side with strict validation
// unless the cluster already matches, and waits for it to converge.
func Deploy(root, stackName string, k Kubectl, timeout time.Duration, out io.Writer) (Outcome, error) {
	cfg, err := LoadConfig(root, stackName)
	if err != nil {
		return Outcome{}, err
	}
	objs, err := render.Objects(root, stackName)
	if err != nil {
		return Outcome{}, err
	}
	manifests, err := render.Manifests(objs)
	if err != nil {
		return Outcome{}, err
	}
	var o Outcome
	// A diff fails before the namespace exists: that is a first deploy.
	diff, diffErr := k.Diff(manifests)
	if diffErr == nil && strings.TrimSpace(diff) == "" {
		fmt.Fprintf(out, "stack %s: the cluster already matches the render (%d objects); nothing to apply\n", stackName, len(objs))
	} else {
		if err := FetchFirst(k, cfg, objs, timeout, out); err != nil {
			return o, fmt.Errorf("stack %s: %w", stackName, err)
		}
		applying(out, stackName, len(objs))
		res, err := k.Apply(manifests)
		o.Changed, o.Warnings = true, res.Warnings
		for _, w := range res.Warnings {
			fmt.Fprintln(out, "  "+w)
		}
		if err != nil {
			return o, err
		}
	}
	o.Checks = Checks(k, cfg)
	if err := Wait(k, cfg.Namespace.Name, o.Checks, timeout, out); err != nil {
		return o, fmt.Errorf("stack %s: %w", stackName, err)
	}
	Table(o.Checks, out)
	return o, nil
}

// FetchFirst applies everything but the Deployments of models whose weights
// are fetched, and waits for the fetch runs, as `pulumi up` does: a server
// starts, or rolls to a new revision, only once its weights are on disk.
// Without a fetched model it does nothing.
func FetchFirst(k Kubectl, cfg config.Config, objs []mock.Object, timeout time.Duration, out io.Writer) error {
	held := heldServers(cfg)
	if len(held) == 0 {
		return nil
	}
	first := beforeServers(objs, held)
	manifests, err := render.Manifests(first)
	if err != nil {
		return err
	}
	applyingFirst(out, len(first))
	res, err := k.Apply(manifests)
	for _, w := range res.Warnings {
		fmt.Fprintln(out, "  "+w)
	}
	if err != nil {
		return err
	}
	return Wait(k, cfg.Namespace.Name, FetchChecks(k, cfg), timeout, out)
}

// heldServers are the Deployments (or LeaderWorkerSets) of models whose weights are fetched: they
// are applied only once the fetch runs completed.
func heldServers(cfg config.Config) map[string]bool {
	held := map[string]bool{}
	for _, m := range cfg.Serving.Models {
		if m.Source.Fetched() {
			held[names.Inference(m.Name)] = true
		}
	}
	return held
}

// beforeServers is every object but the held Deployments.
func beforeServers(objs []mock.Object, held map[string]bool) []mock.Object {
	var first []mock.Object
	for _, o := range objs {
		if !((o.Kind() == "Deployment" || o.Kind() == "LeaderWorkerSet") && held[o.Name()]) {
			first = append(first, o)
		}
	}
	return first
}

func applyingFirst(out io.Writer, n int) {
	fmt.Fprintf(out, "applying %d objects before the model servers, whose weights are fetched first\n", n)
}

func applying(out io.Writer, stackName string, n int) {
	fmt.Fprintf(out, "stack %s: applying %d objects (server-side, strict validation)\n", stackName, n)
}
