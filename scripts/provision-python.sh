#!/usr/bin/env bash
# Python tools in a virtualenv in the cache; rebuilt when scripts/requirements.txt changes.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

req="$UO_ROOT/scripts/requirements.txt"
venv="$UO_CACHE/venv"
want="$(sha256sum "$req" | cut -c1-16)"
stamp="$venv/.requirements-$want"
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
if [ -f "$stamp" ] && [ -x "$venv/bin/moto_server" ]; then
  step "python tools: present ($("$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'))"
  backendai_wheels
  exit 0
fi
python="$(command -v python3 || true)"
[ -n "$python" ] || fail "Python 3" "python3 on PATH" "install python3 (>= 3.9) with venv support"
step "python tools: creating $venv with $($python --version)"
# A venv cannot be moved once built, so a half-built one is detected by its missing stamp
# and removed before the next attempt.
rm -rf "$venv"
"$python" -m venv "$venv" || fail "a Python virtualenv" "$python -m venv $venv" "install python3-venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req" \
  || { rm -rf "$venv"; fail "moto[server]" "pip install -r scripts/requirements.txt from PyPI" \
         "check that PyPI is reachable (pip config list), then rerun 'npm run provision'"; }
touch "$stamp"
step "python tools: installed ($("$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'))"
backendai_wheels
