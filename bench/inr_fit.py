"""PyTorch reference for the INR zoo fit of `glassbox zoo build digits-inr`: N independent SIREN
INRs (Linear(2,32), sin(30.), Linear(32,32), sin(30.), Linear(32,1), +0.5; SIREN init), each
fitted full-batch to one image on the grid linspace(-1,1,SIDE)^2 (x = column, y = row) with
Adam lr 1e-3 for 100 steps. SIDE 8: the first N sklearn digits (pixel/16); SIDE 28: the first
N MNIST training images (pixel/255). Prints one JSON line.

python bench/inr_fit.py N SIDE THREADS [VARIANT]

The models are stacked ([B,32,2], [B,32], ...) and fitted CHUNK at a time. VARIANT (default
compile, the fastest):
  compile  batched forward (torch.baddbmm over the stacked weights), torch.compile'd, autograd
  eager    the same forward without torch.compile
  vmap     torch.func.vmap(torch.func.grad(per-model loss)) over the stacked weights
Adam is torch.optim.Adam(fused=True) on the stacked leaf tensors (elementwise, so identical to
N separate Adams; the fastest of fused / foreach / hand-written _foreach). Only the fitting is
timed: not the init, the data loading, the warm-up (which compiles every chunk shape used) or
the final MSE evaluation.
"""
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch.func import grad, vmap

STEPS = 100
# Models per chunk, from a 1-thread sweep of the compile variant (about 8-12k pixel
# evaluations per chunk; 2-4x bigger chunks were 10-30% slower, as the [B,32,pixels]
# activations leave the cache; smaller ones pay more per-step overhead).
CHUNK = {8: 128, 28: 16}
DATA = os.environ.get("GLASSBOX_DATA", os.path.expanduser("~/.cache/glassbox/data"))


def targets(n, side):
    if side == 8:
        with gzip.open(os.path.join(DATA, "sklearn-digits", "digits.csv.gz"), "rt") as f:
            rows = np.loadtxt(f, delimiter=",", dtype=np.float32, max_rows=n)
        img = rows.reshape(-1, 65)[:, :64] / 16.0
    elif side == 28:
        with gzip.open(os.path.join(DATA, "mnist", "train-images-idx3-ubyte.gz"), "rb") as f:
            raw = f.read(16 + n * 784)
        assert int.from_bytes(raw[:4], "big") == 0x803
        img = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
    else:
        raise SystemExit("SIDE must be 8 (sklearn digits) or 28 (MNIST)")
    if img.shape[0] < n:
        raise SystemExit(f"only {img.shape[0]} images for SIDE {side}")
    return torch.from_numpy(np.ascontiguousarray(img[:n]))


def init(n, gen):
    """SIREN init, as glassbox's INR zoos: W1 ~ U(+-1/2), W2, W3 ~ U(+-sqrt(6/32)/30), biases ~
    U(+-1/sqrt(fan_in)).
    Biases are stored as columns ([B,32,1]) so they broadcast over the pixel axis."""
    def u(shape, a):
        return (torch.rand(shape, generator=gen) * 2 - 1) * a
    c = math.sqrt(6 / 32) / 30
    return [u((n, 32, 2), 0.5), u((n, 32, 1), 1 / math.sqrt(2)),
            u((n, 32, 32), c), u((n, 32, 1), 1 / math.sqrt(32)),
            u((n, 1, 32), c), u((n, 1, 1), 1 / math.sqrt(32))]


def mse_batched(p, xt, t):
    """Per-model MSE [B]; activations feature-major [B,32,pixels], xt = grid^T [2,pixels].
    The 30 of sin(30.) is folded into baddbmm's alpha/beta."""
    w1, b1, w2, b2, w3, b3 = p
    h = torch.sin(torch.baddbmm(b1, w1, xt.expand(w1.shape[0], -1, -1), beta=30, alpha=30))
    h = torch.sin(torch.baddbmm(b2, w2, h, beta=30, alpha=30))
    o = torch.baddbmm(b3, w3, h).squeeze(1) + 0.5
    return ((o - t) ** 2).mean(1)


def loss_batched(p, xt, t):
    # Sum of the per-model means: each model's gradient is exactly its own MSE gradient.
    return mse_batched(p, xt, t).sum()


def mse_one(p, xt, t):
    w1, b1, w2, b2, w3, b3 = p
    h = torch.sin(torch.addmm(b1, w1, xt, beta=30, alpha=30))
    h = torch.sin(torch.addmm(b2, w2, h, beta=30, alpha=30))
    o = torch.addmm(b3, w3, h).squeeze(0) + 0.5
    return ((o - t) ** 2).mean()


def make_grads(variant):
    if variant == "vmap":
        g = vmap(grad(mse_one), in_dims=(0, None, 0))
        return lambda p, xt, t: g(tuple(p), xt, t)
    lossf = torch.compile(loss_batched, dynamic=False) if variant == "compile" else loss_batched
    return lambda p, xt, t: torch.autograd.grad(lossf(p, xt, t), p)


def fit(params, xt, t, grads_fn, steps, needs_grad):
    p = [x.clone().requires_grad_(needs_grad) for x in params]
    opt = torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, fused=True)
    for _ in range(steps):
        for x, g in zip(p, grads_fn(p, xt, t)):
            # Fused CPU Adam silently mis-updates with non-contiguous grads (torch 2.15).
            x.grad = g.contiguous()
        opt.step()
    return [x.detach() for x in p]


def main():
    n, side, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    variant = sys.argv[4] if len(sys.argv) > 4 else "compile"
    if variant not in ("compile", "eager", "vmap"):
        raise SystemExit(f"unknown variant {variant}")
    torch.set_num_threads(threads)
    lin = torch.linspace(-1, 1, side)
    k = torch.arange(side * side)
    xt = torch.stack([lin[k % side], lin[k // side]]).contiguous()  # [2, side^2]: x = column, y = row
    t_all = targets(n, side)
    params = init(n, torch.Generator().manual_seed(0))
    chunk = CHUNK[side]
    grads_fn = make_grads(variant)
    needs_grad = variant != "vmap"

    # Warm-up (untimed): every chunk shape the timed run uses, so torch.compile is done.
    for b in sorted({min(chunk, n), n % chunk} - {0}):
        fit([x[:b] for x in params], xt, t_all[:b], grads_fn, 3, needs_grad)

    fitted, seconds = [], 0.0
    for i in range(0, n, chunk):
        t0 = time.perf_counter()
        fitted.append(fit([x[i:i + chunk] for x in params], xt, t_all[i:i + chunk], grads_fn, STEPS, needs_grad))
        seconds += time.perf_counter() - t0
    with torch.no_grad():
        mse = torch.cat([mse_batched(p, xt, t_all[i * chunk:(i + 1) * chunk]) for i, p in enumerate(fitted)])
    mse = mse.double().numpy()
    print(json.dumps({
        "bench": "inr_fit", "impl": "torch", "variant": variant, "threads": threads, "n": n,
        "side": side, "steps": STEPS, "seconds": seconds, "per_s": n / seconds,
        "mean_mse": float(mse.mean()), "p90_mse": float(np.percentile(mse, 90)),
    }))


if __name__ == "__main__":
    main()
