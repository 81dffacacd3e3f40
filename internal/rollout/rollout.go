// Package rollout derives a model server's timings from its budgets: the
// startup probe's failure threshold, the Deployment's progress deadline, the
// grace period and the Pulumi customTimeouts. Validation and the serving
// component use this one arithmetic, so a budget that would overflow a
// Kubernetes field or a Pulumi timeout is refused at preview, naming the key
// it came from, and never reaches the API server.
package rollout

import (
	"fmt"
	"math"
	"time"
)

const (
	// MarginSeconds covers scheduling and the first readiness checks beyond
	// the image pull and the model load.
	MarginSeconds = 60
	// NodeProvisioningSeconds covers a cluster autoscaler (Karpenter, GKE NAP)
	// bringing up a GPU node for a new pod.
	NodeProvisioningSeconds = 600
)

// Budgets are what a model's configuration says its rollout may take.
type Budgets struct {
	// ModelLoadSeconds is how long the model may take to load once started.
	ModelLoadSeconds int
	// ImagePullSeconds is how long pulling the image may take.
	ImagePullSeconds int
	// ProbePeriodSeconds is the period of the startup and liveness probes.
	ProbePeriodSeconds int
	// MaxReplicas is the most replicas an update replaces, one after another.
	MaxReplicas int
	// PreStopSleepSeconds and DrainSeconds make up the grace period.
	PreStopSleepSeconds, DrainSeconds int
}

// Timings are the values the Deployment and Pulumi are given.
type Timings struct {
	// StartupFailureThreshold x the probe period covers the model-load budget.
	StartupFailureThreshold int
	// ProgressDeadlineSeconds is the Deployment's progress deadline.
	ProgressDeadlineSeconds int
	// TerminationGracePeriodSeconds covers the preStop sleep and the drain.
	TerminationGracePeriodSeconds int
	// Create, Update and Delete are the Pulumi customTimeouts.
	Create, Update, Delete time.Duration
}

// TooLarge says a derived value does not fit where it goes.
type TooLarge struct {
	// Derived names the value, for example "progressDeadlineSeconds".
	Derived string
	// Budget is the Budgets field that made it overflow, for example "MaxReplicas".
	Budget string
	// Seconds is what the value would be, Max what fits.
	Seconds, Max int64
}

func (e *TooLarge) Error() string {
	return fmt.Sprintf("%s would be %ds, more than the %ds it can hold", e.Derived, e.Seconds, e.Max)
}

// maxTimeoutSeconds is the longest wait a Go duration (Pulumi's customTimeouts) can hold.
const maxTimeoutSeconds = math.MaxInt64 / int64(time.Second)

// Plan derives every timing from b. The startup probe tries every period
// until the model-load budget is spent; the progress deadline adds the image
// pull and a margin; Pulumi waits that long for each pod replaced in turn,
// plus time for a new GPU node. Budgets must be non-negative with a positive
// period; a value that would not fit its field is a *TooLarge naming the
// budget that made it so.
func Plan(b Budgets) (Timings, error) {
	period := int64(max(b.ProbePeriodSeconds, 1))
	threshold := (int64(b.ModelLoadSeconds) + period - 1) / period
	deadline := int64(b.ImagePullSeconds) + threshold*period + MarginSeconds
	grace := int64(b.PreStopSleepSeconds) + int64(b.DrainSeconds)
	for _, v := range []struct {
		derived, budget string
		seconds         int64
	}{
		{"the startup probe's failureThreshold", "ModelLoadSeconds", threshold},
		{"progressDeadlineSeconds (image pull + model load + margin)", "ModelLoadSeconds", deadline},
		{"terminationGracePeriodSeconds (preStop sleep + drain)", "DrainSeconds", grace},
	} {
		if v.seconds > math.MaxInt32 {
			return Timings{}, &TooLarge{Derived: v.derived, Budget: v.budget, Seconds: v.seconds, Max: math.MaxInt32}
		}
	}
	replicas := int64(max(b.MaxReplicas, 1))
	if replicas > (maxTimeoutSeconds-NodeProvisioningSeconds)/deadline {
		return Timings{}, &TooLarge{Derived: "Pulumi's update timeout (replicas x progress deadline)", Budget: "MaxReplicas",
			Seconds: saturatingMul(replicas, deadline), Max: maxTimeoutSeconds}
	}
	seconds := func(s int64) time.Duration { return time.Duration(s) * time.Second }
	return Timings{
		StartupFailureThreshold:       int(threshold),
		ProgressDeadlineSeconds:       int(deadline),
		TerminationGracePeriodSeconds: int(grace),
		Create:                        seconds(deadline + NodeProvisioningSeconds),
		Update:                        seconds(replicas*deadline + NodeProvisioningSeconds),
		Delete:                        seconds(grace + MarginSeconds),
	}, nil
}

func saturatingMul(a, b int64) int64 {
	if b != 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// ScaleDownPeriodSeconds is the period of the autoscaler's scale-down policy:
// one pod per period. Validation warns about a stabilization window shorter
// than it; the autoscalers are built with it.
const ScaleDownPeriodSeconds = 120

// MaxReplicas is the most replicas a workload runs: the autoscaler's maximum
// when it scales, else its fixed count. The quota demand, the update timeout
// and whether a workload gets a disruption budget all count from it.
func MaxReplicas(replicas int, autoscaled bool, autoscalerMax int) int {
	if autoscaled {
		return autoscalerMax
	}
	return replicas
}
