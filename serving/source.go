package serving

import (
	"fmt"
	"path"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/intent"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
	"llm-platform/internal/podspec"
	"llm-platform/internal/rollout"
	"llm-platform/internal/run"
)

// Source says where a model's weights come from. Claim names an existing
// claim that holds them (at Path inside it); or Image is an OCI image or
// artifact holding them, mounted as an image volume; or Scheme is "hf" or
// "s3" and a fetch run downloads them into the model cache before the
// server starts.
type Source struct {
	// Claim is an existing claim of the namespace holding the weights at Path.
	Claim, Path string
	// Image is the reference of an OCI image or artifact holding the weights.
	Image string
	// Scheme ("hf" or "s3"), URI, Repo (the URI without its scheme) and
	// Revision of what is fetched; Endpoint, when set, is a mirror.
	Scheme, URI, Repo, Revision, Endpoint string
	// Fetch is the run that downloads them.
	Fetch Fetch
}

// Fetch is the run that fills the model cache with one revision.
type Fetch struct {
	// Image and Args of the downloader; Args may name $(SOURCE_URI),
	// $(SOURCE_REPO), $(SOURCE_REVISION), $(SOURCE_PINNED_URI) (see
	// PinnedURI) and $(MODEL_DIR).
	Image string
	Args  []string
	// BudgetSeconds bounds the run (its deadline, and how long `pulumi up`
	// waits for it); BackoffLimit is how many failed pods are retried.
	BudgetSeconds, BackoffLimit int
	// Resources of the downloader.
	Resources podspec.Resources
	// Egress are the networks the sources are in: only the fetch run reaches them.
	Egress []intent.Egress
	// Shared is the fetch pods' namespace, ServiceAccount, priority and pull secret.
	Shared podspec.Shared
}

// FetchMarker is the file a fetch run writes, last, into the revision's
// directory: a run that finds it is done at once.
const FetchMarker = ".llm-platform-complete"

// fetchScript skips a revision already complete, runs the downloader (its
// args are "$@") and writes the marker only once the download succeeded.
const fetchScript = `set -eu
marker="$MODEL_DIR/` + FetchMarker + `"
if [ -f "$marker" ]; then echo "revision $SOURCE_REVISION is already in $MODEL_DIR"; exit 0; fi
mkdir -p "$MODEL_DIR"
"$@"
echo "$SOURCE_REVISION" > "$marker.partial"
mv "$marker.partial" "$marker"
echo "revision $SOURCE_REVISION fetched into $MODEL_DIR"`

// PinnedURI is the source at its revision in the form KServe's storage
// initializer reads: hf://<repo>:<revision> for the hub, where a revision
// follows a colon; an s3 URI as written, its revision being only a label.
func (s Source) PinnedURI() string {
	if s.Scheme == "hf" && s.Revision != "" {
		return "hf://" + s.Repo + ":" + s.Revision
	}
	return s.URI
}

// FetchWorkload labels a model's fetch runs.
func FetchWorkload(model string) labels.Workload {
	return labels.Workload{Name: "fetch", Instance: names.Fetch(model), Component: "serving"}
}

// fetched says the model's weights come from a fetch run.
func (a Args) fetched() bool {
	return a.Source != nil && a.Source.Claim == "" && a.Source.Image == ""
}

// modelDir is where the server reads the weights.
func (a Args) modelDir() string {
	switch {
	case a.Source == nil:
		return ""
	case a.Source.Claim != "":
		return path.Join(a.CacheMountPath, a.Source.Path)
	case a.Source.Image != "":
		return a.CacheMountPath
	default:
		return path.Join(a.CacheMountPath, a.Model, a.Source.Revision)
	}
}

