#!/usr/bin/env bash
# Installs what the MCP proxy's end-to-end tests need, in the layout of
# scripts/provision-mcp.sh and with its exact pins:
#
#   .mcp/venv                  the official MCP Python SDK (the scripted client),
#                              from scripts/mcp/client-requirements.txt
#   .mcp/py/mcp-server-git/    mcp-server-git, from scripts/mcp/python-servers.txt
#   .mcp/py/mcp-server-time/   mcp-server-time, likewise
#                              (each pinned by scripts/mcp/locks/<name>.txt)
#   .mcp/npm/                  @modelcontextprotocol/server-filesystem and
#                              server-memory from npm, pinned by
#                              scripts/mcp/e2e-npm/package.json and its lock
#                              (`npm ci --prefix .mcp/npm`); skipped with a
#                              message when npm is not installed
#
# Idempotent: a part whose stamp matches the hash of its pins is skipped (the
# stamps are the ones scripts/provision-mcp.sh writes, so either script may
# install a part and the other reuses it). A second run takes well under a
# second. Environment: PYTHON (default python3, >= 3.10), MCP_DIR (default .mcp).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="$root/scripts/mcp"
dir="${MCP_DIR:-$root/.mcp}"
python="${PYTHON:-python3}"
servers=(mcp-server-git mcp-server-time)

mkdir -p "$dir/py"
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
server_hash() {
  { echo "$1"; [[ -f "$2" ]] && cat "$2"; } | sha256sum | cut -d' ' -f1
}

want="$(hash_of "$spec/client-requirements.txt")"
if [[ ! -f "$dir/venv/.stamp" || "$(cat "$dir/venv/.stamp")" != "$want" ]]; then
  echo "provision-mcp-e2e: installing $dir/venv" >&2
  rm -rf "$dir/venv"
  "$python" -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check -r "$spec/client-requirements.txt"
  echo "$want" >"$dir/venv/.stamp"
fi
uv="$dir/venv/bin/uv"
python_exe="$("$python" -c 'import sys; print(sys.executable)')"
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

for name in "${servers[@]}"; do
  req="$(awk -v n="$name" '$1 == n { $1 = ""; sub(/^ /, ""); print; exit }' "$spec/python-servers.txt")"
  [[ -n "$req" ]] || { echo "provision-mcp-e2e: $name is not in python-servers.txt" >&2; exit 1; }
  lock="$spec/locks/$name.txt"
  venv="$dir/py/$name"
  stamp="$(server_hash "$req" "$lock")"
  if [[ -f "$venv/.stamp" && "$(cat "$venv/.stamp")" == "$stamp" ]]; then
    continue
  fi
  echo "provision-mcp-e2e: installing $venv" >&2
  rm -rf "$venv"
  read -r -a args <<<"$req"
  [[ -f "$lock" ]] && args+=(-c "$lock")
  "$uv" venv --quiet --python "$python_exe" "$venv" </dev/null
  "$uv" pip install --quiet --python "$venv/bin/python" "${args[@]}" </dev/null
  echo "$stamp" >"$venv/.stamp"
done

npm_spec="$spec/e2e-npm"
npm_dir="$dir/npm"
want="$(hash_of "$npm_spec/package.json" "$npm_spec/package-lock.json")"
if [[ ! -f "$npm_dir/.stamp" || "$(cat "$npm_dir/.stamp")" != "$want" ]]; then
  if command -v npm >/dev/null; then
    echo "provision-mcp-e2e: installing $npm_dir" >&2
    rm -rf "$npm_dir"
    mkdir -p "$npm_dir"
    cp "$npm_spec/package.json" "$npm_spec/package-lock.json" "$npm_dir/"
    npm ci --prefix "$npm_dir" --no-audit --no-fund --loglevel=error </dev/null
    echo "$want" >"$npm_dir/.stamp"
  else
    echo "provision-mcp-e2e: npm is not installed; the npm servers are not" >&2
  fi
fi
