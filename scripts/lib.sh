# shellcheck shell=bash
# Shared by scripts/*: paths, messages, and the project's Node runtime.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_VERSION="$(tr -d '[:space:]' < "$ROOT/.node-version")"
RUNTIME_DIR="$ROOT/.runtime"
NODE_HOME="$RUNTIME_DIR/node-$NODE_VERSION"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Node 24 of the project (installed by scripts/setup), first on PATH, and native addons built
# against its headers.
use_project_node() {
  if [[ -x "$NODE_HOME/bin/node" ]]; then
    export PATH="$NODE_HOME/bin:$PATH"
    export npm_config_nodedir="$NODE_HOME"
  fi
}
