// Package drift finds what was changed on the stack's objects outside the
// stack, and makes the next `pulumi up` put back what the stack declares.
//
// pulumi-kubernetes cannot see such a change: with server-side apply, a
// field another field manager set (`kubectl set env`, `kubectl patch`) is
// neither in the provider's diff (its Diff compares the stack's inputs with
// the live object pruned to the shape of those inputs, so an added env entry
// or egress rule is pruned away) nor removed by an apply of the same inputs
// (which changes nothing, so none is sent). The API server's own record of
// who set what, each object's managedFields, does show it: Read lists the
// stack's objects' metadata once, Find names the fields set by managers
// other than the stack's provider and the cluster's controllers, and
// Transform (a Pulumi resource transform) marks each object with such
// fields by the Annotation below, whose new value is a change of the object:
// the drift workflow's `pulumi preview --refresh --expect-no-changes` fails
// naming it, and `pulumi up` updates it. On that update pulumi-kubernetes
// moves the fields of every "kubectl..." manager to its own (await.go,
// fixCSAFieldManagers) and applies the stack's inputs, which drops them.
// Fields of other managers (a controller, a script with its own client) are
// reported but not taken back: the provider does not take them, and taking
// them by hand could fight a controller that owns them on purpose.
package drift

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotation marks an object on which `pulumi up` restored fields changed
// outside the stack; its value is the Digest of what it restored. Between
// restorations the program declares the value the object already has, so
// it changes nothing.
const Annotation = "llm-platform.io/drift-restored"

// Finding is what one field manager set on an object outside the stack.
type Finding struct {
	// Manager is the field manager's name, as managedFields records it
	// (kubectl's commands record "kubectl-set", "kubectl-patch",
	// "kubectl-edit", "kubectl-client-side-apply" and so on).
	Manager string
	// Time is when it last set them (RFC 3339), "" when not recorded.
	Time string
	// Paths are the fields, as spec.template.spec.containers[name=x].env[name=Y].
	Paths []string
}

// Restored says whether `pulumi up` takes the fields back: the provider
// takes the fields of managers whose names begin with "kubectl" (and its
// own earlier ones) before it applies, and no others.
func (f Finding) Restored() bool { return strings.HasPrefix(f.Manager, "kubectl") }

func (f Finding) String() string {
	return fmt.Sprintf("%s set %s", f.Manager, strings.Join(f.Paths, ", "))
}

// Controllers are the field managers of the cluster itself: what they set
// on the stack's objects (a claim's volumeName, a Deployment's revision
// annotation) is theirs to set. kwok-controller binds claims on the local
// cluster, as a volume binder does on a real one.
var Controllers = []string{"kube-controller-manager", "kube-scheduler", "kube-apiserver", "kubelet", "kwok-controller"}

// stackManager says whether a field manager is the stack's own:
// pulumi-kubernetes creates an object as "pulumi-kubernetes" and applies as
// "pulumi-kubernetes-<8 hex>" (its state's __fieldManager).
func stackManager(name string) bool {
	return strings.HasPrefix(name, "pulumi-kubernetes") || name == "pulumi-resource-kubernetes" || name == "before-first-apply"
}

// operations are fields an operator sets on purpose through kubectl without
// changing what the stack declares: `kubectl rollout restart` stamps the
// pod template. They are not drift (an update of the object still drops
// them: the provider takes every kubectl field).
var operations = []string{"spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]"}

// Find returns what managers other than the stack's provider and the
// Controllers set on an object: fields outside metadata (but its labels and
// annotations) and status, from entries on the object itself (a
// subresource's, such as `kubectl scale` or an autoscaler writing
// /scale, are not drift). Sorted by manager; an entry whose fieldsV1 cannot
// be read is an error.
func Find(entries []metav1.ManagedFieldsEntry) ([]Finding, error) {
	var found []Finding
	for _, e := range entries {
		if e.Subresource != "" || stackManager(e.Manager) || slices.Contains(Controllers, e.Manager) || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(e.FieldsV1.Raw, &fields); err != nil {
			return nil, fmt.Errorf("managedFields of %s: %w", e.Manager, err)
		}
		var paths []string
		for _, p := range leaves("", fields) {
			if declarable(p) && !slices.Contains(operations, p) {
				paths = append(paths, p)
			}
		}
		if len(paths) == 0 {
			continue
		}
		slices.Sort(paths)
		f := Finding{Manager: e.Manager, Paths: paths}
		if e.Time != nil {
			f.Time = e.Time.UTC().Format("2006-01-02T15:04:05Z")
		}
		found = append(found, f)
	}
	slices.SortFunc(found, func(a, b Finding) int { return strings.Compare(a.Manager+a.Time, b.Manager+b.Time) })
	return found, nil
}

// declarable says whether a field is one the stack declares: not status,
// and of metadata only labels and annotations.
func declarable(path string) bool {
	switch {
	case path == "status" || strings.HasPrefix(path, "status."):
		return false
	case strings.HasPrefix(path, "metadata."):
		return strings.HasPrefix(path, "metadata.labels[") || strings.HasPrefix(path, "metadata.annotations[")
	}
	return path != "metadata"
}

// leaves walks a fieldsV1 set (the structured-merge-diff format: "f:<name>"
// a field, "k:<json>" a list item by its keys, "v:<json>" a set member,
// "i:<n>" an item by index, "." the node itself) and returns each owned
// node's path. A list item owned with its fields is one path; a field that
// holds others (a map, a struct) is the paths of what it holds.
func leaves(prefix string, node map[string]any) []string {
	var out []string
	for key, child := range node {
		if key == "." {
			continue
		}
		path := join(prefix, key)
		sub, _ := child.(map[string]any)
		_, created := sub["."]
		item := !strings.HasPrefix(key, "f:") // a list item or set member
		if (created && item) || len(sub) == 0 || (created && len(sub) == 1) {
			out = append(out, path)
			continue
		}
		out = append(out, leaves(path, sub)...)
	}
	return out
}

func join(prefix, key string) string {
	kind, value, _ := strings.Cut(key, ":")
	switch kind {
	case "f":
		if strings.HasSuffix(prefix, ".annotations") || strings.HasSuffix(prefix, ".labels") || prefix == "data" || prefix == "stringData" {
			return prefix + "[" + value + "]"
		}
		if prefix == "" {
			return value
		}
		return prefix + "." + value
	case "k":
		var keys map[string]any
		if json.Unmarshal([]byte(value), &keys) != nil {
			return prefix + "[" + value + "]"
		}
		var parts []string
		for k, v := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
		slices.Sort(parts)
		return prefix + "[" + strings.Join(parts, ",") + "]"
	default: // "v:<json value>", "i:<index>"
		return prefix + "[" + value + "]"
	}
}

// Digest is the Annotation's value for what Find returned: short, and new
// whenever a manager sets a field again (its time changes).
func Digest(found []Finding) string {
	h := sha256.New()
	for _, f := range found {
		fmt.Fprintf(h, "%s\x00%s\x00%s\n", f.Manager, f.Time, strings.Join(f.Paths, "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
