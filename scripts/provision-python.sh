#!/usr/bin/env bash
# Python tools in a virtualenv in the cache; rebuilt when scripts/requirements.txt changes.
#   provision-python.sh demo   moto[server] only (the demo's AWS), its line of requirements.txt
#   provision-python.sh [all]  every line, and the Backend.AI bed's Python 3.12 wheels
# A demo venv is completed in place by a later `all` (pip adds what is missing).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

profile="${1:-all}"
req="$UO_ROOT/scripts/requirements.txt"
venv="$UO_CACHE/venv"
want="$(sha256sum "$req" | cut -c1-16)"
stamp="$venv/.requirements-$want"        # every line installed
demo_stamp="$venv/.demo-$want"            # the moto line installed
# Backend.AI bed: the wheels a new environment of the second interpreter (3.12: the fixture's
# 24.03 line moves to it, as PyPI's does) installs from the bed's index; cached by requirements.
backendai_wheels() {
  local wheels="$UO_CACHE/backendai-py3.12-wheels-$want"
  [ -f "$wheels/.complete" ] && return 0
  rm -rf "$UO_CACHE"/backendai-py3.12-wheels-*; mkdir -p "$wheels"
  local reqs; mapfile -t reqs < <(grep -E '^(alembic|SQLAlchemy|psycopg)' "$req")
  "$venv/bin/pip" download -q --disable-pip-version-check --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d "$wheels" \
      "${reqs[@]}" \
    || { rm -rf "$wheels"; fail "the Backend.AI bed's Python 3.12 wheels" "pip download for Python 3.12 from PyPI" "check that PyPI is reachable"; }
  touch "$wheels/.complete"
  step "python tools: Backend.AI wheels for Python 3.12 in $wheels"
}
moto_version() { "$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'; }
if [ -x "$venv/bin/moto_server" ] && { [ -f "$stamp" ] || { [ "$profile" = demo ] && [ -f "$demo_stamp" ]; }; }; then
  step "python tools: present ($(moto_version))"
  [ "$profile" = demo ] || backendai_wheels
  exit 0
fi
python="$(command -v python3 || true)"
[ -n "$python" ] || fail "Python 3" "python3 on PATH" "install python3 (>= 3.9) with venv support"
# A venv cannot be moved once built, so a half-built one is detected by its missing stamps and
# removed before the next attempt; a whole demo venv of these requirements is completed in place.
if [ ! -f "$demo_stamp" ] || [ ! -x "$venv/bin/moto_server" ]; then
  step "python tools: creating $venv with $($python --version)"
  rm -rf "$venv"
  "$python" -m venv "$venv" || fail "a Python virtualenv" "$python -m venv $venv" "install python3-venv"
fi
if [ "$profile" = demo ]; then
  mapfile -t reqs < <(grep -E '^moto' "$req")
  [ "${#reqs[@]}" -eq 1 ] || fail "moto[server]" "the moto line of scripts/requirements.txt (found ${#reqs[@]})" "keep one 'moto[server]...' line in it"
  args=("${reqs[@]}")
else
  args=(-r "$req")
fi
"$venv/bin/pip" install -q --disable-pip-version-check "${args[@]}" \
  || { rm -rf "$venv"; fail "moto[server]" "pip install ${args[*]} from PyPI" \
         "check that PyPI is reachable (pip config list), then rerun 'npm run provision'"; }
if [ "$profile" = demo ]; then
  touch "$demo_stamp"
  step "python tools: installed for the demo ($(moto_version))"
else
  touch "$demo_stamp" "$stamp"
  step "python tools: installed ($(moto_version))"
  backendai_wheels
fi
