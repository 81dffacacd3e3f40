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
stages="$root/build/kwok-stages.yaml"
KWOK_VERSION=$("$root/hack/tools.sh" versions | sed -n 's/.*kwok \(v[^ ]*\).*/\1/p')

log() { printf '==> %s\n' "$*" >&2; }

running() {
  "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$name" &&
    "$bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# write_stages: kwok's own stages from its module, so pods become Ready, Job
# pods complete and claims bind. A config that lists any Stage replaces
# kwokctl's defaults, so every stage needed is listed here. The volume stage
# is widened from kwok's own StorageClass to every class, because the stacks
# name classes of real clouds (gp3, efs-sc) that the tooling creates.
write_stages() {
  local dir
  dir=$(cd "$root" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "cannot find sigs.k8s.io/kwok@$KWOK_VERSION in the module cache" >&2; exit 1; }
  local s="$dir/kustomize/stage"
  {
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
  } >"$stages"
}

up() {
  if running; then
    log "cluster $name already runs (kubeconfig: ${kubeconfig#$root/})"
    return
  fi
  "$root/hack/tools.sh" control-plane
  "$bin/kwokctl" delete cluster --name "$name" >/dev/null 2>&1 || true
  write_stages
  log "starting cluster $name"
  PATH="$bin:$PATH" "$bin/kwokctl" create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --kwok-controller-binary "$bin/kwok" \
    --etcd-binary "$bin/etcd" \
    --config "$stages" \
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
