#!/usr/bin/env bash
# Python tools in a virtualenv in the cache; rebuilt when scripts/requirements.txt changes.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

req="$UO_ROOT/scripts/requirements.txt"
venv="$UO_CACHE/venv"
want="$(sha256sum "$req" | cut -c1-16)"
stamp="$venv/.requirements-$want"
if [ -f "$stamp" ] && [ -x "$venv/bin/moto_server" ]; then
  step "python tools: present ($("$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'))"
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
