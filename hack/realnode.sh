#!/usr/bin/env bash
# Real worker nodes beside the local control plane: for each node a kubelet
# (built from k8s.io/kubernetes like the control plane), containerd and runc
# (Debian's packages), the CNI bridge and host-local plugins, kube-proxy, a
# NetworkPolicy agent (kube-router, firewall only) and, on GPU nodes, a fake
# device plugin advertising nvidia.com/gpu. The pods these nodes run are real
# containers of the images test/doubles builds; nothing is pulled.
#
# Network layout (nothing touches the machine's own network):
#   netns <cluster>-router  a bridge br0 (10.250.0.254/24) joining the nodes,
#                           and 203.0.113.1 on lo: the stand-in for "the
#                           internet" (TEST-NET-3), the only address outside
#                           the cluster a pod can try to reach
#   netns <cluster>-<node>  eth0 10.250.0.<i>/24 (a veth into the router's
#                           bridge), default route via the router, routes to
#                           the other nodes' pod subnets, and the node's pods
#                           on cni0 in 10.244.<i>.0/24
# The control plane stays on the machine's loopback, where kubectl and pulumi
# reach it. The node daemons reach the API server at the same 127.0.0.1:<port>
# inside their namespace: socat forwards it over a Unix socket to the host's
# loopback. The API server does not reach the kubelets (no logs, exec or
# port-forward through it); tests read pods from inside the node namespaces.
#
#   hack/realnode.sh up NAME KUBECONFIG   start the nodes of cluster NAME
#   hack/realnode.sh down NAME            stop them and remove every trace
#   hack/realnode.sh check                say what is missing to run them
#
# Environment: REAL_GPU_NODES (2) and REAL_CPU_NODES (1) nodes; GPU nodes carry
# REAL_GPU_POOL_LABEL (dev's pool) and REAL_GPU_TAINT, and advertise
# REAL_GPUS_PER_NODE (2) of nvidia.com/gpu.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/bin"
gpu_nodes=${REAL_GPU_NODES:-2}
cpu_nodes=${REAL_CPU_NODES:-1}
gpu_label=${REAL_GPU_POOL_LABEL:-cloud.google.com/gke-accelerator=nvidia-l4}
gpu_taint=${REAL_GPU_TAINT:-nvidia.com/gpu=present:NoSchedule}
gpus_per_node=${REAL_GPUS_PER_NODE:-2}
pod_cidr=10.244.0.0/16
internet=203.0.113.1

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'realnode: %s\n' "$*" >&2; exit 1; }

# missing: what this machine lacks to run real nodes, one line each.
missing() {
  [ "$(id -u)" = 0 ] || echo "root (containerd, network namespaces and the kubelet's mounts need it)"
  local c
  for c in containerd runc ctr socat iptables ipset ip nsenter conntrack; do
    command -v "$c" >/dev/null 2>&1 || echo "$c"
  done
  [ -x /usr/bin/containerd-shim-runc-v2 ] || echo "containerd-shim-runc-v2"
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || echo "CNI plugins in /usr/lib/cni"
  [ -x /bin/busybox ] || echo "busybox-static (the fetch double's shell)"
  [ -d /proc/sys/net/bridge ] || echo "br_netfilter (bridge traffic through iptables, for NetworkPolicies)"
  [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/pids ] ||
    echo "cgroup v1 hierarchies (memory, pids): the nodes' kubelets run on cgroupfs v1 here"
}

# node_names: every real node, GPU nodes first.
node_names() {
  local i
  for i in $(seq "$gpu_nodes"); do echo "realnode-gpu-$i"; done
  for i in $(seq "$cpu_nodes"); do echo "realnode-cpu-$i"; done
}

# Paths. Sockets live under /run with short names (a Unix socket path is at
# most 107 bytes, and a CI clone's folder can be long); state that pods mount
# lives under /var/lib; configuration and logs stay in build/.
paths() {
  local name=$1
  conf="$root/build/realnode-$name"
  run="/run/llm-platform/$name"
  lib="/var/lib/llm-platform/$name"
  router="$name-router"
  cluster=$name
}

# cgroup_root NAME NODE: the cgroup every process of that node's pods lives under.
cgroup_root() { echo "/llm-platform/$1/$2"; }

api_port() {
  sed -n 's|^ *server: https://127.0.0.1:\([0-9]*\)$|\1|p' "$1" | head -1
}

