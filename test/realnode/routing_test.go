//go:build realnode

package realnode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/names"
	"llm-platform/routing"
	"llm-platform/test/extproc"
)

// The real endpoint picker (cmd/epp of the inference extension v1.5.0,
// built by hack/tools.sh) decides where each request goes, with the
// ConfigMap, flags, Role and policies the stack rendered. Pods on these
// nodes cannot reach the API server (it listens on the host's loopback), so
// the picker's own pod runs the pause image, and the test runs the picker
// binary inside that pod's network namespace, with a socat there to the API
// server and the pod ServiceAccount's token: the kubelet's gRPC probes, the
// NetworkPolicies and the Role all apply to it as to the real container.
// The test plays the gateway: it speaks ext-proc to the picker from the
// llm-gateway client pod and sends each request where the picker says.

// pooled is the routing variant of the current stack: the model through an
// inference pool, its picker's pod a pause container beside the binary, three
// replicas whose doubles hold 192 prefix blocks of 64 characters each, take
// 10 ms to prefill a block not in cache, and run 4 sequences at once.
func pooled(s string) string {
	s = strings.Replace(s, `"--load-seconds", "3"]`, `"--load-seconds", "3", "--max-num-seqs", "4", "--prefix-cache-blocks", "192", "--prefix-block-chars", "64", "--prefill-ms-per-block", "10"]`, 1)
	s = strings.Replace(s, "minReplicas: 2\n", "minReplicas: 3\n", 1)
	s = strings.Replace(s, "  llm-platform:serving:\n    models:\n", `  llm-platform:serving:
    routing:
      mode: inferencePool
      gateway: {name: inference-gateway, namespace: llm-gateway}
      picker:
        image: llm-platform.local/pause:test
        resources:
          requests: {cpu: 50m, memory: 64Mi, ephemeralStorage: 64Mi}
    models:
`, 1)
	return strings.Replace(s, "          workloads: [fetch]\n", `          workloads: [fetch]
        - cidr: 127.0.0.1/32
          ports: [6443]
          description: the API server, through the socat the test runs in the picker's namespace
          workloads: [endpoint-picker]
`, 1)
}

// picker runs the picker binary in pod's network namespace until stop.
type picker struct {
	cmds []*exec.Cmd
	log  string
}

func (p *picker) stop() {
	for _, c := range p.cmds {
		if c.Process != nil {
			_ = c.Process.Kill()
			_, _ = c.Process.Wait()
		}
	}
}

func startPicker(t *testing.T, ns, model string, pod corev1.Pod) *picker {
	t.Helper()
	podNS, err := podNetns(pod.Status.PodIP)
	require.NoError(t, err)
	dir := t.TempDir()

	// Its config as the kubelet would mount it, its flags as rendered.
	var cm corev1.ConfigMap
	require.NoError(t, kubectl.GetJSON(&cm, "-n", ns, "configmap", names.Picker(model)))
	configFile := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(configFile, []byte(cm.Data["config.yaml"]), 0o644))
	args := []string{}
	for _, a := range pod.Spec.Containers[0].Args {
		args = append(args, strings.Replace(a, "--config-file="+routing.ConfigFile, "--config-file="+configFile, 1))
	}
	require.Contains(t, args, "--config-file="+configFile, "the rendered flags name the mounted config")

	// The pod's ServiceAccount, and the API server at a port of the pod's loopback.
	token, stderr, err := kubectl.Run(nil, "-n", ns, "create", "token", pod.Spec.ServiceAccountName, "--duration=1h")
	require.NoError(t, err, stderr)
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     string `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	out, stderr, err := kubectl.Run(nil, "config", "view", "--raw", "--flatten", "--minify", "-o", "json")
	require.NoError(t, err, stderr)
	require.NoError(t, json.Unmarshal([]byte(out), &kc))
	require.Len(t, kc.Clusters, 1)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: %q, tls-server-name: "127.0.0.1"}}]
users: [{name: picker, user: {token: %q}}]
contexts: [{name: picker, context: {cluster: local, user: picker}}]
current-context: picker
`, kc.Clusters[0].Cluster.CA, strings.TrimSpace(token))), 0o600))

	p := &picker{log: filepath.Join(root, "build", "realnode-"+clusterName, "epp.log")}
	t.Cleanup(p.stop)
	logFile, err := os.Create(p.log)
	require.NoError(t, err)
	t.Cleanup(func() { logFile.Close() })
	sock := "/run/llm-platform/" + clusterName + "/api.sock"
	socat := exec.Command("nsenter", "--net="+podNS, "socat", "TCP-LISTEN:6443,bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:"+sock)
	socat.Stdout, socat.Stderr = logFile, logFile
	require.NoError(t, socat.Start())
	p.cmds = append(p.cmds, socat)
	epp := exec.Command("nsenter", append([]string{"--net=" + podNS, "env", "KUBECONFIG=" + kubeconfig, filepath.Join(root, "build", "bin", "epp")}, args...)...)
	epp.Stdout, epp.Stderr = logFile, logFile
	require.NoError(t, epp.Start())
	p.cmds = append(p.cmds, epp)
	return p
}

