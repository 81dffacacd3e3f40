package localcluster

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/labels"
	"llm-platform/internal/names"
)

// Getter reads objects as `kubectl get -o json` does: Kubectl on a cluster,
// or the converged render that Sample reads.
type Getter interface {
	GetJSON(out any, args ...string) error
}

// Check is one thing that must hold for a stack to have converged.
type Check struct {
	// Kind and Name of the object the check is about.
	Kind, Name string
	// Done reports whether it holds, and a short state for the table.
	Done func() (bool, string)
}

// Checks lists what `make up` waits for: the ingestion Job Complete, the
// transformation and inference Deployments Available at their size, every
// inference pod on a GPU node, the checkpoint StatefulSet Ready with one
// Bound claim per replica, and the CronJob present.
func Checks(k Getter, cfg config.Config) []Check {
	ns := cfg.Namespace.Name
	var checks []Check
	// The first run's Job is named by its spec (ingestion-<hash>): find it by
	// its instance label, which scheduled runs do not carry.
	checks = append(checks, Check{"Job", names.Ingestion, func() (bool, string) {
		var list batchv1.JobList
		if err := k.GetJSON(&list, "-n", ns, "jobs", "-l", labels.Instance+"="+names.Ingestion); err != nil || len(list.Items) == 0 {
			return false, "missing"
		}
		if len(list.Items) > 1 {
			return false, fmt.Sprintf("%d runs, want one", len(list.Items))
		}
		return jobState(list.Items[0])
	}})
	checks = append(checks, FetchChecks(k, cfg)...)
	t := cfg.Pipeline.Transformation
	checks = append(checks, deploymentCheck(k, ns, names.Transformation, wantReplicas(t.Replicas, t.Autoscaling)))
	for _, m := range cfg.Serving.Models {
		if m.MultiNode() {
			checks = append(checks, groupCheck(k, ns, names.Inference(m.Name), wantReplicas(m.Replicas, m.Autoscaling)))
		} else {
			checks = append(checks, deploymentCheck(k, ns, names.Inference(m.Name), wantReplicas(m.Replicas, m.Autoscaling)))
		}
		checks = append(checks, onGPUNodesCheck(k, ns, names.Inference(m.Name), cfg.GPUPool))
	}
	checks = append(checks, Check{"StatefulSet", names.Checkpoint, func() (bool, string) {
		var s appsv1.StatefulSet
		if err := k.GetJSON(&s, "-n", ns, "statefulset", names.Checkpoint); err != nil {
			return false, "missing"
		}
		bound := 0
		for i := range cfg.Checkpoint.Replicas {
			var pvc corev1.PersistentVolumeClaim
			if k.GetJSON(&pvc, "-n", ns, "pvc", names.CheckpointClaimOf(i)) == nil && pvc.Status.Phase == corev1.ClaimBound {
				bound++
			}
		}
		state := fmt.Sprintf("ready %d/%d, claims bound %d", s.Status.ReadyReplicas, cfg.Checkpoint.Replicas, bound)
		return int(s.Status.ReadyReplicas) == cfg.Checkpoint.Replicas && bound == cfg.Checkpoint.Replicas, state
	}})
	checks = append(checks, Check{"CronJob", names.Cron, func() (bool, string) {
		var c batchv1.CronJob
		if err := k.GetJSON(&c, "-n", ns, "cronjob", names.Cron); err != nil {
			return false, "missing"
		}
		return true, fmt.Sprintf("schedule %q, suspend %v", c.Spec.Schedule, *c.Spec.Suspend)
	}})
	return checks
}

