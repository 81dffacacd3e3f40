package localcluster

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"llm-platform/internal/mock"
	"llm-platform/internal/render"
)

// SampleFetchTime and SampleConvergeTime are the times the sample shows;
// the real ones vary with the machine (BENCHMARKS.md measures them).
const (
	SampleFetchTime    = 2 * time.Second
	SampleConvergeTime = 3 * time.Second
)

// Sample writes what `make up` prints for a first deploy of the stack once
// it converged, from the same code: the render's object counts, the
// announcements of Deploy, and the table of Checks read from the render with
// every object at its converged status (Jobs complete, Deployments and
// StatefulSets at their size, pods on the pool's nodes, claims bound). The
// README's sample is this text; only the times are fixed.
func Sample(root, stackName string, out io.Writer) error {
	cfg, err := LoadConfig(root, stackName)
	if err != nil {
		return err
	}
	objs, err := render.Objects(root, stackName)
	if err != nil {
		return err
	}
	state := convergedRender{objs: objs}
	if held := heldServers(cfg); len(held) > 0 {
		applyingFirst(out, len(beforeServers(objs, held)))
		converged(out, SampleFetchTime)
	}
	applying(out, stackName, len(objs))
	converged(out, SampleConvergeTime)
	Table(Checks(state, cfg), out)
	return nil
}

// convergedRender answers the queries of Checks from the rendered objects,
// each with the status it has once the stack converged.
type convergedRender struct {
	objs []mock.Object
}

// sampleNode is the one node of the pool the sample's pods run on.
const sampleNode = "gpu-node-1"

func (c convergedRender) GetJSON(out any, args ...string) error {
	var kind, name, selector string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-n":
			i++
		case "-l":
			i++
			selector = args[i]
		default:
			if kind == "" {
				kind = args[i]
			} else {
				name = args[i]
			}
		}
	}
	var v any
	switch kind {
	case "jobs":
		var list batchv1.JobList
		for _, o := range c.find("Job", "", selector) {
			var j batchv1.Job
			if err := o.Decode(&j); err != nil {
				return err
			}
			completions := int32(1)
			if j.Spec.Completions != nil {
				completions = *j.Spec.Completions
			}
			j.Status.Succeeded = completions
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
			list.Items = append(list.Items, j)
		}
		v = list
	case "deployment":
		o, err := c.one("Deployment", name)
		if err != nil {
			return err
		}
		var d appsv1.Deployment
		if err := o.Decode(&d); err != nil {
			return err
		}
		n := c.replicas(d)
		d.Status = appsv1.DeploymentStatus{Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}}
		v = d
	case "pods":
		instance := strings.TrimPrefix(selector, "app.kubernetes.io/instance=")
		var list corev1.PodList
		if o, err := c.one("Deployment", instance); err == nil {
			var d appsv1.Deployment
			if err := o.Decode(&d); err != nil {
				return err
			}
			for i := range c.replicas(d) {
				list.Items = append(list.Items, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", instance, i)},
					Spec: corev1.PodSpec{NodeName: sampleNode}})
			}
		}
		v = list
	case "nodes":
		v = corev1.NodeList{Items: []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: sampleNode}}}}
	case "statefulset":
		o, err := c.one("StatefulSet", name)
		if err != nil {
			return err
		}
		var s appsv1.StatefulSet
		if err := o.Decode(&s); err != nil {
			return err
		}
		n := int32(1)
		if s.Spec.Replicas != nil {
			n = *s.Spec.Replicas
		}
		s.Status = appsv1.StatefulSetStatus{Replicas: n, ReadyReplicas: n, AvailableReplicas: n}
		v = s
	case "pvc":
		// Claims of a StatefulSet's template are not rendered: once it
		// converged, every one exists, bound.
		v = corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}
	case "cronjob":
		o, err := c.one("CronJob", name)
		if err != nil {
			return err
		}
		var cj batchv1.CronJob
		if err := o.Decode(&cj); err != nil {
			return err
		}
		v = cj
	default:
		return fmt.Errorf("the converged render does not answer %q", args)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// find returns the rendered objects of kind, named name or carrying the
// label selector key=value.
func (c convergedRender) find(kind, name, selector string) []mock.Object {
	key, value, _ := strings.Cut(selector, "=")
	var found []mock.Object
	for _, o := range c.objs {
		if o.Kind() != kind || (name != "" && o.Name() != name) {
			continue
		}
		if selector != "" {
			meta, _ := o.Fields["metadata"].(map[string]any)
			labels, _ := meta["labels"].(map[string]any)
			if labels[key] != value {
				continue
			}
		}
		found = append(found, o)
	}
	return found
}

func (c convergedRender) one(kind, name string) (mock.Object, error) {
	found := c.find(kind, name, "")
	if len(found) != 1 {
		return mock.Object{}, fmt.Errorf("%s/%s: %d rendered", kind, name, len(found))
	}
	return found[0], nil
}

// replicas is a Deployment's count once converged: its own, or the minimum
// of the autoscaler that owns it (nothing loads the pods here).
func (c convergedRender) replicas(d appsv1.Deployment) int32 {
	if d.Spec.Replicas != nil {
		return *d.Spec.Replicas
	}
	for _, o := range c.find("HorizontalPodAutoscaler", "", "") {
		var h autoscalingv2.HorizontalPodAutoscaler
		if o.Decode(&h) == nil && h.Spec.ScaleTargetRef.Name == d.Name && h.Spec.MinReplicas != nil {
			return *h.Spec.MinReplicas
		}
	}
	return 1
}
