#!/usr/bin/env bash
# Installs the PostgreSQL server the PostgreSQL-store tests start: Debian's
# `postgresql` package (initdb, pg_ctl, postgres under
# /usr/lib/postgresql/*/bin). The tests run a throw-away cluster of their
# own (initdb in a temporary directory, loopback only, a free port, stopped
# at the end); the package's system-wide cluster is never started.
#
# Idempotent: nothing is done when initdb and pg_ctl are already under
# /usr/lib/postgresql/*/bin. `apt-get update` runs only when the package
# has no install candidate. Needs root (CI runs as root); as another user it
# uses `sudo -n` when that works, and otherwise says what to run and fails.
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

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "provision-postgres: PostgreSQL is missing and this is not root;" >&2
    echo "provision-postgres: run as root: apt-get update && apt-get install -y postgresql" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "provision-postgres: no apt-get; install PostgreSQL (initdb and pg_ctl under /usr/lib/postgresql/VERSION/bin) yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if apt-cache policy postgresql | grep -q 'Candidate: (none)'; then
  echo "provision-postgres: apt-get update" >&2
  "${sudo[@]}" apt-get update -qq
fi

# Keep the package's maintainer scripts from starting the system cluster.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [[ "$made_policy" == 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "provision-postgres: apt-get install postgresql" >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null

if ! have; then
  echo "provision-postgres: installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
