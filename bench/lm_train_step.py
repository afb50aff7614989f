"""PyTorch reference for crates/lm/examples/lm_train_step.rs: the identical language models and
training step (next-token cross-entropy over every position, AdamW betas (0.9, 0.95), weight
decay 0.1, lr 1e-3) on one fixed random batch of token contexts, written as a PyTorch user
would (nn.Linear, F.scaled_dot_product_attention). Prints one JSON line like the Rust example.

python bench/lm_train_step.py gpt|bilinear THREADS
"""
import json
import math
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VOCAB, CTX, BATCH, D, LAYERS, HEADS = 4096, 128, 16, 256, 4, 4
BLOCKS, WARMUP, STEPS = 5, 3, 5


class RmsNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps), no gain."""

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-8)


def rotary(t, base=10000.0):
    """Rotate-half rotary embedding of [batch, heads, positions, d_head]."""
    n, dh = t.shape[-2], t.shape[-1]
    inv = base ** (-torch.arange(0, dh, 2, dtype=torch.float64) / dh)
    angle = torch.outer(torch.arange(n, dtype=torch.float64), inv)
    angle = torch.cat([angle, angle], dim=-1)
    cos, sin = angle.cos().to(t.dtype), angle.sin().to(t.dtype)
    half = dh // 2
    rotated = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
    return t * cos + rotated * sin


class Block(nn.Module):
    def __init__(self, bilinear):
        super().__init__()
        self.bilinear = bilinear
        bias = not bilinear
        self.ln1 = RmsNorm() if bilinear else nn.LayerNorm(D, eps=1e-5)
        self.ln2 = RmsNorm() if bilinear else nn.LayerNorm(D, eps=1e-5)
        self.qkv = nn.Linear(D, 3 * D, bias=bias)
        self.out = nn.Linear(D, D, bias=bias)
        if bilinear:
            self.w = nn.Linear(D, 512, bias=False)
            self.v = nn.Linear(D, 512, bias=False)
            self.p = nn.Linear(512, D, bias=False)
        else:
            self.fc = nn.Linear(D, 768)
            self.proj = nn.Linear(768, D)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(b, n, HEADS, D // HEADS).transpose(1, 2) for t in (q, k, v))
        if self.bilinear:
            q, k = rotary(q), rotary(k)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        attn = self.out(z.transpose(1, 2).reshape(b, n, D))
        x = x + (attn / math.sqrt(2 * LAYERS) if self.bilinear else attn)
        h = self.ln2(x)
        mlp = self.p(self.w(h) * self.v(h)) if self.bilinear else self.proj(F.gelu(self.fc(h)))
        return x + mlp


class Model(nn.Module):
    def __init__(self, bilinear):
        super().__init__()
        self.bilinear = bilinear
        self.embed = nn.Embedding(VOCAB, D)
        self.pos = None if bilinear else nn.Parameter(torch.randn(CTX, D) * 0.02)
        self.blocks = nn.ModuleList(Block(bilinear) for _ in range(LAYERS))
        self.ln_f = RmsNorm() if bilinear else nn.LayerNorm(D, eps=1e-5)
        self.head = nn.Linear(D, VOCAB, bias=False) if bilinear else None

    def forward(self, tokens):
        x = self.embed(tokens)
        if self.pos is not None:
            x = x + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return self.head(x) if self.head is not None else x @ self.embed.weight.T


def cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    name, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Model(name == "bilinear")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, VOCAB, (BATCH, CTX + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)

    def step():
        # Host-to-tensor conversion each step, as glassbox builds its batch tensors.
        t = torch.from_numpy(rows.copy())
        x, y = t[:, :-1], t[:, 1:]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(WARMUP):
        step()
    wall, cpu, loss = [], [], 0.0
    for _ in range(BLOCKS):
        w0, c0 = time.perf_counter(), cpu_seconds()
        for _ in range(STEPS):
            loss = step()
        wall.append((time.perf_counter() - w0) / STEPS * 1e3)
        cpu.append((cpu_seconds() - c0) / STEPS * 1e3)
    ms = statistics.median(wall)
    print(json.dumps({
        "impl": "pytorch", "version": torch.__version__, "model": name, "threads": threads,
        "params": sum(p.numel() for p in model.parameters()), "batch": BATCH, "context": CTX,
        "ms_per_step": ms, "tokens_per_s": BATCH * CTX / ms * 1e3,
        "cpu_ms_per_step": statistics.median(cpu), "final_loss": loss,
    }))


if __name__ == "__main__":
    main()
