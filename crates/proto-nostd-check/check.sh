#!/usr/bin/env bash
# Builds the no_std check binary, which links medtunnel-proto without std, alloc or a
# global allocator, and runs it: it exits 0 after a handshake and one data message.
# Exits non-zero when the build, the link or the run fails.
#
# Usage: check.sh   (x86_64 Linux with a C toolchain for linking)
set -euo pipefail

# cargo reads .cargo/config.toml from the working folder, so build from here.
cd "$(dirname "$0")"

cargo build --release --locked 2>&1
binary="target/x86_64-unknown-linux-gnu/release/medtunnel-proto-nostd-check"
if "$binary"; then
    echo "no_std check passed: $binary linked without std or alloc and ran"
else
    status=$?
    echo "no_std check failed: $binary exited with status $status" >&2
    exit 1
fi
