#!/usr/bin/env bash
# The Debian packages the test bed uses, in one apt transaction:
#   demo: OpenSSH (server and client)
#   all:  also PostgreSQL (Backend.AI, Utilitarian), MariaDB (Open edX), and the Utilitarian bed's
#         podman + runc (container engine), debootstrap (fixture rootfs), rabbitmq-server (broker),
#         docker-registry (a local OCI registry on loopback)
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
profile="${1:-all}"

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null && command -v ssh >/dev/null || missing+=(openssh-client)
if [ "$profile" = all ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  { [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null; } || missing+=(mariadb-server mariadb-client)
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
fi

if [ ${#missing[@]} -eq 0 ]; then
  step "system packages: present"
  exit 0
fi
step "system packages: installing ${missing[*]}"
command -v apt-get >/dev/null || fail "${missing[*]}" "apt-get (not found: not a Debian system?)" \
  "install ${missing[*]} with your package manager"
# Keep the packages' services from starting: the test bed runs its own sshd, PostgreSQL, MariaDB,
# broker and registry on free loopback ports; a system daemon on their usual ports is not wanted.
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
