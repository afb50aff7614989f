"""Read a bilinear layer: train a bilinear MLP on the built-in glyph images, decompose each
class's interaction matrix into eigenvectors, and check how few of them carry the logits.

    python examples/read_bilinear_layer.py [--out DIR] [--small]
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

import glassbox

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp()) / "bilinear-glyphs")
parser.add_argument("--small", action="store_true", help="a quick run (as the test suite uses)")
args = parser.parse_args()

epochs = 3 if args.small else 30
run = glassbox.train("bilinear", "glyphs", args.out, hidden=[64], epochs=epochs, quiet=True, seed=0)
model = glassbox.load_checkpoint(run.path)
print(f"trained a {model.kind} model {model.input_dim} -> {model.output_dim}: test accuracy {run.metrics['test_accuracy']:.3f}")

# logits_c(x) = sum_i lambda_i (v_i . x)^2 over the eigenpairs of class c's interaction matrix.
decomposition = glassbox.BilinearDecomposition.from_checkpoint(run.path)
x = np.random.default_rng(0).random((64, model.input_dim), dtype=np.float32)
xs = np.hstack([x, np.ones((len(x), 1), np.float32)]) if decomposition.bias_folded else x
rebuilt = np.stack([((xs @ decomposition.input_vectors(c)) ** 2 * decomposition.eigenvalues(c)).sum(1) for c in range(decomposition.n_classes)], 1)
print(f"the eigenvectors rebuild the logits to {np.abs(rebuilt - model(x)).max():.1e}")
print("class  largest eigenvalues       effective rank  share of sum|lambda| in the top 4")
for c in range(decomposition.n_classes):
    values = decomposition.eigenvalues(c)
    top = ", ".join(f"{v:+.3f}" for v in values[:3])
    share = np.abs(values[:4]).sum() / np.abs(values).sum()
    print(f"{c:5d}  {top:24s}  {decomposition.effective_ranks()[c]:14.1f}  {share:.2f}")

# Class 0's leading eigenvector as an image: what the class responds to (+) and against (-).
side = int(round(np.sqrt(model.input_dim)))
if side * side == model.input_dim:
    v = decomposition.input_vectors(0)[: model.input_dim, 0].reshape(side, side)
    v = v / np.abs(v).max()
    print("class 0, leading eigenvector (+ strong positive, - strong negative):")
    for row in v:
        print("  " + "".join("+" if a > 0.4 else "-" if a < -0.4 else "." for a in row))
