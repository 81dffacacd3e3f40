// Command render writes a stack's Kubernetes objects to out/<stack>/manifests.yaml
// without a Pulumi CLI or a cluster: `go run ./cmd/render -stack dev`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"llm-platform/internal/render"
)

func main() {
	stackName := flag.String("stack", "dev", "stack to render: reads Pulumi.<stack>.yaml")
	dir := flag.String("dir", ".", "directory holding Pulumi.yaml and the stack files")
	out := flag.String("out", "", "output file (default out/<stack>/manifests.yaml)")
	flag.Parse()
	path := *out
	if path == "" {
		path = filepath.Join("out", *stackName, "manifests.yaml")
	}
	w, err := render.WriteFile(*dir, *stackName, path)
	// The same "warning:" lines `pulumi preview` prints, on stderr.
	for _, line := range w.Warnings {
		fmt.Fprintf(os.Stderr, "warning: %s\n", line)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "render %s: %v\n", *stackName, err)
		os.Exit(1)
	}
	fmt.Printf("rendered %d objects of stack %s to %s\n", w.Objects, *stackName, path)
}
