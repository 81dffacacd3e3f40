package stack

import (
	"context"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/client-go/kubernetes"

	"llm-platform/internal/config"
	"llm-platform/internal/drift"
)

// LiveCluster is what the program asks of the cluster its provider
// reaches (internal/preflight.Cluster).
type LiveCluster interface {
	// Identify returns the cluster's identity (config.Cluster.UID) and its
	// API server's address, for messages.
	Identify(ctx context.Context) (uid, server string, err error)
	// CheckPreview fails a preview whose identity could not dry-run the
	// stack's changes in namespace.
	CheckPreview(ctx context.Context, namespace string) error
	// ReadDrift reads the metadata of the stack's objects in namespace
	// (internal/drift.Read); nil for a cluster that has none to give.
	ReadDrift(ctx context.Context, namespace string) (*drift.Live, error)
	// Kubernetes is a client of the cluster, for what a change does to
	// the objects running there (checkpointStorageChange).
	Kubernetes() kubernetes.Interface
}

// Connect, when set, reaches the cluster the stack's provider reaches: the
// `kubernetes:` config, else KUBECONFIG. main sets it; the mock engine and
// the offline render leave it unset, having no cluster to ask.
var Connect func(cluster config.Cluster) (LiveCluster, error)

// onCluster asks the cluster, before any object is registered: which
// cluster it is (on the wrong one every other message misleads: a
// permission missing there would be granted there), which it records in
// cluster.UID; at a preview, whether this identity may preview; what a
// change of checkpoint.storage does to the running store
// (checkpointStorageChange); then what was changed outside the stack on its
// objects, for the drift transform (internal/drift), whose findings are
// warned about.
func onCluster(ctx *pulumi.Context, cfg config.Config, cluster *config.Cluster) error {
	live, err := Connect(*cluster)
	if err != nil {
		return err
	}
	uid, server, err := live.Identify(ctx.Context())
	if err != nil {
		return err
	}
	if err := sameCluster(ctx, uid, server, cluster.Identifier, cfg.AcceptCluster); err != nil {
		return err
	}
	cluster.UID = uid
	if ctx.DryRun() {
		if err := live.CheckPreview(ctx.Context(), cfg.Namespace.Name); err != nil {
			return err
		}
	}
	warning, err := checkpointStorageChange(ctx.Context(), live.Kubernetes(), cfg.Namespace.Name, cfg.Checkpoint)
	if err != nil {
		return err
	}
	if warning != "" {
		if err := ctx.Log.Warn(warning, nil); err != nil {
			return err
		}
	}
	objects, err := live.ReadDrift(ctx.Context(), cfg.Namespace.Name)
	if err != nil || objects == nil {
		return err
	}
	return ctx.RegisterResourceTransform(drift.Transform(objects, func(object string, found []drift.Finding) {
		_ = ctx.Log.Warn(drift.Describe(object, found), nil)
	}))
}

// The stack outputs that record which cluster the stack was deployed to:
// its UID, and kubernetes:clusterIdentifier when set.
const (
	ClusterUIDOutput        = "clusterUID"
	ClusterIdentifierOutput = "kubernetesClusterIdentifier"
)

