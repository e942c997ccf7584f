#!/usr/bin/env bash
# Installs the MCP Python SDK and real MCP servers from PyPI and npm into .mcp/:
#
#   .mcp/venv          the official MCP Python SDK (stdio client), from
#                      scripts/mcp/client-requirements.txt
#   .mcp/py/<name>/    one venv per PyPI server, from scripts/mcp/python-servers.txt
#                      (servers pin incompatible SDK majors, so they cannot share one)
#   .mcp/node/         the npm servers of scripts/mcp/package.json (+ package-lock.json)
#
# Every version is exact. Idempotent: each part is skipped when the stamp beside
# it matches the hash of the files it was installed from, so a second run takes
# about a second. Usage: scripts/provision-mcp.sh [--python-only|--node-only]
#
# Environment: PYTHON (default python3, must be >= 3.10), MCP_DIR (default .mcp).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="$root/scripts/mcp"
dir="${MCP_DIR:-$root/.mcp}"
python="${PYTHON:-python3}"
want_py=1
want_node=1
case "${1:-}" in
  --python-only) want_node=0 ;;
  --node-only) want_py=0 ;;
  "") ;;
  *) echo "usage: $0 [--python-only|--node-only]" >&2; exit 2 ;;
esac

mkdir -p "$dir/py"
status=0

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
# server_hash REQ LOCK: the stamp of one server venv (its requirement and lock).
server_hash() {
  { echo "$1"; [[ -f "$2" ]] && cat "$2"; } | sha256sum | cut -d' ' -f1
}

# make_venv DIR STAMP_HASH PIP_ARGS... : (re)creates DIR with uv unless its stamp matches.
make_venv() {
  local venv="$1" want="$2"; shift 2
  if [[ -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$want" ]]; then
    return 0
  fi
  echo "provision-mcp: installing $venv" >&2
  rm -rf "$venv"
  # (set -e does not apply inside a function called as an if condition.)
  "$uv" venv --quiet --python "$python_exe" "$venv" </dev/null || return 1
  "$uv" pip install --quiet --python "$venv/bin/python" "$@" </dev/null || return 1
  echo "$want" >"$venv/.stamp"
}

if [[ $want_py == 1 ]]; then
  # The SDK venv is made with pip; it also holds uv, which makes the server venvs.
  want="$(hash_of "$spec/client-requirements.txt")"
  if [[ ! -f "$dir/venv/.stamp" || "$(cat "$dir/venv/.stamp")" != "$want" ]]; then
    echo "provision-mcp: installing $dir/venv" >&2
    rm -rf "$dir/venv"
    "$python" -m venv "$dir/venv"
    "$dir/venv/bin/pip" install --quiet --disable-pip-version-check -r "$spec/client-requirements.txt"
    echo "$want" >"$dir/venv/.stamp"
  fi
  uv="$dir/venv/bin/uv"
  python_exe="$("$python" -c 'import sys; print(sys.executable)')"
  export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

  failed=()
  while read -r name req; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    lock="$spec/locks/$name.txt"
    read -r -a args <<<"$req"
    [[ -f "$lock" ]] && args+=(-c "$lock")
    if ! make_venv "$dir/py/$name" "$(server_hash "$req" "$lock")" "${args[@]}"; then
      failed+=("$name")
      rm -rf "$dir/py/$name"
      continue
    fi
    if [[ ! -f "$lock" ]]; then
      mkdir -p "$spec/locks"
      "$uv" pip freeze --quiet --python "$dir/py/$name/bin/python" >"$lock"
      # The lock is now part of the stamp's input.
      server_hash "$req" "$lock" >"$dir/py/$name/.stamp"
    fi
  done <"$spec/python-servers.txt"
  if ((${#failed[@]})); then
    echo "provision-mcp: could not install: ${failed[*]}" >&2
    status=1
  fi
fi

if [[ $want_node == 1 ]]; then
  node_dir="$dir/node"
  want="$(hash_of "$spec/package.json" "$spec/package-lock.json" 2>/dev/null || hash_of "$spec/package.json")"
  if [[ ! -f "$node_dir/.stamp" || "$(cat "$node_dir/.stamp")" != "$want" ]]; then
    echo "provision-mcp: installing npm servers into $node_dir" >&2
    mkdir -p "$node_dir"
    cp "$spec/package.json" "$node_dir/package.json"
    if [[ -f "$spec/package-lock.json" ]]; then
      cp "$spec/package-lock.json" "$node_dir/package-lock.json"
      cmd=ci
    else
      cmd=install
    fi
    # Browsers are not fetched: tools/list needs none, and no download host is reachable.
    PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1 \
      PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm "$cmd" --prefix "$node_dir" --no-audit --no-fund --loglevel=error
    if [[ ! -f "$spec/package-lock.json" ]]; then
      cp "$node_dir/package-lock.json" "$spec/package-lock.json"
    fi
    hash_of "$spec/package.json" "$spec/package-lock.json" >"$node_dir/.stamp"
  fi
fi
exit "$status"
