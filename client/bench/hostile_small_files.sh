#!/usr/bin/env bash
# Start-up of the example host tool `greet` with a FIFO, a symlink, a dangling symlink, a
# directory or a 2 GiB sparse file in place of each of clearcount's small files, against the
# same first run of the week with nothing planted ("none"). Each run starts from a fresh
# directory (hyperfine --prepare). The figures are in docs/perf/client.md.
#
#   cargo build --release -p clearcount --features cli --example greet
#   bash client/bench/hostile_small_files.sh   # GREET=..., RUNS=..., OUT=... to change
set -euo pipefail
cd "$(dirname "$0")/../.."
GREET=${GREET:-target/release/examples/greet}
RUNS=${RUNS:-30}
OUT=${OUT:-hostile_small_files.json}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT

export CLEARCOUNT_DIR=$D/cc CLEARCOUNT_TEST_NOW=2026-11-18T12:00:00Z
# Upload endpoint on a closed loopback port, mode local: the start path records the endpoint
# and claims the day's token, and sends nothing.
export GREET_TELEMETRY_SERVER=http://127.0.0.1:9
export GREET_TELEMETRY_LOG_KEY='telemetry.example.org/config+b59e49b9+ASh3/3wT4sVlg0dVfsOW+n7twqUeLyaZTmHGrAke2Rpj'
U=upload/telemetry.example.org_config
# An empty counter file, set aside with a line in the debug log: the run that writes it.
COUNTER="local/2026-11-16_greet@0.1.0_linux_$(uname -m).count"

args=()
for f in mode debug.log local/.reduce.lock local/next-reduction $U/endpoint $U/token-2026-11-18; do
  for t in none fifo symlink dangling dir sparse; do
    p="rm -rf $D/cc $D/outside && mkdir -p $D/cc/$(dirname "$f")"
    if [ "$f" = debug.log ]; then p+=" && mkdir -p $D/cc/local && : > $D/cc/$COUNTER"; fi
    case $t in
      fifo) p+=" && mkfifo $D/cc/$f" ;;
      symlink) p+=" && echo outside > $D/outside && ln -s $D/outside $D/cc/$f" ;;
      dangling) p+=" && ln -s $D/outside $D/cc/$f" ;;
      dir) p+=" && mkdir -p $D/cc/$f/inside" ;;
      sparse) p+=" && truncate -s 2G $D/cc/$f" ;;
    esac
    # -N runs the preparation without a shell too.
    args+=(-n "$f: $t" --prepare "bash -c \"$p\"" "$GREET alice")
  done
done
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT" "${args[@]}"
