package config

// Change says what changing a config key does to a running stack under
// `pulumi up`. The change table of docs/config.md is written from these, and a test
// fails when a key has no class or the table and this list disagree.
type Change string

// The classes of change.
const (
	// ValidationOnly changes nothing in the cluster by itself.
	ValidationOnly Change = "validation only"
	// InPlace updates the object; no pod restarts.
	InPlace Change = "in place"
	// RolledOut replaces pods under the rollout rules (a surge pod or one at
	// a time, never below replicas - maxUnavailable).
	RolledOut Change = "rolled out"
	// NewRun creates a new ingestion run (a Job named by its spec) beside
	// the old one, which is then deleted.
	NewRun Change = "new run"
	// NewClaim creates a new claim and moves the workload to it; the old
	// claim is kept with its data (retainOnDelete).
	NewClaim Change = "new claim, old one kept"
	// ReplacedDataKept replaces the checkpoint StatefulSet with orphaning
	// deletion: its pods keep serving and the new one adopts them; its
	// claims are kept and reused as they are.
	ReplacedDataKept Change = "replaced, pods and data kept"
	// ReplicaOwnership moves the replica count between `pulumi up` and the HPA.
	ReplicaOwnership Change = "replica ownership moves"
	// NewFetch creates a fetch run of the model's weights (a Job named by its
	// spec); the Deployment rolls, when its weights' path changed, only after
	// the run has completed.
	NewFetch Change = "new fetch, then rolled out"
	// Regrouped moves a model between a Deployment and a LeaderWorkerSet, or
	// between group sizes: the new pods start beside the old ones, join the
	// Service as they become ready, and the old workload is deleted once
	// the new one is ready; the namespace must hold both meanwhile.
	Regrouped Change = "new workload beside the old, then the old goes"
	// Recreated builds the objects again under new names before the old ones
	// go; retained objects (namespace, claims) stay behind.
	Recreated Change = "recreated under new names"
)

// Changes classifies every config key, by its path in a stack file ("[]"
// stands for any list element). An entry covers the keys below it unless a
// longer entry says otherwise.
var Changes = map[string]Change{
	"environment":                                 ValidationOnly,
	"namespace.name":                              Recreated,
	"namespace.quota":                             InPlace,
	"namespace.limitRange":                        InPlace,
	"namespace.network":                           InPlace,
	"gpuPool.nodeLabelKey":                        RolledOut,
	"gpuPool.nodeLabelValue":                      RolledOut,
	"gpuPool.taintKey":                            RolledOut,
	"gpuPool.taintEffect":                         RolledOut,
	"gpuPool.resourceName":                        RolledOut,
	"gpuPool.gpusPerNode":                         ValidationOnly,
	"gpuPool.spareCapacity":                       InPlace,
	"gpuPool.allocation":                          RolledOut,
	"gpuPool.dra":                                 RolledOut,
	"gpuPool.dra.devices":                         ValidationOnly,
	"gpuPool.maxNodes":                            ValidationOnly,
	"gpuPool.groupDomainLabel":                    RolledOut,
	"serving.models":                              Recreated,
	"serving.models[].name":                       Recreated,
	"serving.models[].image":                      RolledOut,
	"serving.models[].args":                       RolledOut,
	"serving.models[].gpus":                       RolledOut,
	"serving.models[].replicas":                   InPlace,
	"serving.models[].port":                       RolledOut,
	"serving.models[].metricsPort":                RolledOut,
	"serving.models[].metricsPath":                RolledOut,
	"serving.models[].readinessPath":              RolledOut,
	"serving.models[].livenessPath":               RolledOut,
	"serving.models[].livenessPeriodSeconds":      RolledOut,
	"serving.models[].source":                     NewFetch,
	"serving.models[].source.size":                ValidationOnly,
	"serving.models[].modelLoadBudgetSeconds":     RolledOut,
	"serving.models[].imagePullBudgetSeconds":     InPlace,
	"serving.models[].resources":                  RolledOut,
	"serving.models[].shmSize":                    RolledOut,
	"serving.models[].modelCache.size":            InPlace,
	"serving.models[].modelCache.storageClass":    NewClaim,
	"serving.models[].modelCache.accessMode":      NewClaim,
	"serving.models[].modelCache.mountPath":       RolledOut,
	"serving.models[].autoscaling":                InPlace,
	"serving.models[].autoscaling.enabled":        ReplicaOwnership,
	"serving.models[].disruption":                 InPlace,
	"serving.models[].drain":                      RolledOut,
	"serving.models[].topologySpread":             RolledOut,
	"serving.models[].routing":                    InPlace,
	"serving.models[].gpuSelector":                RolledOut,
	"serving.models[].nodes":                      Regrouped,
	"serving.models[].scheduling":                 RolledOut,
	"serving.models[].scheduling.queueName":       InPlace,
	"serving.routing":                             InPlace,
	"serving.routing.picker":                      RolledOut,
	"pipeline.storage.size":                       InPlace,
	"pipeline.storage.storageClass":               NewClaim,
	"pipeline.storage.accessMode":                 NewClaim,
	"pipeline.mountPath":                          RolledOut,
	"pipeline.ingestion":                          NewRun,
	"pipeline.ingestion.rerun":                    NewRun,
	"pipeline.transformation":                     RolledOut,
	"pipeline.transformation.replicas":            InPlace,
	"pipeline.transformation.autoscaling":         InPlace,
	"pipeline.transformation.autoscaling.enabled": ReplicaOwnership,
	"pipeline.transformation.disruption":          InPlace,
	"checkpoint":                                  RolledOut,
	"checkpoint.replicas":                         InPlace,
	"checkpoint.storage":                          ReplacedDataKept,
	"checkpoint.disruption":                       InPlace,
	"monitoring":                                  InPlace,
	"clusterDomain":                               InPlace,
	"acceptCluster":                               ValidationOnly,
	"cron":                                        InPlace,
	SecretModelRegistryToken:                      RolledOut,
	SecretRegistryCredentials:                     RolledOut,
}

// ChangeOf is the class of a key path, from its longest classified prefix.
func ChangeOf(path string) (Change, bool) {
	for p := path; p != ""; p = parentKey(p) {
		if c, ok := Changes[p]; ok {
			return c, true
		}
	}
	return "", false
}

func parentKey(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' {
			return path[:i]
		}
	}
	return ""
}
