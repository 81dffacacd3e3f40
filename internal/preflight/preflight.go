// Package preflight checks, before a preview, that the identity running it
// may do what a preview of the stack does. pulumi-kubernetes previews with
// server-side apply: a dry-run patch of each object that exists, a dry-run
// create of each that does not, and `--refresh` reads them. An identity that
// may only read gets no error from it: the preview falls back to the diff of
// its inputs and passes, having checked nothing against the cluster. So the
// program asks the API server first (SelfSubjectAccessReview) and fails the
// preview, naming what is missing. The entry point is Check; Client builds
// the client from the same settings the provider reads.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"llm-platform/internal/drift"
)

// Access is a kind of object every stack manages, as RBAC names it.
type Access struct {
	Group, Resource string
	// ClusterScoped objects are checked without a namespace.
	ClusterScoped bool
}

// Previewed are the kinds every stack creates, whatever its config: an
// identity that may not dry-run these cannot preview any stack. The full
// set, per feature, is the ClusterRole of deploy/ci-preview-identity.yaml.
var Previewed = []Access{
	{"", "namespaces", true},
	{"scheduling.k8s.io", "priorityclasses", true},
	{"", "resourcequotas", false},
	{"", "limitranges", false},
	{"", "serviceaccounts", false},
	{"", "services", false},
	{"", "persistentvolumeclaims", false},
	{"apps", "deployments", false},
	{"apps", "statefulsets", false},
	{"batch", "jobs", false},
	{"batch", "cronjobs", false},
	{"networking.k8s.io", "networkpolicies", false},
}

// Verbs are what a preview does to each: read it (refresh), dry-run a
// create (a new object) and a patch (a changed one).
var Verbs = []string{"get", "create", "patch"}

func restConfig(kubeconfig, context, cluster string) (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{CurrentContext: context}
	overrides.Context.Cluster = cluster
	var cc clientcmd.ClientConfig
	if kubeconfig == "" {
		cc = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), overrides)
	} else if raw, err := clientcmd.Load([]byte(kubeconfig)); err == nil && len(raw.Clusters) > 0 {
		cc = clientcmd.NewNonInteractiveClientConfig(*raw, context, overrides, nil)
	} else {
		path := kubeconfig
		if rest, ok := strings.CutPrefix(path, "~/"); ok {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("kubernetes:kubeconfig: cannot expand ~: %w", err)
			}
			path = filepath.Join(home, rest)
		}
		if _, err := os.Stat(path); err != nil {
			return nil, errors.New("kubernetes:kubeconfig is neither a kubeconfig document (YAML or JSON) nor the path of a readable file")
		}
		cc = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, overrides)
	}
	rc, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the program cannot reach the cluster: its kubeconfig: %w", err)
	}
	// The reviews go out at once; client-go's default limit (5 per second)
	// would delay them and log that it did.
	rc.QPS, rc.Burst = 100, 100
	return rc, nil
}

// Cluster is the cluster the stack's provider reaches, as the program asks
// it: which cluster it is, whether this identity may preview, and the drift
// of the stack's objects. Build it with Connect.
type Cluster struct {
	client   kubernetes.Interface
	metadata metadata.Interface
}

// Connect reaches the cluster the stack's provider talks to: kubeconfig is
// `kubernetes:kubeconfig`, the file's text (YAML or JSON) or a path to it
// ("~/" expanded), as the provider takes it; "" means KUBECONFIG or
// ~/.kube/config. context and cluster select within it. Nothing is sent
// until a method is called. An error never repeats the kubeconfig: it may
// hold a token.
func Connect(kubeconfig, context, cluster string) (*Cluster, error) {
	rc, err := restConfig(kubeconfig, context, cluster)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Cluster{client: client, metadata: meta}, nil
}

// Identify returns the cluster's identity (ClusterUID) and its API server's
// address (Server).
func (c *Cluster) Identify(ctx context.Context) (uid, server string, err error) {
	uid, err = ClusterUID(ctx, c.client)
	return uid, Server(c.client), err
}

// CheckPreview is Check.
func (c *Cluster) CheckPreview(ctx context.Context, namespace string) error {
	return Check(ctx, c.client, namespace)
}

// Kubernetes is the cluster's clientset.
func (c *Cluster) Kubernetes() kubernetes.Interface { return c.client }

// ReadDrift reads the metadata of the stack's objects in namespace
// (internal/drift.Read).
func (c *Cluster) ReadDrift(ctx context.Context, namespace string) (*drift.Live, error) {
	return drift.Read(ctx, c.metadata, namespace)
}

// Check asks whether the current identity may get, create and patch every
// kind of Previewed (the namespaced ones in namespace); the error lists
// everything it may not, and how to grant it.
func Check(ctx context.Context, client kubernetes.Interface, namespace string) error {
	var (
		mu      sync.Mutex
		missing []string
		failed  error
		wg      sync.WaitGroup
	)
	for _, a := range Previewed {
		for _, verb := range Verbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				attrs := &authorizationv1.ResourceAttributes{Verb: verb, Group: a.Group, Resource: a.Resource}
				if !a.ClusterScoped {
					attrs.Namespace = namespace
				}
				review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
					&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}},
					metav1.CreateOptions{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					failed = err
				case !review.Status.Allowed:
					missing = append(missing, verb+" "+qualified(a))
				}
			}()
		}
	}
	wg.Wait()
	if failed != nil {
		return fmt.Errorf("the preview cannot check the cluster: asking the API server what this identity may do failed: %w", failed)
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("the identity running this preview may not %s (in namespace %s where namespaced): a preview dry-runs every change on the API server (server-side apply), and without these verbs it would show a diff nobody checked; "+
		"a deployer needs these verbs for real; CI's previews should run as the dry-run-only ServiceAccount of deploy/ci-preview-identity.yaml (see docs/delivery.md), whose admission policy refuses it any real write", strings.Join(missing, ", "), namespace)
}

func qualified(a Access) string {
	if a.Group == "" {
		return a.Resource
	}
	return a.Resource + "." + a.Group
}

// ClusterUID is the identity of the cluster client reaches: the UID of its
// kube-system namespace, which Kubernetes creates with the cluster and never
// deletes (Kubernetes has no cluster ID of its own; this UID is the usual
// stand-in). The identity needs `get namespaces`, which Previewed asks for.
func ClusterUID(ctx context.Context, client kubernetes.Interface) (string, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("the program cannot tell which cluster it reaches (it reads the UID of namespace %s, which needs get on namespaces): %w", metav1.NamespaceSystem, err)
	}
	return string(ns.UID), nil
}

// Server is the address of the API server client talks to, for messages;
// "the API server reached" when client is not a real clientset (a fake).
func Server(client kubernetes.Interface) string {
	if cs, ok := client.(*kubernetes.Clientset); ok && cs.CoreV1().RESTClient() != nil {
		// The core group's URL: the server's, its path (a proxy's) kept, then /api/v1.
		u := cs.CoreV1().RESTClient().Get().URL()
		return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/api/v1")
	}
	return "the API server reached"
}
