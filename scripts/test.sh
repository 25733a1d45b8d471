#!/usr/bin/env bash
# Runs every test of the workspace, with the optional aws-lc provider switched on so both
# crypto providers are tested. Tests that need ../shared (test vectors, the CGM trace)
# fail when CI=true and it is missing, and skip with a printed reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features "$@"
