#!/usr/bin/env bash
# Debian packages the test bed uses: OpenSSH (server and client), PostgreSQL, MariaDB (Open edX).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null && command -v ssh >/dev/null || missing+=(openssh-client)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
{ [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null; } || missing+=(mariadb-server mariadb-client)

if [ ${#missing[@]} -eq 0 ]; then
  step "system packages: present (sshd, ssh, PostgreSQL, MariaDB)"
  exit 0
fi
step "system packages: installing ${missing[*]}"
command -v apt-get >/dev/null || fail "${missing[*]}" "apt-get (not found: not a Debian system?)" \
  "install ${missing[*]} with your package manager"
# Keep the packages' services from starting: the test bed runs its own sshd and PostgreSQL
# on free loopback ports; a system daemon on :22 or :5432 is not wanted.
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && added_policy=1
fi
cleanup() { [ -z "$added_policy" ] || as_root rm -f "$policy"; }
trap cleanup EXIT
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
  && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || fail "${missing[*]}" "apt-get install as root (or sudo -n)" \
       "run: sudo apt-get install -y ${missing[*]}"
step "system packages: installed ${missing[*]}"
