// Command localcluster deploys a stack onto the local control plane that
// hack/cluster.sh starts: fake nodes for the stack's pools, the rendered
// objects applied server-side, then a wait until everything has converged.
//
//	go run ./cmd/localcluster -stack dev
//	go run ./cmd/localcluster -sample    # the README's sample of `make up`, from the render
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"llm-platform/internal/localcluster"
)

func main() {
	stackName := flag.String("stack", "dev", "stack to deploy: reads Pulumi.<stack>.yaml")
	timeout := flag.Duration("timeout", 5*time.Minute, "how long to wait for the stack to converge")
	nodesOnly := flag.Bool("nodes-only", false, "only add the nodes and StorageClasses the stack expects (for `pulumi up`)")
	sample := flag.Bool("sample", false, "print what a first deploy prints once converged, without a cluster (the README's sample)")
	flag.Parse()
	root, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	if *sample {
		if err := localcluster.Sample(root, *stackName, os.Stdout); err != nil {
			fail(err)
		}
		return
	}
	k := localcluster.ForRepo(root)
	cfg, err := localcluster.LoadConfig(root, *stackName)
	if err != nil {
		fail(err)
	}
	if err := localcluster.PrepareNodes(k, cfg); err != nil {
		fail(fmt.Errorf("nodes: %w", err))
	}
	if *nodesOnly {
		return
	}
	if _, err := localcluster.Deploy(root, *stackName, k, *timeout, os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
