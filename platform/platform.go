// Package platform creates the platform namespace and everything that guards
// it: Pod Security "restricted" labels, a ResourceQuota and LimitRange, a
// default-deny NetworkPolicy with exactly the allows the stack needs,
// PriorityClasses so serving outranks batch, one ServiceAccount per workload,
// and the Secrets the workloads read.
package platform

import (
	"fmt"
	"slices"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	schedulingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/scheduling/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/availability"
	"llm-platform/internal/config"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
)

// Priority values: serving preempts batch, batch never preempts anything.
const (
	PriorityServingValue = 100000
	PriorityBatchValue   = 1000
)

// Args configures the platform namespace.
type Args struct {
	// Namespace is the validated namespace configuration.
	Namespace config.Namespace
	// GPUResourceName is the extended resource the quota caps (for example nvidia.com/gpu).
	GPUResourceName string
	// Workloads are the ServiceAccount names to create, one per workload.
	Workloads []string
	// InferencePorts are the ports inference clients may reach.
	InferencePorts []int
	// MetricsPorts are the ports metrics scrapers may reach.
	MetricsPorts []int
	// InternalPorts are the ports pods of the stack reach each other on
	// (transformation, checkpoint).
	InternalPorts []int
	// ModelRegistryToken, when set, is stored in the Secret names.ModelRegistryToken.
	ModelRegistryToken pulumi.StringInput
	// RegistryCredentials, when set, is a .dockerconfigjson stored in the Secret
	// names.RegistryCredentials and used to pull images.
	RegistryCredentials pulumi.StringInput
	// Cluster is how the stack reaches its cluster; the Adopter provider
	// uses it, so it talks to the cluster the default provider talks to.
	Cluster config.Cluster
}

// Platform is the namespace and its guards.
type Platform struct {
	pulumi.ResourceState

	// Namespace is the namespace's name, resolved once it exists: objects that
	// take it as input are created after it.
	Namespace pulumi.StringOutput
	// PriorityServing and PriorityBatch are PriorityClass names.
	PriorityServing pulumi.StringOutput
	PriorityBatch   pulumi.StringOutput
	// ServiceAccounts maps a workload to its ServiceAccount name.
	ServiceAccounts map[string]pulumi.StringOutput
	// ModelRegistryTokenSecret names the token Secret, nil when there is none.
	ModelRegistryTokenSecret pulumi.StringInput
	// ImagePullSecret names the registry credentials Secret, nil when there is none.
	ImagePullSecret pulumi.StringPtrInput
	// Adopter is the provider of the objects the stack keeps on delete (the
	// namespace, the claims). It adopts an object of the same name that an
	// earlier run kept (upsertExistingObjects) instead of failing with
	// AlreadyExists: a model removed and added again, a claim's class changed
	// and changed back, the stack destroyed and brought back.
	Adopter pulumi.ProviderResource
}

