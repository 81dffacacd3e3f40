// Command build-images builds the test doubles' images into tarballs that
// `ctr -n k8s.io images import FILE` loads, one per image of
// images.Images, and prints one line per image. Run it inside the module:
//
//	go run ./test/doubles/cmd/build-images [-out build/images] [-arch amd64] [-busybox /bin/busybox]
//
// The model-fetch image needs Debian's busybox-static package.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"

	"llm-platform/test/doubles/images"
)

func main() {
	opts := images.Options{Log: os.Stdout}
	flag.StringVar(&opts.Out, "out", "build/images", "directory the image tarballs are written to")
	flag.StringVar(&opts.Arch, "arch", runtime.GOARCH, "GOARCH of the binaries and the images")
	flag.StringVar(&opts.Busybox, "busybox", images.BusyboxPath, "static busybox for the images that need a shell")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := images.Build(ctx, opts, images.Images); err != nil {
		fmt.Fprintf(os.Stderr, "build-images: %v\n", err)
		os.Exit(1)
	}
}
