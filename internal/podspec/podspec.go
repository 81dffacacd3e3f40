// Package podspec builds the parts every pod of the stack shares: a security
// context that Pod Security "restricted" admits, resources with requests and
// limits, and the writable emptyDirs a read-only root filesystem needs.
package podspec

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ResourceList is cpu, memory and ephemeral storage, as Kubernetes quantities.
type ResourceList struct {
	CPU, Memory, EphemeralStorage string
}

// Resources are a container's requests and limits.
type Resources struct {
	Requests, Limits ResourceList
}

// Claim is a PersistentVolumeClaim's size, class and access mode.
type Claim struct {
	// Size, for example "100Gi".
	Size string
	// StorageClass; empty means the cluster's default class.
	StorageClass string
	// AccessMode, for example ReadWriteOnce.
	AccessMode string
}

// NonRootUser is the uid and gid every container runs as unless the image's
// own non-root user is wanted. 65532 is the conventional "nonroot" user of
// distroless images; fsGroup makes mounted claims writable for it.
const NonRootUser = 65532

// TmpVolume is the writable scratch directory every container gets at /tmp.
const TmpVolume = "tmp"

// Security holds the secure defaults; each can be switched off on its own.
type Security struct {
	// RunAsUser is the uid (default NonRootUser); 0 is refused by runAsNonRoot.
	RunAsUser int
	// ReadOnlyRootFilesystem (default true).
	ReadOnlyRootFilesystem bool
}

// DefaultSecurity is what every workload of the stack uses.
func DefaultSecurity() Security {
	return Security{RunAsUser: NonRootUser, ReadOnlyRootFilesystem: true}
}

// PodSecurityContext is the pod-level half of Pod Security "restricted".
func (s Security) PodSecurityContext() *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot: pulumi.BoolPtr(true),
		RunAsUser:    pulumi.IntPtr(s.RunAsUser),
		RunAsGroup:   pulumi.IntPtr(s.RunAsUser),
		FsGroup:      pulumi.IntPtr(s.RunAsUser),
		// Without it the kubelet re-chowns every file of every claim on every
		// start: minutes for a cache of model weights. OnRootMismatch walks
		// the volume only when its root's owner or mode is not already right.
		FsGroupChangePolicy: pulumi.String("OnRootMismatch"),
		SeccompProfile:      &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// ContainerSecurityContext is the container-level half of Pod Security "restricted".
func (s Security) ContainerSecurityContext() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		RunAsNonRoot:             pulumi.BoolPtr(true),
		AllowPrivilegeEscalation: pulumi.BoolPtr(false),
		ReadOnlyRootFilesystem:   pulumi.BoolPtr(s.ReadOnlyRootFilesystem),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
		SeccompProfile:           &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// ResourceRequirements turns configured resources into requests and limits. Extended
// resources (GPUs) are added with requests equal to limits, as Kubernetes requires.
func ResourceRequirements(r Resources, extended map[string]int) *corev1.ResourceRequirementsArgs {
	requests := pulumi.StringMap{
		"cpu":               pulumi.String(r.Requests.CPU),
		"memory":            pulumi.String(r.Requests.Memory),
		"ephemeral-storage": pulumi.String(r.Requests.EphemeralStorage),
	}
	limits := pulumi.StringMap{
		"cpu":               pulumi.String(r.Limits.CPU),
		"memory":            pulumi.String(r.Limits.Memory),
		"ephemeral-storage": pulumi.String(r.Limits.EphemeralStorage),
	}
	for name, n := range extended {
		requests[name] = pulumi.Sprintf("%d", n)
		limits[name] = pulumi.Sprintf("%d", n)
	}
	return &corev1.ResourceRequirementsArgs{Requests: requests, Limits: limits}
}

// withClaims adds the container's references to the pod's resource claims.
func withClaims(r *corev1.ResourceRequirementsArgs, claims []string) *corev1.ResourceRequirementsArgs {
	if len(claims) == 0 {
		return r
	}
	var refs corev1.ResourceClaimArray
	for _, c := range claims {
		refs = append(refs, corev1.ResourceClaimArgs{Name: pulumi.String(c)})
	}
	r.Claims = refs
	return r
}

// Tmp is the /tmp emptyDir, bounded by the container's ephemeral-storage limit
// so that a runaway writer is evicted rather than filling the node.
func Tmp(r Resources) corev1.VolumeArgs {
	return corev1.VolumeArgs{
		Name:     pulumi.String(TmpVolume),
		EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String(r.Limits.EphemeralStorage)},
	}
}

// TmpMount mounts Tmp at /tmp.
func TmpMount() corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(TmpVolume), MountPath: pulumi.String("/tmp")}
}

// BaseEnv is the environment every container gets: HOME points at the writable
// /tmp, since the root filesystem is read-only and the uid has no home.
func BaseEnv() corev1.EnvVarArray {
	return corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("HOME"), Value: pulumi.String("/tmp")}}
}

