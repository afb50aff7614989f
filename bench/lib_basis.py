"""PyTorch reference for the Local Interaction Basis (LIB; Bushnaq et al. 2024, "The Local
Interaction Basis", as the authors' rib library builds it) of a glassbox ReLU MLP checkpoint on
the MNIST test images, in float64, with the Jacobians taken by autograd (torch.func.vmap(jacrev))
as the rib library does: the timings glassbox's LIB is compared with, and the eigenvalues and
edge matrices its results are checked against (bench/summarize_lib_basis.py).

Biases folded, centred Gram, constant direction first, relative thresholds 1e-10 * max for both
eigendecompositions, output layer (logits) not rotated, squared edges with the plain gradient.
The basis time covers the forward pass (node-layer activations), Gram, both eigendecompositions
and M' for every layer; the edge time covers f_hat = f C and the three edge matrices, reusing
the activations of the basis build. Medians of --reps runs after one untimed warm-up on a small
chunk. Prints one JSON line; writes OUT.safetensors with lambda.l and edges.l (float64).

python bench/lib_basis.py CHECKPOINT_DIR --out OUT [--samples N] [--threads T] [--reps R]
"""
import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np
import torch
from safetensors.numpy import load_file
from safetensors.torch import save_file

REL_THR = 1e-10  # relative truncation (share of the largest) for both eigendecompositions
CONST_TOL = 1e-6  # as rib: constant direction = |bias component| and eigenvalue above this


def load_mlp(ckpt):
    """Folded weights W~_l ((in+1) x (out+1), last column e_in so the constant stays 1; the head's
    (in+1) x out) from model.json's architecture and model.safetensors ([out, in] layout)."""
    card = json.load(open(os.path.join(ckpt, "model.json")))
    arch = card.get("architecture") or card.get("arch")
    if not arch or arch.get("kind") != "mlp" or arch.get("activation") != "relu" or not arch.get("bias") or arch.get("embed"):
        raise SystemExit(f"{ckpt}: needs a ReLU MLP with biases and no embedding, model.json says {arch}")
    dims = arch["dims"]
    tensors = load_file(os.path.join(ckpt, "model.safetensors"))
    names = [f"layers.{i}" for i in range(len(dims) - 2)] + ["head"]
    folded = []
    for i, name in enumerate(names):
        d_in, d_out = dims[i], dims[i + 1]
        w = torch.from_numpy(tensors[f"{name}.weight"].astype(np.float64).reshape(d_out, d_in))
        b = torch.from_numpy(tensors[f"{name}.bias"].astype(np.float64).reshape(d_out))
        hidden = name != "head"
        wt = torch.zeros(d_in + 1, d_out + hidden, dtype=torch.float64)
        wt[:d_in, :d_out] = w.T
        wt[d_in, :d_out] = b
        if hidden:
            wt[d_in, d_out] = 1.0
        folded.append(wt)
    return dims, folded


def load_images(folder, n):
    """The first n MNIST test images (IDX, gzipped or not) as float64 pixels / 255."""
    path = os.path.join(folder, "t10k-images-idx3-ubyte")
    raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
    count, rows, cols = (int.from_bytes(raw[4 * i:4 * i + 4], "big") for i in (1, 2, 3))
    if n > count:
        raise SystemExit(f"{path}: only {count} images, asked for {n}")
    pixels = np.frombuffer(raw, np.uint8, n * rows * cols, 16).reshape(n, rows * cols)
    return torch.from_numpy(pixels.astype(np.float64) / 255.0)


def section(wt, last):
    """F_l on folded row vectors: relu(f W~) for hidden sections, f W~ for the head."""
    return (lambda f: f @ wt) if last else (lambda f: torch.relu(f @ wt))


def node_layers(x, folded):
    """f_0 = [x, 1], f_{l+1} = relu(f_l W~_l) (the constant maps to relu(1) = 1)."""
    fs = [torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)]
    for wt in folded[:-1]:
        fs.append(torch.relu(fs[-1] @ wt))
    return fs


def jacobians(fn, f, chunk):
    """Per-sample Jacobians of fn at the rows of f, chunk by chunk: yields (B, k_out, D) tensors."""
    jac = torch.func.vmap(torch.func.jacrev(fn))
    for s in range(0, len(f), chunk):
        yield f[s:s + chunk], jac(f[s:s + chunk])


