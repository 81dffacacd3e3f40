#!/usr/bin/env bash
# Runs Pulumi on the prebuilt program (bin/llm-platform), the fast path.
#
#   hack/pulumi.sh preview STACK [FLAGS...]   pulumi preview --diff
#   hack/pulumi.sh deploy STACK [FLAGS...]    pulumi up (pass --yes where nobody can answer)
#   hack/pulumi.sh local-up STACK             pulumi up against the local cluster, file backend
#   hack/pulumi.sh project                    only write the generated project file
#   hack/pulumi.sh engine                     say whether the Pulumi engine is here (exit 1 if not)
#
# Pulumi.yaml itself runs the program from source, so that a user who types
# `pulumi up` always runs the code in front of them. These commands instead use
# a generated project file, build/pulumi/Pulumi.yaml, identical but for
# `runtime.options.binary`, which skips the Go compile on every command. The
# stack files stay where they are (stackConfigDir), so both paths share stacks.
#
# The engine is looked up on the PATH and in ~/.pulumi/bin, where the official
# installer (and ../shared/engine/build.sh) put it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
action=${1:?usage: $0 preview|deploy|local-up STACK}
stack=${2:-}
shift $(( $# < 2 ? $# : 2 ))
flags=("$@")
export PATH="$HOME/.pulumi/bin:$PATH"
project="${PULUMI_PROJECT_DIR:-$root/build/pulumi}"

write_project() {
  mkdir -p "$project"
  # Same project, binary runtime, stack files from the repository root.
  sed -e "s|^runtime: go\$|runtime:\n  name: go\n  options:\n    binary: $root/bin/llm-platform|" \
    "$root/Pulumi.yaml" >"$project/Pulumi.yaml"
  # Pulumi joins stackConfigDir onto the project's directory: it must be relative.
  printf 'stackConfigDir: %s\n' "$(realpath -m --relative-to="$project" "$root")" >>"$project/Pulumi.yaml"
}

# engine_missing: the names of the engine's binaries that cannot be found.
engine_missing() {
  local b missing=()
  for b in pulumi pulumi-language-go pulumi-resource-kubernetes; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  echo "${missing[*]}"
}

case "$action" in
  project) write_project; exit 0 ;;
  engine)
    missing=$(engine_missing)
    if [ -n "$missing" ]; then echo "no Pulumi engine: $missing not found on the PATH or in ~/.pulumi/bin" >&2; exit 1; fi
    echo "Pulumi engine: $(command -v pulumi) ($(pulumi version)) with $(command -v pulumi-resource-kubernetes)"
    exit 0 ;;
esac
[ -n "$stack" ] || { echo "usage: $0 preview|deploy|local-up STACK" >&2; exit 2; }

missing=$(engine_missing)
if [ -n "$missing" ]; then
  cat >&2 <<MSG
pulumi: $missing not found on the PATH or in ~/.pulumi/bin, so '$action' cannot run.
Install the Pulumi CLI and the Kubernetes provider to preview and deploy against a real
cluster (see CONTRIBUTING.md, "The Pulumi engine"). Without them you can still see exactly what
the stack would create:
  make render STACK=$stack   # writes out/$stack/manifests.yaml
  make up                    # deploys the dev render onto a local control plane
MSG
  exit 1
fi

write_project

case "$action" in
  preview) exec pulumi --cwd "$project" preview --stack "$stack" --diff "${flags[@]}" ;;
  deploy) exec pulumi --cwd "$project" up --stack "$stack" "${flags[@]}" ;;
  local-up)
    # The local cluster, a state file inside build/, nothing global touched.
    export KUBECONFIG="$root/build/kubeconfig"
    export PULUMI_BACKEND_URL="file://$root/build/pulumi-state"
    export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-local-cluster-only}"
    mkdir -p "$root/build/pulumi-state"
    pulumi --cwd "$project" stack select --create "$stack" >/dev/null
    exec pulumi --cwd "$project" up --stack "$stack" --yes "${flags[@]}"
    ;;
  *) echo "usage: $0 preview|deploy|local-up STACK" >&2; exit 2 ;;
esac
