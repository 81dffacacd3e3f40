package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"llm-platform/internal/localcluster"
)

// benchRealNodes runs, on one cluster with real nodes, the zero-loss
// scenarios of the real-node tier (a steady stream through the model's
// Service during a rollout, a drain and an HPA scale-down) and the routing
// benchmark (the real endpoint picker against random choice and an oracle),
// and writes sections 7 and 8. Where the machine cannot run real nodes it
// says so instead.
func benchRealNodes(root string, w io.Writer) {
	check := exec.Command(filepath.Join(root, "hack", "realnode.sh"), "check")
	check.Dir = root
	if out, err := check.Output(); err != nil {
		missing := strings.Join(strings.Fields(string(out)), " ")
		fmt.Fprintf(w, "\n## 7. Requests lost on real nodes (`make realnode`'s zero-loss scenarios)\n\nNot measured: this machine cannot run real nodes (missing: %s).\n", missing)
		fmt.Fprintf(w, "\n## 8. Routing: the endpoint picker, random choice and an oracle\n\nNot measured: this machine cannot run real nodes (missing: %s).\n", missing)
		return
	}
	path := filepath.Join(root, "build", "bench-realnode.json")
	routingPath := filepath.Join(root, "build", "bench-routing.json")
	_ = os.Remove(path)
	_ = os.Remove(routingPath)
	cmd := exec.Command("go", "test", "-tags", "realnode", "-count=1", "-timeout", "40m", "-v",
		"-run", "TestEndpointPickerRoutesOnRealNodes|TestNoRequestLost", "./test/realnode/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "REALNODE_RESULTS="+path, "ROUTING_RESULTS="+routingPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	testErr := cmd.Run()
	zeroLoss(w, path, testErr)
	routingTable(w, routingPath, testErr)
}

func zeroLoss(w io.Writer, path string, testErr error) {
	fmt.Fprintf(w, "\n## 7. Requests lost on real nodes (`make realnode`'s zero-loss scenarios)\n\n")
	data, err := os.ReadFile(path)
	var results []localcluster.LoadResult
	if err == nil {
		err = json.Unmarshal(data, &results)
	}
	if err != nil || len(results) == 0 {
		fmt.Fprintf(w, "Not measured: the scenarios did not run to the end (%v, %v).\n", testErr, err)
		return
	}
	fmt.Fprintf(w, "| scenario | requests sent | failed | rate | duration | pods that answered |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	sent, failed := 0, 0
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %d | %d | %.1f/s | %.0f s | %d |\n", r.Scenario, r.Sent, r.Failed, r.Rate, r.Seconds, len(r.Pods))
		sent += r.Sent
		failed += r.Failed
	}
	fmt.Fprintf(w, "\nEach request is a `POST /v1/completions` on a new connection from a client pod in `llm-gateway` to the model's ClusterIP Service (kube-proxy, iptables mode), answered by the model-server double.\n")
	if failed == 0 {
		fmt.Fprintf(w, "Reading: %d requests over %d scenarios, none lost: the drain timings hold.\n", sent, len(results))
	} else {
		fmt.Fprintf(w, "Reading: %d of %d requests failed: the drain timings are wrong somewhere (see the test's errors).\n", failed, sent)
	}
	if testErr != nil {
		fmt.Fprintf(w, "The test run failed (%v): see its output.\n", testErr)
	}
}

// routingTable writes the routing benchmark's three-way table and reads it
// against the goals: the picker's hit rate at least 2x random's and within
// 80% of the oracle's, its p90 TTFT at least 5x lower than random's, and
// with no shared prefix not worse than random.
func routingTable(w io.Writer, path string, testErr error) {
	fmt.Fprintf(w, "\n## 8. Routing: the endpoint picker, random choice and an oracle\n\n")
	data, err := os.ReadFile(path)
	var results []localcluster.RoutingResult
	if err == nil {
		err = json.Unmarshal(data, &results)
	}
	if err != nil || len(results) == 0 {
		fmt.Fprintf(w, "Not measured: the benchmark did not run to the end (%v, %v).\n", testErr, err)
		return
	}
	by := map[string]localcluster.RoutingResult{}
	workload := ""
	for _, r := range results {
		if r.Workload != workload {
			workload = r.Workload
			fmt.Fprintf(w, "\n**%s**: %s.\n\n| strategy | requests | failed | prefix-cache hit rate | TTFT p50 | TTFT p90 |\n| --- | ---: | ---: | ---: | ---: | ---: |\n", r.Workload, r.Params)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.1f%% | %.0f ms | %.0f ms |\n", r.Strategy, r.Requests, r.Failed, 100*r.HitRate, r.TTFTP50, r.TTFTP90)
		by[r.Workload+"/"+r.Strategy] = r
	}
	fmt.Fprintf(w, "\nThe picker is the real EPP v1.5.0 with the stack's rendered config (queue 2, KV-cache 2, prefix 3), asked over ext-proc by a test gateway in `llm-gateway`; the replicas are the model-server double on real nodes, whose TTFT is the wait for a sequence slot plus the prefill of the blocks not in its cache.\n")
	p, r, o := by["shared prefix/endpoint picker"], by["shared prefix/random (what the Service does)"], by["shared prefix/oracle (each tenant on one replica)"]
	np, nr := by["no shared prefix/endpoint picker"], by["no shared prefix/random (what the Service does)"]
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(w, "\nReading, against the goals:\n")
	if r.HitRate > 0 {
		fmt.Fprintf(w, "- hit rate %.1fx random's (goal 2x): %s;\n", p.HitRate/r.HitRate, verdict(p.HitRate >= 2*r.HitRate))
	} else {
		fmt.Fprintf(w, "- hit rate %.1f%% against random's 0%%: %s;\n", 100*p.HitRate, verdict(p.HitRate > 0))
	}
	if o.HitRate > 0 {
		fmt.Fprintf(w, "- hit rate %.0f%% of the oracle's (goal 80%%): %s;\n", 100*p.HitRate/o.HitRate, verdict(p.HitRate >= 0.8*o.HitRate))
	}
	if p.TTFTP90 > 0 {
		fmt.Fprintf(w, "- TTFT p90 %.1fx lower than random's (goal 5x): %s;\n", r.TTFTP90/p.TTFTP90, verdict(r.TTFTP90 >= 5*p.TTFTP90))
	} else {
		fmt.Fprintf(w, "- TTFT p90 0 ms against random's %.0f ms: met;\n", r.TTFTP90)
	}
	fmt.Fprintf(w, "- no shared prefix: TTFT p90 %.0f ms against random's %.0f ms: %s.\n", np.TTFTP90, nr.TTFTP90, verdict(np.TTFTP90 <= 1.1*nr.TTFTP90))
	if testErr != nil {
		fmt.Fprintf(w, "\nThe test run failed (%v): see its output.\n", testErr)
	}
}
