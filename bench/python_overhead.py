"""What a Python call adds to a fast operation: one SAE encode of 4,096 x 576 activations
(SmolLM2's residual width; 4,608 latents, TopK k = 32) called from Python through the glassbox
package, against the same encode timed inside Rust in the same process, alternating.

    python bench/python_overhead.py [--rounds 9] [--calls 20]

Prints the median seconds per encode of each and the overhead ratio (Python / Rust - 1).
"""

import argparse
import statistics
import time

import numpy as np

import glassbox
from glassbox import _glassbox

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--rounds", type=int, default=9)
parser.add_argument("--calls", type=int, default=20)
args = parser.parse_args()

rng = np.random.default_rng(0)
x = rng.standard_normal((4096, 576)).astype(np.float32)
trainer = _glassbox.SAETrainer(576, 4608, "topk", k=32, seed=0)
trainer.step(x[:256])
sae = glassbox.SAE(trainer.to_sae())

sae.encode(x)  # warm up both paths
_glassbox._encode_seconds_in_rust(sae._inner, x, 2)
python, rust = [], []
for _ in range(args.rounds):
    for _ in range(args.calls):
        start = time.perf_counter()
        sae.encode(x)
        python.append(time.perf_counter() - start)
    rust += _glassbox._encode_seconds_in_rust(sae._inner, x, args.calls)
p, r = statistics.median(python), statistics.median(rust)
print(f"encode 4096 x 576 -> 4608 latents (k 32), {len(python)} calls each, medians:")
print(f"  from Python: {p * 1e3:.3f} ms")
print(f"  in Rust:     {r * 1e3:.3f} ms")
print(f"  overhead:    {100 * (p / r - 1):+.2f} %")
