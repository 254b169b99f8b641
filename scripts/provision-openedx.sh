#!/usr/bin/env bash
# The Open edX fixture hosts' Python environment (Django, supervisor, PyMySQL from PyPI), its own
# venv keyed by a hash of test/fixtures/openedx/requirements.txt, built in a temp dir and moved
# into place, so other kinds' venvs are never rebuilt for it. test/sandbox/openedx.ts uses the same path.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

req="$UO_ROOT/test/fixtures/openedx/requirements.txt"
hash="$(sha256sum "$req" | cut -c1-12)"
dir="$UO_CACHE/openedx-venv-$hash"
if [ -f "$dir/.complete" ]; then
  step "openedx venv: present ($dir)"
  exit 0
fi
step "openedx venv: building $dir"
mkdir -p "$UO_CACHE"
tmp="$(mktemp -d "$dir.build-XXXXXX")"
python3 -m venv "$tmp"
"$tmp/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" \
  || fail "the openedx venv" "pip install -r $req" "check PyPI access"
touch "$tmp/.complete"
mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
step "openedx venv: ready"
