#!/usr/bin/env bash
# Runs the C ABI's tests under Miri (nightly), which checks every `unsafe`
# block they reach (the pointers a C caller hands over, the update callback,
# handle release) for undefined behaviour, and the lock-free lookup racing a
# writer for data races. The table's own `unsafe` (a prefetch hint and
# `madvise`) is compiled out under Miri: nothing there for it to check.
# Installs the nightly toolchain's `miri` component if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
cargo +nightly miri test -p hotsync-ffi --lib
