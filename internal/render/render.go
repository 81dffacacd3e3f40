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
	sf, err := stackfile.Load(dir, stackName)
	if err != nil {
		return nil, err
	}
	rec, err := mock.Run(stack.Program, stackName, sf.Config, sf.SecretKeys)
	if err != nil {
		return nil, err
	}
	objs := rec.Objects()
	sort.SliceStable(objs, func(i, j int) bool {
		ri, rj := rank(objs[i].Kind()), rank(objs[j].Kind())
		if ri != rj {
			return ri < rj
		}
		return objs[i].Name() < objs[j].Name()
	})
	return objs, nil
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

// WriteFile renders the stack to path. On any error it writes nothing, so a
// previous good render is never replaced by a half one.
func WriteFile(dir, stackName, path string) (int, error) {
	objs, err := Objects(dir, stackName)
	if err != nil {
		return 0, err
	}
	text, err := Manifests(objs)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".manifests-*.yaml")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return len(objs), os.Rename(tmp.Name(), path)
}
