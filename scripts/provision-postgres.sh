#!/usr/bin/env bash
# Installs the PostgreSQL server the PostgreSQL-store tests start: Debian's
# `postgresql` package (initdb, pg_ctl, postgres under
# /usr/lib/postgresql/*/bin). The tests run a throw-away cluster of their
# own (initdb in a temporary directory, loopback only, a free port, stopped
# at the end); the package's system-wide cluster is never started.
#
# Idempotent: nothing is done when initdb and pg_ctl are already under
# /usr/lib/postgresql/*/bin. `apt-get update` runs only when the package
# has no install candidate (scripts/apt-install.sh). Needs root (CI runs as
# root); as another user it uses `sudo -n` when that works, and otherwise
# says what to run and fails.
set -euo pipefail

have() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
      return 0
    fi
  done
  return 1
}

if have; then
  exit 0
fi

"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" provision-postgres postgresql

if ! have; then
  echo "provision-postgres: installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
