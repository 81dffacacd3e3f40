// Package engine runs the real Pulumi engine (the pulumi CLI, the Go language
// host and pulumi-resource-kubernetes) on a copy of this repository against
// the local control plane, as a user's clone would run it. The engine tier of
// the tests (test/e2epulumi) and the benchmarks use it.
package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binaries are what the engine consists of.
var Binaries = []string{"pulumi", "pulumi-language-go", "pulumi-resource-kubernetes"}

// Passphrase protects the secrets of throwaway local stacks only.
const Passphrase = "local-cluster-only"

// SearchPath is the PATH with ~/.pulumi/bin first, where the official
// installer and ../shared/engine/build.sh put the engine.
func SearchPath() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".pulumi", "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
}

// Missing lists the engine's binaries that are not on SearchPath.
func Missing() []string {
	var missing []string
	for _, bin := range Binaries {
		if !onPath(bin, SearchPath()) {
			missing = append(missing, bin)
		}
	}
	return missing
}

func onPath(bin, path string) bool {
	for _, dir := range filepath.SplitList(path) {
		if info, err := os.Stat(filepath.Join(dir, bin)); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// Clone is a copy of the repository's files where the engine runs: Pulumi
// rewrites stack files (`pulumi stack init` adds the secrets salt) and keeps
// state there, never in the developer's tree.
type Clone struct {
	// Dir holds the copy.
	Dir string
	// Env is the environment every command runs with: the engine on the
	// PATH, a file backend and Pulumi home inside Dir, the clone's local
	// cluster, and none of the caller's Pulumi or Kubernetes settings.
	Env []string
}

// NewClone copies the files of the repository at root (tracked, and new ones
// not ignored) into dir, as a fresh clone would have them, and shares root's
// control-plane binaries (build/bin) so they are never built twice.
func NewClone(root, dir string) (*Clone, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "-z").Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		info, err := os.Lstat(filepath.Join(root, rel))
		if os.IsNotExist(err) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			return nil, err
		}
		if info.IsDir() {
			continue
		}
		if err := copyFile(filepath.Join(root, rel), filepath.Join(dir, rel), info.Mode()); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"build/pulumi-state", "build/pulumi-home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(filepath.Join(root, "build", "bin"), filepath.Join(dir, "build", "bin")); err != nil {
		return nil, err
	}
	c := &Clone{Dir: dir}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PULUMI_") || strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		c.Env = append(c.Env, kv)
	}
	c.Env = append(c.Env,
		"PATH="+SearchPath(),
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_CONFIG_PASSPHRASE="+Passphrase,
		"PULUMI_BACKEND_URL=file://"+filepath.Join(dir, "build", "pulumi-state"),
		"PULUMI_HOME="+filepath.Join(dir, "build", "pulumi-home"),
		"KUBECONFIG="+c.Kubeconfig(),
	)
	return c, nil
}

// Kubeconfig is the clone's local cluster, the one its hack/cluster.sh starts.
func (c *Clone) Kubeconfig() string { return filepath.Join(c.Dir, "build", "kubeconfig") }

// Run runs a shell command line in the clone with its environment plus
// extra, and returns stdout and stderr together. It never hangs: past timeout
// the process is killed and the error says so.
func (c *Clone) Run(timeout time.Duration, line string, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = c.Dir
	cmd.Env = append(append([]string{}, c.Env...), extra...)
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: still running after %s, killed", line, timeout)
	} else if err != nil {
		err = fmt.Errorf("%s: %w", line, err)
	}
	return out.String(), err
}

func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
