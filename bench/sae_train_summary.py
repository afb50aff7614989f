"""Tables for bench/sae_train.sh from its JSON lines: medians over rounds and ratios
(glassbox speed / reference speed; > 1: glassbox faster).

  python bench/sae_train_summary.py bench/results/sae_train.jsonl
"""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]


def med(values):
    return (statistics.median(values), len(values)) if values else (float("nan"), 0)


speed = [r for r in rows if r.get("phase") == "speed"]
if speed:
    print("A. TopK SAE training on SmolLM2 activations (k 32, 4608 latents): tokens/s, medians over rounds")
    print()
    print("| batch | threads | glassbox tok/s | SAELens tok/s | ratio | rounds | tokens per run |")
    print("|---|---|---|---|---|---|---|")
    for batch in sorted({r["batch"] for r in speed}, reverse=True):
        for t in (1, 2):
            g, n = med([r["tokens_per_s"] for r in speed if (r["impl"], r["batch"], r["threads"]) == ("glassbox", batch, t)])
            s, _ = med([r["tokens_per_s"] for r in speed if (r["impl"], r["batch"], r["threads"]) == ("saelens", batch, t)])
            tokens = next((r["tokens"] for r in speed if r["batch"] == batch), 0)
            print(f"| {batch} | {t} | {g:.0f} | {s:.0f} | {g / s:.2f}x | {n} | {tokens} |")
    print()

quality = [r for r in rows if r.get("phase") == "quality"]
if quality:
    print("A. Same rows, one run each per batch size")
    print()
    print("| impl | batch | threads | tokens | tok/s | held-out explained variance | held-out MSE | last batch EV | latents never fired |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in quality:
        print(f'| {r["impl"]} | {r["batch"]} | {r["threads"]} | {r["tokens"]} | {r["tokens_per_s"]:.0f} | {r["heldout_explained_variance"]:.4f} | '
              f'{r["heldout_mse"]:.1f} | {r["last_train_explained_variance"]:.4f} | {r["never_fired"]} |')
    for batch in sorted({r["batch"] for r in quality}, reverse=True):
        ev = {r["impl"]: r["heldout_explained_variance"] for r in quality if r["batch"] == batch}
        sp = {r["impl"]: r["tokens_per_s"] for r in quality if r["batch"] == batch}
        if {"glassbox", "saelens"} <= ev.keys():
            print()
            print(f'batch {batch}: explained variance glassbox - SAELens: {ev["glassbox"] - ev["saelens"]:+.4f}; '
                  f'speed ratio in this run: {sp["glassbox"] / sp["saelens"]:.2f}x')
    print()

breakdown = [r for r in rows if r.get("phase") == "breakdown"]
if breakdown:
    print("glassbox training step, batch 4096, 1 thread: " + ", ".join(
        f'{r["part"]} {1e3 * r["seconds"]:.0f} ms ({100 * r["share"]:.0f} %)' for r in breakdown))
    print()

steps = [r for r in rows if r.get("phase") == "step"]
if steps:
    print("B. Step times on random data, medians over rounds (ratio = reference time / glassbox time)")
    print()
    print("| step | threads | glassbox ms | reference | reference ms | ratio | rounds |")
    print("|---|---|---|---|---|---|---|")
    for model in ("topk", "usae"):
        refs = ("torch",) if model == "topk" else ("torch", "torch-lean")
        for t in (1, 2):
            g, n = med([r["seconds"] for r in steps if (r["impl"], r["model"], r["threads"]) == ("glassbox", model, t)])
            for ref in refs:
                p, _ = med([r["seconds"] for r in steps if (r["impl"], r["model"], r["threads"]) == (ref, model, t)])
                if n:
                    name = {"torch": "PyTorch" if model == "topk" else "PyTorch, official", "torch-lean": "PyTorch, lean"}[ref]
                    print(f"| {model} | {t} | {1e3 * g:.0f} | {name} | {1e3 * p:.0f} | {p / g:.2f}x | {n} |")
    print()

loads = [r for r in rows if r["bench"] == "sae_train_load"]
if loads:
    avgs = [float(r["loadavg"].split()[0]) for r in loads]
    print(f"1-minute load average before the runs: {min(avgs):.2f}-{max(avgs):.2f} (median {statistics.median(avgs):.2f})")
