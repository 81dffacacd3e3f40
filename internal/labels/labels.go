// Package labels gives every object of the stack the same app.kubernetes.io
// labels, and every workload a selector made only of labels that never change.
package labels

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// Well-known label keys.
const (
	Name      = "app.kubernetes.io/name"
	Instance  = "app.kubernetes.io/instance"
	Component = "app.kubernetes.io/component"
	PartOf    = "app.kubernetes.io/part-of"
	ManagedBy = "app.kubernetes.io/managed-by"
)

// Product is the part-of value of every object.
const Product = "llm-platform"

// Workload identifies one workload of the stack.
type Workload struct {
	// Name is the application, for example "inference" or "ingestion".
	Name string
	// Instance tells instances of one application apart, for example "inference-llama".
	Instance string
	// Component is the role in the platform: serving, pipeline, checkpoint, scheduler, platform.
	Component string
}

// Selector returns the labels a workload's selector matches. They never change
// for the life of the workload: a Deployment's selector is immutable.
func (w Workload) Selector() map[string]string {
	return map[string]string{Name: w.Name, Instance: w.Instance}
}

// All returns every label of the workload's objects and pods.
func (w Workload) All() map[string]string {
	m := w.Selector()
	m[Component] = w.Component
	m[PartOf] = Product
	m[ManagedBy] = "pulumi"
	return m
}

// SelectorInput is Selector as a Pulumi input.
func (w Workload) SelectorInput() pulumi.StringMap { return pulumi.ToStringMap(w.Selector()) }

// AllInput is All as a Pulumi input.
func (w Workload) AllInput() pulumi.StringMap { return pulumi.ToStringMap(w.All()) }
