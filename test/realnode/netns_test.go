//go:build realnode

package realnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The real nodes' network lives in network namespaces hack/realnode.sh makes;
// the test reaches pods from inside them, as a pod or a node would.

// nodeNetns is the network namespace of a real node: its kube-proxy's
// Service rules apply to connections made there.
func nodeNetns(node string) string { return "/run/netns/" + clusterName + "-" + node }

// routerNetns holds the bridge between the nodes and the internet stand-in.
func routerNetns() string { return "/run/netns/" + clusterName + "-router" }

// internetAddr stands for the internet: the only address outside the cluster
// a pod can try, in the router's namespace (TEST-NET-3, never routed).
const internetAddr = "203.0.113.1"

// inNetns runs fn on an OS thread of its own in the network namespace at
// path. Sockets fn creates stay in that namespace wherever they are used
// later. The thread is never unlocked, so it ends with its goroutine and no
// other goroutine ever runs in the namespace.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dialFrom connects to addr from the network namespace at path.
func dialFrom(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(path, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// reachable says whether a TCP connection from the namespace at path to addr
// is established within timeout: a connection a NetworkPolicy denies is
// rejected or times out.
func reachable(path, addr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := dialFrom(ctx, path, "tcp", addr)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// clientFrom is an HTTP client whose connections start in the namespace at
// path, one connection per request (as many clients of a model are).
func clientFrom(path string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialFrom(ctx, path, network, addr)
			},
		},
	}
}

// listenIn listens on addr in the network namespace at path and serves h
// until the returned stop is called.
func listenIn(path, addr string, h http.Handler) (stop func(), err error) {
	var l net.Listener
	if err := inNetns(path, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { _ = srv.Close() }, nil
}

// podNetns finds the network namespace of the pod with IP ip: containerd
// keeps each pod's namespace under the node's state folder
// (netns_mounts_under_state_dir), mounted as nsfs.
func podNetns(ip string) (string, error) {
	mounts, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer mounts.Close()
	prefix := "/run/llm-platform/" + clusterName + "/"
	var candidates []string
	s := bufio.NewScanner(mounts)
	for s.Scan() {
		f := strings.Fields(s.Text())
		// mountinfo: ... mount point is field 5; the type follows " - ".
		if len(f) < 9 || !strings.HasPrefix(f[4], prefix) {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "nsfs" {
				candidates = append(candidates, f[4])
			}
		}
	}
	for _, path := range candidates {
		found := false
		_ = inNetns(path, func() error {
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
					found = true
				}
			}
			return nil
		})
		if found {
			return path, nil
		}
	}
	return "", errors.New("no network namespace holds pod IP " + ip)
}
