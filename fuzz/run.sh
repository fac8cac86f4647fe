#!/usr/bin/env bash
# Runs fuzz targets one after another, each for SECONDS (default 600), niced, on the stable toolchain.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   (logs in fuzz/logs/TARGET.log; crashes in fuzz/artifacts/)
set -u
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=${*:-npy npz safetensors layer qformat onnx args}
mkdir -p logs
export RUSTC_BOOTSTRAP=1 CONVMAT_FUZZ_DIR=${CONVMAT_FUZZ_DIR:-/dev/shm}
for t in $targets; do
    mkdir -p "corpus/$t"
    nice -n 10 cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 >"logs/$t.log" 2>&1
    echo "$t: exit $? at $(date -u +%H:%M:%S)"
done