// gateway sends requests as a gateway does: ask the picker, then forward
// to the endpoint it names, from the llm-gateway client pod.
type gateway struct {
	picker *extproc.Client
	http   *http.Client
	model  string
}

func newGateway(t *testing.T, pickerIP string, model string) *gateway {
	t.Helper()
	var client corev1.Pod
	require.NoError(t, kubectl.GetJSON(&client, "-n", "llm-gateway", "pod", "client"))
	from, err := podNetns(client.Status.PodIP)
	require.NoError(t, err)
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return dialFrom(ctx, from, "tcp", addr) }
	g := &gateway{
		picker: &extproc.Client{Addr: net.JoinHostPort(pickerIP, strconv.Itoa(routing.ExtProcPort)), TLS: true, Dial: dial},
		http:   clientFrom(from, 30*time.Second),
		model:  model,
	}
	t.Cleanup(func() { g.picker.Close() })
	return g
}

// served is where one request went and what it found there.
type served struct {
	endpoint, pod     string
	hitBlocks, blocks int
	ttft              time.Duration
}

func (g *gateway) body(prompt string) []byte {
	body, _ := json.Marshal(map[string]any{"model": g.model, "prompt": prompt, "max_tokens": 8})
	return body
}

// send asks the picker where prompt goes and sends it there.
func (g *gateway) send(ctx context.Context, prompt string) (served, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	body := g.body(prompt)
	d, err := g.picker.Pick(ctx, "/v1/completions", map[string]string{routing.ModelHeader: g.model}, body)
	if err != nil {
		return served{}, fmt.Errorf("ext-proc: %w", err)
	}
	if d.Endpoint == "" {
		return served{}, fmt.Errorf("the picker refused: %d %s", d.Status, d.Detail)
	}
	return g.forward(ctx, d.Endpoint, body)
}

// forward sends body to endpoint, as the gateway does once it has chosen.
func (g *gateway) forward(ctx context.Context, endpoint string, body []byte) (served, error) {
	d := extproc.Decision{Endpoint: endpoint}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+d.Endpoint+"/v1/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return served{endpoint: d.Endpoint}, err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return served{endpoint: d.Endpoint}, fmt.Errorf("%s answered %d: %s", d.Endpoint, resp.StatusCode, text)
	}
	hits, _ := strconv.Atoi(resp.Header.Get("X-Prefix-Hit-Blocks"))
	blocks, _ := strconv.Atoi(resp.Header.Get("X-Prefix-Blocks"))
	ms, _ := strconv.Atoi(resp.Header.Get("X-TTFT-Ms"))
	return served{endpoint: d.Endpoint, pod: resp.Header.Get("X-Served-By"), hitBlocks: hits, blocks: blocks, ttft: time.Duration(ms) * time.Millisecond}, nil
}

