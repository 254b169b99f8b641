#!/usr/bin/env bash
# Runs a leg's tests (scripts/legs.json) other than the checkout's own: a copy of the working tree
# (tracked and untracked, not ignored) in a temp dir, `npm ci` there with the leg's @pulumi/pulumi,
# the leg's Node and Pulumi CLI provisioned into the shared cache, then the leg's test files.
#   npm run test:leg -- oldest [jest args]      (default leg: oldest)
# The oldest leg runs the unit tests, the engine proof, the consumer test, the Code Ocean upgrade
# and the Backend.AI cluster test; the full suite runs on the default leg (npm test).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
leg="${1:-oldest}"; shift || true
export UO_LEG="$leg"
. "$here/lib.sh"
sdk="$(leg_value sdk)"
tree="$(mktemp -d "${TMPDIR:-/tmp}/uo-leg-$leg.XXXXXX")"
trap 'rm -rf "$tree"' EXIT
started=$(date +%s)
step "leg $leg: copying the working tree to $tree"
(cd "$UO_ROOT" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$tree"
cd "$tree"
step "leg $leg: npm ci, then @pulumi/pulumi $sdk"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "@pulumi/pulumi@$sdk"
npm run build --silent
UO_LEG="$leg" bash scripts/provision.sh
step "leg $leg: ready in $(( $(date +%s) - started ))s; running its tests"
files=(test/unit test/integration/pulumi-engine.test.ts test/integration/consumer.test.ts
       test/integration/codeocean-upgrade.test.ts test/integration/backendai-cluster.test.ts)
[ $# -gt 0 ] && files=("$@")
UO_LEG="$leg" bash scripts/node.sh --leg node_modules/jest/bin/jest.js "${files[@]}"