// newFetch creates the Job that downloads the configured revision into the
// model cache. It is named by its spec, so a new revision (or downloader) is
// a new Job created beside the old one; `pulumi up` waits for it to complete.
func newFetch(ctx *pulumi.Context, name string, args Args, cacheClaim pulumi.StringInput, parent pulumi.ResourceOption) (*batchv1.Job, error) {
	src, f := args.Source, args.Source.Fetch
	w := FetchWorkload(args.Model)
	env := corev1.EnvVarArray{
		corev1.EnvVarArgs{Name: pulumi.String("SOURCE_URI"), Value: pulumi.String(src.URI)},
		corev1.EnvVarArgs{Name: pulumi.String("SOURCE_REPO"), Value: pulumi.String(src.Repo)},
		corev1.EnvVarArgs{Name: pulumi.String("SOURCE_REVISION"), Value: pulumi.String(src.Revision)},
		corev1.EnvVarArgs{Name: pulumi.String("SOURCE_PINNED_URI"), Value: pulumi.String(src.PinnedURI())},
		corev1.EnvVarArgs{Name: pulumi.String("MODEL_DIR"), Value: pulumi.String(args.modelDir())},
		// The hub client's own cache and lock files go to the writable /tmp.
		corev1.EnvVarArgs{Name: pulumi.String("HF_HOME"), Value: pulumi.String("/tmp/hf")},
	}
	if src.Endpoint != "" {
		variable := map[string]string{"hf": "HF_ENDPOINT", "s3": "AWS_ENDPOINT_URL"}[src.Scheme]
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(variable), Value: pulumi.String(src.Endpoint)})
	}
	if args.TokenSecret != nil {
		env = append(env, podspec.SecretEnv("HF_TOKEN", args.TokenSecret, "token"))
	}
	container := f.Shared.Security.Container(podspec.ContainerSpec{
		Name: "fetch", Image: f.Image, Args: f.Args, Resources: f.Resources, Env: env,
		Mounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("model-cache"), MountPath: pulumi.String(args.CacheMountPath)}},
	})
	container.Command = pulumi.ToStringArray([]string{"/bin/sh", "-c", fetchScript, "fetch"})
	pod := corev1.PodSpecArgs{
		RestartPolicy: pulumi.String("Never"),
		Containers:    corev1.ContainerArray{container},
		Volumes:       corev1.VolumeArray{podspec.Tmp(f.Resources), podspec.ClaimVolume("model-cache", cacheClaim)},
	}
	if args.Cache.AccessMode == "ReadWriteOnce" {
		// A ReadWriteOnce cache attaches to one node: fetch where the server
		// runs (its pool), on its node when one is running.
		pool := args.Pool
		pod.NodeSelector = pulumi.StringMap{pool.NodeLabelKey: pulumi.String(pool.NodeLabelValue)}
		pod.Tolerations = corev1.TolerationArray{corev1.TolerationArgs{
			Key: pulumi.String(pool.TaintKey), Operator: pulumi.String("Exists"), Effect: pulumi.String(pool.TaintEffect),
		}}
		pod.Affinity = &corev1.AffinityArgs{PodAffinity: &corev1.PodAffinityArgs{
			PreferredDuringSchedulingIgnoredDuringExecution: corev1.WeightedPodAffinityTermArray{corev1.WeightedPodAffinityTermArgs{
				Weight: pulumi.Int(100),
				PodAffinityTerm: &corev1.PodAffinityTermArgs{
					LabelSelector: &metav1.LabelSelectorArgs{MatchLabels: Workload(args.Model).SelectorInput()},
					TopologyKey:   pulumi.String("kubernetes.io/hostname"),
				},
			}},
		}}
	}
	spec := &batchv1.JobSpecArgs{
		BackoffLimit:          pulumi.Int(f.BackoffLimit),
		ActiveDeadlineSeconds: pulumi.Int(f.BudgetSeconds),
		PodFailurePolicy:      run.FailurePolicy("fetch", nil),
		Template: &corev1.PodTemplateSpecArgs{
			Metadata: &metav1.ObjectMetaArgs{Labels: w.AllInput()},
			Spec:     f.Shared.PodSpec(pod),
		},
	}
	// Pulumi waits for the whole budget, and for a node to come up first.
	wait := fmt.Sprintf("%ds", f.BudgetSeconds+rollout.NodeProvisioningSeconds+rollout.MarginSeconds)
	// The finished Job stays, as the record of the fetch (see the ingestion
	// run): with a TTL every refresh would see it gone and fetch again.
	job, err := batchv1.NewJob(ctx, name+"-fetch", &batchv1.JobArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: run.NameBySpec(names.Fetch(args.Model), spec), Namespace: f.Shared.Namespace, Labels: w.AllInput(),
			// A run that failed for a reason outside the stack file (a mirror
			// down, a licence not yet accepted) is run again by the next
			// `pulumi up` with the same file: pulumi-kubernetes replaces a Job
			// that is not ready instead of waiting on it again. The serving pods
			// keep their revision until the new run completes.
			Annotations: podspec.WorkloadAnnotations(pulumi.StringMap{"pulumi.com/replaceUnready": pulumi.String("true")}),
		},
		Spec: spec,
	}, parent, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: wait, Update: wait}))
	if err != nil {
		return nil, fmt.Errorf("serving %q: fetch: %w", name, err)
	}
	return job, nil
}