// tenantPrompt is a long system prompt shared by every request of a tenant,
// and a short question.
func tenantPrompt(tenant, question int) string { return saltedPrompt("", tenant, question) }

// saltedPrompt is tenantPrompt with prefixes of their own for each salt: a
// strategy of the benchmark starts from caches that hold none of them.
func saltedPrompt(salt string, tenant, question int) string {
	return strings.Repeat(fmt.Sprintf("You are the assistant %s of tenant %d; answer briefly and cite the policy. ", salt, tenant), 30) +
		fmt.Sprintf("Question %d?", question)
}

func TestEndpointPickerRoutesOnRealNodes(t *testing.T) {
	cfg := deployStack(t)
	model := cfg.Serving.Models[0]
	ns, name := cfg.Namespace.Name, names.Inference(model.Name)
	base := currentStack()

	dir := stackVariant(t, pooled)
	var out bytes.Buffer
	_, err := localcluster.Deploy(dir, stackName, kubectl, 5*time.Minute, &out)
	require.NoError(t, err, out.String())
	current = dir
	defer func() {
		// Back to the Service alone for the tests that follow.
		_, stderr, err := kubectl.Run(nil, "-n", ns, "delete", "deployment,service,configmap,role,rolebinding,inferencepool,httproute",
			"-l", "app.kubernetes.io/component=routing", "--wait=false")
		assert.NoError(t, err, stderr)
		var out bytes.Buffer
		_, err = localcluster.Deploy(base, stackName, kubectl, 5*time.Minute, &out)
		assert.NoError(t, err, out.String())
		current = base
	}()

	var pickerPod corev1.Pod
	waitFor(t, "the picker's pod to run", 2*time.Minute, func() bool {
		ps := pods(t, ns, "app.kubernetes.io/instance="+names.Picker(model.Name))
		if len(ps) != 1 || ps[0].Status.PodIP == "" || ps[0].Status.Phase != corev1.PodRunning {
			return false
		}
		pickerPod = ps[0]
		return true
	})
	p := startPicker(t, ns, model.Name, pickerPod)
	waitFor(t, "the kubelet's gRPC readiness probe to find the picker ready (log: "+p.log+")", 2*time.Minute, func() bool {
		var d appsv1.Deployment
		require.NoError(t, kubectl.GetJSON(&d, "-n", ns, "deployment", names.Picker(model.Name)))
		return d.Status.ReadyReplicas == 1
	})

	g := newGateway(t, pickerPod.Status.PodIP, model.ServedModelName())
	ctx := context.Background()
	waitFor(t, "the picker to route a first request", time.Minute, func() bool {
		_, err := g.send(ctx, "warm-up")
		return err == nil
	})
	serving := servingPods(t, cfg)
	require.GreaterOrEqual(t, len(serving), 2, "two replicas to choose from")

	t.Run("requests sharing a long prefix land on the replica that holds it", func(t *testing.T) {
		const tenants, questions = 6, 5
		for tenant := range tenants {
			first, err := g.send(ctx, tenantPrompt(tenant, 0))
			require.NoError(t, err)
			for q := 1; q <= questions; q++ {
				s, err := g.send(ctx, tenantPrompt(tenant, q))
				require.NoError(t, err)
				assert.Equal(t, first.pod, s.pod, "tenant %d question %d follows its prefix", tenant, q)
				assert.Positive(t, s.hitBlocks, "tenant %d question %d hit the prefix cache", tenant, q)
			}
		}
	})

	t.Run("a replica whose queue is saturated is avoided", func(t *testing.T) {
		busy := serving[0]
		setQueue := func(n int) {
			t.Helper()
			url := fmt.Sprintf("http://%s:%d/debug/queue?waiting=%d", busy.Status.PodIP, model.Port, n)
			resp, err := g.http.Post(url, "text/plain", nil)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
		setQueue(50)
		defer setQueue(0)
		time.Sleep(time.Second) // the picker scrapes every 50 ms
		for i := range 20 {
			s, err := g.send(ctx, fmt.Sprintf("a fresh question %d with no shared prefix", i))
			require.NoError(t, err)
			assert.NotEqual(t, busy.Name, s.pod, "request %d avoided the saturated replica", i)
		}
	})

	t.Run("benchmark: picker, random and oracle on a shared-prefix workload", func(t *testing.T) {
		results := benchRouting(t, g, servingPods(t, cfg), model.Port)
		byKey := map[string]localcluster.RoutingResult{}
		for _, r := range results {
			t.Logf("%s / %s: %d requests, %d failed, hit rate %.2f, TTFT p50 %.0f ms p90 %.0f ms", r.Workload, r.Strategy, r.Requests, r.Failed, r.HitRate, r.TTFTP50, r.TTFTP90)
			assert.Zero(t, r.Failed, "%s / %s", r.Workload, r.Strategy)
			byKey[r.Workload+"/"+r.Strategy] = r
		}
		picker, random := byKey[sharedPrefix+"/"+strategyPicker], byKey[sharedPrefix+"/"+strategyRandom]
		assert.Greater(t, picker.HitRate, 1.5*random.HitRate, "the picker keeps tenants on the replica that holds their prefix")
		assert.Less(t, picker.TTFTP90, random.TTFTP90, "and their first token comes sooner")
		if path := os.Getenv("ROUTING_RESULTS"); path != "" {
			data, _ := json.MarshalIndent(results, "", "  ")
			require.NoError(t, os.WriteFile(path, data, 0o644))
		}
	})

	t.Run("during a rollout only Ready pods are picked, deleted ones never", func(t *testing.T) {
		next := stackVariant(t, func(s string) string {
			s = strings.Replace(s, "image: llm-platform.local/model-server:test\n", "image: llm-platform.local/model-server:test-v2\n", 1)
			// A load long enough that a new pod runs for seconds before it is Ready.
			return strings.Replace(s, `"--load-seconds", "3"`, `"--load-seconds", "8"`, 1)
		})
		before := map[string]bool{}
		for _, p := range servingPods(t, cfg) {
			before[p.Name] = true
		}
		var mu sync.Mutex
		var sent, failed int
		errs := map[string]int{}
		pickedNew := map[string]bool{}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / 10)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := g.send(ctx, tenantPrompt(i%4, i))
					mu.Lock()
					defer mu.Unlock()
					sent++
					if err != nil {
						failed++
						errs[err.Error()]++
					} else if !before[s.pod] {
						pickedNew[s.pod] = true
					}
				}()
			}
		}()
		var out bytes.Buffer
		_, err := localcluster.Deploy(next, stackName, kubectl, 5*time.Minute, &out)
		require.NoError(t, err, out.String())
		current = next
		waitFor(t, "every old pod to be gone", 3*time.Minute, func() bool {
			for _, p := range pods(t, ns, "app.kubernetes.io/instance="+name) {
				if before[p.Name] {
					return false
				}
			}
			return true
		})
		time.Sleep(3 * time.Second)
		close(stop)
		wg.Wait()
		t.Logf("rollout through the picker: %d requests, %d failed, new pods picked: %v", sent, failed, pickedNew)
		assert.Greater(t, sent, 50)
		assert.Zero(t, failed, "a loading (not Ready) or deleted pod was never picked: %v", errs)
		assert.NotEmpty(t, pickedNew, "the new pods took requests")
	})
}

