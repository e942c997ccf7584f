#!/usr/bin/env bash
# Installs what the web app's browser test drives: Chromium from the Debian
# package `chromium` (/usr/bin/chromium) and Playwright for Python from
# PyPI (pinned below) in .browser/venv. Playwright is only the driver: it
# launches /usr/bin/chromium (executable_path) and never downloads a
# browser of its own.
#
# Idempotent: apt-get runs only when /usr/bin/chromium is missing (and
# `apt-get update` only when the package has no install candidate); pip
# runs only when the venv's stamp differs from the pin. A second run takes
# well under a second. Needs root for apt-get (CI runs as root); as another
# user it uses `sudo -n` when that works, else says what to run and fails.
# Environment: PYTHON (default python3), BROWSER_DIR (default .browser).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${BROWSER_DIR:-$root/.browser}"
python="${PYTHON:-python3}"
pin="playwright==1.65.3"

if [[ ! -x /usr/bin/chromium ]]; then
  "$root/scripts/apt-install.sh" --recommends provision-browser chromium
  [[ -x /usr/bin/chromium ]] || { echo "provision-browser: installed, but /usr/bin/chromium is missing" >&2; exit 1; }
fi

if [[ ! -f "$dir/venv/.stamp" || "$(cat "$dir/venv/.stamp")" != "$pin" ]]; then
  echo "provision-browser: installing $pin in $dir/venv" >&2
  rm -rf "$dir/venv"
  mkdir -p "$dir"
  "$python" -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "$pin"
  echo "$pin" >"$dir/venv/.stamp"
fi
