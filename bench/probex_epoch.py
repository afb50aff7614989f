"""PyTorch reference for one training epoch of ProbeX (Horwitz et al. 2025, "Learning on Model
Weights using Tree Experts": its layers, hyper-parameters and loss as the authors' code has them)
on MODELS synthetic SIDE x SIDE layers (d_H = d_W = SIDE, entries N(0, 0.02^2); only the shape
matters) with 100 classes, each model a random 50-of-100 multi-hot target. r_U = r_V = r_T = 128:
probes Linear(128, SIDE, bias=False) (weight = U), shared_probe_proj Linear(SIDE, 128,
bias=False), ReLU, per_probe_encoders Linear(128*128, 128), classification_head Linear(128, 100),
batched as the reference code does (R = X @ U -> transpose -> shared projection -> ReLU ->
reshape [B, r_U*r_V] -> encoder -> head). BCEWithLogitsLoss (mean), Adam lr 1e-3 with
weight_decay 1e-5 (L2 into the gradient; the fused kernel), batches of 128 shuffled models, last partial batch
kept. The layers are stacked in one tensor [M, SIDE, SIDE] that needs no gradient; a batch's
layers are copied row by row into one preallocated [128, SIDE, SIDE] buffer (on this box
`index_select` of 128 768x768 layers took 0.5-1 s, `x[idx]` 0.2 s, the copies 16 ms, so the
reference does not pay for a slow gather; the copy is needed because the batched matmul wants
one contiguous batch). Median of 3 epochs after one warm-up epoch. Prints one JSON line.

python bench/probex_epoch.py MODELS SIDE THREADS
"""
import json
import statistics
import sys
import time

import torch
from torch import nn

BATCH = 128
RANK = 128
CLASSES = 100
WARMUP, TIMED = 1, 3


class ProbeX(nn.Module):
    def __init__(self, d_h, d_w, d_y, r_u, r_v, r_t):
        super().__init__()
        self.r_u, self.r_v = r_u, r_v
        self.probes = nn.Linear(r_u, d_w, bias=False)
        self.shared_probe_proj = nn.Linear(d_h, r_v, bias=False)
        self.per_probe_encoders = nn.Linear(r_u * r_v, r_t)
        self.classification_head = nn.Linear(r_t, d_y)

    def forward(self, x):
        r = torch.matmul(x, self.probes.weight)  # [B, d_H, r_U]
        h = torch.relu(self.shared_probe_proj(r.transpose(1, 2)))  # [B, r_U, r_V]
        e = self.per_probe_encoders(h.reshape(x.shape[0], self.r_u * self.r_v))
        return self.classification_head(e)


def main():
    models, side, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(models, side, side, generator=gen) * 0.02
    targets = torch.zeros(models, CLASSES)
    for m in range(models):
        targets[m, torch.randperm(CLASSES, generator=gen)[:CLASSES // 2]] = 1.0

    model = ProbeX(side, side, CLASSES, RANK, RANK, RANK)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=True)
    loss_fn = nn.BCEWithLogitsLoss()

    buf = torch.empty(min(BATCH, models), side, side)

    def epoch():
        perm = torch.randperm(models, generator=gen)
        loss = None
        for i in range(0, models, BATCH):
            idx = perm[i:i + BATCH]
            for j, k in enumerate(idx.tolist()):
                buf[j].copy_(x[k])
            loss = loss_fn(model(buf[:len(idx)]), targets.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return loss.item()

    for _ in range(WARMUP):
        epoch()
    times = []
    for _ in range(TIMED):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "bench": "probex_epoch", "impl": "torch", "threads": threads, "models": models,
        "side": side, "rank": RANK, "seconds_per_epoch": statistics.median(times),
    }))


if __name__ == "__main__":
    main()
