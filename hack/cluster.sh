#!/usr/bin/env bash
# Starts and stops the local control plane: kube-apiserver, kube-controller-manager,
# kube-scheduler and etcd run as plain processes under kwokctl's binary runtime,
# and kwok fakes the nodes. Everything lives in build/: the binaries (build/bin),
# kwokctl's work dir (build/kwok) and the kubeconfig (build/kubeconfig); a user's
# ~/.kube/config is never touched.
#
#   hack/cluster.sh up      create the cluster unless it runs (idempotent);
#                           with REAL_NODES=1, real worker nodes join it
#                           (hack/realnode.sh: kubelet, containerd, runc)
#   hack/cluster.sh down    delete it
#   hack/cluster.sh status  say whether it runs
#   hack/cluster.sh custom-metrics
#                           run the custom-metrics test adapter beside it and
#                           register it as custom.metrics.k8s.io (idempotent)
#   hack/cluster.sh lws     (re)start the LeaderWorkerSet controller beside it
#                           (up does this; idempotent)
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
PROMETHEUS_OPERATOR_VERSION=$(sed -n 's/.* prometheus-operator \(v[^ ]*\).*/\1/p' <<<"$versions")
KEDA_VERSION=$(sed -n 's/.* keda \(v[^ ]*\).*/\1/p' <<<"$versions")
GATEWAY_API_VERSION=$(sed -n 's/.* gateway-api \(v[^ ]*\).*/\1/p' <<<"$versions")
GATEWAY_API_INFERENCE_EXTENSION_VERSION=$(sed -n 's/.* gateway-api-inference-extension \(v[^ ]*\).*/\1/p' <<<"$versions")
LWS_VERSION=$(sed -n 's/.* lws \(v[^ ]*\).*/\1/p' <<<"$versions")

log() { printf '==> %s\n' "$*" >&2; }

# kc runs kubectl on this cluster, with a discovery cache of its own (see up).
kc() { "$bin/kubectl" --kubeconfig "$kubeconfig" --cache-dir "$kubeconfig.cache" "$@"; }

running() {
  "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$name" &&
    kc get --raw /readyz >/dev/null 2>&1
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
    # kwokctl's binary runtime has kwok manage every node; it must manage
    # only the fake ones (all carry this annotation), never a real node's
    # pods (it would mark them Ready with an address of its own).
    echo "componentsPatches:"
    echo "- name: kwok-controller"
    echo "  extraArgs:"
    echo "  - {key: manage-all-nodes, value: 'false'}"
    echo "  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}"
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
    sed "s/self.spec.storageClassName == 'kwok-volume'/has(self.spec.storageClassName) \&\& self.spec.storageClassName != 'real-local'/" "$s/volume/fast/pvc-provision.yaml"
    # Claims of the class real-local get local volumes on the real nodes
    # (hack/realnode.sh creates each directory): unlike a hostPath volume, the
    # kubelet gives a local volume the pod's fsGroup, so a non-root pod can
    # write its claim as on a cloud disk.
    echo "---"
    sed -e "s/name: pvc-provision$/name: pvc-provision-real-local/" \
      -e "s/self.spec.storageClassName == 'kwok-volume'/self.spec.storageClassName == 'real-local'/" \
      -e "s|^          hostPath:$|          local:|" \
      -e "s|^            path: /tmp/kwok-local-path-provisioner/|            path: /var/lib/llm-platform/$name/volumes/|" \
      -e "s|^            type: DirectoryOrCreate$|          nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: llm-platform.dev/real-node, operator: In, values: [\"true\"]}]}]}}|" \
      "$s/volume/fast/pvc-provision.yaml"
  } >"$kwok_config"
}

up() {
  if [ -n "${REAL_NODES:-}" ]; then
    "$root/hack/tools.sh" real-nodes
  fi
  if running; then
    log "cluster $name already runs (kubeconfig: ${kubeconfig#$root/})"
    lws_controller
    real_nodes
    return
  fi
  "$root/hack/tools.sh" control-plane
  "$bin/kwokctl" delete cluster --name "$name" >/dev/null 2>&1 || true
  # kubectl's discovery cache of a previous cluster at the same address (see
  # localcluster.Kubectl) would not know this one's CRDs.
  rm -rf "$kubeconfig.cache"
  write_config
  log "starting cluster $name"
  # The ImageVolume gate (beta in 1.33 and 1.34, on by default from 1.35) lets
  # the API server admit the image volumes of oci:// model sources.
  PATH="$bin:$PATH" "$bin/kwokctl" create cluster --name "$name" --runtime binary \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --kwok-controller-binary "$bin/kwok" \
    --etcd-binary "$bin/etcd" \
    --enable metrics-server --metrics-server-binary "$bin/metrics-server" \
    --kube-feature-gates ImageVolume=true \
    --config "$kwok_config" \
    --kubeconfig "$kubeconfig" \
    --wait 2m >"$root/build/kwokctl-$name.log" 2>&1 ||
    { cat "$root/build/kwokctl-$name.log" >&2; exit 1; }
  apply_crds
  lws_controller
  real_nodes
  log "cluster $name is ready (kubeconfig: ${kubeconfig#$root/}, log: build/kwokctl-$name.log)"
}

