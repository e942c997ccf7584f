#!/usr/bin/env bash
# Installs Debian packages for a provisioning script: the one place that
# knows how (root or `sudo -n`, `apt-get update` only when a package has
# no install candidate, no recommends, and a policy-rc.d guard so a
# package's maintainer scripts start no system-wide service: the tests
# start their own servers on loopback ports).
#
# Usage: scripts/apt-install.sh [--recommends] WHO PACKAGE...
#   WHO prefixes every message (the calling script's name); --recommends
#   also installs the packages' recommended packages (a browser's fonts).
# Exit status 1, with the apt-get line to run, when this is not root and
# `sudo -n` does not work, or when there is no apt-get.
set -euo pipefail
recommends=(--no-install-recommends)
if [[ "${1:-}" == --recommends ]]; then
  recommends=()
  shift
fi
who="$1"
shift
packages=("$@")

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "$who: ${packages[*]} missing and this is not root;" >&2
    echo "$who: run as root: apt-get update && apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$who: no apt-get; install the Debian packages ${packages[*]} (or their equivalents) yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
policy_of=$(apt-cache policy "${packages[@]}" 2>/dev/null || true)
candidates=$(grep -c 'Candidate: ' <<<"$policy_of" || true)
if grep -q 'Candidate: (none)' <<<"$policy_of" || [[ "$candidates" -lt "${#packages[@]}" ]]; then
  echo "$who: apt-get update" >&2
  "${sudo[@]}" apt-get update -qq
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [[ "$made_policy" == 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "$who: apt-get install ${packages[*]}" >&2
"${sudo[@]}" apt-get install -y -qq "${recommends[@]}" "${packages[@]}" >/dev/null
