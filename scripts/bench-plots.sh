#!/usr/bin/env bash
# Regenerates the plots (and the JSON reports they come from) that
# docs/PERFORMANCE.md shows, in docs/plots/. Short runs: about 2 minutes on
# 2 cores. Run it on a quiet machine and note `uptime`'s load average.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p hotsync-bench
B=${CARGO_TARGET_DIR:-target}/release/hotsync-bench
D=docs/plots
mkdir -p "$D"
uptime
$B bulk --sessions 3000000 --repeat 3 --baseline-repeat 1 --json $D/bulk.json --plot $D/bulk.svg
uptime
$B incremental --rate 1000000 --duration 5 --json $D/incremental.json --plot $D/incremental.svg
uptime
$B mixed --rate 1000000 --duration 5 --json $D/mixed.json --plot $D/mixed.svg
uptime
$B during-bulk --duration 5 --repeat 3 --json $D/during-bulk.json --plot $D/during-bulk.svg
uptime
