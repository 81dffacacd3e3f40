// Command llm-platform is the Pulumi program that stands up the LLM platform:
// run it with `pulumi up -s <stack>`, or render it offline with `make render`.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/config"
	"llm-platform/internal/preflight"
	"llm-platform/internal/stack"
)

func main() {
	stack.Connect = func(c config.Cluster) (stack.LiveCluster, error) {
		return preflight.Connect(c.KubeconfigText, c.Context, c.Cluster)
	}
	pulumi.Run(stack.Program)
}