def layer_basis(f, fn, chunk):
    """The LIB basis of one node layer, as rib builds it: (C, C+, Lambda)."""
    n, d = f.shape
    mu = f.mean(0)
    mu_t = mu.clone()
    mu_t[-1] = 0.0
    g = f - mu_t
    evals, evecs = torch.linalg.eigh(g.T @ g / n)
    evals = evals.abs()
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order], evecs[:, order]
    const = torch.nonzero((evecs[-1].abs() > CONST_TOL) & (evals > CONST_TOL)).flatten()
    if len(const) != 1:
        raise SystemExit(f"expected one constant direction in the Gram matrix, found {len(const)}")
    c = int(const[0])
    order = torch.tensor([c] + [i for i in range(d) if i != c])
    evals, evecs = evals[order], evecs[:, order]
    keep = evals > REL_THR * evals.max()
    dv, u = evals[keep], evecs[:, keep]
    y, y_inv = torch.eye(d, dtype=f.dtype), torch.eye(d, dtype=f.dtype)
    y[-1, :-1], y_inv[-1, :-1] = -mu[:-1], mu[:-1]
    r_plus = dv.sqrt()[:, None] * (u.T @ y_inv)
    r = (y @ u) / dv.sqrt()[None, :]

    m_prime = torch.zeros(d, d, dtype=f.dtype)
    for _, j in jacobians(fn, f, chunk):
        j = j.reshape(-1, d)
        m_prime += j.T @ j / n
    m = r_plus @ m_prime @ r_plus.T

    lam_rest, v_rest = torch.linalg.eigh(m[1:, 1:])
    lam_rest = lam_rest.abs()
    order = torch.argsort(lam_rest, descending=True)
    lam = torch.cat([m[:1, 0].abs(), lam_rest[order]])
    v = torch.zeros_like(m)
    v[0, 0] = 1.0
    v[1:, 1:] = v_rest[:, order]
    keep = lam > REL_THR * lam.max()
    lam, v = lam[keep], v[:, keep]
    c_mat = r @ v * lam.sqrt()[None, :]
    c_plus = (v.T @ r_plus) / lam.sqrt()[:, None]
    return c_mat, c_plus, lam


def build_basis(x, folded, chunk):
    """All node layers, backwards from the unrotated logits: activations, [(C, C+, Lambda)]."""
    fs = node_layers(x, folded)
    c_next = torch.eye(folded[-1].shape[1], dtype=x.dtype)
    bases = [None] * len(fs)
    for l in reversed(range(len(fs))):
        f_sec, c_out = section(folded[l], l == len(fs) - 1), c_next
        bases[l] = layer_basis(fs[l], lambda f: f_sec(f) @ c_out, chunk)
        c_next = bases[l][0]
    return fs, bases


def edges(fs, bases, folded, chunk):
    """Squared edges, plain gradient: E_l = mean_x (dfhat_{l+1}/dfhat_l * fhat_l)^2 (k_{l+1} x k_l).
    """
    out = []
    for l, f in enumerate(fs):
        c_in, c_in_plus, _ = bases[l]
        c_out = bases[l + 1][0] if l + 1 < len(fs) else torch.eye(folded[-1].shape[1], dtype=f.dtype)
        f_sec = section(folded[l], l == len(fs) - 1)
        f_hat = f @ c_in
        e = torch.zeros(c_out.shape[1], c_in.shape[1], dtype=f.dtype)
        for fh, j in jacobians(lambda z: f_sec(z @ c_in_plus) @ c_out, f_hat, chunk):
            e += ((j * fh[:, None, :]) ** 2).sum(0) / len(f_hat)
        out.append(e)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True, help="writes OUT.safetensors")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=1000, help="samples per vmap(jacrev) call")
    ap.add_argument("--data", default=os.path.join(os.environ.get("GLASSBOX_DATA", os.path.expanduser("~/.cache/glassbox/data")), "mnist"))
    a = ap.parse_args()
    if a.reps < 1 or a.samples < 1 or a.chunk < 1:
        raise SystemExit("--reps, --samples and --chunk must be at least 1")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    _, folded = load_mlp(a.checkpoint)
    x = load_images(a.data, a.samples)

    warm = x[:min(len(x), 256)]
    fs, bases = build_basis(warm, folded, a.chunk)
    edges(fs, bases, folded, a.chunk)
    basis_s, edges_s = [], []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        fs, bases = build_basis(x, folded, a.chunk)
        t1 = time.perf_counter()
        es = edges(fs, bases, folded, a.chunk)
        basis_s.append(t1 - t0)
        edges_s.append(time.perf_counter() - t1)

    tensors = {f"lambda.{l}": b[2].contiguous() for l, b in enumerate(bases)}
    tensors.update({f"edges.{l}": e.contiguous() for l, e in enumerate(es)})
    save_file(tensors, a.out + ".safetensors")
    print(json.dumps({
        "impl": "torch", "version": torch.__version__, "threads": a.threads, "samples": a.samples,
        "basis_s": statistics.median(basis_s), "edges_s": statistics.median(edges_s),
        "widths": [len(b[2]) for b in bases],
    }))


if __name__ == "__main__":
    main()