# custom_metrics: runs sigs.k8s.io/custom-metrics-apiserver's test adapter
# beside the cluster and registers it as the custom.metrics.k8s.io API, the way
# kwokctl registers metrics-server: an APIService whose ExternalName Service
# points at this machine. The adapter serves per-pod metrics whose values a
# test sets over HTTP (the adapter's fixed port 8080):
#   curl -X POST -H 'Content-Type: application/json' -d '"7"' \
#     http://127.0.0.1:8080/write-metrics/namespaces/NS/pods/POD/METRIC
# It stands in for prometheus-adapter, which serves the same API from Prometheus.
custom_metrics() {
  running || { echo "cluster $name is not running; hack/cluster.sh up first" >&2; exit 1; }
  local dir="$root/build/custom-metrics-$name" port
  mkdir -p "$dir"
  if adapter_pid >/dev/null; then
    port=$(cat "$dir/port")
  else
    if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
      echo "port 8080 is taken: the test adapter writes metrics there (another cluster's adapter?)" >&2; exit 1
    fi
    port=$(free_ports 1)
    echo "$port" >"$dir/port"
    # setsid: the adapter outlives this script, like the control plane's processes.
    setsid "$bin/test-adapter" --secure-port="$port" --bind-address=127.0.0.1 --cert-dir="$dir/certs" \
      --lister-kubeconfig="$kubeconfig" \
      --authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
      >"$dir/adapter.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  fi
  {
    echo "apiVersion: v1"
    echo "kind: Namespace"
    echo "metadata: {name: custom-metrics}"
    echo "---"
    echo "apiVersion: v1"
    echo "kind: Service"
    echo "metadata: {name: custom-metrics-apiserver, namespace: custom-metrics}"
    echo "spec: {type: ExternalName, externalName: 127.0.0.1}"
    for v in v1beta1 v1beta2; do
      echo "---"
      echo "apiVersion: apiregistration.k8s.io/v1"
      echo "kind: APIService"
      echo "metadata: {name: $v.custom.metrics.k8s.io}"
      echo "spec: {group: custom.metrics.k8s.io, version: $v, insecureSkipTLSVerify: true, groupPriorityMinimum: 100, versionPriority: 100,"
      echo "  service: {name: custom-metrics-apiserver, namespace: custom-metrics, port: $port}}"
    done
  } | kc apply --server-side -f - >/dev/null
  for _ in $(seq 60); do
    adapter_pid >/dev/null || break
    if kc get --raw /apis/custom.metrics.k8s.io/v1beta2 >/dev/null 2>&1; then
      log "custom.metrics.k8s.io served by the test adapter on 127.0.0.1:$port (log: ${dir#$root/}/adapter.log)"
      return
    fi
    sleep 1
  done
  echo "custom.metrics.k8s.io did not become available (adapter: ${dir#$root/}/adapter.log):" >&2
  tail -20 "$dir/adapter.log" >&2
  exit 1
}

stop_custom_metrics() {
  local pid
  if pid=$(adapter_pid); then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$root/build/custom-metrics-$name/pid"
}

# pid_of FILE PROGRAM: the pid in FILE, if that process runs PROGRAM (a pid
# file left behind may name another process by now).
pid_of() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^$2 " || return 1
  echo "$pid"
}

# free_ports N: N free TCP ports of 127.0.0.1, held open at once while they
# are picked, so no two are the same.
free_ports() {
  python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))' "$1"
}

# adapter_pid, lws_pid: the pids of this cluster's test adapter and
# LeaderWorkerSet controller, if they run.
adapter_pid() { pid_of "$root/build/custom-metrics-$name/pid" "$bin/test-adapter"; }
lws_pid() { pid_of "$root/build/lws-$name/pid" "$bin/lws-controller-manager"; }

