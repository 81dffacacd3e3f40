package localcluster

import (
	"fmt"
	"sort"
	"strings"
)

// LoadResult is what one steady stream of requests to a model measured
// during a change (a rollout, a drain, a scale-down): the real-node tier
// (test/realnode) writes them as JSON to $REALNODE_RESULTS, and `make bench`
// reads them into BENCHMARKS.md.
type LoadResult struct {
	// Scenario names the change the stream ran through.
	Scenario string `json:"scenario"`
	// Sent and Failed count requests; a failure is a transport error or a
	// status other than 200.
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
	// Rate is Sent per second over Seconds, the stream's length.
	Rate    float64 `json:"ratePerSecond"`
	Seconds float64 `json:"seconds"`
	// Errors counts failures by their message.
	Errors map[string]int `json:"errors,omitempty"`
	// Pods counts answers by the pod that served them.
	Pods map[string]int `json:"pods"`
}

func (r LoadResult) String() string {
	var errs []string
	for e, n := range r.Errors {
		errs = append(errs, fmt.Sprintf("%dx %s", n, e))
	}
	sort.Strings(errs)
	return fmt.Sprintf("%s: %d sent, %d failed in %.0f s (%.1f/s), served by %v %s",
		r.Scenario, r.Sent, r.Failed, r.Seconds, r.Rate, r.Pods, strings.Join(errs, "; "))
}

// RoutingResult is what one routing strategy measured on one workload in
// the real-node tier's routing benchmark (test/realnode, written as JSON to
// $ROUTING_RESULTS): the prefix-cache hit rate the model-server doubles
// reported and their simulated time to first token.
type RoutingResult struct {
	// Workload describes the requests: "shared prefix" or "no shared prefix",
	// with its parameters in Params.
	Workload string `json:"workload"`
	Params   string `json:"params"`
	// Strategy is "endpoint picker", "random (what the Service does)" or
	// "oracle (the replica that holds the prefix)".
	Strategy string `json:"strategy"`
	// Requests sent and Failed among them.
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// HitRate is prefix blocks served from cache over prefix blocks sent.
	HitRate float64 `json:"hitRate"`
	// TTFTP50 and TTFTP90 are the doubles' time to first token, in
	// milliseconds: the wait for a sequence slot and the prefill of the
	// blocks not in cache.
	TTFTP50 float64 `json:"ttftP50Ms"`
	TTFTP90 float64 `json:"ttftP90Ms"`
}
