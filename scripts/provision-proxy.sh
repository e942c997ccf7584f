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

"$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" provision-proxy "${packages[@]}"

if [[ ! -x /usr/sbin/nginx || ! -f "$module" ]]; then
  echo "provision-proxy: installed, but /usr/sbin/nginx or $module is missing" >&2
  exit 1
fi
