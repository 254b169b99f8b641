# Shared helpers for the provisioning scripts (sourced, not run).
# The cache lives outside the checkout so that every clone on a machine (and CI) reuses it.
UO_CACHE="${UPGRADE_ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/upgrade-orchestrator}"
UO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UO_CACHE UO_ROOT

step() { printf '[provision %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# fail <tool> <what was tried> <what the user can do>
fail() {
  printf '\nprovision: could not provide %s\n  tried: %s\n  to do: %s\n' "$1" "$2" "$3" >&2
  exit 1
}

# Runs a command as root: directly when we are root, through sudo -n otherwise.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}

# The version of @pulumi/pulumi installed in node_modules; CLI and language host must match it.
sdk_version() {
  node -p "require('$UO_ROOT/node_modules/@pulumi/pulumi/package.json').version" 2>/dev/null \
    || fail "the Pulumi SDK version" "reading node_modules/@pulumi/pulumi/package.json" "run 'npm ci' first"
}

# The leg being provisioned or tested (scripts/legs.json): UO_LEG, else the file's default.
UO_LEG="${UO_LEG:-$(node -p "require('$UO_ROOT/scripts/legs.json').default")}"
export UO_LEG
# leg_value <key>: node | pulumi of the current leg.
leg_value() {
  node -p "const l=require('$UO_ROOT/scripts/legs.json').legs[process.argv[1]]; if(!l) throw new Error('no leg '+process.argv[1]+' in scripts/legs.json'); l[process.argv[2]]" "$UO_LEG" "$1" 2>/dev/null \
    || fail "leg $UO_LEG" "reading scripts/legs.json" "use UO_LEG=$(node -p "Object.keys(require('$UO_ROOT/scripts/legs.json').legs).join(' or UO_LEG=')")"
}

# cached <tool> <dir> <executable>: true (and says so) when <dir>/<executable> was provisioned whole
# (every part moves its finished build into place with a .complete marker, never a half-built one).
cached() {
  [ -x "$2/$3" ] && [ -f "$2/.complete" ] || return 1
  step "$1 from the cache ($2)"
}
