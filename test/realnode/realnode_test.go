//go:build realnode

// Package realnode runs the stack's pods on real kubelets (hack/realnode.sh:
// containerd, runc, the CNI bridge, kube-proxy and kube-router's NetworkPolicy
// firewall, in network namespaces of their own) and checks what docs/testing.md
// promises about them: they start under `restricted` as uid 65532 with a
// read-only root, the probes the stack computed are the ones that run, the
// weights are complete before a server starts, no request is lost in a
// rollout, a drain or a scale-down, and the NetworkPolicies hold. Run with
// `make realnode` (root, and Debian's containerd; it says SKIPPED otherwise).
package realnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
	"llm-platform/internal/stacktest"
)

const (
	clusterName = "llm-platform-real"
	stackName   = "realnode"
)

var (
	root     = stacktest.RepoRoot()
	testdata = filepath.Join(root, "test", "realnode", "testdata")
	kubectl  = localcluster.Kubectl{
		Binary:     filepath.Join(root, "build", "bin", "kubectl"),
		Kubeconfig: filepath.Join(root, "build", "kubeconfig-"+clusterName),
	}

	// variants holds the stack files the tests change, for the whole run.
	variants string

	// results are the zero-loss counts, written to $REALNODE_RESULTS (JSON)
	// for make bench.
	resultsMu sync.Mutex
	results   []localcluster.LoadResult
)

func cluster(action string) error {
	cmd := exec.Command(filepath.Join(root, "hack", "cluster.sh"), action)
	cmd.Env = append(os.Environ(), "CLUSTER_NAME="+clusterName, "REAL_NODES=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func TestMain(m *testing.M) {
	// A fresh cluster, unless a developer asks to reuse a kept one
	// (REUSE_CLUSTER=1 after KEEP_CLUSTER=1) to iterate on one test.
	if os.Getenv("REUSE_CLUSTER") == "" {
		_ = cluster("down")
	}
	if err := cluster("up"); err != nil {
		fmt.Fprintln(os.Stderr, "realnode: cannot start the local cluster with real nodes:", err)
		_ = cluster("down")
		os.Exit(1)
	}
	var err error
	if variants, err = os.MkdirTemp("", "realnode-stacks-"); err != nil {
		fmt.Fprintln(os.Stderr, "realnode:", err)
		os.Exit(1)
	}
	stopInternet, err := startInternet()
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode: the internet stand-in:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopInternet()
	if path := os.Getenv("REALNODE_RESULTS"); path != "" {
		data, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "realnode: results:", err)
		}
	}
	if os.Getenv("KEEP_CLUSTER") == "" {
		_ = cluster("down")
	}
	os.RemoveAll(variants)
	os.Exit(code)
}

// startInternet serves the stand-in for the internet in the router's
// namespace: port 80 is the model hub the fetch runs may reach, 8081 a port
// no policy opens. Both answer 200, so a refused connection is the policy's.
func startInternet() (stop func(), err error) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "internet stand-in: %s %s\n", r.Method, r.URL.Path)
	})
	var stops []func()
	for _, port := range []string{"80", "8081"} {
		s, err := listenIn(routerNetns(), internetAddr+":"+port, h)
		if err != nil {
			for _, s := range stops {
				s()
			}
			return nil, err
		}
		stops = append(stops, s)
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}, nil
}

var (
	deployOnce sync.Once
	deployErr  error
	stack      config.Config
)

// deployStack deploys the real-node stack once, with the client pods the
// policy checks use, and returns its config.
func deployStack(t *testing.T) config.Config {
	t.Helper()
	deployOnce.Do(func() {
		stack, deployErr = localcluster.LoadConfig(testdata, stackName)
		if deployErr != nil {
			return
		}
		if deployErr = cluster("custom-metrics"); deployErr != nil {
			return
		}
		if deployErr = createClients(); deployErr != nil {
			return
		}
		var out bytes.Buffer
		if _, err := localcluster.Deploy(testdata, stackName, kubectl, 5*time.Minute, &out); err != nil {
			deployErr = fmt.Errorf("%w\n%s", err, out.String())
		}
	})
	require.NoError(t, deployErr, "deploy the real-node stack")
	return stack
}

// clientNamespaces: the namespace the stack's inference clients live in, the
// one its scrapers live in, and one that is neither.
var clientNamespaces = []string{"llm-gateway", "monitoring", "outsider"}

// createClients starts one pod per client namespace on the CPU node: the
// tests connect from inside it.
func createClients() error {
	var docs []string
	for _, ns := range clientNamespaces {
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: %[1]s, labels: {app: client}}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: client
    image: llm-platform.local/transform:test
    imagePullPolicy: Never
    args: ["--port", "8080"]
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes: [{name: tmp, emptyDir: {}}]`, ns))
	}
	// A new namespace's default ServiceAccount comes from a controller, a
	// moment after the namespace: until then the API server refuses pods.
	for attempt := 0; ; attempt++ {
		_, stderr, err := kubectl.Run([]byte(strings.Join(docs, "\n---\n")), "apply", "-f", "-")
		if err == nil {
			break
		}
		if attempt == 30 || !strings.Contains(stderr, `serviceaccount "default" not found`) {
			return fmt.Errorf("client pods: %w: %s", err, stderr)
		}
		time.Sleep(time.Second)
	}
	for _, ns := range clientNamespaces {
		if _, stderr, err := kubectl.Run(nil, "-n", ns, "wait", "--for=condition=Ready", "--timeout=120s", "pod/client"); err != nil {
			return fmt.Errorf("client pod in %s: %w: %s", ns, err, stderr)
		}
	}
	return nil
}

// pods lists the pods of ns with the label selector.
func pods(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	args := []string{"-n", ns, "pods"}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	require.NoError(t, kubectl.GetJSON(&list, args...))
	return list.Items
}

// servingPods are the model's pods that run and are Ready, not terminating.
func servingPods(t *testing.T, cfg config.Config) []corev1.Pod {
	t.Helper()
	var out []corev1.Pod
	for _, p := range pods(t, cfg.Namespace.Name, "app.kubernetes.io/instance="+names.Inference(cfg.Serving.Models[0].Name)) {
		if p.DeletionTimestamp == nil && localcluster.PodReady(p) {
			out = append(out, p)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Second)
	}
}

// getJSON reads a JSON document over HTTP from inside the namespace at path.
func getJSON(path, url string, out any) error {
	resp, err := clientFrom(path, 5*time.Second).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func record(t *testing.T, r localcluster.LoadResult) {
	t.Helper()
	t.Log(r.String())
	resultsMu.Lock()
	defer resultsMu.Unlock()
	results = append(results, r)
}
