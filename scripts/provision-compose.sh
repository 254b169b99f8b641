#!/usr/bin/env bash
# Docker Compose v2 for the Utilitarian bed, built once from the Go module proxy into
# $UO_CACHE/compose/<version>/ (`go mod download` + `go build ./cmd` inside a copy of the module:
# `go install` refuses it, its go.mod has replace directives). Idempotent.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

COMPOSE_VERSION="${UO_COMPOSE_VERSION:-v2.40.3}"

final="$UO_CACHE/compose/$COMPOSE_VERSION"
build_compose() {
command -v go >/dev/null || fail "docker compose $COMPOSE_VERSION" "building it from the Go module proxy needs Go (not found)" \
  "install Go >= 1.24, or put docker-compose $COMPOSE_VERSION at $final/docker-compose and touch $final/.complete"
mkdir -p "$UO_CACHE/compose"
work="$(mktemp -d "$UO_CACHE/compose/.build-$COMPOSE_VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT   # never leave a half-built binary behind
started=$(date +%s)
export GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local
step "compose: building docker compose $COMPOSE_VERSION from the Go module proxy (cold: minutes)"
# `go install` refuses the module (its go.mod has replace directives): build inside a copy of it.
dir="$(cd "$work" && go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
[ -n "$dir" ] && [ -d "$dir" ] || fail "docker compose $COMPOSE_VERSION" "go mod download github.com/docker/compose/v2@$COMPOSE_VERSION" \
  "check GOPROXY, or put a docker-compose binary at $final/docker-compose"
cp -r "$dir" "$work/src"; chmod -R u+w "$work/src"
mkdir -p "$work/out"
(cd "$work/src" && go build -trimpath -ldflags "-w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
   -o "$work/out/docker-compose" ./cmd) \
  || fail "docker compose $COMPOSE_VERSION" "go build ./cmd in github.com/docker/compose/v2@$COMPOSE_VERSION" "see the Go errors above"
"$work/out/docker-compose" version | grep -q "$COMPOSE_VERSION" \
  || fail "docker compose $COMPOSE_VERSION" "the built binary reports: $("$work/out/docker-compose" version)" "report this"
touch "$work/out/.complete"
rm -rf "$final"
mv "$work/out" "$final"   # same filesystem: the finished binary appears at once
step "compose: docker compose $COMPOSE_VERSION ready in $final ($(( $(date +%s) - started ))s)"
}
cached "compose: docker compose $COMPOSE_VERSION" "$final" docker-compose || (build_compose)

