"""Table of glassbox/PyTorch speed ratios from the JSON lines of bench/train_step.sh or
bench/lm_train_step.sh (medians over repetitions)."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
# Models in the order the benchmark ran them.
models = list(dict.fromkeys(r["model"] for r in rows))


def find(impl, model, threads, shards=None):
    """The median over repetitions of one configuration, per timing field."""
    hits = [r for r in rows if r["impl"] == impl and r["model"] == model and r["threads"] == threads and (shards is None or r.get("shards") == shards)]
    if not hits:
        return None
    return {k: statistics.median(h[k] for h in hits) for k in ("ms_per_step", "cpu_ms_per_step")}


print("| model | threads | glassbox ms/step | PyTorch ms/step | speed vs PyTorch | glassbox CPU ms/step | PyTorch CPU ms/step |")
print("|---|---|---|---|---|---|---|")
for model in models:
    for threads in [1, 2]:
        g, t = find("glassbox", model, threads, 2), find("pytorch", model, threads)
        print(f"| {model} | {threads} | {g['ms_per_step']:.2f} | {t['ms_per_step']:.2f} | {t['ms_per_step'] / g['ms_per_step']:.2f}x"
              f" | {g['cpu_ms_per_step']:.2f} | {t['cpu_ms_per_step']:.2f} |")
print()
print("Speed-up from the second thread. Same computation: glassbox with 2 shards at 1 and 2 threads (bit-identical")
print("results). Best 1-thread: glassbox with 1 shard at 1 thread against 2 shards at 2 threads.")
print()
print("| model | glassbox, same computation | glassbox, best 1-thread | PyTorch | glassbox 1 thread 1 shard ms/step | vs PyTorch 1 thread |")
print("|---|---|---|---|---|---|")
for model in models:
    g1, g2 = find("glassbox", model, 1, 2), find("glassbox", model, 2, 2)
    t1, t2 = find("pytorch", model, 1), find("pytorch", model, 2)
    one = find("glassbox", model, 1, 1)
    print(f"| {model} | {g1['ms_per_step'] / g2['ms_per_step']:.2f}x | {one['ms_per_step'] / g2['ms_per_step']:.2f}x"
          f" | {t1['ms_per_step'] / t2['ms_per_step']:.2f}x | {one['ms_per_step']:.2f} | {t1['ms_per_step'] / one['ms_per_step']:.2f}x |")
