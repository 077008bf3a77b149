#!/usr/bin/env bash
# Load benchmark of clearcount-server over loopback (wrk, concurrency 64, distinct reports):
# first a bare axum server that only reads the body (the reference of DESIGN.md section 9),
# then SQLite with the per-source limiter off (all load comes from one address), SQLite with
# the limiter on (a limit the load never meets, to show its cost) and, when
# CLEARCOUNT_BENCH_POSTGRES is set (e.g. postgres://postgres@127.0.0.1:5432/postgres),
# PostgreSQL; then the time to aggregate 1,000,000 stored reports.
#   apt-get install wrk
#   server/bench/run.sh [DURATION_SECONDS] [AGGREGATE_REPORTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-20}
AGG_REPORTS=${2:-1000000}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -j 2 -p clearcount-server --bin clearcount-server --example benchdata --example bare_axum >&2
BIN=$TARGET/release/clearcount-server
SETUP=$TARGET/release/examples/benchdata
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$SETUP" --log "$WORK/log" --init-log

wrk_upload() { # $1 = name, $2 = port
  echo "== $1: wrk -t2 -c64 -d${DURATION}s"
  wrk -t2 -c64 -d"${DURATION}s" --latency -s server/bench/upload.lua "http://127.0.0.1:$2/upload" | grep -E "Latency|50%|99%|Requests/sec|requests:|Non-2xx"
}

"$TARGET/release/examples/bare_axum" 127.0.0.1:18081 2>/dev/null &
BARE=$!
sleep 0.5
wrk_upload "bare axum (reads the body, answers 200)" 18081
kill $BARE; wait $BARE 2>/dev/null || true

run_load() { # $1 = name, $2.. = extra serve args
  local name=$1; shift
  # Start with no writeback pending (builds, the previous run's 1,000,000-report database):
  # the server's fsyncs would wait behind it.
  sync
  "$BIN" serve --log "$WORK/log" --data "$WORK/data-$name" --listen 127.0.0.1:18080 --today 2026-11-25 "$@" 2>"$WORK/$name.log" &
  local pid=$!
  for _ in $(seq 100); do curl -fs http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  wrk_upload "$name" 18080
  kill -TERM $pid; wait $pid
}

run_load sqlite --upload-rate 0
run_load sqlite-limiter --upload-rate 1000000 --upload-burst 1000000
if [ -n "${CLEARCOUNT_BENCH_POSTGRES:-}" ]; then
  DB=cc_bench_$$
  psql "$CLEARCOUNT_BENCH_POSTGRES" -qc "CREATE DATABASE $DB"
  PGURL="${CLEARCOUNT_BENCH_POSTGRES%/*}/$DB"
  run_load postgres --upload-rate 0 --database "$PGURL"
fi

echo "== aggregate $AGG_REPORTS reports (SQLite)"
"$SETUP" --log "$WORK/log" --data "$WORK/agg" --reports "$AGG_REPORTS" --week 2026-11-16
/usr/bin/time -f "wall %e s, max RSS %M KB" "$BIN" aggregate --week 2026-11-16 --log "$WORK/log" --data "$WORK/agg" --out "$WORK/out"
if [ -n "${CLEARCOUNT_BENCH_POSTGRES:-}" ]; then
  echo "== aggregate $AGG_REPORTS reports (PostgreSQL)"
  "$SETUP" --log "$WORK/log" --data "$WORK/agg" --reports "$AGG_REPORTS" --week 2026-11-16 --database "$PGURL"
  /usr/bin/time -f "wall %e s, max RSS %M KB" "$BIN" aggregate --week 2026-11-16 --log "$WORK/log" --data "$WORK/agg" --out "$WORK/out" --database "$PGURL"
  psql "$CLEARCOUNT_BENCH_POSTGRES" -qc "DROP DATABASE $DB WITH (FORCE)"
fi
