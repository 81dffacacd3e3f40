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
	"llm-platform/internal/dra"
	"llm-platform/internal/intent"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
)

// Priority values: serving preempts batch, batch never preempts anything.
const (
	PriorityServingValue = 100000
	PriorityBatchValue   = 1000
)

// Args describes the platform namespace and the workloads it guards.
type Args struct {
	// Namespace is the namespace's name.
	Namespace string
	// Quota is the namespace's ResourceQuota.
	Quota Quota
	// DefaultRequest and DefaultLimit are the LimitRange's defaults for a
	// container that sets none.
	DefaultRequest, DefaultLimit podspec.ResourceList
	// DNS locates the cluster DNS pods every pod may reach.
	DNS DNS
	// Workloads are what each workload of the stack declares: each gets a
	// ServiceAccount, and the NetworkPolicies that let exactly its declared
	// traffic through the namespace's default deny.
	Workloads []intent.Workload
	// ModelRegistryToken, when set, is stored in the Secret names.ModelRegistryToken.
	ModelRegistryToken pulumi.StringInput
	// RegistryCredentials, when set, is a .dockerconfigjson stored in the Secret
	// names.RegistryCredentials and used to pull images.
	RegistryCredentials pulumi.StringInput
	// Cluster is how the stack reaches its cluster; the Adopter provider
	// uses it, so it talks to the cluster the default provider talks to.
	Cluster Cluster
}

// Quota is the namespace's hard ResourceQuota.
type Quota struct {
	// CPU, Memory and Storage cap requests (Memory caps limits too).
	CPU, Memory, Storage string
	// GPUs caps requests of GPUResourceName; Pods caps the pod count.
	GPUs, Pods      int
	GPUResourceName string
	// DeviceClasses are the DRA device classes the stack claims GPUs from;
	// each is capped at GPUs devices (<class>.deviceclass.resource.k8s.io/devices).
	DeviceClasses []string
}

// DNS locates the cluster DNS pods.
type DNS struct {
	Namespace string
	PodLabels map[string]string
}

