#!/usr/bin/env bash
# Bounded loopback load test. Starts a release server on 127.0.0.1 with a
# throw-away data directory, registers the travel catalog, then measures:
#   1. POST /v1/intents: one client (latency) with a 21-token one-action
#      request, the 20-token two-action headline request (one model
#      pass: its clauses are pooled from the request's per-token outputs),
#      a 59-word five-sentence request with a greeting, background and a
#      condition, and the 21-token request against a 300-tool catalog (the
#      travel tools plus 285 real MCP tools, fixtures/load/catalog_300.json),
#      then 16 concurrent clients with the one-action request (throughput);
#   2. POST /v1/workflows/{id}/steps with 32 concurrent clients, one
#      workflow each (durable, group-committed steps);
#   3. POST /access/v1/evaluation (AuthZEN, MCP tools/call in a workflow,
#      with the 100-policy set of fixtures/authzen/bench), open loop at a
#      fixed rate (default 2,000 req/s), latency from each scheduled start;
#   4. raw sled insert+flush on the same disk, for the ratio.
# Every loop is bounded by a request count and a time limit; only loopback
# addresses are used.
# Usage: scripts/load.sh [intent_requests] [step_requests] [evaluation_rate]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
INTENTS="${1:-3000}"
STEPS="${2:-40000}"
RATE="${3:-2000}"
scripts/provision-ort.sh
cargo build --release --locked --bin telos --example loadgen --example sled_raw >&2
data="$(mktemp -d)"; work="$(mktemp -d)"
log="$work/server.log"
target/release/telos serve --addr 127.0.0.1:0 --data-dir "$data" --policies fixtures/authzen/bench 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$work"' EXIT
for _ in $(seq 1 600); do
  addr=$(grep -o 'addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && curl -sf "http://$addr/readyz" >/dev/null && break
  sleep 0.1
done
base="http://$addr"
# Opens a workflow from the load intent and prints its id.
new_workflow() {
  curl -sf -H 'content-type: application/json' --data @fixtures/load/intent.json "$base/v1/workflows" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["workflow_id"])'
}
curl -sf -X PUT -H 'content-type: application/json' --data @fixtures/intents/travel/catalog.json "$base/v1/catalogs/travel" >/dev/null
curl -sf -X PUT -H 'content-type: application/json' --data @fixtures/load/catalog_300.json "$base/v1/catalogs/travel300" >/dev/null
for body in intent_20_tokens intent_two_actions intent_60_words intent_20_tokens_300_tools; do
  echo "== POST /v1/intents, 1 client, 500 requests ($body)"
  target/release/examples/loadgen --url "$base/v1/intents" --body "fixtures/load/$body.json" \
    --concurrency 1 --requests 500 --max-seconds 60
done
echo "== POST /v1/intents, 16 clients, $INTENTS requests (intent_20_tokens)"
target/release/examples/loadgen --url "$base/v1/intents" --body fixtures/load/intent_20_tokens.json \
  --concurrency 16 --requests "$INTENTS" --max-seconds 120
: > "$work/urls"
for i in $(seq 1 32); do
  id=$(new_workflow)
  echo "$base/v1/workflows/$id/steps" >> "$work/urls"
done
echo "== POST /v1/workflows/{id}/steps, 32 clients (one workflow each), $STEPS requests"
target/release/examples/loadgen --url-file "$work/urls" --body fixtures/load/step.json \
  --concurrency 32 --requests "$STEPS" --max-seconds 120
wf=$(new_workflow)
sed "s/WORKFLOW_ID/$wf/" fixtures/load/evaluation.json > "$work/evaluation.json"
decision=$(curl -sf -H 'content-type: application/json' --data @"$work/evaluation.json" "$base/access/v1/evaluation")
echo "== POST /access/v1/evaluation, open loop at $RATE req/s for 20 s (decision: $decision)"
target/release/examples/loadgen --url "$base/access/v1/evaluation" --body "$work/evaluation.json" \
  --rate "$RATE" --concurrency 256 --requests $((RATE * 20)) --max-seconds 25
kill $pid; wait $pid 2>/dev/null || true
echo "== raw sled on the same disk"
target/release/examples/sled_raw 2000
