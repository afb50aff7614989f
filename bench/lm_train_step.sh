#!/usr/bin/env bash
# Language-model training-step benchmark: glassbox against PyTorch on the GPT-style and bilinear
# transformers (4 layers, d_model 256, vocabulary 4096, 16 contexts of 128 tokens), at 1 and 2
# threads. Runs the two implementations alternately so both see the same machine state, and
# prints a table of ratios. Needs a Python with torch and numpy in $PYTHON (see bench/README.md).
# Run it on a quiet machine (check `uptime`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-bench/results/lm_train_step.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
cargo build --release -q -p glassbox-lm --example lm_train_step
BIN=${CARGO_TARGET_DIR:-target}/release/examples/lm_train_step
# Three alternating repetitions; the summary takes the median of each configuration.
for rep in 1 2 3; do
  for model in gpt bilinear; do
    for threads in 1 2; do
      echo "load $(cut -d' ' -f1 /proc/loadavg): round $rep, $model, $threads thread(s)" >&2
      export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
      "$BIN" "$model" "$threads" 2 >> "$OUT"
      "$PYTHON" bench/lm_train_step.py "$model" "$threads" >> "$OUT"
      [ "$threads" = 1 ] && "$BIN" "$model" 1 1 >> "$OUT"
    done
  done
done
"$PYTHON" bench/summarize_train_step.py "$OUT"
