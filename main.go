// Command llm-platform is the Pulumi program that stands up the LLM platform:
// run it with `pulumi up -s <stack>`, or render it offline with `make render`.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"llm-platform/internal/stack"
)

func main() {
	pulumi.Run(stack.Program)
}
