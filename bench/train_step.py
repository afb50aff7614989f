"""PyTorch reference for crates/core/examples/train_step.rs: the identical training step
(same layers, shapes, batch, loss and AdamW with weight decay 0, lr 1e-3) on one fixed
synthetic batch. Prints one JSON line like the Rust example.

python bench/train_step.py MODEL THREADS
"""
import json
import resource
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

BLOCKS = 7


class Bilinear(nn.Module):
    """logits = U((W E x) * (V E x)), no biases: glassbox's Architecture::Bilinear."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(784, 512, bias=False)
        self.w = nn.Linear(512, 512, bias=False)
        self.v = nn.Linear(512, 512, bias=False)
        self.head = nn.Linear(512, 10, bias=False)

    def forward(self, x):
        e = self.embed(x)
        return self.head(self.w(e) * self.v(e))


def build(name):
    if name == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10)), 128, 20, 50
    if name == "bilinear":
        return Bilinear(), 128, 20, 50
    if name == "cnn":
        model = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )
        return model, 64, 10, 30
    raise SystemExit(f"unknown model {name}")


def cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, batch, warmup, steps = build(name)
    rng = np.random.default_rng(0)
    x_host = rng.random((batch, 784), dtype=np.float32)
    y_host = rng.integers(0, 10, batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)

    def step():
        # Host-to-tensor conversion each step, as glassbox builds its batch tensors.
        x, y = torch.from_numpy(x_host.copy()), torch.from_numpy(y_host.copy())
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    wall, cpu, loss = [], [], 0.0
    for _ in range(BLOCKS):
        w0, c0 = time.perf_counter(), cpu_seconds()
        for _ in range(steps):
            loss = step()
        wall.append((time.perf_counter() - w0) / steps * 1e3)
        cpu.append((cpu_seconds() - c0) / steps * 1e3)
    print(json.dumps({
        "impl": "pytorch", "version": torch.__version__, "model": name, "threads": threads,
        "batch": batch, "ms_per_step": statistics.median(wall), "cpu_ms_per_step": statistics.median(cpu),
        "final_loss": loss,
    }))


if __name__ == "__main__":
    main()
