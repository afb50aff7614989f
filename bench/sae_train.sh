#!/usr/bin/env bash
# SAE training speed: glassbox (crates/sae/examples/sae_train_bench.rs) against SAELens 6's own
# training code and against plain PyTorch (bench/sae_train.py).
#
# A. TopK SAE training (k 32, 8 x 576 latents) on SmolLM2 blocks.15.hook_resid_post rows from the
#    activation store $STORE, the same shuffled rows in the same order on both sides ($DATA, made
#    once by `sae_train.py prepare`): glassbox's Trainer against SAELens's TopKTrainingSAE stepped
#    by its SAETrainer. Speed: REPS rounds of SPEED_STEPS steps of 4096 rows (and as many rows in
#    steps of 1024) at 1 and 2 threads, tokens/s over all steps but the first. Quality: one run of
#    TOKENS rows (default 524,288) each side, QUALITY_BATCH rows a step (default 4096) at
#    QUALITY_THREADS (default 2); explained variance on 8,192 held-out rows.
# B. Step times on random data: a TopK SAE step (d 512, m 4096, k 32, batch 1024) against the
#    same computation written densely in PyTorch; a Universal SAE step (d 768/384/768, m 6144,
#    k 32, 6272 tokens) against the official code's dense computation ("official": every decoder
#    in autograd; "lean": decoders that do not move detached). USAE_REPS rounds.
#
# Implementations alternate within every round so both see the same machine; the summary takes
# medians over rounds and prints ratios (glassbox speed / reference speed; > 1: glassbox faster).
# Needs $PYTHON with torch and sae_lens (bench/README.md). Other work on the machine skews the
# numbers: the script logs the load average before every run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REPS=${REPS:-3}
USAE_REPS=${USAE_REPS:-2}
SPEED_STEPS=${SPEED_STEPS:-30}
TOKENS=${TOKENS:-524288}
QUALITY_BATCH=${QUALITY_BATCH:-4096}
QUALITY_THREADS=${QUALITY_THREADS:-2}
STORE=${STORE:-/tmp/store-smol15}
DATA=${DATA:-${TMPDIR:-/tmp}/sae_train_bench}
OUT=${OUT:-bench/results/sae_train.jsonl}
PARTS=${PARTS:-"speed quality topk usae"}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
cargo build --release -q -p glassbox-sae --example sae_train_bench
# A private copy: the shared target directory's example can be rebuilt while the benchmark runs.
BIN=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-target}/release/examples/sae_train_bench" "$BIN/"
[ -f "$DATA/meta.json" ] || "$PYTHON" bench/sae_train.py prepare "$STORE" "$DATA" 1048576 8192 0
load() { echo "{\"bench\":\"sae_train_load\",\"at\":\"$1\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT"; echo "load $(cut -d' ' -f1-3 /proc/loadavg): $1" >&2; }
tag() { sed "s/^{/{\"phase\":\"$1\",/" >> "$OUT"; }
threads_env() { export OMP_NUM_THREADS=$1 MKL_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1; }
has() { [[ " $PARTS " == *" $1 "* ]]; }
if has speed; then
  for rep in $(seq 1 "$REPS"); do
    for threads in 1 2; do
      threads_env "$threads"
      for batch in 4096 1024; do
        load "speed round $rep, $threads thread(s), batch $batch"
        "$BIN/sae_train_bench" train "$DATA" "$threads" "$batch" $((SPEED_STEPS * 4096)) | tag speed
        "$PYTHON" bench/sae_train.py train "$DATA" "$threads" "$batch" $((SPEED_STEPS * 4096)) 2>/dev/null | tag speed
      done
    done
  done
fi
if has quality; then
  threads_env "$QUALITY_THREADS"
  load "quality, $TOKENS tokens, batch $QUALITY_BATCH, $QUALITY_THREADS thread(s), glassbox"
  "$BIN/sae_train_bench" train "$DATA" "$QUALITY_THREADS" "$QUALITY_BATCH" "$TOKENS" | tag quality
  load "quality, $TOKENS tokens, batch $QUALITY_BATCH, $QUALITY_THREADS thread(s), saelens"
  "$PYTHON" bench/sae_train.py train "$DATA" "$QUALITY_THREADS" "$QUALITY_BATCH" "$TOKENS" 2>/dev/null | tag quality
  threads_env 1
  load "breakdown"
  "$BIN/sae_train_bench" breakdown "$DATA" 1 4096 | tag breakdown
fi
if has topk; then
  for rep in $(seq 1 "$REPS"); do
    for threads in 1 2; do
      threads_env "$threads"
      load "topk step round $rep, $threads thread(s)"
      "$BIN/sae_train_bench" topk-step "$threads" | tag step
      "$PYTHON" bench/sae_train.py topk-step "$threads" 2>/dev/null | tag step
    done
  done
fi
if has usae; then
  # A USAE step takes seconds: one timed step per model after one warm-up step per model.
  export TARGET_S=0 MIN_STEPS=1
  for rep in $(seq 1 "$USAE_REPS"); do
    for threads in 1 2; do
      threads_env "$threads"
      load "usae step round $rep, $threads thread(s)"
      "$BIN/sae_train_bench" usae-step "$threads" | tag step
      "$PYTHON" bench/sae_train.py usae-step "$threads" official 2>/dev/null | tag step
      "$PYTHON" bench/sae_train.py usae-step "$threads" lean 2>/dev/null | tag step
    done
  done
fi
load "end"
"$PYTHON" bench/sae_train_summary.py "$OUT"