// The benchmark's workloads and strategies.
const (
	sharedPrefix   = "shared prefix"
	noPrefix       = "no shared prefix"
	strategyPicker = "endpoint picker"
	strategyRandom = "random (what the Service does)"
	strategyOracle = "oracle (each tenant on one replica)"
	benchTenants   = 12
	benchRate      = 8
	benchSeconds   = 20
	// benchWarmup requests of each run go first and are not counted: every
	// tenant's first request misses every cache, whoever routes it.
	benchWarmup = 5 * benchRate
)

// benchRouting sends each workload at a fixed rate through each strategy:
// the picker, a uniformly random replica (what kube-proxy does) and, for the
// shared prefix, an oracle that sends every tenant to a replica of its own.
func benchRouting(t *testing.T, g *gateway, replicas []corev1.Pod, port int) []localcluster.RoutingResult {
	t.Helper()
	ctx := context.Background()
	endpoints := make([]string, len(replicas))
	for i, p := range replicas {
		endpoints[i] = net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port))
	}
	params := fmt.Sprintf("%d replicas (each 4 sequences at once, 192 prefix blocks of 64 characters, 10 ms to prefill a block not in cache); "+
		"%d tenants, each a %d-character system prompt and a short question; %d requests a second, tenants drawn at random, %d s counted after 5 s of warm-up",
		len(replicas), benchTenants, len(saltedPrompt("picker", 0, 0)), benchRate, benchSeconds)
	noPrefixParams := fmt.Sprintf("the same replicas; prompts of the same length with nothing in common; %d requests a second for %d s", benchRate, benchSeconds/2)
	var out []localcluster.RoutingResult
	for _, s := range []string{strategyPicker, strategyRandom, strategyOracle} {
		rng := rand.New(rand.NewPCG(1, 2)) // the same tenants in the same order for every strategy
		out = append(out, runWorkload(ctx, g, sharedPrefix, params, s, benchWarmup, benchRate*benchSeconds, func(i int) (string, []byte, int) {
			tenant := rng.IntN(benchTenants)
			return "", g.body(saltedPrompt(s, tenant, i)), tenant
		}, endpoints))
	}
	for _, s := range []string{strategyPicker, strategyRandom} {
		out = append(out, runWorkload(ctx, g, noPrefix, noPrefixParams, s, 0, benchRate*benchSeconds/2, func(i int) (string, []byte, int) {
			return "", g.body(fmt.Sprintf("%s %d: ", s, i) + strings.Repeat(fmt.Sprintf("unique words %d %s ", i, s), 100)), i
		}, endpoints))
	}
	return out
}

