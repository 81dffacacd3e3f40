// Package names derives every Kubernetes object name of the stack in one place.
// Names are part of the contract users depend on (Service DNS names, claim
// names of a StatefulSet), so they are stable and explicit: never a random
// suffix. Renaming one needs pulumi.Aliases.
package names

import "strconv"

// MaxModelNameLength keeps every name derived from a model within the 63
// characters of a DNS-1035 label (Service names) and a label value.
const MaxModelNameLength = 40

// Fixed names of the stack's objects inside the platform namespace.
const (
	Ingestion            = "ingestion"
	Transformation       = "transformation"
	PipelineData         = "pipeline-data"
	Checkpoint           = "checkpoint"
	CheckpointClaim      = "checkpoints"
	Cron                 = "pipeline-schedule"
	ModelRegistryToken   = "model-registry-token"
	RegistryCredentials  = "registry-credentials"
	NetworkDefaultDeny   = "default-deny"
	NetworkAllowDNS      = "allow-dns"
	NetworkAllowClients  = "allow-inference-clients"
	NetworkAllowMetrics  = "allow-metrics-scrapers"
	NetworkAllowEgress   = "allow-egress"
	NetworkAllowInternal = "allow-platform-internal"
	NetworkInternalOut   = "allow-platform-internal-egress"
	LimitRange           = "defaults"
	ResourceQuota        = "platform"
)

// Inference names a model's Deployment, Service, PDB, HPA and ServiceAccount.
func Inference(model string) string { return "inference-" + model }

// ModelCache names a model's cache claim.
func ModelCache(model string) string { return "model-cache-" + model }

// CheckpointClaimOf names the claim the checkpoint StatefulSet creates for ordinal i,
// as the StatefulSet controller derives it.
func CheckpointClaimOf(ordinal int) string {
	return CheckpointClaim + "-" + Checkpoint + "-" + strconv.Itoa(ordinal)
}

// PriorityServing and PriorityBatch name the cluster-scoped PriorityClasses;
// they carry the namespace so two stacks can share a cluster.
func PriorityServing(namespace string) string { return namespace + "-serving" }

// PriorityBatch names the PriorityClass of batch pods (ingestion, cron runs).
func PriorityBatch(namespace string) string { return namespace + "-batch" }
