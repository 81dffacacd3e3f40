#!/usr/bin/env bash
# Runs Pulumi on the prebuilt program (bin/llm-platform), the fast path.
#
#   hack/pulumi.sh preview STACK     pulumi preview --diff
#   hack/pulumi.sh deploy STACK      pulumi up
#   hack/pulumi.sh local-up STACK    pulumi up against the local cluster, file backend
#   hack/pulumi.sh project           only write the generated project file
#
# Pulumi.yaml itself runs the program from source, so that a user who types
# `pulumi up` always runs the code in front of them. These commands instead use
# a generated project file, build/pulumi/Pulumi.yaml, identical but for
# `runtime.options.binary`, which skips the Go compile on every command. The
# stack files stay where they are (stackConfigDir), so both paths share stacks.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
action=${1:?usage: $0 preview|deploy|local-up STACK}
stack=${2:-}
project="${PULUMI_PROJECT_DIR:-$root/build/pulumi}"

write_project() {
  mkdir -p "$project"
  # Same project, binary runtime, stack files from the repository root.
  sed -e "s|^runtime: go\$|runtime:\n  name: go\n  options:\n    binary: $root/bin/llm-platform|" \
    "$root/Pulumi.yaml" >"$project/Pulumi.yaml"
  # Pulumi joins stackConfigDir onto the project's directory: it must be relative.
  printf 'stackConfigDir: %s\n' "$(realpath -m --relative-to="$project" "$root")" >>"$project/Pulumi.yaml"
}

if [ "$action" = project ]; then
  write_project
  exit 0
fi
[ -n "$stack" ] || { echo "usage: $0 preview|deploy|local-up STACK" >&2; exit 2; }

if ! command -v pulumi >/dev/null 2>&1; then
  cat >&2 <<MSG
pulumi: the Pulumi CLI is not on the PATH, so '$action' cannot run.
Install the Pulumi CLI to preview and deploy against a real cluster. Without it you can
still see exactly what the stack would create:
  make render STACK=$stack   # writes out/$stack/manifests.yaml
  make up                    # deploys the dev render onto a local control plane
MSG
  exit 1
fi

write_project

case "$action" in
  preview) exec pulumi --cwd "$project" preview --stack "$stack" --diff ;;
  deploy) exec pulumi --cwd "$project" up --stack "$stack" ;;
  local-up)
    # The local cluster, a state file inside build/, nothing global touched.
    export KUBECONFIG="$root/build/kubeconfig"
    export PULUMI_BACKEND_URL="file://$root/build/pulumi-state"
    export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-local-cluster-only}"
    mkdir -p "$root/build/pulumi-state"
    pulumi --cwd "$project" stack select --create "$stack" >/dev/null
    exec pulumi --cwd "$project" up --stack "$stack" --yes
    ;;
  *) echo "usage: $0 preview|deploy|local-up STACK" >&2; exit 2 ;;
esac
