#!/usr/bin/env bash
# The Pulumi CLI and the Node.js language host of the leg (scripts/legs.json: its `cli`, at or above
# the @pulumi/pulumi SDK in node_modules, which must be the leg's `sdk`; the Automation API refuses
# a CLI older than its SDK).
#   1. `pulumi` on PATH with the leg's CLI version (and pulumi-language-nodejs beside it): used as is.
#   2. otherwise the cache: $UO_CACHE/pulumi/v<version>/bin, built once from the Go module proxy.
# The dynamic-provider shim pulumi-resource-pulumi-nodejs (shipped in the npm package) is put
# beside the binaries. lib/toolchain.ts resolves the same locations at run time.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

sdk="$(sdk_version)"
[ "$sdk" = "$(leg_value sdk)" ] || fail "the Pulumi CLI of leg $UO_LEG" "leg $UO_LEG (scripts/legs.json) is tested with @pulumi/pulumi $(leg_value sdk), node_modules has $sdk" \
  "run 'npm ci' (the lts leg), or 'npm run test:leg -- oldest' for the oldest leg; keep scripts/legs.json and package.json in step"
version="$(leg_value cli)"
final="$UO_CACHE/pulumi/v$version"
shim="$UO_ROOT/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"

if command -v pulumi >/dev/null && [ "$(pulumi version 2>/dev/null)" = "v$version" ] \
   && command -v pulumi-language-nodejs >/dev/null; then
  step "pulumi: v$version on PATH ($(command -v pulumi))"
  exit 0
fi
if [ -x "$final/bin/pulumi" ] && [ -x "$final/bin/pulumi-language-nodejs" ] && [ -f "$final/bin/.complete" ]; then
  cp -f "$shim" "$final/bin/pulumi-resource-pulumi-nodejs"   # the shim follows the npm package
  step "pulumi: v$version from the cache ($final/bin)"
  exit 0
fi

command -v go >/dev/null || fail "pulumi v$version" "pulumi on PATH (absent or another version); building it needs Go (not found)" \
  "put pulumi v$version and pulumi-language-nodejs on PATH, or install Go >= 1.25"
mkdir -p "$UO_CACHE/pulumi"
work="$(mktemp -d "$UO_CACHE/pulumi/.build-v$version.XXXXXX")"
# never leave a half-built toolchain behind (the language host builds in the background: waited for)
trap 'wait; rm -rf "$work"' EXIT
mkdir -p "$work/bin"
started=$(date +%s)
# The checksum database is not reachable from every network we run on; the proxy's TLS is what
# authenticates the modules then. go.sum of the upstream module is reused where there is one.
export GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local
# Upstream's release flags (pulumi/pulumi .goreleaser.yml: -trimpath, -ldflags "-w -s", the osusergo
# tag for a pure-Go os/user), and two of ours that only save build time: no cgo (no gcc run; a
# static binary with Go's own DNS resolver) and no DWARF from the compiler, which -w drops anyway.
export CGO_ENABLED=0
goflags=(-trimpath -gcflags=all=-dwarf=false)
proxy="$(go env GOPROXY)"; proxy="${proxy%%,*}"; [ "$proxy" != off ] && [ "$proxy" != direct ] || proxy=https://proxy.golang.org

# The language host. Upstream it is its own untagged module; the proxy needs the pseudo-version
# of the CLI's release commit. Where the proxy refuses that module (it answers 403 here), fall back
# to the last release that shipped the host inside sdk/v3 (v3.68.0): it speaks the same
# LanguageRuntime protocol (newer RPCs such as Handshake and GetRequiredPackages fall back to
# their older forms in the engine), which the integration tests exercise.
# It builds beside the CLI: its downloads and its smaller compile fill the CPU the CLI's download
# and single-threaded link leave idle.
host="$work/host"; mkdir -p "$host"
# The commit of the release tag: from the proxy's .info when it carries its origin, else from
# scripts/pulumi-release-commits.txt (the tag's commit, read off github.com/pulumi/pulumi).
info="$(curl -fsS "$proxy/github.com/pulumi/pulumi/pkg/v3/@v/v$version.info" 2>/dev/null || true)"
known="$(awk -v v="$version" '$1==v {print $2}' "$UO_ROOT/scripts/pulumi-release-commits.txt")"
pseudo="$(printf '%s' "$info" | KNOWN="$known" node -e '
  let s=""; process.stdin.on("data",d=>s+=d).on("end",()=>{ try { const i=JSON.parse(s);
    const hash=(i.Origin && i.Origin.Hash) || process.env.KNOWN; if (!hash) return;
    const t=i.Time.replace(/[-:T]/g,"").slice(0,14); console.log(`v3.0.0-${t}-${hash.slice(0,12)}`);
  } catch { } })')"