// runWorkload sends warm and then n requests at benchRate a second, each
// where strategy says, and sums what the replicas reported for the n.
func runWorkload(ctx context.Context, g *gateway, workload, params, strategy string, warm, n int, next func(i int) (string, []byte, int), endpoints []string) localcluster.RoutingResult {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var ttfts []float64
	hits, blocks, failed := 0, 0, 0
	tick := time.NewTicker(time.Second / benchRate)
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range warm + n {
		<-tick.C
		counted := i >= warm
		_, body, key := next(i)
		endpoint := ""
		switch strategy {
		case strategyRandom:
			endpoint = endpoints[rng.IntN(len(endpoints))]
		case strategyOracle:
			endpoint = endpoints[key%len(endpoints)]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var s served
			var err error
			if endpoint == "" {
				var d extproc.Decision
				d, err = g.picker.Pick(ctx, "/v1/completions", map[string]string{routing.ModelHeader: g.model}, body)
				if err == nil && d.Endpoint == "" {
					err = fmt.Errorf("refused %d", d.Status)
				}
				if err == nil {
					s, err = g.forward(ctx, d.Endpoint, body)
				}
			} else {
				s, err = g.forward(ctx, endpoint, body)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++ // warm-up or not: every request must be answered
				return
			}
			if !counted {
				return
			}
			hits += s.hitBlocks
			blocks += s.blocks
			ttfts = append(ttfts, float64(s.ttft.Milliseconds()))
		}()
	}
	wg.Wait()
	r := localcluster.RoutingResult{Workload: workload, Params: params, Strategy: strategy, Requests: n, Failed: failed}
	if blocks > 0 {
		r.HitRate = float64(hits) / float64(blocks)
	}
	slices.Sort(ttfts)
	r.TTFTP50, r.TTFTP90 = percentile(ttfts, 0.5), percentile(ttfts, 0.9)
	return r
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
