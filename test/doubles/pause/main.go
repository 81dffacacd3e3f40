// Command pause is the pod sandbox's process, as registry.k8s.io/pause is:
// it holds the pod's namespaces open and blocks until SIGTERM or SIGINT,
// then exits 0. Being PID 1 of its namespace, it would otherwise ignore
// those signals, so it catches them.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	sig := <-signals
	fmt.Printf("pause: %s, exiting\n", sig)
}
