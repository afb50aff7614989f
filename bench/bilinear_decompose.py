"""Reference for crates/bilinear/examples/decompose_bench.rs: the same decomposition of all 10
classes (B_c = sym(W^T diag(U_c) V), eigh in f64, pixel vectors E^T v) and the same truncation
curve (top-k by |λ| per class, one projection per class, cumulative sums), in numpy and in
PyTorch, from the weights and images the Rust program wrote.

python bench/bilinear_decompose.py THREADS INPUT.safetensors
"""
import json
import statistics
import sys
import time

import numpy as np
import torch
from safetensors.numpy import load_file

KS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30]
REPEATS = 5


def decompose(lib, E, W, V, U):
    vals, pix = [], []
    for c in range(U.shape[0]):
        q = W.T @ (U[c][:, None] * V)
        q = 0.5 * (q + q.T)
        lam, vec = lib.linalg.eigh(q)
        order = lib.argsort(-lib.abs(lam)) if lib is np else torch.argsort(-lam.abs())
        lam, vec = lam[order], vec[:, order]
        vals.append(lam)
        pix.append(E.T @ vec)
    return vals, pix


def curve(lib, vals, pix, X, labels):
    kmax = max(KS)
    terms = [vals[c][:kmax] * (X @ pix[c][:, :kmax]) ** 2 for c in range(len(vals))]
    out = []
    for k in KS:
        logits = lib.stack([t[:, :k].sum(1) for t in terms], 1)
        out.append(float((logits.argmax(1) == labels).double().mean()) if lib is torch else float((logits.argmax(1) == labels).mean()))
    return out


def bench(lib, tensors):
    if lib is torch:
        tensors = {k: torch.from_numpy(v) for k, v in tensors.items()}
    E, W, V, U, X, labels = (tensors[k] for k in ["E", "W", "V", "U", "X", "labels"])
    t_dec, t_curve = [], []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        vals, pix = decompose(lib, E, W, V, U)
        t_dec.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        acc = curve(lib, vals, pix, X, labels)
        t_curve.append(time.perf_counter() - t1)
    return statistics.median(t_dec), statistics.median(t_curve), acc


def main():
    threads, path = int(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(threads)
    raw = load_file(path)
    tensors = {k: v.astype(np.float64) for k, v in raw.items()}
    tensors["labels"] = raw["labels"].astype(np.int64)
    for name, lib in [("numpy", np), ("pytorch", torch)]:
        d, c, acc = bench(lib, dict(tensors))
        print(json.dumps({"impl": name, "threads": threads, "decompose_s": d, "truncation_curve_s": c, "curve": acc}))


if __name__ == "__main__":
    main()
