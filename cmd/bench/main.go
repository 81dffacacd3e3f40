// Command bench measures how fast the stack renders, how its cost grows with
// the number of models, and how fast it converges on the local control plane,
// and writes the table to BENCHMARKS.md. Run it with `make bench`.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"llm-platform/internal/localcluster"
	"llm-platform/internal/render"
)

func main() {
	runs := flag.Int("runs", 10, "render runs per stack")
	child := flag.String("child-render", "", "internal: render the stack in this directory once and exit")
	skipCluster := flag.Bool("skip-cluster", false, "skip the local control-plane measurements")
	out := flag.String("out", "BENCHMARKS.md", "where to write the results")
	cpuProfile := flag.String("cpuprofile", "", "profile the 20-model render (runs times) into this file, and do nothing else")
	flag.Parse()
	if *cpuProfile != "" {
		profileRender(*cpuProfile, *runs)
		return
	}
	if *child != "" {
		start := time.Now()
		objs, err := render.Objects(*child, "bench")
		must(err)
		_, err = render.Manifests(objs)
		must(err)
		fmt.Printf("%d %d\n", len(objs), time.Since(start).Microseconds())
		return
	}
	root, err := os.Getwd()
	must(err)
	// Both sides of every convergence comparison are timed to the poll.
	localcluster.PollInterval = 250 * time.Millisecond
	var report bytes.Buffer
	w := io.MultiWriter(os.Stdout, &report)
	fmt.Fprintf(w, "# Benchmarks\n\nOne run of `make bench` (`go run ./cmd/bench -runs %d`) on %s.\n\n", *runs, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %d cores, %s memory, %s, %s/%s.\n\n", runtime.NumCPU(), memTotal(), runtime.Version(), runtime.GOOS, runtime.GOARCH)

	// 1. Warm render time of each stack, in process: the stack program under the
	// Pulumi mock engine plus the YAML, the work `make render` does after its compile.
	fmt.Fprintf(w, "## 1. Render time, warm (%d runs after one warm-up)\n\n| stack | objects | median | min | max |\n| --- | ---: | ---: | ---: | ---: |\n", *runs)
	counts := map[string]int{}
	for _, stack := range []string{"dev", "prod"} {
		var times []time.Duration
		for i := range *runs + 1 {
			start := time.Now()
			objs, err := render.Objects(root, stack)
			must(err)
			_, err = render.Manifests(objs)
			must(err)
			if i > 0 {
				times = append(times, time.Since(start))
			}
			counts[stack] = len(objs)
		}
		slices.Sort(times)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", stack, counts[stack], ms(median(times)), ms(times[0]), ms(times[len(times)-1]))
	}

	// 2. Scaling with the number of models: each size renders in a fresh
	// process so that its peak resident memory is its own.
	fmt.Fprintf(w, "\n## 2. Render time and peak memory by number of models (fresh process each, median of %d)\n\n| models | objects | median render | peak RSS |\n| --- | ---: | ---: | ---: |\n", *runs)
	self, err := os.Executable()
	must(err)
	points := map[int]point{}
	for _, n := range []int{1, 5, 20} {
		dir := generatedStack(root, n)
		var times []time.Duration
		var peak int64
		var objects int
		for range *runs {
			cmd := exec.Command(self, "-child-render", dir)
			outb, err := cmd.Output()
			must(err)
			fields := strings.Fields(string(outb))
			objects, _ = strconv.Atoi(fields[0])
			us, _ := strconv.Atoi(fields[1])
			times = append(times, time.Duration(us)*time.Microsecond)
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				peak = max(peak, ru.Maxrss)
			}
		}
		slices.Sort(times)
		points[n] = point{objects, median(times), peak}
		fmt.Fprintf(w, "| %d | %d | %s | %.1f MiB |\n", n, objects, ms(median(times)), float64(peak)/1024)
		os.RemoveAll(dir)
	}
	fmt.Fprintf(w, "\nRatio 20 models / 1 model: render time %.2fx, peak memory %.2fx (goal: at most 3x).\n",
		float64(points[20].render)/float64(points[1].render), float64(points[20].rssKiB)/float64(points[1].rssKiB))

	// 3. Convergence on the local control plane, ours against the floor.
	floors, ours := map[string]time.Duration{}, map[string]time.Duration{}
	if !*skipCluster {
		fmt.Fprintf(w, "\n## 3. Apply to all-converged on the local control plane (fresh cluster each)\n\n")
		fmt.Fprintf(w, "| stack | `make up` path (render, diff, strict SSA, wait) | floor (`kubectl apply --server-side`, fetch runs first, same wait) | ratio |\n| --- | ---: | ---: | ---: |\n")
		for _, stack := range []string{"dev", "prod"} {
			ours[stack] = converge(root, stack, false)
			floors[stack] = converge(root, stack, true)
			fmt.Fprintf(w, "| %s | %s | %s | %.2f |\n", stack, secs(ours[stack]), secs(floors[stack]), ours[stack].Seconds()/floors[stack].Seconds())
		}
	}

	fmt.Fprintf(w, "\n## 4. Kubernetes objects per stack\n\n| stack | objects |\n| --- | ---: |\n| dev | %d |\n| prod | %d |\n", counts["dev"], counts["prod"])

	// 5. The real Pulumi engine: previews in both modes, and `pulumi up` from
	// empty to converged against the floor of section 3.
	var engineReading []byte
	if !*skipCluster {
		engineReading = benchEngine(root, w, floors)
		benchQueue(root, w)
		benchRealNodes(root, w)
	}
	path := *out
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	findings := reading(*runs, points[1], points[20], ours, floors)
	must(os.WriteFile(path, append(append(report.Bytes(), findings...), engineReading...), 0o644))
	fmt.Println("\nwrote", path)
}

