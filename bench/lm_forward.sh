#!/usr/bin/env bash
# Language-model forward benchmark: glassbox-lm (crates/lm/examples/lm_forward_bench.rs) against
# PyTorch + transformers (bench/lm_forward.py) on all-MiniLM-L6-v2 and SmolLM2-135M-Instruct
# (Q4_1 GGUF, dequantised to f32 by both), on the same token ids: 64 short TinyStories prompts
# (<= 32 tokens; glassbox packed, PyTorch one padded batch with attention_mask) and 8 contexts of
# 512 tokens. SmolLM2 as "body" (up to the final norm) and "logits" (every position). At 1 and 2
# threads, alternating implementations, REPS (default 3) rounds; prints medians and ratios
# (glassbox tokens/s / PyTorch tokens/s; > 1: glassbox faster). Then, once per model: glassbox's
# time breakdown of ctx512 at 1 thread and PyTorch's profile of the same forward; and SmolLM2's
# peak RSS. Needs $PYTHON with torch, transformers and gguf (bench/README.md); models in
# $GLASSBOX_MODELS (default /root/.cache/glassbox/models). Run it on a quiet machine (`uptime`):
# the script logs the load average before every run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REPS=${REPS:-3}
OUT=${OUT:-bench/results/lm_forward.jsonl}
TOKENS=${TOKENS:-${TMPDIR:-/tmp}/lm_forward_tokens.json}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
cargo build --release -q -p glassbox-lm --example lm_forward_bench
# Run a private copy: the shared target directory's example can be rebuilt (e.g. by a concurrent
# `cargo test`) while the benchmark runs.
BIN=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-target}/release/examples/lm_forward_bench" "$BIN/"
echo "{\"bench\":\"lm_forward_build\",\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null)\",\"dirty_files\":$(git status --porcelain 2>/dev/null | grep -c '^ M' || true)}" >> "$OUT"
"$PYTHON" bench/lm_forward.py tokens "$TOKENS"
load() { echo "{\"bench\":\"lm_forward_load\",\"at\":\"$1\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT"; echo "load $(cut -d' ' -f1-3 /proc/loadavg): $1" >&2; }
for rep in $(seq 1 "$REPS"); do
  for threads in 1 2; do
    export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
    load "round $rep, $threads thread(s), glassbox"
    "$BIN/lm_forward_bench" run "$TOKENS" "$threads" >> "$OUT"
    load "round $rep, $threads thread(s), torch"
    "$PYTHON" bench/lm_forward.py run "$TOKENS" "$threads" 2>/dev/null >> "$OUT"
  done
done
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for model in minilm smollm2; do
  load "breakdown $model"
  "$BIN/lm_forward_bench" breakdown "$TOKENS" 1 "$model" >> "$OUT"
  load "torch profile $model"
  "$PYTHON" bench/lm_forward.py profile "$TOKENS" "$model" 2>/dev/null >> "$OUT"
done
load "memory"
"$BIN/lm_forward_bench" memory "$TOKENS" 1 >> "$OUT"
load "end"
"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = [r for r in rows if r["bench"] == "lm_forward"]
def med(impl, model, workload, variant, threads):
    v = [r["tokens_per_s"] for r in runs if (r["impl"], r["model"], r["workload"], r["variant"], r["threads"])
         == (impl, model, workload, variant, threads)]
    return (statistics.median(v), len(v)) if v else (float("nan"), 0)
print("Forward tokens/s, medians over rounds (ratio = glassbox / PyTorch; > 1: glassbox faster)")
print()
print("| model | workload | variant | threads | glassbox tok/s | PyTorch tok/s | ratio | rounds |")
print("|---|---|---|---|---|---|---|---|")
for model, variants in (("minilm", ("body",)), ("smollm2", ("body", "logits"))):
    for variant in variants:
        for workload in ("short", "ctx512"):
            for t in (1, 2):
                (g, n), (p, _) = med("glassbox", model, workload, variant, t), med("torch", model, workload, variant, t)
                print(f"| {model} | {workload} | {variant} | {t} | {g:.0f} | {p:.0f} | {g / p:.2f}x | {n} |")
print()
print("load averages: " + "; ".join(f'{r["at"]}: {r["loadavg"]}' for r in rows if r["bench"] == "lm_forward_load"))
for model in ("minilm", "smollm2"):
    bd = [r for r in rows if r["bench"] == "lm_forward_breakdown" and r["model"] == model]
    if bd:
        print()
        print(f"glassbox {model} ctx512 body, 1 thread: where the time goes")
        print()
        print("| what | part | seconds | share of plain forward |")
        print("|---|---|---|---|")
        for r in bd:
            share = f'{100 * r["share"]:.1f} %' if "share" in r else ""
            print(f'| {r["what"]} | {r["part"]} | {r["seconds"]:.3f} | {share} |')
    prof = [r for r in rows if r["bench"] == "lm_forward_profile" and r.get("model") == model]
    if prof:
        print()
        print(f"PyTorch {model} ctx512 body, 1 thread: " + ", ".join(
            f'{r["op"]} {r["self_s"]:.3f} s' for r in prof if "op" in r and r["self_s"] >= 0.005))
for r in rows:
    if r["bench"] == "lm_forward_memory":
        print(f'memory {r["stage"]}: VmHWM {r["vm_hwm_mb"]:.0f} MB, VmRSS {r["vm_rss_mb"]:.0f} MB'
              + (f', budget 1.5 x f32 weights + activations = {r["budget_mb"]:.0f} MB' if "budget_mb" in r else ""))
PY
