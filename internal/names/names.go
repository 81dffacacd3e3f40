// Package names derives every Kubernetes object name of the stack in one place.
// Names are part of the contract users depend on (Service DNS names, claim
// names of a StatefulSet), so they are stable and explicit: never a random
// suffix. Renaming one needs pulumi.Aliases.
package names

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// MaxModelNameLength keeps every name derived from a model within the 63
// characters of a DNS-1035 label (Service names) and a label value.
const MaxModelNameLength = 40

// Fixed names of the stack's objects inside the platform namespace.
const (
	Ingestion           = "ingestion"
	Transformation      = "transformation"
	Checkpoint          = "checkpoint"
	CheckpointClaim     = "checkpoints"
	Cron                = "pipeline-schedule"
	ModelRegistryToken  = "model-registry-token"
	RegistryCredentials = "registry-credentials"
	NetworkDefaultDeny  = "default-deny"
	NetworkAllowDNS     = "allow-dns"
	NetworkInternalOut  = "allow-platform-internal-egress"
	LimitRange          = "defaults"
	ResourceQuota       = "platform"
)

// NetworkIngress names the policy that lets a workload's declared clients in.
func NetworkIngress(workload string) string { return "allow-in-" + workload }

// NetworkEgress names the policy that lets a workload out to the networks it reaches.
func NetworkEgress(workload string) string { return "allow-out-" + workload }

// Inference names a model's Deployment, Service, PDB, HPA and ServiceAccount.
func Inference(model string) string { return "inference-" + model }

// Picker names a pooled model's endpoint picker: its Deployment, Service,
// ConfigMap, Role and ServiceAccount. The model's InferencePool and
// HTTPRoute are named Inference(model), like its Service.
func Picker(model string) string { return Inference(model) + "-epp" }

// Fetch names a model's fetch runs (the prefix of their Jobs), their
// ServiceAccount and the instance label of their pods.
func Fetch(model string) string { return "fetch-" + model }

// PipelineDataApp labels the shared pipeline claim.
const PipelineDataApp = "pipeline-data"

// PipelineData names the shared pipeline claim of a storage class and access mode.
func PipelineData(storageClass, accessMode string) string {
	return claim(PipelineDataApp, storageClass, accessMode)
}

// ModelCachePrefix starts the name of every model's cache claim.
const ModelCachePrefix = "model-cache"

// ModelCache names a model's cache claim of a storage class and access mode.
func ModelCache(model, storageClass, accessMode string) string {
	return claim(ModelCachePrefix+"-"+model, storageClass, accessMode)
}

// claim names a claim after what Kubernetes will not change in place: its
// storage class and access mode. A change of either is then a new claim
// beside the old one (which retainOnDelete keeps, data and all), never a
// delete-then-create of one name that collides with the kept claim.
// An empty class is the cluster's default: "default".
func claim(base, storageClass, accessMode string) string {
	class := storageClass
	if class == "" {
		class = "default"
	}
	name := base + "-" + accessModeCode[accessMode] + "-" + class
	if len(name) > 253 { // a claim name is a DNS subdomain
		sum := sha256.Sum256([]byte(storageClass))
		name = base + "-" + accessModeCode[accessMode] + "-" + hex.EncodeToString(sum[:4])
	}
	return strings.ToLower(name)
}

// accessModeCode shortens access modes the way kubectl prints them.
var accessModeCode = map[string]string{
	"ReadWriteOnce":    "rwo",
	"ReadWriteMany":    "rwx",
	"ReadOnlyMany":     "rox",
	"ReadWriteOncePod": "rwop",
}

// CheckpointClaimOf names the claim the checkpoint StatefulSet creates for ordinal i,
// as the StatefulSet controller derives it.
func CheckpointClaimOf(ordinal int) string {
	return checkpointClaimPrefix + strconv.Itoa(ordinal)
}

// IsCheckpointClaim says whether name is one CheckpointClaimOf gives.
func IsCheckpointClaim(name string) bool {
	ordinal, ok := strings.CutPrefix(name, checkpointClaimPrefix)
	n, err := strconv.Atoi(ordinal)
	return ok && err == nil && n >= 0 && strconv.Itoa(n) == ordinal
}

const checkpointClaimPrefix = CheckpointClaim + "-" + Checkpoint + "-"

// PriorityServing and PriorityBatch name the cluster-scoped PriorityClasses;
// they carry the namespace so two stacks can share a cluster.
func PriorityServing(namespace string) string { return namespace + "-serving" }

// PriorityBatch names the PriorityClass of batch pods (ingestion, cron runs).
func PriorityBatch(namespace string) string { return namespace + "-batch" }
