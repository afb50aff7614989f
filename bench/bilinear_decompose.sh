#!/usr/bin/env bash
# Bilinear decomposition benchmark: glassbox against numpy and PyTorch, at 1 and 2
# threads, on the weights of a d_h 512 MNIST model. Usage: bench/bilinear_decompose.sh [CHECKPOINT]
# Needs GLASSBOX_DATA (MNIST test images) and $PYTHON with torch, numpy and safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-bench/results/bilinear_decompose.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
cargo build --release -q -p glassbox-bilinear --example decompose_bench
BIN=${CARGO_TARGET_DIR:-target}/release/examples/decompose_bench
INPUT=$(mktemp --suffix .safetensors)
trap 'rm -f "$INPUT"' EXIT
for threads in 1 2; do
  echo "load $(cut -d' ' -f1 /proc/loadavg): $threads thread(s)" >&2
  export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
  "$BIN" "$threads" "$INPUT" "$@" >> "$OUT"
  "$PYTHON" bench/bilinear_decompose.py "$threads" "$INPUT" >> "$OUT"
done
"$PYTHON" - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| threads | impl | decompose s | truncation curve s | total s | reference/glassbox |")
print("|---|---|---|---|---|---|")
for t in (1, 2):
    g = next(r for r in rows if r["impl"] == "glassbox" and r["threads"] == t)
    gt = g["decompose_s"] + g["truncation_curve_s"]
    for r in (x for x in rows if x["threads"] == t):
        tot = r["decompose_s"] + r["truncation_curve_s"]
        print(f"| {t} | {r['impl']} | {r['decompose_s']:.3f} | {r['truncation_curve_s']:.3f} | {tot:.3f} | {tot / gt:.2f}x |")
    for r in rows:
        if r["threads"] == t and r["impl"] != "glassbox":
            diff = max(abs(a - b) for a, b in zip(r["curve"], g["curve"]))
            print(f"(threads {t}: {r['impl']} curve differs from glassbox by at most {diff:.4f})")
PY