// sameCluster refuses a run that reaches another cluster than the stack's
// last deployment did. Nothing else would notice: with no
// kubernetes:kubeconfig in the stack's config the providers read
// KUBECONFIG, so a kubeconfig pointing elsewhere changes none of their
// inputs, and `pulumi up` would create every object on the cluster reached
// while the objects on the other one keep running, no longer managed. The
// record is the stack's own clusterUID output, read back through a
// StackReference to the stack itself; a stack never deployed has none and
// passes. It also refuses a new kubernetes:clusterIdentifier on the same
// cluster (identifier is the one this run has, "" when unset): a changed
// identifier is pulumi-kubernetes' sign of a new cluster, on which it
// replaces every object of the stack. accept (llm-platform:acceptCluster),
// when it is uid, lets a run reach a cluster other than the record's: the
// way onto a cluster rebuilt after a disaster.
func sameCluster(ctx *pulumi.Context, uid, server, identifier, accept string) error {
	self := selfReference(ctx)
	ref, err := pulumi.NewStackReference(ctx, "last-deployment", &pulumi.StackReferenceArgs{Name: pulumi.String(self)})
	if err != nil {
		return fmt.Errorf("reading the stack's last deployment (%s): %w", self, err)
	}
	output := func(name string) (string, error) {
		out, err := ref.GetOutputDetails(name)
		if err != nil {
			return "", fmt.Errorf("reading the stack's last deployment (%s): output %s: %w", self, name, err)
		}
		v, _ := out.Value.(string)
		return v, nil
	}
	deployed, err := output(ClusterUIDOutput)
	if err != nil {
		return err
	}
	deployedIdentifier, err := output(ClusterIdentifierOutput)
	if err != nil {
		return err
	}
	if deployed == "" || deployed == uid {
		if deployedIdentifier != "" && identifier != "" && identifier != deployedIdentifier {
			return fmt.Errorf("kubernetes:clusterIdentifier changed from %q to %q, and the cluster is the same one (kube-system UID %s, at %s): "+
				"pulumi-kubernetes takes a new identifier for a new cluster and would replace every object of the stack (delete and create each Deployment, Job and Service); "+
				"set it back: pulumi config set kubernetes:clusterIdentifier %s", deployedIdentifier, identifier, uid, server, deployedIdentifier)
		}
		if accept != "" {
			return ctx.Log.Warn(fmt.Sprintf("llm-platform:acceptCluster: %s has no effect: the stack was deployed to the cluster this run reaches (%s); remove it", accept, uid), nil)
		}
		return nil
	}
	if accept == uid {
		return ctx.Log.Warn(fmt.Sprintf("llm-platform:acceptCluster: stack %q was deployed to cluster %s and now goes to %s (%s), as accepted: objects missing there are created (run with --refresh so that the state forgets the old cluster's), and the old cluster's objects, if it still runs, are left as they are; remove the key after this run", ctx.Stack(), deployed, uid, server), nil)
	}
	if accept != "" {
		return fmt.Errorf("llm-platform:acceptCluster: %q is invalid: it accepts a cluster this run does not reach: this run reaches %s, whose kube-system namespace UID is %s; point the kubeconfig at the cluster you meant, or set acceptCluster to %s if this one is it", accept, server, uid, uid)
	}
	return fmt.Errorf("stack %q was deployed to another cluster (kube-system namespace UID %s) than this run reaches (%s, kube-system UID %s): "+
		"going on would create every object of the stack on %s and leave the objects on the other cluster running, no longer managed by any stack. "+
		"A stack manages one cluster: if the kubeconfig (kubernetes:kubeconfig, kubernetes:context, or KUBECONFIG) points at the wrong cluster, point it back; "+
		"to run this configuration on the other cluster, create a stack for it (pulumi stack init <name>, with this stack's config); "+
		"if this cluster replaces that one (rebuilt after a disaster), accept it for one run: pulumi up --refresh --config llm-platform:acceptCluster=%s; "+
		"to retire this stack, run pulumi destroy with a kubeconfig that reaches the cluster it was deployed to "+
		"(pulumi destroy and pulumi refresh do not run this program, so nothing checks the cluster for them: with KUBECONFIG at %s they would act on the objects of the same names there)",
		ctx.Stack(), deployed, server, uid, server, uid, server)
}

// selfReference names the stack for a StackReference to itself. Pulumi Cloud
// takes <organization>/<project>/<stack>; a file or bucket backend (whose
// organization is always "organization") takes the bare stack name, which
// its legacy layout, not yet moved to projects by `pulumi state upgrade`,
// requires: it refuses a name with "/".
func selfReference(ctx *pulumi.Context) string {
	if ctx.Organization() == "" || ctx.Organization() == "organization" {
		return ctx.Stack()
	}
	return fmt.Sprintf("%s/%s/%s", ctx.Organization(), ctx.Project(), ctx.Stack())
}
