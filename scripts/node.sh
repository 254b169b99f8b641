#!/usr/bin/env bash
# Runs a script of the project with the right Node.js (engines: >= 22) and that Node first on PATH,
# so the Pulumi language host and every child process use the same one.
#   scripts/node.sh --leg <script> [args]  exactly the leg's Node (UO_LEG, default lts; scripts/legs.json),
#                                          from the cache scripts/provision-node.sh fills: tests, demo, bench
#   scripts/node.sh <script> [args]        `node` on PATH when it is >= 22, else the leg's Node: the CLI
# UO_NODE=/path/to/node overrides both.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exact=""
if [ "${1:-}" = --leg ]; then exact=1; shift; fi
cache="${UPGRADE_ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/upgrade-orchestrator}"
leg_node() {
  local leg version
  leg="${UO_LEG:-lts}"
  version="$(sed -n "/\"$leg\": *{/{s/.*\"node\": *\"\\([^\"]*\\)\".*/\\1/p;q}" "$root/scripts/legs.json")"
  [ -n "$version" ] || { echo "error: no leg '$leg' in scripts/legs.json" >&2; exit 2; }
  node_bin="$cache/node/v$version/bin/node"
  if [ ! -f "$cache/node/v$version/.complete" ]; then
    echo "error: could not find Node.js v$version for leg $leg: $cache/node/v$version is not provisioned" >&2
    echo "  hint: run 'npm run provision' (fetches it from the npm registry), or set UO_NODE to a Node.js >= 22" >&2
    exit 2
  fi
}
if [ -n "${UO_NODE:-}" ]; then
  node_bin="$UO_NODE"
elif [ -n "$exact" ]; then
  leg_node
else
  node_bin="$(command -v node || true)"
  major="$([ -n "$node_bin" ] && "$node_bin" --version 2>/dev/null || echo v0)"; major="${major#v}"; major="${major%%.*}"
  [ "$major" -ge 22 ] || leg_node
fi
export PATH="$(dirname "$node_bin"):$PATH"
exec "$node_bin" "$@"
