#!/usr/bin/env bash
# `promtool check metrics` on a live node's /metrics and `promtool check
# rules` on examples/prometheus/alerts.yml. promtool comes from Debian's
# `prometheus` package, installed here when missing (root, apt); without it
# the check is skipped with the reason printed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # One `apt-get update` a day at most: a second run is cheap.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
        apt-get update -qq || true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus curl >/dev/null || true
fi
if ! command -v promtool >/dev/null 2>&1; then
    echo "SKIP: promtool not found (the Debian package prometheus is not installed and could not be)"
    exit 0
fi
promtool --version 2>&1 | head -1

promtool check rules examples/prometheus/alerts.yml

# The test profile: the binary `scripts/test.sh` already built.
cargo build --locked -q --profile test -p hotsync-cli --bin hotsync
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
cat >"$dir/node.cfg" <<CFG
hrp enable
hrp local-address 127.0.0.1 port $((port + 2))
hrp remote-address 127.0.0.1 port $((port + 4))
hrp admin-socket $dir/admin.sock
hrp metrics listen 127.0.0.1 port $port
CFG
target/debug/hotsync node --config "$dir/node.cfg" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/metrics" -o "$dir/metrics.txt" && break
    sleep 0.1
done
grep -c '^hotsync_' "$dir/metrics.txt" | sed 's/^/samples: /'
promtool check metrics <"$dir/metrics.txt"
echo "promtool: metrics and rules OK"
