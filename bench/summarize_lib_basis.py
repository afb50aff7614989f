"""Tables from bench/lib_basis.py's JSON lines and glassbox's lines of the same form: medians of
basis_s and edges_s per implementation, torch/glassbox ratios (glassbox's speed-up), and the
agreement of the two results (Lambda and edge matrices per layer, relative to torch's).

python bench/summarize_lib_basis.py RESULTS.jsonl GLASSBOX.safetensors TORCH.safetensors
"""
import json
import statistics
import sys

import numpy as np
from safetensors.numpy import load_file

FIELDS = ("basis_s", "edges_s")
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ours, ref = load_file(sys.argv[2]), load_file(sys.argv[3])


def find(impl, threads, samples):
    """The median over repetitions of one configuration, per timing field, and the run count."""
    hits = [r for r in rows if r["impl"] == impl and r["threads"] == threads and r["samples"] == samples]
    if not hits:
        return None
    return {k: statistics.median(h[k] for h in hits) for k in FIELDS} | {"runs": len(hits), "widths": hits[-1]["widths"]}


def cell(g, t, k):
    gs = f"{g[k]:.3f}" if g else "-"
    ts = f"{t[k]:.3f}" if t else "-"
    ratio = f"{t[k] / g[k]:.2f}x" if g and t else "-"
    return f" {gs} | {ts} | {ratio} |"


for threads in sorted({r["threads"] for r in rows}):
    print(f"### {threads} thread{'s' if threads > 1 else ''}")
    print()
    print("| samples | runs (glassbox/torch) | glassbox basis s | torch basis s | basis speed-up"
          " | glassbox edges s | torch edges s | edges speed-up | widths glassbox / torch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for samples in sorted({r["samples"] for r in rows if r["threads"] == threads}):
        g, t = find("glassbox", threads, samples), find("torch", threads, samples)
        runs = f"{g['runs'] if g else 0}/{t['runs'] if t else 0}"
        widths = f"{g['widths'] if g else '-'} / {t['widths'] if t else '-'}"
        print(f"| {samples} | {runs} |" + cell(g, t, "basis_s") + cell(g, t, "edges_s") + f" {widths} |")
    print()


def rel(a, b):
    """max |a - b| / max |b| in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), np.finfo(np.float64).tiny))


print("Agreement, glassbox against torch (max |a - b| / max |b|):")
print()
print("| layer | k glassbox | k torch | Lambda rel. diff | edges shape glassbox / torch | edges rel. diff |")
print("|---|---|---|---|---|---|")
layer = 0
while f"lambda.{layer}" in ref or f"lambda.{layer}" in ours:
    la, lb = ours.get(f"lambda.{layer}"), ref.get(f"lambda.{layer}")
    ea, eb = ours.get(f"edges.{layer}"), ref.get(f"edges.{layer}")
    if la is not None and lb is not None:
        k = min(len(la), len(lb))
        lam = f"{rel(la[:k], lb[:k]):.2e}" + ("" if len(la) == len(lb) else f" (first {k}; widths differ)")
    else:
        lam = "missing"
    ka, kb = (len(la) if la is not None else "-"), (len(lb) if lb is not None else "-")
    if ea is not None and eb is not None:
        shapes = f"{list(ea.shape)} / {list(eb.shape)}"
        edge = f"{rel(ea, eb):.2e}" if ea.shape == eb.shape else "shapes differ"
    else:
        shapes, edge = "-", "missing"
    print(f"| {layer} | {ka} | {kb} | {lam} | {shapes} | {edge} |")
    layer += 1
