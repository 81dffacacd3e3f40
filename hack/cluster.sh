#!/usr/bin/env bash
# Starts and stops the local control plane: kube-apiserver, kube-controller-manager,
# kube-scheduler and etcd run as plain processes under kwokctl's binary runtime,
# and kwok fakes the nodes. Everything lives in build/: the binaries (build/bin),
# kwokctl's work dir (build/kwok) and the kubeconfig (build/kubeconfig); a user's
# ~/.kube/config is never touched.
#
#   hack/cluster.sh up      create the cluster unless it runs (idempotent)
#   hack/cluster.sh down    delete it
#   hack/cluster.sh status  say whether it runs
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/bin"
name=${CLUSTER_NAME:-llm-platform}
export KWOK_WORKDIR="$root/build/kwok"
# The default cluster is `make up`'s; the e2e tests run their own beside it.
if [ "$name" = llm-platform ]; then kubeconfig="$root/build/kubeconfig"; else kubeconfig="$root/build/kubeconfig-$name"; fi
kwok_config="$root/build/kwok-config.yaml"
versions=$("$root/hack/tools.sh" versions)
KWOK_VERSION=$(sed -n 's/.* kwok \(v[^ ]*\).*/\1/p' <<<"$versions")
METRICS_SERVER_VERSION=$(sed -n 's/.* metrics-server \(v[^ ]*\).*/\1/p' <<<"$versions")

log() { printf '==> %s\n' "$*" >&2; }

running() {
  "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$name" &&
    "$bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# module_dir MODULE VERSION: where the Go module cache holds a module's source.
module_dir() {
  local dir
  dir=$(cd "$root" && go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "cannot find $1@$2 in the module cache" >&2; exit 1; }
  echo "$dir"
}

# write_config: kwokctl's configuration, built from the kwok and metrics-server
# modules so that nothing is fetched from the internet.
#
# Stages: kwok's own, so pods become Ready, Job pods complete and claims bind.
# A config that lists any Stage replaces kwokctl's defaults, so every stage
# needed is listed here. The volume stage is widened from kwok's own
# StorageClass to every class, because the stacks name classes of real clouds
# (gp3, efs-sc) that the tooling creates.
#
# metrics-server: kwokctl runs the binary and registers it with the API server
# from the release manifests, which it would otherwise download; here they are
# built with `kubectl kustomize` from the module. kwok then serves each pod's
# CPU and memory from its annotations kwok.x-k8s.io/usage-cpu and
# kwok.x-k8s.io/usage-memory, which is how a test puts load on an HPA.
write_config() {
  local s metrics
  s="$(module_dir sigs.k8s.io/kwok "$KWOK_VERSION")/kustomize/stage"
  metrics="$(module_dir sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION")/manifests/overlays/release"
  {
    echo "apiVersion: config.kwok.x-k8s.io/v1alpha1"
    echo "kind: KwokctlConfiguration"
    echo "options:"
    echo "  metricsServerManifests:"
    echo "  - $metrics"
    # Pods labelled e2e.llm-platform.dev/never-ready stay Pending: the fault
    # tests use them for a rollout that never becomes Ready and a run that never ends.
    echo "---"
    sed "s|^    matchExpressions:$|    matchExpressions:\n    - key: '.metadata.labels.\"e2e.llm-platform.dev/never-ready\"'\n      operator: 'DoesNotExist'|" "$s/pod/fast/pod-ready.yaml"
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
      volume/fast/pv-bind.yaml volume/fast/pv-delete.yaml volume/fast/pvc-delete.yaml; do
      echo "---"; cat "$s/$f"
    done
    echo "---"
    sed "s/self.spec.storageClassName == 'kwok-volume'/has(self.spec.storageClassName)/" "$s/volume/fast/pvc-provision.yaml"
  } >"$kwok_config"
}

up() {
  if running; then
    log "cluster $name already runs (kubeconfig: ${kubeconfig#$root/})"
    return
  fi
  "$root/hack/tools.sh" control-plane
  "$bin/kwokctl" delete cluster --name "$name" >/dev/null 2>&1 || true
  write_config
  log "starting cluster $name"
  PATH="$bin:$PATH" "$bin/kwokctl" create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --kwok-controller-binary "$bin/kwok" \
    --etcd-binary "$bin/etcd" \
    --enable metrics-server --metrics-server-binary "$bin/metrics-server" \
    --config "$kwok_config" \
    --kubeconfig "$kubeconfig" \
    --wait 2m >"$root/build/kwokctl-$name.log" 2>&1 ||
    { cat "$root/build/kwokctl-$name.log" >&2; exit 1; }
  log "cluster $name is ready (kubeconfig: ${kubeconfig#$root/}, log: build/kwokctl-$name.log)"
}

down() {
  "$bin/kwokctl" delete cluster --name "$name" --kubeconfig "$kubeconfig" >>"$root/build/kwokctl-$name.log" 2>&1 || true
  log "cluster $name deleted"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running; then echo "cluster $name runs"; else echo "cluster $name is not running"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
