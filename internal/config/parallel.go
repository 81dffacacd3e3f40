package config

import (
	"fmt"
	"strconv"
	"strings"
)

// vLLM's flags that multiply into the GPUs one server uses (vllm serve
// --help, "ParallelConfig"): tensor x pipeline x data parallel.
var parallelFlags = []struct{ long, short string }{
	{"--tensor-parallel-size", "-tp"},
	{"--pipeline-parallel-size", "-pp"},
	{"--data-parallel-size", "-dp"},
}

// parallelism reads the parallel sizes from a server's args: the product,
// the terms as written ("--tensor-parallel-size 4 x ..."), and whether any
// was written. A value that is not a whole number above 0 is bad.
func parallelism(args []string) (product int, terms []string, written bool, bad string) {
	product = 1
	for _, f := range parallelFlags {
		for i, a := range args {
			var v string
			switch {
			case a == f.long || a == f.short:
				if i+1 >= len(args) {
					return 0, nil, true, a + " without a value"
				}
				v = args[i+1]
			case strings.HasPrefix(a, f.long+"="):
				v = strings.TrimPrefix(a, f.long+"=")
			case strings.HasPrefix(a, f.short+"="):
				v = strings.TrimPrefix(a, f.short+"=")
			default:
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, nil, true, fmt.Sprintf("%s %s", f.long, v)
			}
			written = true
			product *= n
			terms = append(terms, fmt.Sprintf("%s %d", f.long, n))
		}
	}
	return product, terms, written, ""
}

// parallelMatchesGPUs refuses a model whose args ask for more or fewer GPUs
// than a replica gets: vLLM waits for GPUs that are not there (a Ray
// placement group that never fills) until the startup budget runs out, or
// leaves GPUs idle. Without any parallel flag a vLLM server uses one GPU.
func (c *checker) parallelMatchesGPUs(key string, m Model) {
	product, terms, written, bad := parallelism(m.Args)
	nodes := max(m.Nodes, 1)
	switch {
	case bad != "":
		c.fail(key+".args", m.Args, fmt.Sprintf("has %s: a parallel size must be a whole number of at least 1", bad), `["--tensor-parallel-size", "4"]`)
	case written && nodes > 1 && product != m.GPUs*nodes && m.GPUs >= 1:
		example := fmt.Sprint(product / nodes)
		if product%nodes != 0 {
			example = ""
		}
		c.fail(key+".gpus", m.GPUs, fmt.Sprintf("times nodes (%d x %d = %d) must equal the GPUs %s.args asks vLLM for (%s = %d): the group's GPUs are what the parallel sizes multiply to; change gpus, nodes or the sizes in args",
			m.GPUs, nodes, m.GPUs*nodes, key, strings.Join(terms, " x "), product), example)
	case written && nodes == 1 && product != m.GPUs && m.GPUs >= 1:
		c.fail(key+".gpus", m.GPUs, fmt.Sprintf("must equal the GPUs %s.args asks vLLM for (%s = %d): with fewer the server waits for GPUs that are not there until the startup budget runs out, with more they sit idle; change gpus or the parallel sizes in args",
			key, strings.Join(terms, " x "), product), strconv.Itoa(product))
	case !written && nodes > 1:
		c.fail(key+".args", m.Args, fmt.Sprintf("must set the parallel sizes when nodes is %d: vLLM splits the model over the group's %d GPUs only as --tensor-parallel-size x --pipeline-parallel-size say", nodes, m.GPUs*nodes),
			fmt.Sprintf(`["--tensor-parallel-size", "%d", "--pipeline-parallel-size", "%d"]`, m.GPUs, nodes))
	case !written && m.GPUs > 1 && strings.Contains(m.Image, "vllm"):
		c.warn(key+".gpus", "%d GPUs, but %s.args set no --tensor-parallel-size: vLLM then uses one GPU and leaves %d idle", m.GPUs, key, m.GPUs-1)
	}
}