# lws_controller: runs the LeaderWorkerSet controller manager (sigs.k8s.io/lws)
# beside the cluster, a process of this machine like the control plane's, so
# that a LeaderWorkerSet gets its leader StatefulSet, a worker StatefulSet per
# group and its headless Service. Its admission webhooks are part of it, not
# an option: the pod webhook gives each pod of a group its group-index,
# group-key and worker-index labels and the LWS_* variables, and the
# controller finds a group's workers by those labels. They are served for
# real, over TLS on 127.0.0.1, with a CA and a serving certificate of our own
# (the manager's own certificate rotation, which wants an in-cluster Service
# and Secret, is off): the module's webhook configurations are applied with
# each Service reference turned into a URL and the CA as caBundle. Leader
# election is off. The webhook, metrics and health ports are free ports of
# this machine, so clusters can run side by side. Idempotent: a controller
# that runs is kept, and its webhook configurations applied again.
lws_controller() {
  running || { echo "cluster $name is not running; hack/cluster.sh up first" >&2; exit 1; }
  local dir="$root/build/lws-$name" mod ports wport mport hport ca err
  mod=$(module_dir sigs.k8s.io/lws "$LWS_VERSION")
  mkdir -p "$dir"
  # A cluster started before the controller was part of up lacks its CRDs.
  kc get crd leaderworkersets.leaderworkerset.x-k8s.io disaggregatedsets.disaggregatedset.x-k8s.io >/dev/null 2>&1 || apply_crds
  if lws_pid >/dev/null; then
    read -r wport mport hport <"$dir/ports"
  else
    # A fresh CA and certificate at every start: nothing to keep or renew.
    rm -rf "$dir/certs"
    mkdir -p "$dir/certs"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=lws-webhook-ca-$name" -keyout "$dir/certs/ca.key" -out "$dir/certs/ca.crt" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$dir/certs/tls.key" -out "$dir/certs/tls.csr" 2>/dev/null
    openssl x509 -req -in "$dir/certs/tls.csr" -CA "$dir/certs/ca.crt" -CAkey "$dir/certs/ca.key" \
      -CAcreateserial -days 3650 -out "$dir/certs/tls.crt" \
      -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') 2>/dev/null
    ports=$(free_ports 3)
    echo "$ports" >"$dir/ports"
    read -r wport mport hport <<<"$ports"
    {
      echo "apiVersion: config.lws.x-k8s.io/v1alpha1"
      echo "kind: Configuration"
      echo "leaderElection: {leaderElect: false}"
      echo "internalCertManagement: {enable: false}"
      echo "webhook: {host: 127.0.0.1, port: $wport, certDir: $dir/certs}"
      echo "metrics: {bindAddress: '127.0.0.1:$mport'}"
      echo "health: {healthProbeBindAddress: '127.0.0.1:$hport'}"
    } >"$dir/config.yaml"
    # setsid: the controller outlives this script, like the control plane's processes.
    setsid "$bin/lws-controller-manager" --config "$dir/config.yaml" --kubeconfig "$kubeconfig" \
      --zap-log-level=info >"$dir/manager.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  fi
  # The module's webhook configurations (config/webhook, whose pod webhooks
  # select only pods labelled leaderworkerset.sigs.k8s.io/name), named as
  # upstream's release names them, each `service:` block made a `url:`.
  ca=$(base64 -w0 <"$dir/certs/ca.crt")
  kc kustomize "$mod/config/webhook" |
    awk -v url="https://127.0.0.1:$wport" -v ca="$ca" '
      function flush() { if (doc != "" && !skip) printf "---\n%s", doc; doc = ""; skip = 0 }
      insvc {
        match($0, /^ */)
        if (RLENGTH > svcindent) { if ($1 == "path:") path = $2; next }
        doc = doc pad "url: " url path "\n" pad "caBundle: " ca "\n"; insvc = 0
      }
      /^---$/ { flush(); next }
      /^kind: Service$/ { skip = 1 }
      /^ +service:$/ { match($0, /^ */); svcindent = RLENGTH; pad = substr($0, 1, RLENGTH); insvc = 1; path = ""; next }
      /^  name: (mutating|validating)-webhook-configuration$/ { sub(/name: /, "name: lws-") }
      { doc = doc $0 "\n" }
      END {
        if (insvc) doc = doc pad "url: " url path "\n" pad "caBundle: " ca "\n"
        flush()
      }' >"$dir/webhooks.yaml"
  kc apply --server-side -f "$dir/webhooks.yaml" >/dev/null
  # Ready when the API server has an answer from both LeaderWorkerSet
  # webhooks: a server-side dry run goes through them and stores nothing.
  local probe="apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata: {name: lws-webhook-probe, namespace: default}
spec: {leaderWorkerTemplate: {workerTemplate: {spec: {containers: [{name: probe, image: probe}]}}}}"
  for _ in $(seq 60); do
    lws_pid >/dev/null || break
    if err=$(kc create --dry-run=server -o name -f - <<<"$probe" 2>&1); then
      log "LeaderWorkerSet controller $LWS_VERSION runs beside $name, webhooks on 127.0.0.1:$wport (log: ${dir#$root/}/manager.log)"
      return
    fi
    sleep 1
  done
  echo "the LeaderWorkerSet controller does not answer its webhooks: ${err:-it exited} (log: ${dir#$root/}/manager.log):" >&2
  tail -20 "$dir/manager.log" >&2
  exit 1
}

