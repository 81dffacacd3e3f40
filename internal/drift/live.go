package drift

import (
	"context"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
)

// Kind is a kind of object a stack declares, as the API serves it.
type Kind struct {
	Group, Version, Kind, Resource string
	// ClusterScoped kinds are read by the stack's object names alone.
	ClusterScoped bool
}

// Kinds are every kind of object a stack can declare (the stacks' renders
// hold no other; a unit test keeps it so) but Secrets: listing them would
// need `list secrets`, which reads every value, and which the identity of
// previews and drift checks (deploy/ci-preview-identity.yaml) is not given.
// A kind whose API the cluster does not serve (a CRD not installed) is
// skipped.
var Kinds = []Kind{
	{"", "v1", "Namespace", "namespaces", true},
	{"", "v1", "ResourceQuota", "resourcequotas", false},
	{"", "v1", "LimitRange", "limitranges", false},
	{"", "v1", "ServiceAccount", "serviceaccounts", false},
	{"", "v1", "Service", "services", false},
	{"", "v1", "ConfigMap", "configmaps", false},
	{"", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", false},
	{"apps", "v1", "Deployment", "deployments", false},
	{"apps", "v1", "StatefulSet", "statefulsets", false},
	{"batch", "v1", "Job", "jobs", false},
	{"batch", "v1", "CronJob", "cronjobs", false},
	{"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", false},
	{"policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", false},
	{"autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", false},
	{"rbac.authorization.k8s.io", "v1", "Role", "roles", false},
	{"rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", false},
	{"scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", true},
	{"monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", false},
	{"monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", false},
	{"gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", false},
	{"inference.networking.k8s.io", "v1", "InferencePool", "inferencepools", false},
	{"leaderworkerset.x-k8s.io", "v1", "LeaderWorkerSet", "leaderworkersets", false},
	{"keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", false},
	{"resource.k8s.io", "v1", "ResourceClaimTemplate", "resourceclaimtemplates", false},
}

// Live is the metadata of the stack's objects as the cluster has them, by
// Key. Build it with Read.
type Live struct {
	objects map[string]metav1.PartialObjectMetadata
	// served are the kinds (group/Kind) the cluster was asked for.
	served map[string]bool
}

// Key names an object for Live: group/Kind/name (every namespaced object of
// a stack is in its one namespace).
func Key(group, kind, name string) string { return group + "/" + kind + "/" + name }

// Read lists the metadata (managedFields included) of every object of the
// Kinds in namespace, and the cluster-scoped ones, in one call per kind, at
// once. A kind the cluster does not serve is skipped; any other error (a
// forbidden list) is returned: a drift check that read nothing must not
// pass.
func Read(ctx context.Context, client metadata.Interface, namespace string) (*Live, error) {
	live := &Live{objects: map[string]metav1.PartialObjectMetadata{}, served: map[string]bool{}}
	var (
		mu     sync.Mutex
		errs   []string
		wg     sync.WaitGroup
		reader = func(k Kind) metadata.ResourceInterface {
			r := client.Resource(schema.GroupVersionResource{Group: k.Group, Version: k.Version, Resource: k.Resource})
			if k.ClusterScoped {
				return r
			}
			return r.Namespace(namespace)
		}
	)
	for _, k := range Kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			list, err := reader(k).List(ctx, metav1.ListOptions{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
				return // not served here: nothing of this kind to check
			case err != nil:
				errs = append(errs, fmt.Sprintf("list %s: %v", k.Resource, err))
				return
			}
			live.served[k.Group+"/"+k.Kind] = true
			for _, o := range list.Items {
				live.objects[Key(k.Group, k.Kind, o.Name)] = o
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("the drift check cannot read the stack's objects (it lists their metadata, which needs list on each kind in namespace %s): %s", namespace, strings.Join(errs, "; "))
	}
	return live, nil
}

// Object is the live metadata of one object; ok is false when the cluster
// has no such object (yet).
func (l *Live) Object(group, kind, name string) (metav1.PartialObjectMetadata, bool) {
	o, ok := l.objects[Key(group, kind, name)]
	return o, ok
}

// Served says whether the kind was read: false for a kind not in Kinds,
// and for one the cluster does not serve.
func (l *Live) Served(group, kind string) bool { return l.served[group+"/"+kind] }