// FetchChecks wait for the fetch run of each model's configured revision.
func FetchChecks(k Getter, cfg config.Config) []Check {
	var checks []Check
	for _, m := range cfg.Serving.Models {
		if !m.Source.Fetched() {
			continue
		}
		instance := names.Fetch(m.Name)
		checks = append(checks, Check{"Job", instance, func() (bool, string) {
			var list batchv1.JobList
			if err := k.GetJSON(&list, "-n", cfg.Namespace.Name, "jobs", "-l", labels.Instance+"="+instance); err != nil {
				return false, "missing"
			}
			for _, j := range list.Items {
				if fetches(j, m.Source.Revision) {
					done, state := jobState(j)
					return done, "revision " + m.Source.Revision[:min(12, len(m.Source.Revision))] + ": " + state
				}
			}
			return false, "missing for revision " + m.Source.Revision
		}})
	}
	return checks
}

// fetches reports whether a fetch Job fetches revision.
func fetches(j batchv1.Job, revision string) bool {
	for _, c := range j.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "SOURCE_REVISION" && e.Value == revision {
				return true
			}
		}
	}
	return false
}

// PodReady says whether a pod's Ready condition is True.
func PodReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// jobState says whether a Job completed, and how far it is.
func jobState(j batchv1.Job) (bool, string) {
	completions := int32(1)
	if j.Spec.Completions != nil {
		completions = *j.Spec.Completions
	}
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true, fmt.Sprintf("Complete %d/%d", j.Status.Succeeded, completions)
		}
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return false, "Failed: " + c.Message
		}
	}
	return false, fmt.Sprintf("running %d/%d", j.Status.Succeeded, completions)
}

// wantReplicas is how many replicas a Deployment should settle at: the HPA's
// minimum when it scales (nothing loads the pods here), else its count.
func wantReplicas(replicas int, a config.Autoscaling) int {
	if a.Enabled {
		return a.MinReplicas
	}
	return replicas
}

func deploymentCheck(k Getter, ns, name string, want int) Check {
	return Check{"Deployment", name, func() (bool, string) {
		var d appsv1.Deployment
		if err := k.GetJSON(&d, "-n", ns, "deployment", name); err != nil {
			return false, "missing"
		}
		available := false
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
				available = true
			}
		}
		state := fmt.Sprintf("available %d/%d", d.Status.AvailableReplicas, want)
		done := available && int(d.Status.AvailableReplicas) >= want && d.Status.UpdatedReplicas == d.Status.Replicas &&
			d.Status.ObservedGeneration >= d.Generation
		return done, state
	}}
}

