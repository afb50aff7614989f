"""PyTorch reference for one training epoch of the ProbeGen reader (Kahana et al. 2025: generator,
head and training as in the authors' code) on a zoo of INRs (the authors' SIREN wrapper:
2-32-32-1, sin(30.), +0.5; SIREN's init, as glassbox's digits-INR zoo draws it).
MODELS synthetic INRs with 10 random labels; P probes from latents Z [P,32] ~ N(0,1) through
Linear(32,32), Linear(32,2) (KIND probegen) or free coordinates [P,2] ~ N(0,1) (KIND vanilla),
shared by all models; representation = each model's P outputs; head Linear(P,256), ReLU,
4 x [Linear(256,256), ReLU], Linear(256,10); cross-entropy; one Adam (lr 3e-4) over probes,
generator and head, CosineAnnealingLR stepped every iteration; batches of 32 shuffled models,
last partial batch kept. The zoo is stacked ([M,32,2], [M,32,32], ...) and a batch's INRs run
as batched GEMMs; the zoo's weights need no gradient. Median of 3 epochs after one warm-up
epoch. Prints one JSON line.

FAMILY cnn: mnist-cnn-acc CNNs (3x3 stride-2 padding-1 convolutions 1->8->8->8, ReLU or tanh per
model, global average pool, Linear 8->10; He-scaled normal weights) with a random accuracy in
[0, 1] to regress (MSE); probes are 28x28 images, tanh of ProbeGen's transposed-convolution
generator (glassbox's 28x28 stack, weightspace::deconv) or of free pixels; the head reads P*10
logits. A batch's CNNs run as grouped convolutions (groups = models), as in
bench/probegen_cnn_reference.py.

python bench/probegen_epoch.py MODELS PROBES THREADS [KIND] [FAMILY]
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
    """SIREN init, as glassbox's INR zoos; biases are columns to broadcast over the probe axis."""
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


def cnn_zoo(m, gen):
    """Stacked CNN weights (He-scaled normal) and a ReLU-or-tanh flag per model."""
    w = []
    for ci in (1, 8, 8):
        w += [torch.randn((m, 8, ci, 3, 3), generator=gen) * math.sqrt(2 / (ci * 9)), torch.randn((m, 8), generator=gen) * math.sqrt(2 / (ci * 9))]
    w += [torch.randn((m, 10, 8), generator=gen) * math.sqrt(2 / 8), torch.randn((m, 10), generator=gen) * math.sqrt(2 / 8)]
    return w + [torch.arange(m) % 2 == 0]


def cnn_outputs(w, x):
    """Logits [B, P*10] of a batch of CNNs (stacked weights w) on the probe images x [P,1,28,28]."""
    *convs, head_w, head_b, relu = w
    b = head_w.shape[0]
    h = x.repeat(1, b, 1, 1)
    r = relu.repeat_interleave(8).view(1, -1, 1, 1)
    for l in range(3):
        cw, cb = convs[2 * l], convs[2 * l + 1]
        h = nn.functional.conv2d(h, cw.reshape(b * 8, cw.shape[2], 3, 3), cb.reshape(-1), stride=2, padding=1, groups=b)
        h = torch.where(r, torch.relu(h), torch.tanh(h))
    g = h.mean((2, 3)).view(x.shape[0], b, 8)
    return (torch.einsum("pbc,bkc->bpk", g, head_w) + head_b[:, None, :]).reshape(b, -1)


def main():
    models, probes, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "probegen"
    family = sys.argv[5] if len(sys.argv) > 5 else "inr"
    if kind not in ("probegen", "vanilla") or family not in ("inr", "cnn"):
        raise SystemExit(f"unknown kind {kind} or family {family}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    if family == "cnn":
        weights = cnn_zoo(models, gen)
        targets = torch.rand((models,), generator=gen)
        outputs, n_out = cnn_outputs, 1
        if kind == "probegen":
            z = nn.Parameter(torch.randn(probes, 32, 1, 1))
            generator = nn.Sequential(nn.ConvTranspose2d(32, 64, 4, 1, 0), nn.ConvTranspose2d(64, 32, 3, 2, 1), nn.ConvTranspose2d(32, 16, 4, 2, 1),
                                      nn.ConvTranspose2d(16, 16, 4, 2, 1), nn.ConvTranspose2d(16, 1, 3, 1, 1))
            probe_params = [z, *generator.parameters()]
            probe_input = lambda: torch.tanh(generator(z))
        else:
            free = nn.Parameter(torch.randn(probes, 1, 28, 28))
            probe_params = [free]
            probe_input = lambda: torch.tanh(free)
        loss_fn = lambda out, idx: nn.functional.mse_loss(out.squeeze(1), targets.index_select(0, idx))
        rep_width = probes * 10
    else:
        weights = zoo(models, gen)
        labels = torch.randint(0, 10, (models,), generator=gen)
        outputs, n_out = (lambda w, x: inr_outputs(w, x.t())), 10
        loss_fn = lambda out, idx: nn.functional.cross_entropy(out, labels.index_select(0, idx))
        rep_width = probes
        probe_params, probe_input = inr_probes(kind, probes)
    run_epochs(models, probes, threads, kind, family, weights, outputs, n_out, loss_fn, rep_width, probe_params, probe_input, gen)


def inr_probes(kind, probes):
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
    return probe_params, probe_coords


def run_epochs(models, probes, threads, kind, family, weights, outputs, n_out, loss_fn, rep_width, probe_params, probe_input, gen):
    head = nn.Sequential(nn.Linear(rep_width, 256), nn.ReLU(),
                         *[m for _ in range(4) for m in (nn.Linear(256, 256), nn.ReLU())],
                         nn.Linear(256, n_out))
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
            out = head(outputs(w, probe_input()))  # the probes are shared by the batch
            loss = loss_fn(out, idx)
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
        "bench": "probegen_epoch", "impl": "torch", "family": family, "kind": kind, "threads": threads,
        "models": models, "probes": probes, "seconds_per_epoch": statistics.median(times),
    }))


if __name__ == "__main__":
    main()