// Shared is what the stack hands every workload: the pieces of a pod spec that are
// the same for all of them.
type Shared struct {
	// Namespace every object lives in.
	Namespace pulumi.StringInput
	// Security defaults of every pod.
	Security Security
	// ImagePullSecret, when set, names the registry credentials Secret.
	ImagePullSecret pulumi.StringPtrInput
	// PriorityClass for this workload.
	PriorityClass pulumi.StringInput
	// ServiceAccount for this workload.
	ServiceAccount pulumi.StringInput
	// APIClient mounts the ServiceAccount's token: only a workload that talks
	// to the API server (the endpoint picker) has one; every other pod's
	// automount is off.
	APIClient bool
}

// PodSpec fills the fields every pod of the stack sets the same way.
func (s Shared) PodSpec(spec corev1.PodSpecArgs) *corev1.PodSpecArgs {
	spec.SecurityContext = s.Security.PodSecurityContext()
	spec.ServiceAccountName = s.ServiceAccount
	spec.AutomountServiceAccountToken = pulumi.BoolPtr(s.APIClient)
	// Service links put an env var per Service into every container; nothing here reads them.
	spec.EnableServiceLinks = pulumi.BoolPtr(false)
	spec.PriorityClassName = s.PriorityClass
	if s.ImagePullSecret != nil {
		spec.ImagePullSecrets = corev1.LocalObjectReferenceArray{corev1.LocalObjectReferenceArgs{Name: s.ImagePullSecret}}
	}
	return &spec
}

// HTTPProbe checks path on the named container port.
func HTTPProbe(path, port string, periodSeconds, failureThreshold int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		HttpGet:          &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String(port)},
		PeriodSeconds:    pulumi.Int(periodSeconds),
		FailureThreshold: pulumi.Int(failureThreshold),
		TimeoutSeconds:   pulumi.Int(5),
	}
}

// GRPCProbe asks the gRPC health service on port about service.
func GRPCProbe(port int, service string, periodSeconds, failureThreshold int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		Grpc:             &corev1.GRPCActionArgs{Port: pulumi.Int(port), Service: pulumi.String(service)},
		PeriodSeconds:    pulumi.Int(periodSeconds),
		FailureThreshold: pulumi.Int(failureThreshold),
		TimeoutSeconds:   pulumi.Int(5),
	}
}

// ClaimVolume mounts the claim named claimName as the volume volumeName.
func ClaimVolume(volumeName string, claimName pulumi.StringInput) corev1.VolumeArgs {
	return corev1.VolumeArgs{
		Name:                  pulumi.String(volumeName),
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSourceArgs{ClaimName: claimName},
	}
}

// ClaimSpec is a claim's access mode, size and class.
func ClaimSpec(s Claim) *corev1.PersistentVolumeClaimSpecArgs {
	spec := &corev1.PersistentVolumeClaimSpecArgs{
		AccessModes: pulumi.StringArray{pulumi.String(s.AccessMode)},
		Resources:   &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.String(s.Size)}},
	}
	if s.StorageClass != "" {
		spec.StorageClassName = pulumi.StringPtr(s.StorageClass)
	}
	return spec
}

// ContainerSpec is what differs between the stack's containers.
type ContainerSpec struct {
	// Name, Image and Args of the container.
	Name, Image string
	Args        []string
	// Resources are its cpu, memory and ephemeral-storage.
	Resources Resources
	// Extended resources (GPUs), requests equal to limits.
	Extended map[string]int
	// Claims name the pod's resource claims the container uses (DRA GPUs).
	Claims []string
	// Env is added after HOME.
	Env corev1.EnvVarArray
	// Mounts are added after /tmp.
	Mounts corev1.VolumeMountArray
}

// Container is a container with the stack's defaults: the restricted security
// context, HOME on /tmp and /tmp mounted. Callers add ports and probes.
func (s Security) Container(c ContainerSpec) corev1.ContainerArgs {
	return corev1.ContainerArgs{
		Name:            pulumi.String(c.Name),
		Image:           pulumi.String(c.Image),
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Args:            pulumi.ToStringArray(c.Args),
		Env:             append(BaseEnv(), c.Env...),
		Resources:       withClaims(ResourceRequirements(c.Resources, c.Extended), c.Claims),
		SecurityContext: s.ContainerSecurityContext(),
		VolumeMounts:    append(corev1.VolumeMountArray{TmpMount()}, c.Mounts...),
	}
}

// SecretEnv exposes key of the Secret named secret as the variable name.
func SecretEnv(name string, secret pulumi.StringInput, key string) corev1.EnvVarArgs {
	return corev1.EnvVarArgs{
		Name:      pulumi.String(name),
		ValueFrom: &corev1.EnvVarSourceArgs{SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: secret, Key: pulumi.String(key)}},
	}
}

// WorkloadAnnotations are the annotations of every workload object (Deployment,
// StatefulSet, Job, CronJob), merged with extra.
func WorkloadAnnotations(extra pulumi.StringMap) pulumi.StringMap {
	out := pulumi.StringMap{
		// kube-score wants imagePullPolicy Always. Here IfNotPresent is right: with
		// Always a registry outage keeps a cached multi-GB image from restarting,
		// and prod refuses mutable :latest tags at preview.
		"kube-score/ignore": pulumi.String("container-image-pull-policy"),
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}
