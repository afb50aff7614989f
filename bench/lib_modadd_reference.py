"""Independent PyTorch run of the modular-addition MLP (p = 59) of `glassbox repro lib-modadd` and
of its Fourier purity check, to tell whether a purity result belongs to glassbox or to the recipe.

Training, as glassbox's recipe: all p^2 pairs, a seeded random 50/50 split; e = E_a[a] + E_b[b]
(d 32, no bias) -> relu(W1 e + b1) (H 128) -> W2 h + b2; E_a, E_b, W1 ~ N(0, 1/d), W2 ~ N(0, 1/H),
biases 0; AdamW full batch, lr 3e-3, wd 1.0 on every parameter, betas (0.9, 0.98), constant rate,
4,000 steps. The LIB basis is the one of bench/lib_basis.py (rib's algorithm, float64, autograd
Jacobians), built backwards from the logits on the train split for the node layers hidden (H+1)
and embed (d+1). Purity: the largest share of a feature's non-DC 2-D DFT power over the p x p grid
in {(u, v): u, v in {0, +-w}} \\ {0}, averaged over the first 20 non-constant features. The neurons'
key frequencies are those that are the top frequency of at least 5% of the firing neurons, as
glassbox counts them.

python bench/lib_modadd_reference.py [SEED ...] [--basis train|all] [--f64] [--checkpoint GLASSBOX_DIR ...]
prints one JSON line per model.
"""
import argparse
import json
import os

import numpy as np
import torch

from lib_basis import layer_basis
from safetensors.numpy import load_file

P, D, H, STEPS = 59, 32, 128, 4000


