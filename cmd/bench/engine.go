package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"llm-platform/internal/config"
	"llm-platform/internal/engine"
	"llm-platform/internal/localcluster"
)

// engineRuns is how many warm previews are timed per stack and mode.
const engineRuns = 3

// benchEngine measures the real Pulumi engine on a clone of the repository:
// warm previews in source and binary mode, and `pulumi up` from empty to
// converged against floors (section 3's kubectl floor, same wait). It
// returns the "reading" text, derived from what it measured.
func benchEngine(root string, w io.Writer, floors map[string]time.Duration) []byte {
	fmt.Fprintf(w, "\n## 5. The real Pulumi engine\n\n")
	if missing := engine.Missing(); len(missing) > 0 {
		fmt.Fprintf(w, "Skipped: no Pulumi engine found (missing: %s); see CONTRIBUTING.md.\n", strings.Join(missing, ", "))
		return nil
	}
	clone, err := engine.NewClone(root, filepath.Join(root, "build", "bench-engine"))
	must(err)
	run := func(timeout time.Duration, line string) string {
		out, err := clone.Run(timeout, line)
		if err != nil {
			fmt.Fprintln(os.Stderr, out)
			must(err)
		}
		return out
	}
	timed := func(line string) time.Duration {
		start := time.Now()
		run(10*time.Minute, line)
		return time.Since(start)
	}
	k := localcluster.ForRepo(clone.Dir)
	freshCluster := func(stacks ...string) {
		run(2*time.Minute, "hack/cluster.sh down")
		run(5*time.Minute, "hack/cluster.sh up")
		var cfgs []config.Config
		for _, s := range stacks {
			cfg, err := localcluster.LoadConfig(clone.Dir, s)
			must(err)
			cfgs = append(cfgs, cfg)
		}
		must(localcluster.PrepareNodes(k, cfgs...))
		_, _, err := k.Run(nil, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=60s")
		must(err)
	}
	defer clone.Run(2*time.Minute, "hack/cluster.sh down")

	stacks := []string{"dev", "prod"}
	run(5*time.Minute, "make build && hack/pulumi.sh project")
	freshCluster(stacks...)
	for _, s := range stacks {
		run(time.Minute, "pulumi stack init "+s)
	}

	fmt.Fprintf(w, "Warm `pulumi preview` of a stack not yet deployed (median of %d after one warm-up):\n\n", engineRuns)
	fmt.Fprintf(w, "| stack | source mode (`pulumi preview`, Go compile included) | binary mode (`make preview`'s project) | ratio |\n| --- | ---: | ---: | ---: |\n")
	previews := map[string][2]time.Duration{}
	for _, s := range stacks {
		var modes [2]time.Duration
		for i, line := range []string{
			"pulumi preview --non-interactive --stack " + s,
			"pulumi --cwd build/pulumi preview --non-interactive --stack " + s,
		} {
			timed(line)
			var times []time.Duration
			for range engineRuns {
				times = append(times, timed(line))
			}
			slices.Sort(times)
			modes[i] = median(times)
		}
		previews[s] = modes
		fmt.Fprintf(w, "| %s | %s | %s | %.1fx |\n", s, secs(modes[0]), secs(modes[1]), modes[0].Seconds()/modes[1].Seconds())
	}

	fmt.Fprintf(w, "\n`pulumi up` (binary mode) from an empty cluster to converged, against the floor of section 3 (fresh cluster each, nodes Ready first, the same convergence checks):\n\n")
	fmt.Fprintf(w, "| stack | `pulumi up` to converged | of which `pulumi up` | floor | ratio | slowest steps (start → done, seconds after `pulumi up` began) |\n| --- | ---: | ---: | ---: | ---: | --- |\n")
	ups := map[string]time.Duration{}
	slowest := map[string]string{}
	for _, s := range stacks {
		freshCluster(s)
		run(time.Minute, "pulumi stack rm --yes --force --preserve-config "+s+" && pulumi stack init "+s)
		cfg, err := localcluster.LoadConfig(clone.Dir, s)
		must(err)
		events := filepath.Join(clone.Dir, "build", "events-"+s+".jsonl")
		start := time.Now()
		run(15*time.Minute, "PULUMI_DEBUG_COMMANDS=true pulumi --cwd build/pulumi up --yes --skip-preview --non-interactive --stack "+s+" --event-log "+events)
		upOnly := time.Since(start)
		must(localcluster.Wait(k, cfg.Namespace.Name, localcluster.Checks(k, cfg), 5*time.Minute, io.Discard))
		ups[s] = time.Since(start)
		steps := append(slowestSteps(events, start, 3), "none")
		slowest[s] = steps[0]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f | %s |\n", s, secs(ups[s]), secs(upOnly), secs(floors[s]),
			ups[s].Seconds()/floors[s].Seconds(), strings.Join(steps[:len(steps)-1], "; "))
	}
	return engineReading(previews, ups, floors, slowest)
}

