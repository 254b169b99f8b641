#!/usr/bin/env bash
# The Utilitarian test bed's tools (kind `utilitarian`), all outside the checkout:
#   - Debian packages: podman + runc (the bed's container engine), debootstrap (fixture rootfs),
#     rabbitmq-server (the broker on the host), docker-registry (a local OCI registry on loopback);
#   - Docker Compose v2, built once from the Go module proxy into $UO_CACHE/compose/<version>/.
# Fixture images are built by the bed itself (test/sandbox/utilitarian*.ts), cached by their inputs.
# Idempotent: each part checks what is already there.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

COMPOSE_VERSION="${UO_COMPOSE_VERSION:-v2.40.3}"

# --- Debian packages ---------------------------------------------------------------------------
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
if [ ${#missing[@]} -eq 0 ]; then
  step "utilitarian: system packages present (podman, runc, debootstrap, rabbitmq-server, docker-registry)"
else
  step "utilitarian: installing ${missing[*]}"
  command -v apt-get >/dev/null || fail "${missing[*]}" "apt-get (not found: not a Debian system?)" \
    "install ${missing[*]} with your package manager"
  # The bed runs its own broker and registry on loopback ports: keep the packages' services down.
  policy=/usr/sbin/policy-rc.d; added_policy=""
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && added_policy=1
  fi
  trap '[ -z "$added_policy" ] || as_root rm -f "$policy"' EXIT
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "${missing[*]}" "apt-get install as root (or sudo -n)" "run: sudo apt-get install -y ${missing[*]}"
  step "utilitarian: installed ${missing[*]}"
fi

# --- Docker Compose v2 from the Go module proxy ------------------------------------------------
final="$UO_CACHE/compose/$COMPOSE_VERSION"
build_compose() {
command -v go >/dev/null || fail "docker compose $COMPOSE_VERSION" "building it from the Go module proxy needs Go (not found)" \
  "install Go >= 1.24, or put docker-compose $COMPOSE_VERSION at $final/docker-compose and touch $final/.complete"
mkdir -p "$UO_CACHE/compose"
work="$(mktemp -d "$UO_CACHE/compose/.build-$COMPOSE_VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT   # never leave a half-built binary behind
started=$(date +%s)
export GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local
step "utilitarian: building docker compose $COMPOSE_VERSION from the Go module proxy (cold: minutes)"
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
step "utilitarian: docker compose $COMPOSE_VERSION ready in $final ($(( $(date +%s) - started ))s)"
}
if [ -x "$final/docker-compose" ] && [ -f "$final/.complete" ]; then
  step "utilitarian: docker compose $COMPOSE_VERSION from the cache ($final)"
else
  (build_compose)
fi

# --- Fixture images (rootfs, wheelhouse, images 1.0.0 and 2.0.0; each cached by its inputs) ---
bash "$UO_ROOT/test/fixtures/utilitarian/build-images.sh" >/dev/null
