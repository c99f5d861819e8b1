#!/usr/bin/env bash
# Runs the data-path benchmarks with two hotsync-bench binaries back to back
# (before, after), each with --json, and prints `hotsync-bench compare` of
# every pair. Usage:
#   scripts/bench-before-after.sh OLD/hotsync-bench NEW/hotsync-bench [OUT_DIR]
# Build the old one from a worktree: git worktree add /tmp/old COMMIT &&
#   cargo build --release -p hotsync-bench --manifest-path /tmp/old/Cargo.toml
# About 6 minutes; run it on an otherwise idle machine (the load average is
# printed with every scenario).
set -u
BEFORE=${1:?usage: $0 BEFORE_BENCH AFTER_BENCH [OUT_DIR]}
AFTER=${2:?usage: $0 BEFORE_BENCH AFTER_BENCH [OUT_DIR]}
OUT=${3:-target/bench-before-after}
mkdir -p "$OUT"
run() { # name args...
    local name=$1; shift
    for side in before after; do
        local bin=$BEFORE; [ "$side" = after ] && bin=$AFTER
        echo "== $name $side $(date +%T), load average $(cut -d' ' -f1-3 /proc/loadavg)"
        "$bin" --json "$OUT/$name-$side.json" "$@" > "$OUT/$name-$side.txt" 2>&1 \
            || echo "   failed: see $OUT/$name-$side.txt"
    done
    "$AFTER" compare "$OUT/$name-before.json" "$OUT/$name-after.json" 2>&1 | head -40
}
run bulk1m bulk --sessions 1000000 --repeat 3 --no-baselines
run bulk10m bulk --sessions 10000000 --no-baselines
run inc200k incremental --rate 200000 --duration 5 --repeat 3
run inc1m incremental --rate 1000000 --duration 5 --repeat 3
run during-bulk during-bulk --duration 5 --repeat 3
run mixed mixed --rate 1000000 --duration 5 --repeat 3
run lookup lookup
