#!/usr/bin/env bash
# The README's test command: every crate's tests, including the replay of
# every committed fuzz corpus file through the fuzz targets' code (see
# fuzz/README.md) and the protocol simulator's fixed seeds (400 plus 16 regression schedules).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
