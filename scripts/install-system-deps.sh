#!/usr/bin/env bash
# Debian packages the conntrack tests and benchmark use: nftables (the
# failover test's stateful ruleset), conntrack (`conntrack -L` for the
# field-by-field comparison), conntrackd (the benchmark's baseline) and
# iproute2 (network namespaces). Cheap when they are already installed;
# does nothing when not root or without apt-get (the tests then skip with a
# printed reason).
set -euo pipefail
need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v conntrackd >/dev/null 2>&1 || need+=(conntrackd)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: not root or no apt-get; missing: ${need[*]}" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
