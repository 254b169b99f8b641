#!/usr/bin/env bash
# Provisions what `npm run demo` or `npm test` needs that npm does not install, into a cache
# outside the checkout (scripts/lib.sh), reused across runs and clones:
#   scripts/provision.sh demo   the demo's share: OpenSSH, moto (a Python virtualenv), the leg's
#                               Node.js, the leg's Pulumi CLI and Node.js language host
#   scripts/provision.sh [all]  everything the tests use: also PostgreSQL, MariaDB, the container
#                               tools, Docker Compose, the Open edX hosts' venv, the Utilitarian images
# The leg is UO_LEG (scripts/legs.json, default lts). Idempotent: each part checks what is there.
# Debian packages go first (apt holds one lock); then two lanes run side by side: the Go builds
# (CPU) in one, the downloads and the image build (network, disk) in the other. Each part prints
# one line with its time; a failed part prints its log and the run fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

profile="${1:-all}"
case "$profile" in
  demo | all) ;;
  *) fail "the toolchain" "scripts/provision.sh $profile" "run 'scripts/provision.sh demo' or 'scripts/provision.sh all'" ;;
esac
started=$(date +%s)
logs="$(mktemp -d "${TMPDIR:-/tmp}/uo-provision.XXXXXX")"
trap 'rm -rf "$logs"' EXIT
step "toolchain cache: $UO_CACHE (leg $UO_LEG, for $([ "$profile" = demo ] && echo the demo || echo the tests))"

# part <name> <command...>: the command's output goes to its log; one line says how it went.
part() {
  local name="$1"; shift
  local t=$(date +%s) log="$logs/$name.log"
  if "$@" >"$log" 2>&1; then
    local last; last="$(grep -o '\] .*' "$log" | tail -n 1 | cut -c3-)"
    last="${last#*: }"
    step "$name: ${last:-done} [$(( $(date +%s) - t ))s]"
  else
    step "$name: FAILED after $(( $(date +%s) - t ))s; its log:"
    sed 's/^/  | /' "$log" >&2
    return 1
  fi
}

part system bash "$here/provision-system.sh" "$profile"
if [ "$profile" = demo ]; then
  ( part node bash "$here/provision-node.sh" && part python bash "$here/provision-python.sh" demo ) & downloads=$!
  ( part pulumi bash "$here/provision-pulumi.sh" ) & builds=$!
else
  # the Pulumi build is the longest part (about 7 min cold): compose and actionlint build after the
  # downloads, beside it, rather than after it
  ( part node bash "$here/provision-node.sh" && part python bash "$here/provision-python.sh" \
      && part openedx bash "$here/provision-openedx.sh" \
      && part utilitarian-images bash "$UO_ROOT/test/fixtures/utilitarian/build-images.sh" \
      && part compose bash "$here/provision-compose.sh" && part actionlint bash "$here/provision-actionlint.sh" ) & downloads=$!
  ( part pulumi bash "$here/provision-pulumi.sh" ) & builds=$!
fi
ok=1
wait "$downloads" || ok=""
wait "$builds" || ok=""
[ -n "$ok" ] || fail "the toolchain" "the parts above marked FAILED" "fix what their logs say, then run 'npm run provision' again"
step "toolchain ready for $([ "$profile" = demo ] && echo the demo || echo the tests) in $(( $(date +%s) - started ))s"