setup_router() {
  ip netns add "$router"
  ip -n "$router" link set lo up
  ip -n "$router" addr add "$internet/32" dev lo
  ip -n "$router" link add br0 type bridge
  ip -n "$router" addr add 10.250.0.254/24 dev br0
  ip -n "$router" link set br0 up
}

# setup_node_net NAME NODE INDEX
setup_node_net() {
  local name=$1 node=$2 i=$3 ns="$name-$2" j
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add eth0 type veth peer name "n$i" netns "$router"
  ip -n "$router" link set "n$i" master br0 up
  ip -n "$ns" addr add "10.250.0.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via 10.250.0.254
  ip -n "$router" route add "10.244.$i.0/24" via "10.250.0.$i"
  for j in $(seq "$((gpu_nodes + cpu_nodes))"); do
    [ "$j" = "$i" ] || ip -n "$ns" route add "10.244.$j.0/24" via "10.250.0.$j"
  done
  in_netns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

write_node_config() {
  local name=$1 node=$2 i=$3
  local d="$conf/$node" r="$run/$node" l="$lib/$node"
  mkdir -p "$d/cni" "$r" "$l/kubelet" "$l/containerd" "$l/cni"
  cat >"$d/containerd.toml" <<EOF
version = 2
root = "$l/containerd"
state = "$r/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$r/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$l/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "llm-platform.local/pause:test"
  # This sandbox may not lower oom_score_adj: without this every pod sandbox
  # fails with runc's "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  # The pods' network namespaces stay with this node's state, not in /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc's state stays with this node's, not in /run/containerd.
        Root = "$r/runc"
EOF
  cat >"$d/cni/10-llm-platform.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "llm-platform",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$l/cni", "ranges": [[{"subnet": "10.244.$i.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # The daemons' kubeconfig: the cluster's own, whose server is
  # 127.0.0.1:<port>, which socat serves inside the node's namespace.
  cp "$kubeconfig" "$d/kubeconfig"
  local labels="llm-platform.dev/real-node=true,node-pool=cpu" taints="[]"
  local zone=zone-a
  [ $((i % 2)) = 0 ] && zone=zone-b
  if [[ $node == realnode-gpu-* ]]; then
    labels="llm-platform.dev/real-node=true,node-pool=gpu,$gpu_label"
    local tkey=${gpu_taint%%=*} rest=${gpu_taint#*=}
    taints="[{key: \"$tkey\", value: \"${rest%%:*}\", effect: \"${rest##*:}\"}]"
  fi
  labels+=",topology.kubernetes.io/zone=$zone"
  echo "$labels" >"$d/labels"
  cat >"$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: $(cgroup_root "$name" "$node")
failSwapOn: false
containerRuntimeEndpoint: unix://$r/containerd.sock
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
registerWithTaints: $taints
resolvConf: ""
serializeImagePulls: false
# The images are imported, never pulled: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
maxPods: 60
podLogsDir: $l/pod-logs
volumePluginDir: $l/volume-plugins
EOF
  cat >"$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$d/kubeconfig"}
hostnameOverride: $node
mode: iptables
clusterCIDR: $pod_cidr
# Pod-to-Service connections keep the client pod's address (as on a real
# cluster), so the backend's NetworkPolicies judge the pod, not a node;
# br_netfilter (bridge-nf-call-iptables, set above) lets conntrack undo the
# DNAT of a reply that crosses the bridge directly.
iptables: {masqueradeAll: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
}

# in_netns NS COMMAND...: runs a command in a network namespace and nothing
# else of it. Not `ip netns exec`: it also remounts /sys for the namespace,
# which hides /sys/fs/cgroup from the kubelet and containerd.
in_netns() {
  local ns=$1; shift
  nsenter --net="/run/netns/$ns" -- "$@"
}

# pidfile NODE PROCESS: where a daemon's pid is kept ("cluster" for the
# cluster's own). Under /run, keyed by the cluster's name: any clone's `down`
# finds them, and a reboot clears them.
pidfile() { echo "$run/pids/$1.$2.pid"; }

# logfile NODE PROCESS: where a daemon's output goes (build/, for a look).
logfile() { echo "$conf/$1/$2.log"; }

# start NODE PROCESS COMMAND...: runs a daemon, detached, in the node's
# network namespace (NODE "cluster": on the host).
start() {
  local node=$1 proc=$2; shift 2
  mkdir -p "$run/pids" "$conf/$node"
  if [ "$node" = cluster ]; then
    setsid "$@" >"$(logfile "$node" "$proc")" 2>&1 </dev/null &
  else
    setsid nsenter --net="/run/netns/$cluster-$node" -- "$@" >"$(logfile "$node" "$proc")" 2>&1 </dev/null &
  fi
  echo $! >"$(pidfile "$node" "$proc")"
}

# running FILE: the daemon a pid file names runs, and is ours (its command
# line names this cluster: a pid reused by another process is not).
running() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$cluster"
}

# all_running: every daemon of the cluster's nodes runs; else names the first that does not.
all_running() {
  local f
  for f in "$run"/pids/*.pid; do
    [ -e "$f" ] || return 1
    running "$f" || { basename "$f" .pid; return 1; }
  done
}

wait_for() {
  local what=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "$what did not come up"
}

import_images() {
  local sock=$1 f
  for f in "$root"/build/images/*.tar; do
    ctr -a "$sock" -n k8s.io images import "$f" >/dev/null
  done
  # Pinned images are never collected by the kubelet.
  ctr -a "$sock" -n k8s.io images ls -q | grep '^llm-platform.local/' |
    xargs -r -I{} ctr -a "$sock" -n k8s.io images label {} io.cri-containerd.pinned=pinned >/dev/null
}

up() {
  local name=$1
  kubeconfig=$2
  paths "$name"
  local problems
  problems=$(missing)
  [ -z "$problems" ] || die "cannot run real nodes here; missing: $(echo "$problems" | paste -sd, -)"
  [ -x "$bin/kubelet" ] && [ -x "$bin/kube-proxy" ] && [ -x "$bin/kube-router" ] && [ -x "$bin/fakegpu" ] ||
    die "build the node binaries first: hack/tools.sh real-nodes"
  ls "$root"/build/images/*.tar >/dev/null 2>&1 || die "build the images first: hack/tools.sh real-nodes"
  if ip netns list | grep -qx "$router\( .*\)\?"; then
    local dead
    if dead=$(all_running); then
      log "real nodes of $name already run"
      return
    fi
    log "real nodes of $name are half there (${dead:-no daemon} is not running): starting them anew"
    down "$name"
  fi
  local port; port=$(api_port "$kubeconfig")
  [ -n "$port" ] || die "no https://127.0.0.1:<port> server in $kubeconfig"
  mkdir -p "$conf" "$run" "$lib/volumes"
  chmod 0711 "$lib"
  setup_router
  # One forwarder on the host from a Unix socket to the API server.
  start cluster socat-api socat "UNIX-LISTEN:$run/api.sock,fork,unlink-early" "TCP:127.0.0.1:$port"
  local i=0 node c
  for node in $(node_names); do
    i=$((i + 1))
    setup_node_net "$name" "$node" "$i"
    write_node_config "$name" "$node" "$i"
    for c in $(ls /sys/fs/cgroup); do
      [ "$c" = unified ] || mkdir -p "/sys/fs/cgroup/$c$(cgroup_root "$name" "$node")"
    done
    start "$node" socat socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$run/api.sock"
    start "$node" containerd containerd --config "$conf/$node/containerd.toml"
  done
  i=0
  for node in $(node_names); do
    i=$((i + 1))
    local d="$conf/$node" sock="$run/$node/containerd.sock"
    wait_for "containerd of $node" 30 ctr -a "$sock" version
    import_images "$sock"
    start "$node" kubelet "$bin/kubelet" --config "$d/kubelet.yaml" --kubeconfig "$d/kubeconfig" \
      --root-dir "$lib/$node/kubelet" --cert-dir "$lib/$node/kubelet/pki" --hostname-override "$node" \
      --node-ip "10.250.0.$i" --node-labels "$(cat "$d/labels")" --v 1
    if [[ $node == realnode-gpu-* ]]; then
      # The device plugin talks to the kubelet's sockets only: no network.
      start cluster "fakegpu-$node" "$bin/fakegpu" -registry "$lib/$node/kubelet/plugins_registry" \
        -dir "$run/$node/fakegpu" -count "$gpus_per_node"
    fi
  done
  local kc=("$bin/kubectl" --kubeconfig "$kubeconfig" --cache-dir "$kubeconfig.cache")
  for node in $(node_names); do
    wait_for "node $node (log: ${conf#$root/}/$node/kubelet.log)" 90 \
      "${kc[@]}" wait --for condition=Ready --timeout 1s "node/$node"
    if [[ $node == realnode-gpu-* ]]; then
      wait_for "the fake GPUs of $node" 30 gpus_advertised "$node"
    fi
  done
  # kube-proxy and the NetworkPolicy agent read their Node at start: only
  # once it is registered.
  for node in $(node_names); do
    start "$node" kube-proxy "$bin/kube-proxy" --config "$conf/$node/kube-proxy.yaml"
    start "$node" kube-router "$bin/kube-router" --kubeconfig "$conf/$node/kubeconfig" --hostname-override "$node" \
      --run-firewall=true --run-router=false --run-service-proxy=false --enable-ipv4=true --enable-ipv6=false \
      --enable-cni=false
  done
  # Claims of the class real-local are provisioned by a kwok stage as local
  # volumes under $lib/volumes; the kubelet mounts only a directory that
  # exists, so create each as its volume appears. A watch ends when the API
  # server closes it: watch again.
  start cluster volumes bash -c "while :; do \"${kc[0]}\" --kubeconfig \"$kubeconfig\" get pv --watch -o jsonpath='{.spec.local.path}{\"\\n\"}' |
    while read -r p; do case \$p in \"$lib/volumes/\"*) mkdir -p \"\$p\" ;; esac; done; sleep 1; done # $cluster"
  # Every daemon still runs (one that died at start, such as a NetworkPolicy
  # agent, would leave its node Ready but unguarded).
  sleep 3
  local dead
  if ! dead=$(all_running); then
    local node=${dead%%.*} proc=${dead#*.}
    die "$proc of $node exited: $(tail -5 "$(logfile "$node" "$proc")")"
  fi
  log "real nodes ready: $(node_names | paste -sd' ' -) (logs: ${conf#$root/}/<node>/)"
}

# gpus_advertised NODE: the node's allocatable GPUs are what the plugin offers.
gpus_advertised() {
  [ "$("$bin/kubectl" --kubeconfig "$kubeconfig" --cache-dir "$kubeconfig.cache" get node "$1" \
    -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')" = "$gpus_per_node" ]
}

# stop FILE: stops the daemon a pid file names, its process group included,
# if it is ours.
stop() {
  local f=$1 pid
  if running "$f"; then
    pid=$(cat "$f")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  local name=$1 c f dir proc
  paths "$name"
  # The kubelets and node agents first, so that nothing restarts a container.
  for proc in kubelet fakegpu kube-proxy kube-router; do
    for f in "$run"/pids/*."$proc"*.pid; do [ -e "$f" ] && stop "$f"; done
  done
  # Every container process of a node lives under its cgroup root: end them
  # there, by pid, and only them.
  for f in $(find "/sys/fs/cgroup/pids/llm-platform/$name" -name cgroup.procs 2>/dev/null); do
    xargs -r kill -KILL <"$f" 2>/dev/null || true
  done
  for f in "$run"/pids/*.pid; do [ -e "$f" ] && stop "$f"; done
  # containerd's shims live outside the pods' cgroups: find them by the socket
  # address of this cluster's containerd in their command line.
  for f in /proc/[0-9]*/cmdline; do
    if tr '\0' ' ' <"$f" 2>/dev/null | grep -q -- "-address $run/"; then
      dir=${f%/cmdline}; kill -KILL "${dir#/proc/}" 2>/dev/null || true
    fi
  done
  # Mounts the kubelet and containerd leave (tmpfs of volumes, overlay roots,
  # pod network namespaces), deepest first.
  for dir in "$lib" "$run"; do
    { findmnt -rn -o TARGET | grep "^$dir/" || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  done
  # This cluster's namespaces only: another cluster's name may start with this one's.
  for dir in $(ip netns list | awk '{print $1}' | grep -E "^$name-(router|realnode-.*)\$" || true); do
    ip netns del "$dir" 2>/dev/null || true
  done
  for c in $(ls /sys/fs/cgroup); do
    [ -d "/sys/fs/cgroup/$c/llm-platform/$name" ] &&
      find "/sys/fs/cgroup/$c/llm-platform/$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
    rmdir "/sys/fs/cgroup/$c/llm-platform" 2>/dev/null || true
  done
  # The kubelets' links to their containers' logs, in the one folder their
  # code fixes.
  find /var/log/containers -maxdepth 1 -lname "$lib/*" -delete 2>/dev/null || true
  rm -rf --one-file-system "$run" "$lib" "$conf"
}

case "${1:-}" in
  up) up "${2:?cluster name}" "${3:?kubeconfig}" ;;
  down) down "${2:?cluster name}" ;;
  check)
    problems=$(missing)
    if [ -n "$problems" ]; then echo "$problems"; exit 1; fi ;;
  *) echo "usage: $0 up NAME KUBECONFIG | down NAME | check" >&2; exit 2 ;;
esac
