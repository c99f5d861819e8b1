#!/usr/bin/env bash
# Runs N random simulator seeds (default 10000) on every core, with progress
# and a summary: seeds/s and every failure with its (shrunk) replay line.
#   scripts/simulate.sh 100000
# HOTSYNC_SIM_ALL=1 also injects the fault classes held back from the fixed
# set (crates/proto/tests/simulator.rs, HELD_BACK).
set -euo pipefail
shopt -s nullglob
n=${1:-10000}
cd "$(dirname "$0")/.."
jobs=$(nproc)
bin=$(cargo test --release --locked -p hotsync-proto --test simulator --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
start=$(date +%s.%N)
pids=()
for i in $(seq 1 "$jobs"); do
    share=$(( n / jobs + (i <= n % jobs ? 1 : 0) ))
    HOTSYNC_SIM_SEEDS=$share HOTSYNC_SIM_PROGRESS=1 "$bin" --nocapture >"$out/$i.log" 2>&1 &
    pids+=($!)
done
running=1
while [ $running -eq 1 ]; do
    running=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
    done_=0
    for f in "$out"/*.log; do
        d=$(grep '^progress ' "$f" | tail -1 | cut -d' ' -f2 || true)
        done_=$(( done_ + ${d:-0} ))
    done
    el=$(echo "$(date +%s.%N) - $start" | bc)
    printf '\r%d/%d seeds, %.0f s' "$done_" "$n" "$el" >&2
    [ $running -eq 1 ] && sleep 2
done
echo >&2
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
el=$(echo "$(date +%s.%N) - $start" | bc)
total=$(grep -h ' seeds, ' "$out"/*.log | awk '{s+=$1} END{print s+0}')
failed=$(grep -h ' seeds, ' "$out"/*.log | awk '{s+=$3} END{print s+0}')
echo "summary: $total seeds in $(printf %.1f "$el") s on $jobs cores, $(echo "$total / $el" | bc) seeds/s, $failed failed (load: $(cut -d' ' -f1-3 /proc/loadavg))"
grep -h -A2 ' FAILED (' "$out"/*.log || true
exit $status