// reading is the text that explains sections 1 to 3, derived from the numbers
// of this run: one model against twenty, ours against the floor.
func reading(runs int, one, twenty point, ours, floors map[string]time.Duration) []byte {
	var b strings.Builder
	b.WriteString("\n## Reading the numbers\n\n")
	fmt.Fprintf(&b, "- Timings are medians of %d runs on one machine; compare ratios, not absolutes.\n", runs)
	b.WriteString("- Render time excludes the Go compile of `make render` (`go run`), which the build cache\n" +
		"  makes a one-off. Fresh-process renders (table 2) include the program's first, cold run in\n" +
		"  that process, so they are slower than the warm runs of table 1.\n")
	memory := float64(twenty.rssKiB) / float64(one.rssKiB)
	timing := float64(twenty.render) / float64(one.render)
	objects := float64(twenty.objects) / float64(one.objects)
	fmt.Fprintf(&b, "- **Scaling with models.** Peak memory grows %.2fx for 20x the models, %s the 3x goal.\n", memory, verdict(memory, 3))
	fmt.Fprintf(&b, "  Render time grows %.2fx, %s the 3x goal, while the objects grow %.2fx (%d to %d): a render\n"+
		"  costs %.2f ms per object at one model and %.2f ms at twenty, so its time follows the objects\n"+
		"  it registers%s.\n",
		timing, verdict(timing, 3), objects, one.objects, twenty.objects,
		perObject(one), perObject(twenty), costTrend(perObject(one), perObject(twenty)))
	b.WriteString("  Where a render's time goes: `go run ./cmd/bench -cpuprofile cpu.out -runs 30`, then\n" +
		"  `go tool pprof -top cpu.out`.\n")
	for _, s := range []string{"dev", "prod"} {
		if floors[s] == 0 {
			continue
		}
		ratio := ours[s].Seconds() / floors[s].Seconds()
		what := "its render and server-side diff before the apply"
		if n := fetched(s); n > 0 {
			what = fmt.Sprintf("its render and server-side diff before each apply; both wait for %d fetch run(s) before the model servers are applied", n)
		}
		fmt.Fprintf(&b, "- Convergence of %s: the `make up` path took %s against the floor's %s (%.2fx, %s the 1.3x goal);\n"+
			"  the %s it adds is %s.\n",
			s, secs(ours[s]), secs(floors[s]), ratio, verdict(ratio, 1.3), secs(ours[s]-floors[s]), what)
	}
	return []byte(b.String())
}

// fetched is how many models of a stack have their weights fetched before
// their server starts: `make up`, `pulumi up` and the floor wait for those
// runs.
func fetched(stack string) int {
	root, err := os.Getwd()
	must(err)
	cfg, err := localcluster.LoadConfig(root, stack)
	must(err)
	n := 0
	for _, m := range cfg.Serving.Models {
		if m.Source.Fetched() {
			n++
		}
	}
	return n
}

func perObject(p point) float64 {
	return float64(p.render.Microseconds()) / 1000 / float64(p.objects)
}

// costTrend says whether the cost per object fell or rose with the stack's size.
func costTrend(small, large float64) string {
	switch {
	case large < small*0.9:
		return ", with a fixed cost per render that a larger stack spreads over more objects"
	case large > small*1.1:
		return ", and each object costs more in a larger stack"
	default:
		return ""
	}
}

