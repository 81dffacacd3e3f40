// Package mock runs the stack program under Pulumi's mock engine and records
// every resource it registers: its type, name, options and inputs. The inputs
// of a Kubernetes resource are exactly the object the provider would send, so
// tests assert on them and the offline render writes them out.
package mock

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// SecretPlaceholder replaces every secret value in what Objects returns.
const SecretPlaceholder = "<secret: set with pulumi config set --secret>"

// Resource is one registered resource.
type Resource struct {
	// Type is the Pulumi type token, for example "kubernetes:apps/v1:Deployment".
	Type string
	// Name is the Pulumi logical name.
	Name string
	// Custom is false for component resources.
	Custom bool
	// Parent is the parent's URN.
	Parent string
	// Inputs as registered.
	Inputs resource.PropertyMap
	// Options the engine would act on.
	RetainOnDelete, DeleteBeforeReplace bool
	// CustomTimeouts as Go duration strings; empty when unset.
	CreateTimeout, UpdateTimeout, DeleteTimeout string
	// DependsOn lists the URNs of explicit dependencies.
	DependsOn []string
	// IgnoreChanges lists the input paths whose changes Pulumi ignores.
	IgnoreChanges []string
	// Provider is the reference of an explicit provider, empty for the default.
	Provider string
}

// Recorder is a pulumi.MockResourceMonitor that records what it is given.
type Recorder struct {
	mu        sync.Mutex
	resources map[string]Resource // by type::name
	warnings  []string
}

// Warnings returns what the program logged as warnings, in order: the lines
// `pulumi preview` shows as "warning:". Pulumi's mock engine drops them.
func (r *Recorder) Warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.warnings...)
}

// warningLog passes every log line on and keeps the warnings.
type warningLog struct {
	pulumi.Log
	rec *Recorder
}

func (l warningLog) Warn(msg string, args *pulumi.LogArgs) error {
	l.rec.mu.Lock()
	l.rec.warnings = append(l.rec.warnings, msg)
	l.rec.mu.Unlock()
	return l.Log.Warn(msg, args)
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{resources: map[string]Resource{}} }

// NewResource records the resource and returns its inputs as its state, as a
// real provider would after a successful create.
func (r *Recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	rec := Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Inputs: args.Inputs}
	if rpc := args.RegisterRPC; rpc != nil {
		rec.Parent = rpc.GetParent()
		rec.RetainOnDelete = rpc.GetRetainOnDelete()
		rec.DeleteBeforeReplace = rpc.GetDeleteBeforeReplace()
		rec.DependsOn = rpc.GetDependencies()
		rec.IgnoreChanges = rpc.GetIgnoreChanges()
		rec.Provider = rpc.GetProvider()
		if t := rpc.GetCustomTimeouts(); t != nil {
			rec.CreateTimeout, rec.UpdateTimeout, rec.DeleteTimeout = t.GetCreate(), t.GetUpdate(), t.GetDelete()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resources[args.TypeToken+"::"+args.Name] = rec
	return args.Name + "-id", args.Inputs, nil
}

// Call answers provider functions; the stack calls none.
func (r *Recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return nil, fmt.Errorf("mock: unexpected call to %s", args.Token)
}

// Resources returns every recorded resource, sorted by type and name.
func (r *Recorder) Resources() []Resource {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Resource, 0, len(r.resources))
	for _, res := range r.resources {
		out = append(out, res)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Object is a Kubernetes object as the provider would send it, with the
// Pulumi resource that declared it.
type Object struct {
	Resource Resource
	// Fields is the object: apiVersion, kind, metadata, spec...
	Fields map[string]any
}

// Kind returns the object's kind.
func (o Object) Kind() string { s, _ := o.Fields["kind"].(string); return s }

// Name returns metadata.name.
func (o Object) Name() string { return o.meta("name") }

// Namespace returns metadata.namespace.
func (o Object) Namespace() string { return o.meta("namespace") }

func (o Object) meta(key string) string {
	m, _ := o.Fields["metadata"].(map[string]any)
	s, _ := m[key].(string)
	return s
}

// Decode fills out (a pointer to a k8s.io/api type) from the object, refusing
// fields the type does not have: a misspelled field fails here, not silently
// on the cluster.
func (o Object) Decode(out any) error {
	b, err := json.Marshal(o.Fields)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", o.Kind(), o.Name(), err)
	}
	return nil
}

// Objects returns every Kubernetes object, secrets replaced by SecretPlaceholder.
func (r *Recorder) Objects() []Object {
	var out []Object
	for _, res := range r.Resources() {
		if !res.Custom || !strings.HasPrefix(res.Type, "kubernetes:") {
			continue
		}
		fields := res.Inputs.MapRepl(nil, func(v resource.PropertyValue) (any, bool) {
			switch {
			case v.IsSecret():
				return redact(v.SecretValue().Element), true
			case v.IsOutput() && v.OutputValue().Secret:
				return redact(v.OutputValue().Element), true
			case v.IsComputed(), v.IsOutput() && !v.OutputValue().Known:
				return "<unknown until apply>", true
			}
			return nil, false
		})
		out = append(out, Object{Resource: res, Fields: wholeNumbers(fields).(map[string]any)})
	}
	return out
}

// wholeNumbers turns every whole float64 into an int64. Pulumi carries every
// number as a float64, and YAML encoders write a large one as 1.2096e+06:
// valid, but not what anyone wrote, and not what kubectl shows.
func wholeNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = wholeNumbers(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = wholeNumbers(e)
		}
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
		return v
	default:
		return v
	}
}

// redact keeps a secret value's shape (a map stays a map, so a Secret's
// stringData stays valid) and replaces every leaf with SecretPlaceholder.
func redact(v resource.PropertyValue) any {
	switch {
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = redact(e)
		}
		return out
	case v.IsArray():
		var out []any
		for _, e := range v.ArrayValue() {
			out = append(out, redact(e))
		}
		return out
	case v.IsSecret():
		return redact(v.SecretValue().Element)
	case v.IsOutput():
		return redact(v.OutputValue().Element)
	default:
		return SecretPlaceholder
	}
}

// Run runs body under the mock engine with the given project configuration
// ("llm-platform:serving" -> JSON text) and returns what it registered, and
// the program's error.
func Run(body pulumi.RunFunc, stack string, config map[string]string, secretKeys []string) (*Recorder, error) {
	rec := NewRecorder()
	recording := func(ctx *pulumi.Context) error {
		ctx.Log = warningLog{Log: ctx.Log, rec: rec}
		return body(ctx)
	}
	err := pulumi.RunErr(recording,
		pulumi.WithMocks("llm-platform", stack, rec),
		func(info *pulumi.RunInfo) {
			info.Config = config
			info.ConfigSecretKeys = secretKeys
		},
	)
	return rec, err
}

// Find is the Kubernetes object of the kind and name, if one was registered.
func (r *Recorder) Find(kind, name string) (Object, bool) {
	for _, o := range r.Objects() {
		if o.Kind() == kind && o.Name() == name {
			return o, true
		}
	}
	return Object{}, false
}

// Resource is the resource of the type token and Pulumi name, if one was registered.
func (r *Recorder) Resource(typ, name string) (Resource, bool) {
	for _, res := range r.Resources() {
		if res.Type == typ && res.Name == name {
			return res, true
		}
	}
	return Resource{}, false
}