// LeaderWorkerSetStatus is the part of a LeaderWorkerSet's status the
// checks read (sigs.k8s.io/lws api/leaderworkerset/v1).
type LeaderWorkerSetStatus struct {
	Metadata struct {
		Name       string `json:"name"`
		Generation int64  `json:"generation"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int32 `json:"replicas"`
	} `json:"spec"`
	Status struct {
		Conditions      []metav1.Condition `json:"conditions"`
		ReadyReplicas   int32              `json:"readyReplicas"`
		UpdatedReplicas int32              `json:"updatedReplicas"`
		Replicas        int32              `json:"replicas"`
		HPAPodSelector  string             `json:"hpaPodSelector"`
	} `json:"status"`
}

// GetLeaderWorkerSet reads the LeaderWorkerSet name of namespace ns.
func GetLeaderWorkerSet(k Getter, ns, name string) (LeaderWorkerSetStatus, error) {
	var l LeaderWorkerSetStatus
	err := k.GetJSON(&l, "-n", ns, "leaderworkersets.leaderworkerset.x-k8s.io", name)
	return l, err
}

// Available reports the LeaderWorkerSet's Available condition.
func (l LeaderWorkerSetStatus) Available() bool {
	return metaCondition(l.Status.Conditions, "Available")
}

func metaCondition(conds []metav1.Condition, kind string) bool {
	for _, c := range conds {
		if c.Type == kind && c.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}

// groupCheck waits for a multi-node model's LeaderWorkerSet: want groups
// ready (every pod of each), all of the current revision.
func groupCheck(k Getter, ns, name string, want int) Check {
	return Check{"LeaderWorkerSet", name, func() (bool, string) {
		l, err := GetLeaderWorkerSet(k, ns, name)
		if err != nil {
			return false, "missing"
		}
		state := fmt.Sprintf("groups ready %d/%d, updated %d", l.Status.ReadyReplicas, want, l.Status.UpdatedReplicas)
		done := l.Available() && int(l.Status.ReadyReplicas) >= want && l.Status.UpdatedReplicas == l.Status.Replicas
		return done, state
	}}
}

func onGPUNodesCheck(k Getter, ns, deployment string, pool config.GPUPool) Check {
	return Check{"Pods", deployment, func() (bool, string) {
		var pods corev1.PodList
		if err := k.GetJSON(&pods, "-n", ns, "pods", "-l", "app.kubernetes.io/instance="+deployment); err != nil {
			return false, "missing"
		}
		var nodes corev1.NodeList
		if err := k.GetJSON(&nodes, "nodes", "-l", pool.NodeLabelKey+"="+pool.NodeLabelValue); err != nil {
			return false, err.Error()
		}
		var gpuNodes []string
		for _, n := range nodes.Items {
			gpuNodes = append(gpuNodes, n.Name)
		}
		onGPU := 0
		for _, p := range pods.Items {
			if slices.Contains(gpuNodes, p.Spec.NodeName) {
				onGPU++
			}
		}
		return len(pods.Items) > 0 && onGPU == len(pods.Items), fmt.Sprintf("%d/%d on GPU nodes", onGPU, len(pods.Items))
	}}
}

// PollInterval is how often Wait polls. The benchmarks shorten it, so that
// what they time is the cluster and not the poll.
var PollInterval = 2 * time.Second

// Wait polls checks until all hold or timeout passes, printing progress to
// out. On timeout it returns an error naming each object that did not
// converge, with its conditions and last events.
func Wait(k Kubectl, ns string, checks []Check, timeout time.Duration, out io.Writer) error {
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		var pending []string
		for _, c := range checks {
			if ok, state := c.Done(); !ok {
				pending = append(pending, fmt.Sprintf("%s/%s (%s)", c.Kind, c.Name, state))
			}
		}
		if len(pending) == 0 {
			converged(out, time.Since(start))
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			fmt.Fprintf(&b, "not converged after %s:\n", timeout)
			for _, c := range checks {
				if ok, state := c.Done(); !ok {
					fmt.Fprintf(&b, "- %s/%s: %s\n%s", c.Kind, c.Name, state, Diagnose(k, ns, c.Kind, c.Name))
				}
			}
			return fmt.Errorf("%s", b.String())
		}
		fmt.Fprintf(out, "  waiting %3ds: %s\n", int(time.Since(start).Seconds()), strings.Join(pending, ", "))
		time.Sleep(PollInterval)
	}
}

// converged reports that every check holds, after d.
func converged(out io.Writer, d time.Duration) {
	fmt.Fprintf(out, "converged in %s\n", d.Round(time.Second))
}

// Diagnose prints an object's conditions and its last events.
func Diagnose(k Kubectl, ns, kind, name string) string {
	var b strings.Builder
	if kind != "Pods" {
		var obj struct {
			Status struct {
				Conditions []struct{ Type, Status, Reason, Message string } `json:"conditions"`
			} `json:"status"`
		}
		if err := k.GetJSON(&obj, "-n", ns, strings.ToLower(kind), name); err == nil {
			for _, c := range obj.Status.Conditions {
				fmt.Fprintf(&b, "    condition %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
	var events corev1.EventList
	if err := k.GetJSON(&events, "-n", ns, "events", "--sort-by=.lastTimestamp"); err == nil {
		var lines []string
		for _, e := range events.Items {
			if strings.HasPrefix(e.InvolvedObject.Name, name) {
				lines = append(lines, fmt.Sprintf("    event %s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message))
			}
		}
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		for _, l := range lines {
			b.WriteString(l)
		}
	}
	return b.String()
}

// Table prints the state of every check.
func Table(checks []Check, out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAME\tOK\tSTATE")
	for _, c := range checks {
		ok, state := c.Done()
		mark := "yes"
		if !ok {
			mark = "NO"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Kind, c.Name, mark, state)
	}
	w.Flush()
}