func verdict(ratio, goal float64) string {
	if ratio > goal {
		return "above"
	}
	return "within"
}

// profileRender writes a CPU profile of rendering the 20-model stack: where a
// render's time goes (go tool pprof -top cpu.out).
func profileRender(path string, runs int) {
	root, err := os.Getwd()
	must(err)
	dir := generatedStack(root, 20)
	defer os.RemoveAll(dir)
	f, err := os.Create(path)
	must(err)
	defer f.Close()
	must(pprof.StartCPUProfile(f))
	defer pprof.StopCPUProfile()
	for range runs {
		objs, err := render.Objects(dir, "bench")
		must(err)
		_, err = render.Manifests(objs)
		must(err)
	}
	fmt.Println("wrote", path)
}

// generatedStack writes a copy of the prod stack with n models.
func generatedStack(root string, n int) string {
	text, err := os.ReadFile(filepath.Join(root, "Pulumi.prod.yaml"))
	must(err)
	var file map[string]map[string]any
	must(yaml.Unmarshal(text, &file))
	cfg := file["config"]
	serving := cfg["llm-platform:serving"].(map[string]any)
	template := serving["models"].([]any)[1].(map[string]any) // the 1-GPU model
	var models []any
	for i := range n {
		m := map[string]any{}
		b, _ := json.Marshal(template)
		must(json.Unmarshal(b, &m))
		m["name"] = fmt.Sprintf("model-%02d", i)
		models = append(models, m)
	}
	serving["models"] = models
	quota := cfg["llm-platform:namespace"].(map[string]any)["quota"].(map[string]any)
	quota["gpus"], quota["pods"], quota["cpu"], quota["memory"], quota["storage"] = 1000, 1000, "10000", "100Ti", "1000Ti"
	dir, err := os.MkdirTemp("", "bench-stack-")
	must(err)
	b, err := yaml.Marshal(file)
	must(err)
	must(os.WriteFile(filepath.Join(dir, "Pulumi.bench.yaml"), b, 0o644))
	return dir
}

// benchCluster starts a fresh local cluster for the bench and returns its
// kubectl and a way to run hack/cluster.sh actions on it ("down" when done).
func benchCluster(root string) (localcluster.Kubectl, func(action string)) {
	const name = "llm-platform-bench"
	cluster := func(action string) {
		cmd := exec.Command(filepath.Join(root, "hack", "cluster.sh"), action)
		cmd.Env = append(os.Environ(), "CLUSTER_NAME="+name)
		cmd.Stderr = os.Stderr
		must(cmd.Run())
	}
	cluster("up")
	return localcluster.Kubectl{Binary: filepath.Join(root, "build", "bin", "kubectl"), Kubeconfig: filepath.Join(root, "build", "kubeconfig-"+name)}, cluster
}

// converge starts a fresh cluster, applies the stack and times apply to converged.
func converge(root, stack string, floor bool) time.Duration {
	k, cluster := benchCluster(root)
	defer cluster("down")
	cfg, err := localcluster.LoadConfig(root, stack)
	must(err)
	must(localcluster.PrepareNodes(k, cfg))
	// Wait until the scheduler sees the nodes Ready, as it would on a real cluster.
	_, _, err = k.Run(nil, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=60s")
	must(err)
	start := time.Now()
	if floor {
		objs, err := render.Objects(root, stack)
		must(err)
		manifests, err := render.Manifests(objs)
		must(err)
		// The same order as ours: fetch runs complete before the model
		// servers are applied (weights on disk before a server starts).
		// The second apply is under the first's field manager, or it
		// conflicts with it on every field both set.
		must(localcluster.FetchFirst(k, cfg, objs, 5*time.Minute, io.Discard))
		_, _, err = k.Run(manifests, "apply", "--server-side", "--field-manager", localcluster.FieldManager, "-f", "-")
		must(err)
		must(localcluster.Wait(k, cfg.Namespace.Name, localcluster.Checks(k, cfg), 5*time.Minute, io.Discard))
	} else {
		_, err := localcluster.Deploy(root, stack, k, 5*time.Minute, io.Discard)
		must(err)
	}
	return time.Since(start)
}

// point is one size of table 2.
type point struct {
	objects int
	render  time.Duration
	rssKiB  int64
}

func median(d []time.Duration) time.Duration { return d[len(d)/2] }
func ms(d time.Duration) string              { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func secs(d time.Duration) string            { return fmt.Sprintf("%.1f s", d.Seconds()) }

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kib, _ := strconv.Atoi(f[1])
			return fmt.Sprintf("%.1f GiB", float64(kib)/1024/1024)
		}
	}
	return "unknown"
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
