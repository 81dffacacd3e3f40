// Package render turns a stack into plain Kubernetes manifests offline: it runs
// the stack program under the Pulumi mock engine with the stack file's
// configuration and writes every object exactly as the provider would send it,
// in an order that applies cleanly. Secrets become placeholders.
package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"

	"llm-platform/internal/mock"
	"llm-platform/internal/stack"
	"llm-platform/internal/stackfile"
)

// applyOrder puts what others need first: namespaces and cluster-scoped
// objects, then the guards, then claims and services, then workloads, then
// what refers to workloads.
var applyOrder = []string{
	"Namespace", "PriorityClass", "StorageClass",
	"ResourceQuota", "LimitRange", "ServiceAccount", "Secret", "ConfigMap", "NetworkPolicy",
	"PersistentVolumeClaim", "Service",
	"Deployment", "StatefulSet", "Job", "CronJob",
	"PodDisruptionBudget", "HorizontalPodAutoscaler",
}

func rank(kind string) int {
	for i, k := range applyOrder {
		if k == kind {
			return i
		}
	}
	return len(applyOrder)
}

// Objects runs the stack program for the stack file in dir and returns its
// objects in apply order.
func Objects(dir, stackName string) ([]mock.Object, error) {
	objs, _, err := Run(dir, stackName)
	return objs, err
}

// Run runs the stack program for the stack file in dir and returns its
// objects in apply order and the warnings it logged, as `pulumi preview`
// shows them. On error the warnings are still returned.
func Run(dir, stackName string) ([]mock.Object, []string, error) {
	sf, err := stackfile.Load(dir, stackName)
	if err != nil {
		return nil, nil, err
	}
	rec, err := mock.Run(stack.Program, stackName, sf.Config, sf.SecretKeys)
	if err != nil {
		return nil, rec.Warnings(), err
	}
	objs := rec.Objects()
	sort.SliceStable(objs, func(i, j int) bool {
		ri, rj := rank(objs[i].Kind()), rank(objs[j].Kind())
		if ri != rj {
			return ri < rj
		}
		return objs[i].Name() < objs[j].Name()
	})
	return objs, rec.Warnings(), nil
}

// Manifests is the multi-document YAML of objs, one object per document.
// Objects are encoded once, straight from their fields: sigs.k8s.io/yaml's
// detour through JSON took a quarter of the render time (see BENCHMARKS.md).
func Manifests(objs []mock.Object) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		fmt.Fprintf(&buf, "---\n# %s (pulumi: %s)\n", o.Resource.Type, o.Resource.Name)
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(o.Fields); err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.Kind(), o.Name(), err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// Written is what WriteFile wrote and the program's warnings.
type Written struct {
	// Objects is how many objects the file holds.
	Objects int
	// Warnings are the program's warnings, as `pulumi preview` shows them.
	Warnings []string
}

// WriteFile renders the stack to path, readable by the group and others
// (0644) like any file a GitOps tool picks up. On any error it writes
// nothing, so a previous good render is never replaced by a half one; the
// warnings are returned either way.
func WriteFile(dir, stackName, path string) (Written, error) {
	objs, warnings, err := Run(dir, stackName)
	w := Written{Objects: len(objs), Warnings: warnings}
	if err != nil {
		return w, err
	}
	text, err := Manifests(objs)
	if err != nil {
		return w, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return w, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".manifests-*.yaml")
	if err != nil {
		return w, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return w, err
	}
	if err := tmp.Close(); err != nil {
		return w, err
	}
	// CreateTemp makes the file 0600.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return w, err
	}
	return w, os.Rename(tmp.Name(), path)
}