// slowestSteps reads a `pulumi up --event-log` and names the n resources whose
// step took longest, with when each started and finished.
func slowestSteps(path string, start time.Time, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{"no event log"}
	}
	defer f.Close()
	type span struct {
		name       string
		begin, end float64
	}
	spans := map[string]*span{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Timestamp int64 `json:"timestamp"`
			Pre       *struct {
				Metadata struct {
					URN  string `json:"urn"`
					Type string `json:"type"`
				} `json:"metadata"`
			} `json:"resourcePreEvent"`
			Outputs *struct {
				Metadata struct {
					URN string `json:"urn"`
				} `json:"metadata"`
			} `json:"resOutputsEvent"`
		}
		if json.Unmarshal(bytes.TrimSpace(sc.Bytes()), &ev) != nil {
			continue
		}
		at := float64(ev.Timestamp) - float64(start.UnixNano())/1e9
		switch {
		case ev.Pre != nil && strings.HasPrefix(ev.Pre.Metadata.Type, "kubernetes:"):
			urn := ev.Pre.Metadata.URN
			spans[urn] = &span{name: shortType(ev.Pre.Metadata.Type) + " " + urn[strings.LastIndex(urn, "::")+2:], begin: at}
		case ev.Outputs != nil && spans[ev.Outputs.Metadata.URN] != nil:
			spans[ev.Outputs.Metadata.URN].end = at
		}
	}
	var list []*span
	for _, s := range spans {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].end-list[i].begin > list[j].end-list[j].begin })
	var out []string
	for _, s := range list[:min(n, len(list))] {
		out = append(out, fmt.Sprintf("%s %.0f → %.0f", s.name, s.begin, s.end))
	}
	return out
}

func shortType(t string) string {
	return t[strings.LastIndex(t, ":")+1:]
}

// engineReading is the text that explains section 5, derived from its numbers.
func engineReading(previews map[string][2]time.Duration, ups, floors map[string]time.Duration, slowest map[string]string) []byte {
	var b strings.Builder
	b.WriteString("\n## Reading the engine numbers\n\n")
	for _, s := range []string{"dev", "prod"} {
		p := previews[s]
		fmt.Fprintf(&b, "- `pulumi preview` of %s: %s in binary mode against %s in source mode, so the Go compile costs %s per command;\n  `make preview` and the workflows take the binary path.\n",
			s, secs(p[1]), secs(p[0]), secs(p[0]-p[1]))
	}
	for _, s := range []string{"dev", "prod"} {
		ratio := ups[s].Seconds() / floors[s].Seconds()
		fmt.Fprintf(&b, "- `pulumi up` of %s to converged: %s, %.2fx the kubectl floor of %s, %s the 1.3x goal; its slowest step: %s s.\n",
			s, secs(ups[s]), ratio, secs(floors[s]), verdict(ratio, 1.3), slowest[s])
		if n := fetched(s); n > 0 {
			fmt.Fprintf(&b, "  Like the floor, it awaits %d fetch run(s) before their Deployments (the weights on disk before a server starts).\n", n)
		}
	}
	return []byte(b.String())
}