// New creates the namespace and its guards.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Platform, error) {
	p := &Platform{ServiceAccounts: map[string]pulumi.StringOutput{}}
	if err := ctx.RegisterComponentResource("llm-platform:index:Platform", name, p, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(p)
	ns := args.Namespace
	adopter, err := kubernetes.NewProvider(ctx, name+"-adopter", &kubernetes.ProviderArgs{
		Kubeconfig:            args.Cluster.Kubeconfig,
		Context:               optionalString(args.Cluster.Context),
		Cluster:               optionalString(args.Cluster.Cluster),
		UpsertExistingObjects: pulumi.BoolPtr(true),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("platform %q: adopter provider: %w", name, err)
	}
	p.Adopter = adopter
	workload := labels.Workload{Name: "platform", Instance: ns.Name, Component: "platform"}
	platformLabels := workload.AllInput()
	nsLabels := workload.All()
	for _, mode := range []string{"enforce", "audit", "warn"} {
		nsLabels["pod-security.kubernetes.io/"+mode] = "restricted"
		nsLabels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	// The namespace is kept on destroy: deleting it would delete every claim in
	// it, and the claims hold checkpoints, model caches and pipeline data.
	namespace, err := corev1.NewNamespace(ctx, name+"-namespace", &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ns.Name), Labels: pulumi.ToStringMap(nsLabels), Annotations: availability.Adopted()},
	}, parent, pulumi.RetainOnDelete(true), pulumi.Provider(adopter))
	if err != nil {
		return nil, fmt.Errorf("platform %q: namespace: %w", name, err)
	}
	p.Namespace = namespace.Metadata.Name().Elem()
	meta := func(objectName string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(objectName), Namespace: p.Namespace, Labels: platformLabels}
	}

	quota := pulumi.StringMap{
		"requests.cpu":                     pulumi.String(ns.Quota.CPU),
		"requests.memory":                  pulumi.String(ns.Quota.Memory),
		"limits.memory":                    pulumi.String(ns.Quota.Memory),
		"requests." + args.GPUResourceName: pulumi.Sprintf("%d", ns.Quota.GPUs),
		"pods":                             pulumi.Sprintf("%d", ns.Quota.Pods),
		"requests.storage":                 pulumi.String(ns.Quota.Storage),
	}
	if _, err := corev1.NewResourceQuota(ctx, name+"-quota", &corev1.ResourceQuotaArgs{
		Metadata: meta(names.ResourceQuota),
		Spec:     &corev1.ResourceQuotaSpecArgs{Hard: quota},
	}, parent); err != nil {
		return nil, fmt.Errorf("platform %q: quota: %w", name, err)
	}

	lr := ns.LimitRange
	if _, err := corev1.NewLimitRange(ctx, name+"-limits", &corev1.LimitRangeArgs{
		Metadata: meta(names.LimitRange),
		Spec: &corev1.LimitRangeSpecArgs{Limits: corev1.LimitRangeItemArray{corev1.LimitRangeItemArgs{
			Type:           pulumi.String("Container"),
			DefaultRequest: resourceMap(lr.DefaultRequest),
			Default:        resourceMap(lr.Default),
		}}},
	}, parent); err != nil {
		return nil, fmt.Errorf("platform %q: limit range: %w", name, err)
	}

	if err := p.networkPolicies(ctx, name, args, meta, parent); err != nil {
		return nil, fmt.Errorf("platform %q: %w", name, err)
	}

	servingClass, err := schedulingv1.NewPriorityClass(ctx, name+"-priority-serving", &schedulingv1.PriorityClassArgs{
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(names.PriorityServing(ns.Name)), Labels: platformLabels},
		Value:       pulumi.Int(PriorityServingValue),
		Description: pulumi.String("Inference and checkpoint pods of " + ns.Name + ": outrank batch work."),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("platform %q: serving priority: %w", name, err)
	}
	batchClass, err := schedulingv1.NewPriorityClass(ctx, name+"-priority-batch", &schedulingv1.PriorityClassArgs{
		Metadata:         &metav1.ObjectMetaArgs{Name: pulumi.String(names.PriorityBatch(ns.Name)), Labels: platformLabels},
		Value:            pulumi.Int(PriorityBatchValue),
		PreemptionPolicy: pulumi.String("Never"),
		Description:      pulumi.String("Pipeline pods of " + ns.Name + ": wait for room, never preempt."),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("platform %q: batch priority: %w", name, err)
	}
	p.PriorityServing = servingClass.Metadata.Name().Elem()
	p.PriorityBatch = batchClass.Metadata.Name().Elem()

	for _, workload := range args.Workloads {
		sa, err := corev1.NewServiceAccount(ctx, name+"-sa-"+workload, &corev1.ServiceAccountArgs{
			Metadata:                     meta(workload),
			AutomountServiceAccountToken: pulumi.BoolPtr(false),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("platform %q: service account %q: %w", name, workload, err)
		}
		p.ServiceAccounts[workload] = sa.Metadata.Name().Elem()
	}

	if args.ModelRegistryToken != nil {
		s, err := corev1.NewSecret(ctx, name+"-model-registry-token", &corev1.SecretArgs{
			Metadata:   meta(names.ModelRegistryToken),
			Type:       pulumi.String("Opaque"),
			StringData: pulumi.StringMap{"token": args.ModelRegistryToken},
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("platform %q: model registry token: %w", name, err)
		}
		p.ModelRegistryTokenSecret = s.Metadata.Name().Elem()
	}
	if args.RegistryCredentials != nil {
		s, err := corev1.NewSecret(ctx, name+"-registry-credentials", &corev1.SecretArgs{
			Metadata:   meta(names.RegistryCredentials),
			Type:       pulumi.String("kubernetes.io/dockerconfigjson"),
			StringData: pulumi.StringMap{".dockerconfigjson": args.RegistryCredentials},
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("platform %q: registry credentials: %w", name, err)
		}
		p.ImagePullSecret = s.Metadata.Name()
	}

	outputs := pulumi.Map{
		"namespace":       p.Namespace,
		"priorityServing": p.PriorityServing,
		"priorityBatch":   p.PriorityBatch,
	}
	if err := ctx.RegisterResourceOutputs(p, outputs); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Platform) networkPolicies(ctx *pulumi.Context, name string, args Args, meta func(string) *metav1.ObjectMetaArgs, parent pulumi.ResourceOption) error {
	nw := args.Namespace.Network
	all := &metav1.LabelSelectorArgs{}
	type policy struct {
		suffix, object string
		spec           *networkingv1.NetworkPolicySpecArgs
	}
	policies := []policy{{
		"netpol-default-deny", names.NetworkDefaultDeny,
		&networkingv1.NetworkPolicySpecArgs{PodSelector: all, PolicyTypes: pulumi.ToStringArray([]string{"Ingress", "Egress"})},
	}, {
		"netpol-dns", names.NetworkAllowDNS,
		&networkingv1.NetworkPolicySpecArgs{
			PodSelector: all,
			PolicyTypes: pulumi.ToStringArray([]string{"Egress"}),
			Egress: networkingv1.NetworkPolicyEgressRuleArray{networkingv1.NetworkPolicyEgressRuleArgs{
				To: networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{
					NamespaceSelector: namespaceSelector([]string{nw.DNS.Namespace}),
					PodSelector:       &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(nw.DNS.PodLabels)},
				}},
				Ports: networkingv1.NetworkPolicyPortArray{
					networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("UDP"), Port: pulumi.Int(53)},
					networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(53)},
				},
			}},
		},
	}}

	var clients networkingv1.NetworkPolicyPeerArray
	if len(nw.InferenceClients.Namespaces) > 0 {
		clients = append(clients, networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: namespaceSelector(nw.InferenceClients.Namespaces)})
	}
	if len(nw.InferenceClients.PodLabels) > 0 {
		clients = append(clients, networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(nw.InferenceClients.PodLabels)}})
	}
	if len(clients) > 0 && len(args.InferencePorts) > 0 {
		policies = append(policies, policy{"netpol-inference-clients", names.NetworkAllowClients, &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{labels.Name: pulumi.String("inference")}},
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}),
			Ingress: networkingv1.NetworkPolicyIngressRuleArray{networkingv1.NetworkPolicyIngressRuleArgs{
				From: clients, Ports: tcpPorts(args.InferencePorts),
			}},
		}})
	}
	if len(nw.MetricsScrapers) > 0 && len(args.MetricsPorts) > 0 {
		policies = append(policies, policy{"netpol-metrics", names.NetworkAllowMetrics, &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{labels.Name: pulumi.String("inference")}},
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}),
			Ingress: networkingv1.NetworkPolicyIngressRuleArray{networkingv1.NetworkPolicyIngressRuleArgs{
				From:  networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: namespaceSelector(nw.MetricsScrapers)}},
				Ports: tcpPorts(args.MetricsPorts),
			}},
		}})
	}
	if len(nw.Egress) > 0 {
		var rules networkingv1.NetworkPolicyEgressRuleArray
		for _, e := range nw.Egress {
			rules = append(rules, networkingv1.NetworkPolicyEgressRuleArgs{
				To:    networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{Cidr: pulumi.String(e.CIDR)}}},
				Ports: tcpPorts(e.Ports),
			})
		}
		policies = append(policies, policy{"netpol-egress", names.NetworkAllowEgress, &networkingv1.NetworkPolicySpecArgs{
			PodSelector: all, PolicyTypes: pulumi.ToStringArray([]string{"Egress"}), Egress: rules,
		}})
	}
	if len(args.InternalPorts) > 0 {
		platformPods := &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{labels.PartOf: pulumi.String(labels.Product)}}
		peers := networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{PodSelector: platformPods}}
		policies = append(policies, policy{"netpol-internal", names.NetworkAllowInternal, &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchExpressions: metav1.LabelSelectorRequirementArray{metav1.LabelSelectorRequirementArgs{
				Key: pulumi.String(labels.Name), Operator: pulumi.String("In"),
				Values: pulumi.ToStringArray([]string{names.Transformation, names.Checkpoint}),
			}}},
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}),
			Ingress:     networkingv1.NetworkPolicyIngressRuleArray{networkingv1.NetworkPolicyIngressRuleArgs{From: peers, Ports: tcpPorts(args.InternalPorts)}},
		}}, policy{"netpol-internal-egress", names.NetworkInternalOut, &networkingv1.NetworkPolicySpecArgs{
			PodSelector: platformPods,
			PolicyTypes: pulumi.ToStringArray([]string{"Egress"}),
			Egress:      networkingv1.NetworkPolicyEgressRuleArray{networkingv1.NetworkPolicyEgressRuleArgs{To: peers, Ports: tcpPorts(args.InternalPorts)}},
		}})
	}

	for _, pol := range policies {
		if _, err := networkingv1.NewNetworkPolicy(ctx, name+"-"+pol.suffix, &networkingv1.NetworkPolicyArgs{
			Metadata: meta(pol.object), Spec: pol.spec,
		}, parent); err != nil {
			return fmt.Errorf("network policy %q: %w", pol.object, err)
		}
	}
	return nil
}

func namespaceSelector(namespaces []string) *metav1.LabelSelectorArgs {
	return &metav1.LabelSelectorArgs{MatchExpressions: metav1.LabelSelectorRequirementArray{metav1.LabelSelectorRequirementArgs{
		Key: pulumi.String("kubernetes.io/metadata.name"), Operator: pulumi.String("In"), Values: pulumi.ToStringArray(namespaces),
	}}}
}

func tcpPorts(ports []int) networkingv1.NetworkPolicyPortArray {
	unique := slices.Compact(slices.Sorted(slices.Values(ports)))
	out := make(networkingv1.NetworkPolicyPortArray, 0, len(unique))
	for _, p := range unique {
		out = append(out, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(p)})
	}
	return out
}

func resourceMap(l config.ResourceList) pulumi.StringMap {
	return pulumi.StringMap{
		"cpu":               pulumi.String(l.CPU),
		"memory":            pulumi.String(l.Memory),
		"ephemeral-storage": pulumi.String(l.EphemeralStorage),
	}
}

func optionalString(s string) pulumi.StringPtrInput {
	if s == "" {
		return nil
	}
	return pulumi.StringPtr(s)
}
