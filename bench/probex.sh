#!/usr/bin/env bash
# ProbeX training-epoch benchmark: glassbox (crates/weightspace/examples/probex_epoch_bench.rs)
# against the PyTorch reference bench/probex_epoch.py, one epoch of ProbeX (r_U = r_V = r_T = 128,
# 100 classes, batch 128, Adam 1e-3 + L2 1e-5) on MODELS synthetic SIDE x SIDE layers, at 1 and 2
# threads, alternating implementations, three repetitions; prints medians and ratios. Needs
# $PYTHON with torch (bench/README.md). MODELS (default 700) and SIDE (default 768) can be
# overridden for a quick smoke run, e.g. MODELS=64 SIDE=128. The full size holds the layers in
# memory once per process (700 x 768^2 floats = 1.65 GB). Run it on a quiet machine (check `uptime`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODELS=${MODELS:-700}
SIDE=${SIDE:-768}
OUT=${OUT:-bench/results/probex.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
cargo build --release -q -p glassbox-weightspace --example probex_epoch_bench
BIN=${CARGO_TARGET_DIR:-target}/release/examples
for rep in 1 2 3; do
  for threads in 1 2; do
    echo "load $(cut -d' ' -f1 /proc/loadavg): round $rep, $threads thread(s)" >&2
    export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
    "$BIN/probex_epoch_bench" "$MODELS" "$SIDE" "$threads" >> "$OUT"
    "$PYTHON" bench/probex_epoch.py "$MODELS" "$SIDE" "$threads" >> "$OUT"
  done
done
"$PYTHON" - "$OUT" "$MODELS" "$SIDE" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
models, side = int(sys.argv[2]), int(sys.argv[3])
def med(impl, threads):
    v = [r["seconds_per_epoch"] for r in rows if r["bench"] == "probex_epoch" and r["impl"] == impl
         and r["threads"] == threads and r["models"] == models and r["side"] == side]
    return statistics.median(v) if v else float("nan")
print(f"ProbeX epoch, {models} models, {side}x{side}, r = 128 (ratio = PyTorch time / glassbox time; >1: glassbox faster)")
print()
print("| threads | glassbox s/epoch | PyTorch s/epoch | ratio |")
print("|---|---|---|---|")
for t in (1, 2):
    g, p = med("glassbox", t), med("torch", t)
    print(f"| {t} | {g:.3f} | {p:.3f} | {p / g:.2f}x |")
PY
