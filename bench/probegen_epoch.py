"""PyTorch reference for one training epoch of the ProbeGen reader (spec/probegen.md sections
2.3-2.5) on a zoo of INRs (section 2.7: 2-32-32-1, sin(30.), +0.5; init of section 6 R1).
MODELS synthetic INRs with 10 random labels; P probes from latents Z [P,32] ~ N(0,1) through
Linear(32,32), Linear(32,2) (KIND probegen) or free coordinates [P,2] ~ N(0,1) (KIND vanilla),
shared by all models; representation = each model's P outputs; head Linear(P,256), ReLU,
4 x [Linear(256,256), ReLU], Linear(256,10); cross-entropy; one Adam (lr 3e-4) over probes,
generator and head, CosineAnnealingLR stepped every iteration; batches of 32 shuffled models,
last partial batch kept. The zoo is stacked ([M,32,2], [M,32,32], ...) and a batch's INRs run
as batched GEMMs; the zoo's weights need no gradient. Median of 3 epochs after one warm-up
epoch. Prints one JSON line.

python bench/probegen_epoch.py MODELS PROBES THREADS [KIND]
"""
import json
import math
import statistics
import sys
import time

import torch
from torch import nn

BATCH = 32
WARMUP, TIMED = 1, 3


def zoo(m, gen):
    """Spec 6 R1 init; biases stored as columns so they broadcast over the probe axis."""
    def u(shape, a):
        return (torch.rand(shape, generator=gen) * 2 - 1) * a
    c = math.sqrt(6 / 32) / 30
    return [u((m, 32, 2), 0.5), u((m, 32, 1), 1 / math.sqrt(2)),
            u((m, 32, 32), c), u((m, 32, 1), 1 / math.sqrt(32)),
            u((m, 1, 32), c), u((m, 1, 1), 1 / math.sqrt(32))]


def inr_outputs(w, xt):
    """Outputs [B,P] of a batch of INRs (stacked weights w) at the probes xt [2,P]."""
    w1, b1, w2, b2, w3, b3 = w
    h = torch.sin(torch.baddbmm(b1, w1, xt.expand(w1.shape[0], -1, -1), beta=30, alpha=30))
    h = torch.sin(torch.baddbmm(b2, w2, h, beta=30, alpha=30))
    return torch.baddbmm(b3, w3, h).squeeze(1) + 0.5


def main():
    models, probes, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "probegen"
    if kind not in ("probegen", "vanilla"):
        raise SystemExit(f"unknown kind {kind}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    weights = zoo(models, gen)
    labels = torch.randint(0, 10, (models,), generator=gen)

    if kind == "probegen":
        z = nn.Parameter(torch.randn(probes, 32))
        generator = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 2))
        probe_params = [z, *generator.parameters()]
        def probe_coords():
            return generator(z)
    else:
        x = nn.Parameter(torch.randn(probes, 2))
        probe_params = [x]
        def probe_coords():
            return x
    head = nn.Sequential(nn.Linear(probes, 256), nn.ReLU(),
                         *[m for _ in range(4) for m in (nn.Linear(256, 256), nn.ReLU())],
                         nn.Linear(256, 10))
    params = probe_params + list(head.parameters())
    opt = torch.optim.Adam(params, lr=3e-4, weight_decay=0.0, fused=True)
    steps_per_epoch = (models + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=(WARMUP + TIMED) * steps_per_epoch, eta_min=0.0)

    def epoch():
        perm = torch.randperm(models, generator=gen)
        loss = None
        for i in range(0, models, BATCH):
            idx = perm[i:i + BATCH]
            w = [t.index_select(0, idx) for t in weights]
            xt = probe_coords().t()  # [2,P], shared by the batch
            logits = head(inr_outputs(w, xt))
            loss = nn.functional.cross_entropy(logits, labels.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        return loss.item()

    for _ in range(WARMUP):
        epoch()
    times = []
    for _ in range(TIMED):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "bench": "probegen_epoch", "impl": "torch", "kind": kind, "threads": threads,
        "models": models, "probes": probes, "seconds_per_epoch": statistics.median(times),
    }))


if __name__ == "__main__":
    main()
