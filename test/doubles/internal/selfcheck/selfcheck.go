// Package selfcheck is what every double checks at start: the stack
// promises its pods a non-root user (uid 65532) and a read-only root
// filesystem, and a double that finds either promise broken refuses to run
// (exit 3). It also records the facts a test may want to read back: uid,
// gid, whether /tmp is writable, the size of /dev/shm and HOME.
package selfcheck

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// ExitCode is the exit status of a double whose self-check failed.
const ExitCode = 3

// Facts are what a double finds about its process and filesystem.
type Facts struct {
	// UID and GID the process runs as.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// RootWritable says the root filesystem is not mounted read-only, or
	// a file could be created at /. (A non-root user cannot create files
	// in a root-owned / even on a writable mount, so the mount is asked.)
	RootWritable bool `json:"root_writable"`
	// TmpWritable says a file could be created in /tmp.
	TmpWritable bool `json:"tmp_writable"`
	// ShmBytes is the size of the filesystem at /dev/shm (-1 when it could
	// not be read).
	ShmBytes int64 `json:"shm_bytes"`
	// Home is $HOME.
	Home string `json:"home"`
}

// Gather finds the facts of this process.
func Gather() Facts {
	return gather("/", "/tmp", "/dev/shm")
}

// gather finds the facts with the root, /tmp and /dev/shm at the given paths.
func gather(root, tmp, shm string) Facts {
	return Facts{
		UID:          os.Getuid(),
		GID:          os.Getgid(),
		RootWritable: writableMount(root) || writable(root),
		TmpWritable:  writable(tmp),
		ShmBytes:     fsSize(shm),
		Home:         os.Getenv("HOME"),
	}
}

// writable says a file can be created in dir; the probe file is removed.
func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".llm-platform-selfcheck-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// writableMount says the filesystem at dir is not mounted read-only; false
// when that is unknown, leaving the answer to the probe.
func writableMount(dir string) bool {
	readOnly, ok := mountedReadOnly(dir)
	return ok && !readOnly
}

// Problems are the stack's promises the facts show broken, one sentence
// each; none when all are kept.
func (f Facts) Problems() []string {
	var out []string
	if f.UID == 0 {
		out = append(out, "running as uid 0 (root): the stack promises runAsNonRoot with uid 65532")
	}
	if f.RootWritable {
		out = append(out, "the root filesystem is writable: the stack promises readOnlyRootFilesystem")
	}
	return out
}

// String is the facts on one line, for the log.
func (f Facts) String() string {
	state := func(w bool) string {
		if w {
			return "writable"
		}
		return "read-only"
	}
	return fmt.Sprintf("uid=%d gid=%d root=%s /tmp=%s /dev/shm=%d bytes HOME=%s",
		f.UID, f.GID, state(f.RootWritable), state(f.TmpWritable), f.ShmBytes, f.Home)
}

// WriteMetrics writes the facts a scrape can check as Prometheus series:
// llm_platform_double_root_writable (0 or 1) and llm_platform_double_uid.
func (f Facts) WriteMetrics(w io.Writer) {
	root := 0
	if f.RootWritable {
		root = 1
	}
	fmt.Fprintf(w, "# HELP llm_platform_double_root_writable Whether the root filesystem is writable (the stack promises a read-only root).\n")
	fmt.Fprintf(w, "# TYPE llm_platform_double_root_writable gauge\n")
	fmt.Fprintf(w, "llm_platform_double_root_writable %d\n", root)
	fmt.Fprintf(w, "# HELP llm_platform_double_uid The uid the double runs as.\n")
	fmt.Fprintf(w, "# TYPE llm_platform_double_uid gauge\n")
	fmt.Fprintf(w, "llm_platform_double_uid %d\n", f.UID)
}

// Enforce gathers the facts and logs them to w as program; when a promise
// is broken it logs why and exits with ExitCode.
func Enforce(program string, w io.Writer) Facts {
	f := Gather()
	fmt.Fprintf(w, "%s: self-check: %s\n", program, f)
	if problems := f.Problems(); len(problems) > 0 {
		fmt.Fprintf(w, "%s: self-check failed, refusing to run: %s\n", program, strings.Join(problems, "; "))
		os.Exit(ExitCode)
	}
	return f
}
