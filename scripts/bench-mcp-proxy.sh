#!/usr/bin/env bash
# Release measurement of `telos mcp-proxy`'s overhead on an allowed
# `tools/call`: starts a release `telos serve` on a loopback port with a
# throw-away data directory (the committed model), then runs
# tests/integration/mcp/overhead.py ROUNDS times. Each round times N calls of
# `mcp-server-time`'s `get_current_time` with the official MCP Python SDK's
# stdio client, directly and through `telos mcp-proxy --telos URL --prompt
# ...` (which opens the workflow; every call is asked to the PDP first and
# reported after), after 20 warm-up calls each. Prints each round's JSON,
# then the medians over rounds of p50 direct, p50 proxied, added p50 and
# the p50 ratio.
# Usage: scripts/bench-mcp-proxy.sh [calls_per_round] [rounds]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N="${1:-300}"
ROUNDS="${2:-5}"
scripts/provision-ort.sh
scripts/provision-mcp-e2e.sh >&2
cargo build --release --locked --bin telos >&2
data="$(mktemp -d)"; work="$(mktemp -d)"
log="$work/server.log"
target/release/telos serve --addr 127.0.0.1:0 --data-dir "$data" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$work"' EXIT
addr=""
for _ in $(seq 1 600); do
  addr=$(grep -o 'addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && curl -sf "http://$addr/readyz" >/dev/null && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "bench-mcp-proxy: the server did not start" >&2; cat "$log" >&2; exit 1; }
server="$PWD/.mcp/py/mcp-server-time/bin/mcp-server-time"
direct=$(printf '["%s", "--local-timezone", "UTC"]' "$server")
proxied=$(printf '["%s", "mcp-proxy", "--telos", "http://%s", "--catalog", "time", "--prompt", "What time is it in Paris?", "--subject", "user:ana", "--", "%s", "--local-timezone", "UTC"]' \
  "$PWD/target/release/telos" "$addr" "$server")
for r in $(seq 1 "$ROUNDS"); do
  .mcp/venv/bin/python tests/integration/mcp/overhead.py "$N" "$direct" "$proxied" | tee -a "$work/rounds"
done
python3 - "$work/rounds" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: round(statistics.median(xs), 3)
print(json.dumps({
    "rounds": len(rows),
    "direct_p50_ms": med([r["direct"]["p50_ms"] for r in rows]),
    "proxied_p50_ms": med([r["proxied"]["p50_ms"] for r in rows]),
    "added_p50_ms": med([r["added_p50_ms"] for r in rows]),
    "ratio_p50": med([r["ratio_p50"] for r in rows]),
}))
PY
