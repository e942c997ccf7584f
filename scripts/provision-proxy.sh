#!/usr/bin/env bash
# Installs the reverse proxy the forward-auth end-to-end test puts in front
# of an MCP server: nginx and its njs module, from the Debian packages
# `nginx` and `libnginx-mod-http-js` (njs reads the JSON-RPC body and sends
# it to telos in the auth subrequest; plain `auth_request` carries no body).
#
# Idempotent: nothing is done when /usr/sbin/nginx and the njs module are
# present. `apt-get update` runs only when the packages have no install
# candidate. The packages' service is not started (a policy-rc.d refuses it
# during the install): the test starts its own nginx on a loopback port with
# a config in a temporary directory.
#
# Needs root (CI runs as root); as another user it uses `sudo -n` when that
# works, and otherwise says what to run and fails.
set -euo pipefail

packages=(nginx libnginx-mod-http-js)
module=/usr/lib/nginx/modules/ngx_http_js_module.so

if [[ -x /usr/sbin/nginx && -f "$module" ]]; then
  exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "provision-proxy: nginx and its njs module are missing and this is not root;" >&2
    echo "provision-proxy: run as root: apt-get update && apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "provision-proxy: no apt-get; install nginx (>= 1.22) with the njs module (ngx_http_js_module) yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if apt-cache policy "${packages[@]}" | grep -q 'Candidate: (none)'; then
  echo "provision-proxy: apt-get update" >&2
  "${sudo[@]}" apt-get update -qq
fi

# Keep the package's maintainer scripts from starting a system-wide nginx.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  made_policy=1
fi
cleanup() { if [[ "$made_policy" == 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "provision-proxy: apt-get install ${packages[*]}" >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

if [[ ! -x /usr/sbin/nginx || ! -f "$module" ]]; then
  echo "provision-proxy: installed, but /usr/sbin/nginx or $module is missing" >&2
  exit 1
fi