stop_lws() {
  local pid
  if pid=$(lws_pid); then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$root/build/lws-$name/pid"
}

# apply_crds: the CustomResourceDefinitions of the operators a stack's objects
# belong to, from the operators' own modules, so the API server validates the
# stack's PodMonitors, PrometheusRules, ScaledObjects, HTTPRoutes and
# InferencePools strictly. The operators themselves do not run here (the
# endpoint picker does, in the tests that need it; the LeaderWorkerSet
# controller does, see lws_controller, and its manager wants both of its
# CRDs, DisaggregatedSet too). Only the InferencePool CRD
# of the inference extension: with its alpha CRDs present the picker v1.5.0
# watches them too.
apply_crds() {
  local po keda gw gie lws
  po="$(module_dir github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")/example/prometheus-operator-crd"
  keda="$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")/config/crd/bases"
  gw="$(module_dir sigs.k8s.io/gateway-api "$GATEWAY_API_VERSION")/config/crd/standard"
  gie="$(module_dir sigs.k8s.io/gateway-api-inference-extension "$GATEWAY_API_INFERENCE_EXTENSION_VERSION")/config/crd/bases"
  lws="$(module_dir sigs.k8s.io/lws "$LWS_VERSION")/config/crd/bases"
  # The standard channel's safe-upgrades file is an admission policy, not a CRD.
  local gwfiles=()
  for f in "$gw"/gateway.networking.k8s.io_*.yaml; do
    [[ $f == *vap_safeupgrades* ]] || gwfiles+=(-f "$f")
  done
  kc apply --server-side -f "$po" -f "$keda" "${gwfiles[@]}" -f "$gie/inference.networking.k8s.io_inferencepools.yaml" -f "$lws" >/dev/null
  # A CRD just created may have no status yet, and kubectl wait then fails at
  # once instead of waiting: retry until each is Established.
  local crds="crd/podmonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com crd/scaledobjects.keda.sh crd/httproutes.gateway.networking.k8s.io crd/inferencepools.inference.networking.k8s.io"
  crds+=" crd/leaderworkersets.leaderworkerset.x-k8s.io crd/disaggregatedsets.disaggregatedset.x-k8s.io"
  for _ in $(seq 30); do
    # shellcheck disable=SC2086
    kc wait --for condition=Established --timeout 10s $crds >/dev/null 2>&1 && return
    sleep 1
  done
  echo "the CRDs did not become Established:" >&2
  # shellcheck disable=SC2086
  kc get $crds -o wide >&2
  exit 1
}

# real_nodes: with REAL_NODES=1, the real worker nodes and their StorageClass.
real_nodes() {
  [ -n "${REAL_NODES:-}" ] || return 0
  kc apply --server-side -f - >/dev/null <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: real-local}
provisioner: kwok.x-k8s.io/volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
EOF
  "$root/hack/realnode.sh" up "$name" "$kubeconfig"
}

down() {
  # Real nodes first: their kubelets would otherwise outlive the API server.
  if [ -d "/run/llm-platform/$name" ] || [ -d "$root/build/realnode-$name" ] ||
    ip netns list 2>/dev/null | grep -qE "^$name-(router|realnode-)"; then
    "$root/hack/realnode.sh" down "$name" || log "could not remove every trace of the real nodes of $name (see above)"
  fi
  stop_custom_metrics
  stop_lws
  "$bin/kwokctl" delete cluster --name "$name" --kubeconfig "$kubeconfig" >>"$root/build/kwokctl-$name.log" 2>&1 || true
  log "cluster $name deleted"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  custom-metrics) custom_metrics ;;
  lws) lws_controller ;;
  status) if running; then echo "cluster $name runs"; else echo "cluster $name is not running"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status|custom-metrics|lws" >&2; exit 2 ;;
esac