// Cluster is how the stack's Kubernetes provider reaches the cluster.
type Cluster struct {
	// Kubeconfig is a path or the file's text; nil means the provider's default.
	Kubeconfig pulumi.StringInput
	// Context and Cluster select within it; empty means its current ones.
	Context, Cluster string
	// Identifier names the cluster for good (its kube-system namespace's
	// UID), "" when unknown. It is the adopter provider's clusterIdentifier:
	// while it is unchanged, pulumi-kubernetes plans no replacement of the
	// provider, whatever else changes in how it reaches the cluster (another
	// kubeconfig path, a new token, a proxy URL, the context named).
	Identifier string
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
	// Without kubernetes:kubeconfig the SDK would store the KUBECONFIG
	// path of the machine that ran `pulumi up` as the provider's input, and
	// a preview from a machine with another path (a CI runner) would show the
	// provider changed. "" is stored instead; the provider then reads
	// KUBECONFIG (or ~/.kube/config) wherever it runs, as the default one does.
	kubeconfig := args.Cluster.Kubeconfig
	if kubeconfig == nil {
		kubeconfig = pulumi.String("")
	}
	adopter, err := kubernetes.NewProvider(ctx, name+"-adopter", &kubernetes.ProviderArgs{
		Kubeconfig:            kubeconfig,
		Context:               optionalString(args.Cluster.Context),
		Cluster:               optionalString(args.Cluster.Cluster),
		ClusterIdentifier:     optionalString(args.Cluster.Identifier),
		UpsertExistingObjects: pulumi.BoolPtr(true),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("platform %q: adopter provider: %w", name, err)
	}
	p.Adopter = adopter
	workload := labels.Workload{Name: "platform", Instance: args.Namespace, Component: "platform"}
	platformLabels := workload.AllInput()
	nsLabels := workload.All()
	for _, mode := range []string{"enforce", "audit", "warn"} {
		nsLabels["pod-security.kubernetes.io/"+mode] = "restricted"
		nsLabels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	// The namespace is kept on destroy: deleting it would delete every claim in
	// it, and the claims hold checkpoints, model caches and pipeline data.
	namespace, err := corev1.NewNamespace(ctx, name+"-namespace", &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(args.Namespace), Labels: pulumi.ToStringMap(nsLabels), Annotations: availability.Adopted()},
	}, parent, pulumi.RetainOnDelete(true), pulumi.Provider(adopter))
	if err != nil {
		return nil, fmt.Errorf("platform %q: namespace: %w", name, err)
	}
	p.Namespace = namespace.Metadata.Name().Elem()
	meta := func(objectName string) *metav1.ObjectMetaArgs {
		return &metav1.ObjectMetaArgs{Name: pulumi.String(objectName), Namespace: p.Namespace, Labels: platformLabels}
	}

	q := args.Quota
	quota := pulumi.StringMap{
		"requests.cpu":                  pulumi.String(q.CPU),
		"requests.memory":               pulumi.String(q.Memory),
		"limits.memory":                 pulumi.String(q.Memory),
		"requests." + q.GPUResourceName: pulumi.Sprintf("%d", q.GPUs),
		"pods":                          pulumi.Sprintf("%d", q.Pods),
		"requests.storage":              pulumi.String(q.Storage),
	}
	for _, class := range q.DeviceClasses {
		quota[dra.QuotaResource(class)] = pulumi.Sprintf("%d", q.GPUs)
	}
	if _, err := corev1.NewResourceQuota(ctx, name+"-quota", &corev1.ResourceQuotaArgs{
		Metadata: meta(names.ResourceQuota),
		Spec:     &corev1.ResourceQuotaSpecArgs{Hard: quota},
	}, parent); err != nil {
		return nil, fmt.Errorf("platform %q: quota: %w", name, err)
	}

	if _, err := corev1.NewLimitRange(ctx, name+"-limits", &corev1.LimitRangeArgs{
		Metadata: meta(names.LimitRange),
		Spec: &corev1.LimitRangeSpecArgs{Limits: corev1.LimitRangeItemArray{corev1.LimitRangeItemArgs{
			Type:           pulumi.String("Container"),
			DefaultRequest: resourceMap(args.DefaultRequest),
			Default:        resourceMap(args.DefaultLimit),
		}}},
	}, parent); err != nil {
		return nil, fmt.Errorf("platform %q: limit range: %w", name, err)
	}

	if err := p.networkPolicies(ctx, name, args, meta, parent); err != nil {
		return nil, fmt.Errorf("platform %q: %w", name, err)
	}

	servingClass, err := schedulingv1.NewPriorityClass(ctx, name+"-priority-serving", &schedulingv1.PriorityClassArgs{
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(names.PriorityServing(args.Namespace)), Labels: platformLabels},
		Value:       pulumi.Int(PriorityServingValue),
		Description: pulumi.String("Inference and checkpoint pods of " + args.Namespace + ": outrank batch work."),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("platform %q: serving priority: %w", name, err)
	}
	batchClass, err := schedulingv1.NewPriorityClass(ctx, name+"-priority-batch", &schedulingv1.PriorityClassArgs{
		Metadata:         &metav1.ObjectMetaArgs{Name: pulumi.String(names.PriorityBatch(args.Namespace)), Labels: platformLabels},
		Value:            pulumi.Int(PriorityBatchValue),
		PreemptionPolicy: pulumi.String("Never"),
		Description:      pulumi.String("Pipeline pods of " + args.Namespace + ": wait for room, never preempt."),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("platform %q: batch priority: %w", name, err)
	}
	p.PriorityServing = servingClass.Metadata.Name().Elem()
	p.PriorityBatch = batchClass.Metadata.Name().Elem()

	for _, w := range args.Workloads {
		workload := w.Name
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

// networkPolicies are the namespace's default deny, the DNS allow every pod
// needs, and per workload what it declared: an ingress policy for the ports
// it serves, an egress policy for the networks it reaches. Ports served to
// the whole stack are also let out of every pod of the stack.
func (p *Platform) networkPolicies(ctx *pulumi.Context, name string, args Args, meta func(string) *metav1.ObjectMetaArgs, parent pulumi.ResourceOption) error {
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
					NamespaceSelector: namespaceSelector(args.DNS.Namespace),
					PodSelector:       &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(args.DNS.PodLabels)},
				}},
				Ports: networkingv1.NetworkPolicyPortArray{
					networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("UDP"), Port: pulumi.Int(53)},
					networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(53)},
				},
			}},
		},
	}}

	platformPods := &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{labels.PartOf: pulumi.String(labels.Product)}}
	var internal networkingv1.NetworkPolicyEgressRuleArray
	for _, w := range args.Workloads {
		pods := &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(w.Pods)}
		var in networkingv1.NetworkPolicyIngressRuleArray
		for _, serve := range w.Serves {
			from := peers(serve.From, platformPods)
			if len(from) == 0 {
				continue
			}
			in = append(in, networkingv1.NetworkPolicyIngressRuleArgs{From: from, Ports: tcpRange(serve.Port, serve.EndPort)})
			if serve.From.Stack {
				internal = append(internal, networkingv1.NetworkPolicyEgressRuleArgs{
					To: networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{PodSelector: pods}}, Ports: tcpPorts([]int{serve.Port}),
				})
			}
		}
		if len(in) > 0 {
			policies = append(policies, policy{"netpol-in-" + w.Name, names.NetworkIngress(w.Name), &networkingv1.NetworkPolicySpecArgs{
				PodSelector: pods, PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}), Ingress: in,
			}})
		}
		var out networkingv1.NetworkPolicyEgressRuleArray
		for _, c := range w.Calls {
			out = append(out, networkingv1.NetworkPolicyEgressRuleArgs{
				To:    networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(c.Pods)}}},
				Ports: tcpRange(c.Port, c.EndPort),
			})
		}
		for _, e := range w.Reaches {
			out = append(out, networkingv1.NetworkPolicyEgressRuleArgs{
				To:    networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{Cidr: pulumi.String(e.CIDR)}}},
				Ports: tcpPorts(e.Ports),
			})
		}
		if len(out) > 0 {
			policies = append(policies, policy{"netpol-out-" + w.Name, names.NetworkEgress(w.Name), &networkingv1.NetworkPolicySpecArgs{
				PodSelector: pods, PolicyTypes: pulumi.ToStringArray([]string{"Egress"}), Egress: out,
			}})
		}
	}
	if len(internal) > 0 {
		policies = append(policies, policy{"netpol-internal-egress", names.NetworkInternalOut, &networkingv1.NetworkPolicySpecArgs{
			PodSelector: platformPods, PolicyTypes: pulumi.ToStringArray([]string{"Egress"}), Egress: internal,
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

// peers turns declared clients into NetworkPolicy peers.
func peers(p intent.Peers, platformPods *metav1.LabelSelectorArgs) networkingv1.NetworkPolicyPeerArray {
	var out networkingv1.NetworkPolicyPeerArray
	if len(p.Namespaces) > 0 {
		out = append(out, networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: namespaceSelector(p.Namespaces...)})
	}
	if len(p.PodLabels) > 0 {
		out = append(out, networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.ToStringMap(p.PodLabels)}})
	}
	if p.Stack {
		out = append(out, networkingv1.NetworkPolicyPeerArgs{PodSelector: platformPods})
	}
	return out
}

func namespaceSelector(namespaces ...string) *metav1.LabelSelectorArgs {
	return &metav1.LabelSelectorArgs{MatchExpressions: metav1.LabelSelectorRequirementArray{metav1.LabelSelectorRequirementArgs{
		Key: pulumi.String("kubernetes.io/metadata.name"), Operator: pulumi.String("In"), Values: pulumi.ToStringArray(namespaces),
	}}}
}

// tcpRange is one TCP port, or the range port to endPort when endPort is
// above it.
func tcpRange(port, endPort int) networkingv1.NetworkPolicyPortArray {
	if endPort <= port {
		return tcpPorts([]int{port})
	}
	return networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{
		Protocol: pulumi.String("TCP"), Port: pulumi.Int(port), EndPort: pulumi.Int(endPort),
	}}
}

func tcpPorts(ports []int) networkingv1.NetworkPolicyPortArray {
	unique := slices.Compact(slices.Sorted(slices.Values(ports)))
	out := make(networkingv1.NetworkPolicyPortArray, 0, len(unique))
	for _, p := range unique {
		out = append(out, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(p)})
	}
	return out
}

func resourceMap(l podspec.ResourceList) pulumi.StringMap {
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
