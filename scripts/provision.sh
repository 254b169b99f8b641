#!/usr/bin/env bash
# Provisions everything `npm test` and `npm run demo` need that npm does not install:
# Debian packages (OpenSSH, PostgreSQL), the Python tools (moto server) in a virtualenv, and for
# the leg (scripts/legs.json; UO_LEG, default lts) its Node.js and the Pulumi CLI + Node.js
# language host matching the @pulumi/pulumi SDK in node_modules.
# Idempotent: each part checks what is already there and only does what is missing.
# Everything lands in a cache outside the checkout (see scripts/lib.sh), reused across runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

step "toolchain cache: $UO_CACHE (leg $UO_LEG)"
bash "$here/provision-system.sh"
bash "$here/provision-python.sh"
bash "$here/provision-node.sh"
bash "$here/provision-pulumi.sh"
bash "$here/provision-openedx.sh"
bash "$here/provision-utilitarian.sh"
step "toolchain ready"
