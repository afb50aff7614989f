#!/usr/bin/env bash
# LIB benchmark: the basis build and the edges of a 784-128-128-10 MNIST MLP, glassbox
# (closed-form Jacobians, f64) against PyTorch autograd (torch.func vmap(jacrev), f64) on the
# same checkpoint and the first N MNIST test images, at 1 and 2 threads, alternating. Trains the
# MLP first if bench/results/lib-mnist-mlp does not exist. Needs $PYTHON with torch, numpy and
# safetensors (bench/README.md) and GLASSBOX_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SAMPLES=${SAMPLES:-10000}
RES=bench/results
OUT=$RES/lib_basis.jsonl
mkdir -p "$RES"
: > "$OUT"
cargo build --release -q -p glassbox -p glassbox-lib-basis --example lib_bench
BIN=${CARGO_TARGET_DIR:-target}/release
CKPT=$RES/lib-mnist-mlp
if [ ! -f "$CKPT/model.json" ]; then
  "$BIN/glassbox" --quiet train --model mlp --hidden 128,128 --dataset mnist --epochs 5 --out "$CKPT"
fi
for threads in 1 2; do
  echo "load $(cut -d' ' -f1 /proc/loadavg): $threads thread(s)" >&2
  export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
  "$BIN/examples/lib_bench" "$CKPT" --out "$RES/lib_glassbox" --samples "$SAMPLES" --threads "$threads" >> "$OUT"
  "$PYTHON" bench/lib_basis.py "$CKPT" --out "$RES/lib_torch" --samples "$SAMPLES" --threads "$threads" >> "$OUT"
done
"$PYTHON" bench/summarize_lib_basis.py "$OUT" "$RES/lib_glassbox.safetensors" "$RES/lib_torch.safetensors"
