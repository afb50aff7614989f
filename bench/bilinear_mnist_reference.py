"""Independent PyTorch run of the full-MNIST bilinear recipe of Pearce et al. 2024, "Bilinear MLPs
enable weight-based mechanistic interpretability" (its Table 1 and code), and of its truncation
curve (Fig. 5, App F), to tell whether a truncation result belongs to glassbox or to the recipe.

Model E (784->d_h) -> bilinear (d_h -> d_h, one Linear of 2*d_h rows, as the reference code
stores it) -> U (d_h->10), no biases, PyTorch default init. AdamW lr 1e-3, wd 1.0 (decoupled, on
every parameter), cosine per epoch (T_max = epochs), batch 2048 shuffled with drop_last,
Gaussian noise sigma 0.5 on every training batch, clean test set. Then the truncation curve:
per class the top-k eigenpairs of sym(W^T diag(U_c) V) by |lambda| (eigh in f64), logits
sum_i lambda_i ((E^T v_i) . x)^2, accuracy on the 10k test images.

python bench/bilinear_mnist_reference.py DATA_DIR SEED [--epochs 50] [--threads 1] [--save DIR]
prints one JSON line with the test accuracy, the truncation curve and the effective ranks. --save
writes the weights as DIR/model.safetensors with DIR/map.json, for
`glassbox bilinear DIR/model.safetensors --weights-map DIR/map.json --dataset mnist --samples 0`.
DATA_DIR is a glassbox data folder holding mnist/: `glassbox data fetch mnist` fills the default
one, ~/.cache/glassbox/data.
"""
import argparse
import gzip
import json
import os
import sys

import numpy as np
import torch
from torch import nn

from bilinear_decompose import decompose
from safetensors.torch import save_file

KS = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30]
D_H, SIGMA, WD, LR, BATCH = 512, 0.5, 1.0, 1e-3, 2048


def idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def mnist(root, split):
    x = idx(f"{root}/mnist/{split}-images-idx3-ubyte.gz", 16).reshape(-1, 784)
    y = idx(f"{root}/mnist/{split}-labels-idx1-ubyte.gz", 8)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(784, D_H, bias=False)
        self.bilinear = nn.Linear(D_H, 2 * D_H, bias=False)
        self.head = nn.Linear(D_H, 10, bias=False)

    def forward(self, x):
        left, right = self.bilinear(self.embed(x)).chunk(2, dim=-1)
        return self.head(left * right)


def truncation(model, x, y):
    """The decomposition of bench/bilinear_decompose.py (per class, sorted by |lambda|, pixel
    vectors E^T v), the accuracy for each k in KS and the effective rank (L1/L2)^2 per class."""
    W, V = model.bilinear.weight.double().chunk(2, dim=0)
    vals, pix = decompose(torch, model.embed.weight.double(), W, V, model.head.weight.double())
    ranks = [float(lam.abs().sum() ** 2 / (lam**2).sum()) for lam in vals]
    terms = [lam[: max(KS)] * (x.double() @ p[:, : max(KS)]) ** 2 for lam, p in zip(vals, pix)]
    curve = {}
    for k in KS:
        logits = torch.stack([t[:, :k].sum(1) for t in terms], 1)
        curve[k] = float((logits.argmax(1) == y).double().mean())
    return curve, ranks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="folder holding mnist/")
    ap.add_argument("seed", type=int)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="write the trained weights here, with a glassbox weight map")
    a = ap.parse_args()
    root, seed, epochs = a.data, a.seed, a.epochs
    torch.set_num_threads(a.threads)
    xtr, ytr = mnist(root, "train")
    xte, yte = mnist(root, "t10k")

    torch.manual_seed(seed)
    model = Model()
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    steps = len(xtr) // BATCH
    for epoch in range(epochs):
        perm = torch.randperm(len(xtr))
        for s in range(steps):
            b = perm[s * BATCH : (s + 1) * BATCH]
            x = xtr[b] + SIGMA * torch.randn(BATCH, 784)
            loss = nn.functional.cross_entropy(model(x), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if (epoch + 1) % 10 == 0:
            with torch.no_grad():
                acc = float((model(xte).argmax(1) == yte).float().mean())
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}, test accuracy {acc:.4f}", file=sys.stderr)

    with torch.no_grad():
        full = float((model(xte).argmax(1) == yte).float().mean())
        curve, ranks = truncation(model, xte, yte)
    print(json.dumps({"seed": seed, "epochs": epochs, "accuracy": full, "truncation": curve,
                      "effective_rank": [round(r, 1) for r in ranks]}))
    if a.save:
        os.makedirs(a.save, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(a.save, "model.safetensors"))
        with open(os.path.join(a.save, "map.json"), "w") as f:
            json.dump({"wv": "bilinear.weight", "p": "head.weight", "embed": "embed.weight"}, f)


if __name__ == "__main__":
    main()