build_host() { # <module> <version> <package>
  cat > "$host/go.mod" <<MOD
module local/pulumi-language-nodejs-build

go 1.25

require $1 $2
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$3" > "$host/tools.go"
  (cd "$host" && go mod download "$1@$2" && go build "${goflags[@]}" -ldflags "-s -w" -o "$work/bin/pulumi-language-nodejs" "$3")
}
hostmod=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
language_host() {
  : > "$work/host.err"
  if [ -n "$pseudo" ] && build_host "$hostmod" "$pseudo" "$hostmod" 2>"$work/host.err"; then
    echo "$hostmod@$pseudo" > "$work/bin/.language-host-source"
  else
    step "pulumi: language host $hostmod@${pseudo:-?} not available from the proxy ($(grep -m1 -oE '[0-9]{3} [A-Za-z ]+' "$work/host.err" || echo 'no pseudo-version known')); using sdk/v3@v3.68.0"
    build_host github.com/pulumi/pulumi/sdk/v3 v3.68.0 github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
      || fail "pulumi-language-nodejs" "$hostmod@${pseudo:-<no pseudo-version>} and sdk/v3@v3.68.0 via $proxy" \
           "put pulumi-language-nodejs (from the Pulumi v$version release) on PATH beside pulumi"
    echo "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs@v3.68.0" > "$work/bin/.language-host-source"
  fi
  step "pulumi: language host built ($(cat "$work/bin/.language-host-source"))"
}
language_host & host_pid=$!

step "pulumi: building CLI v$version from the Go module proxy (a cold build takes minutes)"
cli="$work/cli"; mkdir -p "$cli"
cat > "$cli/go.mod" <<MOD
module local/pulumi-cli-build

go 1.25

require (
	github.com/pulumi/pulumi/pkg/v3 v$version
	github.com/pulumi/pulumi/sdk/v3 v$version
)
MOD
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > "$cli/tools.go"
(cd "$cli" && go mod download "github.com/pulumi/pulumi/pkg/v3@v$version") \
  || fail "pulumi v$version" "go mod download github.com/pulumi/pulumi/pkg/v3@v$version via $proxy" \
       "check GOPROXY, or put pulumi v$version on PATH"
pkgdir="$(cd "$cli" && go list -m -f '{{.Dir}}' "github.com/pulumi/pulumi/pkg/v3")"
cp "$pkgdir/go.sum" "$cli/go.sum"; chmod u+w "$cli/go.sum"
# pkg/v3's own replace directives (they do not apply to a module that requires it), less the ones
# to local paths of its repository; `go mod edit -json` reads them without parsing go.mod by hand.
go mod edit -json "$pkgdir/go.mod" | node -e '
  let s=""; process.stdin.on("data",d=>s+=d).on("end",()=>{ for (const r of JSON.parse(s).Replace ?? [])
    if (r.New.Version) console.log(`-replace=${r.Old.Path}${r.Old.Version ? "@"+r.Old.Version : ""}=${r.New.Path}@${r.New.Version}`); })' \
  | while read -r flag; do (cd "$cli" && go mod edit "$flag"); done
(cd "$cli" && go build "${goflags[@]}" \
   -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
   -o "$work/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) \
  || fail "pulumi v$version" "go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" "see the Go errors above, or put pulumi v$version on PATH"
[ "$("$work/bin/pulumi" version)" = "v$version" ] || fail "pulumi v$version" "the built CLI reports $("$work/bin/pulumi" version)" "report this"
step "pulumi: CLI built in $(( $(date +%s) - started ))s"
wait "$host_pid" || fail "pulumi-language-nodejs" "its build beside the CLI (see above)" "put pulumi-language-nodejs on PATH beside pulumi"
cp -f "$shim" "$work/bin/pulumi-resource-pulumi-nodejs"
touch "$work/bin/.complete"
rm -rf "$final"; mkdir -p "$final"
mv "$work/bin" "$final/bin"   # same filesystem: the finished toolchain appears at once
step "pulumi: v$version ready in $final/bin ($(( $(date +%s) - started ))s)"
