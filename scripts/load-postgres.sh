#!/usr/bin/env bash
# Durable steps/s over HTTP: one sled replica against 1, 2 and 3 replicas on
# one PostgreSQL, in the same run, on loopback. Starts a throw-away
# PostgreSQL cluster (initdb into a temporary directory, 127.0.0.1 on a
# free port, fsync and synchronous_commit on; as root it runs as the
# `postgres` user), then for each setup and each of RUNS runs: starts the
# replicas (release build), opens 32 workflows, and posts STEPS steps with
# 32 concurrent clients (examples/loadgen), then stops them. Setups:
#   sled          one replica on sled (group commit);
#   pg1           one replica on PostgreSQL;
#   pg2           two replicas on one database, each workflow's steps sent
#                 to one replica (a load balancer with workflow affinity);
#   pg3           three replicas, likewise;
#   pg2-shared    two replicas, 16 workflows, each one's steps sent through
#                 both replicas (the two append to the same chains and
#                 conflict; every step is judged again on a conflict).
# Prints every run's loadgen summary and, at the end, the median steps/s
# and p99 of each setup. Every loop is bounded by a request count and a
# time limit.
# Usage: scripts/load-postgres.sh [steps_per_run] [runs]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STEPS="${1:-10000}"
RUNS="${2:-3}"
scripts/provision-ort.sh
scripts/provision-postgres.sh
cargo build --release --locked --bin telos --example loadgen >&2
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work="$(mktemp -d)"
as=()
if [[ "$(id -u)" -eq 0 ]]; then
  chown postgres "$work"
  as=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  (cd / && "${as[@]}" "$bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT
(cd / && "${as[@]}" "$bin/initdb" -D "$work/pg" -A trust -U telos -E UTF8 --locale=C >/dev/null)
(cd / && "${as[@]}" "$bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o \
  "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$work -c max_connections=200 -c fsync=on -c synchronous_commit=on" \
  start >/dev/null)
psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U telos)

# Starts a replica with extra flags; sets $base.
start_replica() {
  local log="$work/server.$RANDOM.log"
  mkdir -p "$work/data.$1"; : > "$log"
  target/release/telos serve --addr 127.0.0.1:0 --data-dir "$work/data.$1" "${@:2}" 2>"$log" &
  pids+=($!)
  for _ in $(seq 1 600); do
    addr=$(grep -o 'addr=[0-9.:]*' "$log" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && curl -sf "http://$addr/readyz" >/dev/null && break
    sleep 0.1
  done
  base="http://$addr"
}
stop_replicas() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}
new_workflow() {
  curl -sf -H 'content-type: application/json' --data @fixtures/load/intent.json "$1/v1/workflows" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["workflow_id"])'
}

declare -A rates p99s
for setup in sled pg1 pg2 pg3 pg2-shared; do
  for run in $(seq 1 "$RUNS"); do
    db="load_${setup//-/_}_$run"
    bases=()
    case "$setup" in
      sled) start_replica "$setup$run"; bases=("$base") ;;
      pg1|pg2|pg3|pg2-shared)
        "${psql[@]}" -d postgres -c "CREATE DATABASE $db" >/dev/null
        case "$setup" in pg1) n=1 ;; pg3) n=3 ;; *) n=2 ;; esac
        for r in $(seq 1 "$n"); do
          start_replica "$setup$run.$r" --database-url "postgres://telos@127.0.0.1:$port/$db"
          bases+=("$base")
        done ;;
    esac
    curl -sf -X PUT -H 'content-type: application/json' --data @fixtures/intents/travel/catalog.json "${bases[0]}/v1/catalogs/travel" >/dev/null
    : > "$work/urls"
    if [[ "$setup" == pg2-shared ]]; then
      for i in $(seq 0 15); do
        id=$(new_workflow "${bases[0]}")
        echo "${bases[0]}/v1/workflows/$id/steps" >> "$work/urls"
        echo "${bases[1]}/v1/workflows/$id/steps" >> "$work/urls"
      done
    else
      for i in $(seq 0 31); do
        b="${bases[$((i % ${#bases[@]}))]}"
        id=$(new_workflow "$b")
        echo "$b/v1/workflows/$id/steps" >> "$work/urls"
      done
    fi
    echo "== $setup, run $run: POST /v1/workflows/{id}/steps, 32 clients, $STEPS requests"
    out=$(target/release/examples/loadgen --url-file "$work/urls" --body fixtures/load/step.json \
      --concurrency 32 --requests "$STEPS" --max-seconds 120)
    echo "$out"
    rates[$setup]+="$(echo "$out" | sed -n 's/.*: \([0-9.]*\) req\/s.*/\1/p') "
    p99s[$setup]+="$(echo "$out" | sed -n 's/.* p99 \([0-9.]*\) .*/\1/p') "
    stop_replicas
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "== medians of $RUNS runs ($STEPS steps each, 32 clients)"
for setup in sled pg1 pg2 pg3 pg2-shared; do
  echo "$setup: $(echo "${rates[$setup]}" | median) steps/s, p99 $(echo "${p99s[$setup]}" | median) ms  (runs: ${rates[$setup]})"
done
