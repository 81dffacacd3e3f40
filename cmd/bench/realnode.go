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

// benchRealNodes runs the zero-loss scenarios of the real-node tier (a
// steady stream through the model's Service during a rollout, a drain and an
// HPA scale-down, on real kubelets) and writes their counts. Where the
// machine cannot run real nodes it says so instead.
func benchRealNodes(root string, w io.Writer) {
	fmt.Fprintf(w, "\n## 7. Requests lost on real nodes (`make realnode`'s zero-loss scenarios)\n\n")
	check := exec.Command(filepath.Join(root, "hack", "realnode.sh"), "check")
	check.Dir = root
	if out, err := check.Output(); err != nil {
		fmt.Fprintf(w, "Not measured: this machine cannot run real nodes (missing: %s).\n", strings.Join(strings.Fields(string(out)), " "))
		return
	}
	path := filepath.Join(root, "build", "bench-realnode.json")
	_ = os.Remove(path)
	cmd := exec.Command("go", "test", "-tags", "realnode", "-count=1", "-timeout", "30m", "-run", "TestNoRequestLost", "./test/realnode/")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "REALNODE_RESULTS="+path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	testErr := cmd.Run()
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
