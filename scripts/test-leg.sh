#!/usr/bin/env bash
# Runs a leg's tests (scripts/legs.json) other than the checkout's own: a copy of the working tree
# (tracked and untracked, not ignored) in a temp dir, `npm ci` there with the leg's @pulumi/pulumi,
# the leg's Node and Pulumi CLI provisioned into the shared cache, then the leg's test files.
#   npm run test:leg -- oldest [jest args]      (default leg: oldest)
#   scripts/test-leg.sh oldest --prepare <dir>  only the preparation, into <dir>, kept for a later
#                                               `UO_LEG_TREE=<dir> scripts/test-leg.sh oldest`
# .ci/run prepares the oldest leg (a cold Pulumi build of minutes) at low priority while the
# default leg's tests run, after the default leg's provisioning has filled the shared cache.
# The oldest leg runs the unit tests, the engine proof, the consumer test, the Code Ocean upgrade
# and the Backend.AI cluster test; the full suite runs on the default leg (npm test).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
leg="${1:-oldest}"; shift || true
export UO_LEG="$leg"
. "$here/lib.sh"
sdk="$(leg_value sdk)"
started=$(date +%s)

prepare() { # prepare <tree>
  local tree="$1"
  step "leg $leg: copying the working tree to $tree"
  (cd "$UO_ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$tree"
  cd "$tree"
  step "leg $leg: npm ci, then @pulumi/pulumi $sdk"
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "@pulumi/pulumi@$sdk"
  npm run build --silent
  UO_LEG="$leg" bash scripts/provision.sh
  # what the tree was prepared from: a later run refuses a tree of another checkout or leg
  printf '%s %s\n' "$leg" "$(cd "$UO_ROOT" && git rev-parse HEAD)" > "$tree/.leg-prepared"
  step "leg $leg: ready in $(( $(date +%s) - started ))s"
}

if [ "${1:-}" = --prepare ]; then
  [ -n "${2:-}" ] && [ -d "$2" ] && [ -z "$(ls -A "$2")" ] \
    || fail "leg $leg" "scripts/test-leg.sh $leg --prepare ${2:-}" "name an empty directory to prepare the leg in"
  prepare "$(cd "$2" && pwd)"
  exit 0
fi

if [ -n "${UO_LEG_TREE:-}" ]; then
  want="$leg $(git -C "$UO_ROOT" rev-parse HEAD)"
  [ "$(cat "$UO_LEG_TREE/.leg-prepared" 2>/dev/null)" = "$want" ] \
    || fail "leg $leg" "UO_LEG_TREE=$UO_LEG_TREE: prepared as '$(cat "$UO_LEG_TREE/.leg-prepared" 2>/dev/null || echo nothing)', this run is '$want'" \
         "prepare it with 'scripts/test-leg.sh $leg --prepare <empty dir>', or unset UO_LEG_TREE"
  tree="$UO_LEG_TREE"
  trap 'rm -rf "$tree"' EXIT
  cd "$tree"
  step "leg $leg: prepared in $tree"
else
  tree="$(mktemp -d "${TMPDIR:-/tmp}/uo-leg-$leg.XXXXXX")"
  trap 'rm -rf "$tree"' EXIT
  prepare "$tree"
fi
step "leg $leg: running its tests"
files=(test/unit test/integration/pulumi-engine.test.ts test/integration/consumer.test.ts
       test/integration/codeocean-upgrade.test.ts test/integration/backendai-cluster.test.ts)
[ $# -gt 0 ] && files=("$@")
UO_LEG="$leg" bash scripts/node.sh --leg node_modules/jest/bin/jest.js "${files[@]}"
