#!/usr/bin/env bash
# actionlint (rhysd/actionlint), the oracle the GitHub Actions examples are checked against,
# built once from the Go module proxy into $UO_CACHE/actionlint/<version>/. Idempotent.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ACTIONLINT_VERSION="${UO_ACTIONLINT_VERSION:-v1.7.12}"
final="$UO_CACHE/actionlint/$ACTIONLINT_VERSION"
cached "actionlint: $ACTIONLINT_VERSION" "$final" actionlint && exit 0
command -v go >/dev/null || fail "actionlint $ACTIONLINT_VERSION" "building it from the Go module proxy needs Go (not found)" \
  "install Go >= 1.24, or put actionlint $ACTIONLINT_VERSION at $final/actionlint and touch $final/.complete"
mkdir -p "$UO_CACHE/actionlint"
work="$(mktemp -d "$UO_CACHE/actionlint/.build-$ACTIONLINT_VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT   # never leave a half-built binary behind
started=$(date +%s)
step "actionlint: building $ACTIONLINT_VERSION from the Go module proxy"
GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local GOBIN="$work/out" go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
  || fail "actionlint $ACTIONLINT_VERSION" "go install github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" "check GOPROXY; see the Go errors above"
"$work/out/actionlint" -version >/dev/null || fail "actionlint $ACTIONLINT_VERSION" "running the built binary" "report this"
touch "$work/out/.complete"
rm -rf "$final"
mv "$work/out" "$final"
step "actionlint: $ACTIONLINT_VERSION ready in $final ($(( $(date +%s) - started ))s)"
