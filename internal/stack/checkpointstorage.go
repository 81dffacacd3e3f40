package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"llm-platform/checkpoint"
	"llm-platform/internal/config"
	"llm-platform/internal/names"
)

// checkpointStorageChange says, before anything is planned, what a change
// of checkpoint.storage does to the running checkpoint store, from the
// StatefulSet and claims the cluster has. volumeClaimTemplates are
// immutable, so the change replaces the StatefulSet (checkpoint package):
//   - deployed by this release, it carries orphaning deletion: its pods keep
//     serving and the new StatefulSet adopts them. The returned warning says
//     so, and that existing claims keep their size, class and access mode,
//     naming each claim, whether its StorageClass allows expansion
//     (allowVolumeExpansion) and, where it does, the command that grows it;
//   - deployed by an earlier release, it has no such annotation, and
//     pulumi-kubernetes would delete it with every pod at once (it reads the
//     policy from the last deployment's inputs): refused, with the way
//     forward (one `pulumi up` with the storage as deployed first).
//
// No StatefulSet yet, or no change of its claim template: "" and nil.
func checkpointStorageChange(ctx context.Context, client kubernetes.Interface, namespace string, cp config.Checkpoint) (string, error) {
	sts, err := client.AppsV1().StatefulSets(namespace).Get(ctx, names.Checkpoint, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading StatefulSet %s/%s (what a change of checkpoint.storage does to it): %w", namespace, names.Checkpoint, err)
	}
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		return "", nil
	}
	deployed := sts.Spec.VolumeClaimTemplates[0].Spec
	changes := claimTemplateChanges(deployed, cp.Storage)
	if len(changes) == 0 {
		return "", nil
	}
	if sts.Annotations[checkpoint.DeletionPropagation] != checkpoint.Orphan {
		return "", fmt.Errorf("llm-platform:checkpoint.storage: %s is invalid for now: it changes the checkpoint claim template (%s), which replaces StatefulSet %s, and the one running has no orphaning deletion (%s: %s; deployed by an earlier release, or the annotation was removed): "+
			"pulumi-kubernetes would delete it with all its pods (%d) at once (a delete is not an eviction: the disruption budget does not apply). "+
			"First run `pulumi up --refresh` with checkpoint.storage as deployed (%s): it marks the StatefulSet for orphaning deletion, in place; then change the storage",
			storageString(string(cp.Storage.Size), cp.Storage.StorageClass, cp.Storage.AccessMode), strings.Join(changes, ", "), names.Checkpoint, checkpoint.DeletionPropagation, checkpoint.Orphan, sts.Status.Replicas, deployedString(deployed))
	}
	claims, err := client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing the checkpoint claims in %s: %w", namespace, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint.storage: the claim template changes (%s), which replaces StatefulSet %s with orphaning deletion: its pods keep serving and the new StatefulSet adopts them and their claims. "+
		"Existing claims keep their size, class and access mode; only ordinals that never had a claim get the new template", strings.Join(changes, ", "), names.Checkpoint)
	want, err := resource.ParseQuantity(string(cp.Storage.Size))
	if err != nil {
		return "", fmt.Errorf("llm-platform:checkpoint.storage.size: %w", err) // validated before: not reached
	}
	expandable := map[string]string{} // class -> "" when it allows expansion, else why not
	for _, c := range claims.Items {
		if !names.IsCheckpointClaim(c.Name) {
			continue
		}
		have := c.Spec.Resources.Requests[corev1.ResourceStorage]
		if have.Cmp(want) >= 0 {
			continue
		}
		class := ""
		if c.Spec.StorageClassName != nil {
			class = *c.Spec.StorageClassName
		}
		why, ok := expandable[class]
		if !ok {
			why = expansionRefused(ctx, client, class)
			expandable[class] = why
		}
		if why == "" {
			fmt.Fprintf(&b, "; claim %s (%s) can grow in place (StorageClass %s allows volume expansion): kubectl patch pvc -n %s %s -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"%s\"}}}}'",
				c.Name, have.String(), class, namespace, c.Name, want.String())
		} else {
			fmt.Fprintf(&b, "; claim %s (%s) will not grow: %s", c.Name, have.String(), why)
		}
	}
	return b.String(), nil
}

// claimTemplateChanges names what differs between the deployed claim
// template and the configured storage: "size 500Gi -> 600Gi" and so on.
func claimTemplateChanges(deployed corev1.PersistentVolumeClaimSpec, s config.Storage) []string {
	var changes []string
	have := deployed.Resources.Requests[corev1.ResourceStorage]
	if want, err := resource.ParseQuantity(string(s.Size)); err == nil && have.Cmp(want) != 0 {
		changes = append(changes, fmt.Sprintf("size %s -> %s", have.String(), want.String()))
	}
	class := ""
	if deployed.StorageClassName != nil {
		class = *deployed.StorageClassName
	}
	if class != s.StorageClass {
		changes = append(changes, fmt.Sprintf("storageClass %q -> %q", class, s.StorageClass))
	}
	if s.AccessMode != "" && !slices.Equal(deployed.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.PersistentVolumeAccessMode(s.AccessMode)}) {
		changes = append(changes, fmt.Sprintf("accessMode %v -> %s", deployed.AccessModes, s.AccessMode))
	}
	return changes
}

// expansionRefused is "" when class allows volume expansion, else why a
// claim of it cannot grow.
func expansionRefused(ctx context.Context, client kubernetes.Interface, class string) string {
	if class == "" {
		return "it names no StorageClass"
	}
	sc, err := client.StorageV1().StorageClasses().Get(ctx, class, metav1.GetOptions{})
	switch {
	case err != nil:
		return fmt.Sprintf("whether StorageClass %s allows volume expansion could not be read (%v)", class, err)
	case sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion:
		return fmt.Sprintf("StorageClass %s does not allow volume expansion (allowVolumeExpansion); copy its data to a new claim to grow it", class)
	}
	return ""
}

// storageString writes a claim template as the stack file would.
func storageString(size, class, mode string) string {
	return fmt.Sprintf("{size: %s, storageClass: %q, accessMode: %s}", size, class, mode)
}

func deployedString(spec corev1.PersistentVolumeClaimSpec) string {
	class, mode := "", ""
	if spec.StorageClassName != nil {
		class = *spec.StorageClassName
	}
	if len(spec.AccessModes) > 0 {
		mode = string(spec.AccessModes[0])
	}
	size := spec.Resources.Requests[corev1.ResourceStorage]
	return storageString(size.String(), class, mode)
}
