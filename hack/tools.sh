#!/usr/bin/env bash
# Builds the tools the local control plane and the checks need, from Go modules,
# into build/bin. Every version is pinned here, in one place. A tool that is
# already present at its pinned version is not rebuilt, so a second run takes
# seconds; the Go build cache makes a rebuild after `make clean` fast too.
#
#   hack/tools.sh [control-plane|checks|real-nodes|all]   (default: all but real-nodes)
set -euo pipefail

KUBERNETES_VERSION=v1.34.2
ETCD_VERSION=v3.6.5
KWOK_VERSION=v0.8.0
METRICS_SERVER_VERSION=v0.7.2
CUSTOM_METRICS_APISERVER_VERSION=v1.34.0
# CRDs the stack's objects need, applied to the local cluster from these modules.
PROMETHEUS_OPERATOR_VERSION=v0.85.0
KEDA_VERSION=v2.18.0
# Inference routing: the Gateway API Inference Extension's endpoint picker (EPP)
# is built from its module (hack/tools/epp pins the same version); its
# InferencePool CRD (config/crd/bases) and the Gateway API's CRDs
# (config/crd/standard) are applied to the local cluster from these modules.
GATEWAY_API_INFERENCE_EXTENSION_VERSION=v1.5.0
GATEWAY_API_VERSION=v1.6.3
# Multi-node serving: the LeaderWorkerSet controller manager is built from its
# module (hack/tools/lws pins the same version) and runs beside the local
# cluster; its CRDs (config/crd/bases) are applied from the module too.
LWS_VERSION=v0.9.0
PROMETHEUS_VERSION=v0.316.0
KUBE_SCORE_VERSION=v1.20.0
ACTIONLINT_VERSION=v1.7.9
# The real nodes' NetworkPolicy agent (firewall only; see docs/testing.md, "Real nodes").
KUBE_ROUTER_VERSION=v2.1.0
# Debian's packages the real nodes run on, installed where missing.
REAL_NODE_PACKAGES="containerd runc containernetworking-plugins socat iptables ipset iproute2 conntrack busybox-static"

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/bin"
stamps="$bin/.versions"
mkdir -p "$bin" "$stamps"

log() { printf '==> %s\n' "$*" >&2; }

# have NAME VERSION: true when every binary of NAME was built at VERSION.
have() {
  [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]
}
stamp() { echo "$2" >"$stamps/$1"; }

