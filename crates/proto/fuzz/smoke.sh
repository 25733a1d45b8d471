#!/usr/bin/env bash
# Runs every cargo-fuzz target in this folder for a bounded number of runs, starting from
# its seed corpus, and exits non-zero when any target crashes or fails to build.
#
# Usage: smoke.sh [RUNS]   (default 5000 runs per target; needs nightly and cargo-fuzz)
#
# New inputs go to a temporary folder, so the seed corpora in corpus/ stay unchanged.
set -euo pipefail

runs="${1:-5000}"
cd "$(dirname "$0")"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

targets="$(cargo +nightly fuzz list)"
if [ -z "$targets" ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

failed=()
for target in $targets; do
    seeds="corpus/$target"
    mkdir -p "$scratch/$target"
    corpora=("$scratch/$target")
    if [ -d "$seeds" ]; then
        corpora+=("$seeds")
    fi
    echo "fuzz target $target: $runs runs"
    if ! cargo +nightly fuzz run "$target" "${corpora[@]}" -- -runs="$runs" -max_len=4096; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz targets failed: ${failed[*]} (crashing inputs are in artifacts/)" >&2
    exit 1
fi
echo "all fuzz targets passed $runs runs"