def purity(grid):
    power = np.abs(np.fft.fft2(grid)) ** 2
    total = power.sum() - power[0, 0]
    best = (0.0, 0)
    if total <= 1e-300:
        return best
    for w in range(1, P // 2 + 1):
        idx = [0, w, P - w]
        share = (power[np.ix_(idx, idx)].sum() - power[0, 0]) / total
        best = max(best, (share, w))
    return best


def train(seed):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.cartesian_prod(torch.arange(P), torch.arange(P))
    order = torch.randperm(P * P, generator=g)
    train_idx = order[: P * P // 2 + (P * P) % 2]  # round(0.5 p^2), as glassbox splits
    test_idx = order[len(train_idx):]
    e_a = torch.randn(P, D, generator=g) / D**0.5
    e_b = torch.randn(P, D, generator=g) / D**0.5
    w1 = torch.randn(H, D, generator=g) / D**0.5
    w2 = torch.randn(P, H, generator=g) / H**0.5
    b1, b2 = torch.zeros(H), torch.zeros(P)
    params = [t.requires_grad_() for t in (e_a, e_b, w1, b1, w2, b2)]
    opt = torch.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=1.0)

    def logits(idx):
        a, b = pairs[idx, 0], pairs[idx, 1]
        h = torch.relu((e_a[a] + e_b[b]) @ w1.T + b1)
        return h @ w2.T + b2

    labels = (pairs[:, 0] + pairs[:, 1]) % P
    for _ in range(STEPS):
        loss = torch.nn.functional.cross_entropy(logits(train_idx), labels[train_idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float((logits(test_idx).argmax(1) == labels[test_idx]).double().mean())
    return [t.detach().double() for t in params], train_idx, acc


def load_glassbox(folder):
    """E_a, E_b, W1, b1, W2, b2 of a glassbox modular-addition MLP checkpoint (embed.weight d x 2p)."""
    t = {k: torch.from_numpy(v).double() for k, v in load_file(f"{folder}/model.safetensors").items()}
    embed = t["embed.weight"]
    if embed.shape != (D, 2 * P):
        raise SystemExit(f"{folder}/model.safetensors: embed.weight is {tuple(embed.shape)}, expected ({D}, {2 * P})")
    return [embed[:, :P].T, embed[:, P:].T, t["layers.0.weight"], t["layers.0.bias"], t["head.weight"], t["head.bias"]]


def analyse(params, basis_rows, glassbox_c=None):
    """LIB at the hidden layer and the embedding from the pairs basis_rows (rows a*p + b); the
    top-20 embedding features' purity and frequencies over the whole grid, and the neurons'.
    glassbox_c: glassbox's embedding basis C ((d+1) x k), whose features' purity is added."""
    e_a, e_b, w1, b1, w2, b2 = params
    pairs = torch.cartesian_prod(torch.arange(P), torch.arange(P))
    # Folded node layers, constant last: embed [e, 1], hidden [h, 1].
    w1_fold = torch.zeros(D + 1, H + 1, dtype=torch.float64)
    w1_fold[:D, :H], w1_fold[D, :H], w1_fold[D, H] = w1.T, b1, 1.0
    w2_fold = torch.cat([w2.T, b2[None]], 0)
    sections = {1: lambda f: torch.relu(f @ w1_fold), 2: lambda f: f @ w2_fold}
    embed = torch.cat([e_a[pairs[:, 0]] + e_b[pairs[:, 1]], torch.ones(P * P, 1, dtype=torch.float64)], 1)
    acts = {1: embed, 2: sections[1](embed)}

    # Built backwards from the unrotated logits; the input layer's basis is not needed.
    c_next, bases = torch.eye(P, dtype=torch.float64), {}
    for l in (2, 1):
        sec, c_out = sections[l], c_next
        bases[l] = layer_basis(acts[l][basis_rows], lambda f: sec(f) @ c_out, 4096)
        c_next = bases[l][0]

    def frequencies(feats):
        return [purity(feats[:, j].reshape(P, P).numpy()) for j in range(feats.shape[1])]

    features = frequencies((acts[1] @ bases[1][0])[:, 1:21])
    neurons = [f for f in frequencies(acts[2][:, :H]) if f[1] > 0]
    counts = np.bincount([w for _, w in neurons], minlength=P // 2 + 1)
    keys = [w for w in range(1, P // 2 + 1) if counts[w] >= 0.05 * len(neurons)]
    ws = [w for _, w in features]
    out = {}
    if glassbox_c is not None:
        # glassbox's own basis (train split, stored as f32): its first column is the constant.
        f_hat = acts[1] @ glassbox_c
        if f_hat[:, 0].std() > 1e-4 * f_hat[:, 0].abs().mean():
            raise SystemExit("the stored embedding basis does not start with the constant feature")
        out["glassbox_basis_embed_purity_mean"] = float(np.mean([s for s, _ in frequencies(f_hat[:, 1:21])]))
    return out | {
        "widths": [len(bases[l][2]) for l in (1, 2)],
        "embed_purity_mean": float(np.mean([s for s, _ in features])),
        "neuron_purity_mean": float(np.mean([s for s, _ in neurons])),
        "embed_frequencies": ws, "neuron_key_frequencies": keys,
        "paired_share": sum(ws.count(w) >= 2 for w in ws) / len(ws),
        "inside_keys_share": sum(w in keys for w in ws) / len(ws),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seeds", nargs="*", type=int,
                    help="train the modular-addition MLP with these seeds")
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="a glassbox modular-addition MLP checkpoint folder instead (with its LIB run in FOLDER-lib, that basis's purity too)")
    ap.add_argument("--basis", choices=["train", "all"], default="train", help="pairs the basis is built on (a checkpoint has no split here: all)")
    ap.add_argument("--f64", action="store_true", help="train in float64, as a numpy implementation would")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.f64:
        torch.set_default_dtype(torch.float64)
    everything = torch.arange(P * P)
    for seed in a.seeds:
        params, train_rows, acc = train(seed)
        out = analyse(params, train_rows if a.basis == "train" else everything)
        print(json.dumps({"seed": seed, "basis": a.basis, "train_dtype": "f64" if a.f64 else "f32", "test_accuracy": acc, **out}), flush=True)
    for folder in a.checkpoint:
        # `glassbox repro lib-modadd` writes the LIB run of checkpoint X to X-lib.
        stored = f"{folder.rstrip('/')}-lib/tensors.safetensors"
        c = torch.from_numpy(load_file(stored)["lib.1.c"]).double() if os.path.exists(stored) else None
        out = analyse(load_glassbox(folder), everything, c)
        print(json.dumps({"checkpoint": folder, "basis": "all", **out}), flush=True)


if __name__ == "__main__":
    main()
