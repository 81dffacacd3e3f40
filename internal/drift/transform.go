package drift

import (
	"context"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Report is told, for each object of the stack with fields changed outside
// it, its kind and name ("Deployment inference-x") and what was found.
type Report func(object string, found []Finding)

// Transform is a Pulumi resource transform (register it with
// ctx.RegisterResourceTransform before the stack's resources) that
// declares the Annotation on each of the stack's Kubernetes objects:
//   - with fields a kubectl command changed (Finding.Restored): their
//     Digest, a new value, so the object is updated and the provider drops
//     them;
//     When the object already has that digest (the run that declared it
//     created the object, adopting a kept one, and a create does not take
//     the fields), the value alternates with the digest + "-again", so
//     the change shows at every run until an update has taken them;
//   - otherwise the value the live object has, if any, so nothing changes.
//
// It tells report about every object with findings, restored or not. An
// object whose kind or name the transform cannot read (no metadata map, a
// name not yet known) is left as it is.
func Transform(live *Live, report Report) pulumi.ResourceTransform {
	return func(_ context.Context, args *pulumi.ResourceTransformArgs) *pulumi.ResourceTransformResult {
		group, kind, ok := kubernetesKind(args)
		if !ok {
			return nil
		}
		metadata, ok := args.Props["metadata"].(pulumi.Map)
		if !ok {
			return nil
		}
		name, ok := metadata["name"].(pulumi.String)
		if !ok {
			return nil
		}
		object, ok := live.Object(group, kind, string(name))
		if !ok {
			return nil // a new object: nothing outside the stack has touched it
		}
		found, err := Find(object.ManagedFields)
		if err != nil {
			found = []Finding{{Manager: "?", Paths: []string{err.Error()}}}
		}
		var restored []Finding
		for _, f := range found {
			if f.Restored() {
				restored = append(restored, f)
			}
		}
		if len(found) > 0 {
			report(kind+" "+string(name), found)
		}
		current := object.Annotations[Annotation]
		value := current
		if len(restored) > 0 {
			value = Digest(restored)
			if value == current {
				// The same fields are still there after a run that
				// declared this digest: that run created the object
				// (adopting a kept one), and a create does not take
				// kubectl's fields; only an update does. Alternate the
				// value, so that every run shows the change until an
				// update has taken them.
				value += retried
			}
		}
		if value == "" {
			return nil
		}
		annotations := pulumi.Map{}
		switch a := metadata["annotations"].(type) {
		case pulumi.Map:
			for k, v := range a {
				annotations[k] = v
			}
		case nil:
		default:
			return nil // computed: leave it to the provider
		}
		annotations[Annotation] = pulumi.String(value)
		newMetadata := pulumi.Map{}
		for k, v := range metadata {
			newMetadata[k] = v
		}
		newMetadata["annotations"] = annotations
		props := pulumi.Map{}
		for k, v := range args.Props {
			props[k] = v
		}
		props["metadata"] = newMetadata
		return &pulumi.ResourceTransformResult{Props: props, Opts: args.Opts}
	}
}

// retried marks the annotation's value on a second attempt at the same
// restoration.
const retried = "-again"

// kubernetesKind reads an object's API group and kind from its Pulumi type
// ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"): false for
// providers, components and the provider's patch and list types.
func kubernetesKind(args *pulumi.ResourceTransformArgs) (group, kind string, ok bool) {
	parts := strings.Split(args.Type, ":")
	if !args.Custom || len(parts) != 3 || parts[0] != "kubernetes" || !strings.Contains(parts[1], "/") {
		return "", "", false
	}
	kind = parts[2]
	if strings.HasSuffix(kind, "Patch") || strings.HasSuffix(kind, "List") {
		return "", "", false
	}
	group, _, _ = strings.Cut(parts[1], "/")
	if group == "core" {
		group = ""
	}
	return group, kind, true
}

// Describe is the warning for one object's findings.
func Describe(object string, found []Finding) string {
	var restored, kept []string
	for _, f := range found {
		if f.Restored() {
			restored = append(restored, f.String())
		} else {
			kept = append(kept, f.String())
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "drift: %s was changed outside the stack", object)
	if len(restored) > 0 {
		fmt.Fprintf(&b, ": %s; `pulumi up` puts back what the stack declares (the object is updated, its %s annotation changes)", strings.Join(restored, "; "), Annotation)
	}
	if len(kept) > 0 {
		fmt.Fprintf(&b, "; %s: `pulumi up` does not take these back (pulumi-kubernetes takes only kubectl's fields); undo them with the tool that set them, or declare them in the stack", strings.Join(kept, "; "))
	}
	return b.String()
}
