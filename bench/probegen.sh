#!/usr/bin/env bash
# Zoo-building and reader-training benchmarks: glassbox against the PyTorch references
# bench/inr_fit.py (INR fits, torch.compile over stacked models) and bench/probegen_epoch.py
# (one ProbeGen / vanilla reader epoch, on INRs and on mnist-cnn-acc CNNs), at 1 and 2 threads, alternating implementations, three
# repetitions; prints medians and ratios. Needs $PYTHON with torch and numpy (bench/README.md)
# and the data folder in $GLASSBOX_DATA. Run it on a quiet machine (check `uptime`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-bench/results/probegen.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
cargo build --release -q -p glassbox-zoo --example inr_fit_bench
cargo build --release -q -p glassbox-weightspace --example probegen_epoch_bench
BIN=${CARGO_TARGET_DIR:-target}/release/examples
for rep in 1 2 3; do
  for threads in 1 2; do
    echo "load $(cut -d' ' -f1 /proc/loadavg): round $rep, $threads thread(s)" >&2
    export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
    "$BIN/inr_fit_bench" $((512 * threads)) 8 "$threads" >> "$OUT"
    "$PYTHON" bench/inr_fit.py $((512 * threads)) 8 "$threads" >> "$OUT"
    "$BIN/inr_fit_bench" $((64 * threads)) 28 "$threads" >> "$OUT"
    "$PYTHON" bench/inr_fit.py $((64 * threads)) 28 "$threads" >> "$OUT"
    for kind in probegen vanilla; do
      "$BIN/probegen_epoch_bench" 1257 64 "$threads" "$kind" >> "$OUT"
      "$PYTHON" bench/probegen_epoch.py 1257 64 "$threads" "$kind" >> "$OUT"
      "$BIN/probegen_epoch_bench" 1200 32 "$threads" "$kind" cnn >> "$OUT"
      "$PYTHON" bench/probegen_epoch.py 1200 32 "$threads" "$kind" cnn >> "$OUT"
    done
  done
done
"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(bench, impl, key, **match):
    v = [r[key] for r in rows if r["bench"] == bench and r["impl"] == impl and all(r.get(k) == x for k, x in match.items())]
    return statistics.median(v) if v else float("nan")
print("| benchmark | threads | glassbox | PyTorch | glassbox speed vs PyTorch |")
print("|---|---|---|---|---|")
for side in (8, 28):
    for t in (1, 2):
        g, p = med("inr_fit", "glassbox", "per_s", side=side, threads=t), med("inr_fit", "torch", "per_s", side=side, threads=t)
        print(f"| INR fit {side}x{side}, 100 steps (INRs/s) | {t} | {g:.1f} | {p:.1f} | {g / p:.2f}x |")
for family, what in (("inr", "1257 INRs, P = 64"), ("cnn", "1200 CNNs, P = 32")):
    for kind in ("probegen", "vanilla"):
        for t in (1, 2):
            g, p = (med("probegen_epoch", impl, "seconds_per_epoch", family=family, kind=kind, threads=t) for impl in ("glassbox", "torch"))
            print(f"| {kind} epoch, {what} (s) | {t} | {g:.4f} | {p:.4f} | {p / g:.2f}x |")
PY