build_kubernetes() {
  # The stamp names the commands too: a build from before the real nodes
  # lacks the kubelet and kube-proxy.
  local want="$KUBERNETES_VERSION +kubelet+kube-proxy"
  have kubernetes "$want" && return
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy $KUBERNETES_VERSION (cold: about 15 minutes on 2 cores)"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  # Without these the binaries report v0.0.0-master, which clients cannot parse.
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  (cd "$root/hack/tools/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy)
  stamp kubernetes "$want"
}

build_etcd() {
  have etcd "$ETCD_VERSION" && return
  log "building etcd $ETCD_VERSION"
  (cd "$root/hack/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "$ETCD_VERSION"
}

build_epp() {
  have epp "$GATEWAY_API_INFERENCE_EXTENSION_VERSION" && return
  log "building epp (inference extension endpoint picker) $GATEWAY_API_INFERENCE_EXTENSION_VERSION (cold: about 6 minutes on 2 cores)"
  (cd "$root/hack/tools/epp" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/epp" \
    sigs.k8s.io/gateway-api-inference-extension/cmd/epp)
  stamp epp "$GATEWAY_API_INFERENCE_EXTENSION_VERSION"
}

build_lws() {
  have lws "$LWS_VERSION" && return
  log "building lws-controller-manager (LeaderWorkerSet controller) $LWS_VERSION (cold: about 3 minutes on 2 cores)"
  # Without these the manager reports v0.0.0-main, in its log and its user agent.
  local commit ldflags="-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=$LWS_VERSION"
  commit=$(cd "$root/hack/tools/lws" && go mod download -json "sigs.k8s.io/lws@$LWS_VERSION" | sed -n 's/^\t\t"Hash": "\(.*\)",*$/\1/p')
  [ -z "$commit" ] || ldflags+=" -X sigs.k8s.io/lws/pkg/version.GitCommit=$commit"
  (cd "$root/hack/tools/lws" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/lws-controller-manager" \
    sigs.k8s.io/lws/cmd)
  stamp lws "$LWS_VERSION"
}

# go_install NAME VERSION PACKAGE...: for modules without replace directives.
go_install() {
  local name=$1 version=$2; shift 2
  have "$name" "$version" && return
  log "building $name $version"
  local pkg
  for pkg in "$@"; do
    GOBIN="$bin" go install -trimpath -ldflags "-s -w" "$pkg@$version"
  done
  stamp "$name" "$version"
}

control_plane() {
  build_etcd
  go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  go_install metrics-server "$METRICS_SERVER_VERSION" sigs.k8s.io/metrics-server/cmd/metrics-server
  # The custom-metrics API's test adapter: serves per-pod metrics whose values
  # a test sets over HTTP, so an HPA on a Pods metric scales on the local cluster.
  go_install custom-metrics-test-adapter "$CUSTOM_METRICS_APISERVER_VERSION" sigs.k8s.io/custom-metrics-apiserver/test-adapter
  # The inference extension's endpoint picker: the ext-proc server a gateway
  # asks which model server pod of an InferencePool takes a request.
  build_epp
  # The LeaderWorkerSet controller: hack/cluster.sh up runs it beside every
  # cluster, with its webhooks, so a LeaderWorkerSet gets its groups of pods.
  build_lws
  build_kubernetes
}

# real_nodes: what hack/realnode.sh runs. Debian's packages are installed with
# apt-get where missing (as root); the kubelet and kube-proxy come from the
# control plane's build module, kube-router from its module; the fake GPU
# device plugin and the images of the test doubles are ours, built every time
# (the Go build cache makes that seconds, and an image's digest only changes
# with its binary).
real_nodes() {
  local missing=() p
  for p in $REAL_NODE_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      log "cannot install ${missing[*]}: not root, or no apt-get; hack/realnode.sh check says what is missing"
    else
      log "installing ${missing[*]} (Debian's packages)"
      # A failed install is not fatal: hack/realnode.sh check then says what
      # is missing and make realnode skips, while the rest of make test runs.
      { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        log "apt-get could not install ${missing[*]}"
    fi
  fi
  if ! "$root/hack/realnode.sh" check >/dev/null; then
    log "this machine cannot run real nodes (hack/realnode.sh check says what is missing): nothing more to build"
    return 0
  fi
  build_kubernetes
  go_install kube-router "$KUBE_ROUTER_VERSION" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/fakegpu" ./test/realnode/fakegpu)
  (cd "$root" && go run ./test/doubles/cmd/build-images -out "$root/build/images")
}

checks() {
  go_install kube-score "$KUBE_SCORE_VERSION" github.com/zegl/kube-score/cmd/kube-score
  go_install actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint
  go_install promtool "$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/promtool
}

case "${1:-all}" in
  control-plane) control_plane ;;
  real-nodes) real_nodes ;;
  checks) checks ;;
  all) control_plane; checks ;;
  versions) echo "kubernetes $KUBERNETES_VERSION etcd $ETCD_VERSION kwok $KWOK_VERSION metrics-server $METRICS_SERVER_VERSION custom-metrics-apiserver $CUSTOM_METRICS_APISERVER_VERSION kube-router $KUBE_ROUTER_VERSION kube-score $KUBE_SCORE_VERSION actionlint $ACTIONLINT_VERSION prometheus-operator $PROMETHEUS_OPERATOR_VERSION keda $KEDA_VERSION prometheus $PROMETHEUS_VERSION gateway-api $GATEWAY_API_VERSION gateway-api-inference-extension $GATEWAY_API_INFERENCE_EXTENSION_VERSION lws $LWS_VERSION" ;;
  *) echo "usage: $0 [control-plane|checks|real-nodes|all|versions]" >&2; exit 2 ;;
esac
