// Package images builds the test doubles into container images, one
// docker-archive tarball per role that `ctr -n k8s.io images import FILE`
// loads under its reference: real kubelets with containerd and no registry
// then run the stack's pods from them. Each image is one layer holding a
// static binary, an empty /tmp (mode 1777) and, for the fetch image, busybox
// as /bin/sh; it runs as 65532:65532 with PATH and HOME=/tmp set. Builds are
// reproducible: the same sources give the same digests.
package images

import (
	"path"
	"strings"
)

// Module is the import path prefix of the doubles' programs.
const Module = "llm-platform/test/doubles/"

// Image is one image of the doubles.
type Image struct {
	// Ref is the image's reference, as the test stack's config names it.
	Ref string
	// Program is the import path of the double the image runs.
	Program string
	// Binary is the path of the double's binary in the image.
	Binary string
	// Links are more paths in the image that are symbolic links to Binary:
	// the same double called by another name (none by default).
	Links []string
	// Entrypoint of the image (none by default: the pod's command says what
	// runs).
	Entrypoint []string
	// Shell adds busybox as /bin/busybox with ShellCommands linked to it
	// (default false).
	Shell bool
}

// Images are the doubles' images; a test stack's config names them.
var Images = []Image{
	{Ref: "llm-platform.local/pause:test", Program: Module + "pause", Binary: "/pause", Entrypoint: []string{"/pause"}},
	{Ref: "llm-platform.local/model-server:test", Program: Module + "modelserver", Binary: "/model-server", Entrypoint: []string{"/model-server"}},
	// The same server under a second tag: a new image for the real-node
	// tier's rollout, as a release of vLLM would be.
	{Ref: "llm-platform.local/model-server:test-v2", Program: Module + "modelserver", Binary: "/model-server", Entrypoint: []string{"/model-server"}},
	{
		// The stack runs /bin/sh -c <script> fetch <downloader args...>.
		Ref: "llm-platform.local/model-fetch:test", Program: Module + "fetch",
		Binary: "/usr/local/bin/huggingface-cli", Links: []string{"/usr/local/bin/aws", "/storage-initializer/scripts/initializer-entrypoint"}, Shell: true,
	},
	{Ref: "llm-platform.local/transform:test", Program: Module + "workload", Binary: "/workload", Entrypoint: []string{"/workload", "serve"}},
	{Ref: "llm-platform.local/checkpoint-store:test", Program: Module + "workload", Binary: "/workload", Entrypoint: []string{"/workload", "serve"}},
	{Ref: "llm-platform.local/ingest:test", Program: Module + "workload", Binary: "/workload", Entrypoint: []string{"/workload", "run"}},
}

// ShellCommands are the commands an image with Shell has in /bin, each a
// link to busybox: what the stack's fetch script runs.
var ShellCommands = []string{"sh", "mkdir", "mv", "cat", "echo", "sleep"}

// BusyboxPath is where Debian's busybox-static package installs busybox.
const BusyboxPath = "/bin/busybox"

// User is the image's user: the stack's non-root uid and gid.
const User = "65532:65532"

// Env is the image's environment.
var Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}

// FileName is the name of the image's tarball: the last element of its
// repository and its tag, for example model-server-test.tar.
func (im Image) FileName() string {
	repo, tag, _ := strings.Cut(path.Base(im.Ref), ":")
	return repo + "-" + tag + ".tar"
}
