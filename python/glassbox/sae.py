"""Sparse autoencoders in SAELens's file format: load, save, encode, decode, train, evaluate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from . import _glassbox
from .model import LanguageModel, _f32, _ids


class SAE:
    """An SAE as SAELens stores it: ``W_enc [d_in, d_sae]``, ``b_enc``, ``W_dec [d_sae, d_in]``,
    ``b_dec`` (and ``threshold`` for JumpReLU). Standard (ReLU), TopK and JumpReLU."""

    def __init__(self, inner: _glassbox.SAE):
        self._inner = inner

    @classmethod
    def load_from_disk(cls, path: Union[str, Path]) -> "SAE":
        """Read a SAELens folder (``cfg.json`` and ``sae_weights.safetensors``, v6 or earlier)."""
        return cls(_glassbox.SAE.load_from_disk(str(path)))

    def save_model(self, path: Union[str, Path]) -> None:
        """Write ``cfg.json`` and ``sae_weights.safetensors`` into ``path`` as SAELens 6 reads them."""
        self._inner.save_model(str(path))

    @property
    def cfg(self) -> dict:
        """d_in, d_sae, architecture, k (TopK) and SAELens's metadata (hook_name, ...)."""
        return {
            "d_in": self._inner.d_in,
            "d_sae": self._inner.d_sae,
            "architecture": self._inner.architecture,
            "k": self._inner.k,
            "metadata": json.loads(self._inner.metadata_json()),
        }

    d_in = property(lambda self: self._inner.d_in, doc="Input width.")
    d_sae = property(lambda self: self._inner.d_sae, doc="Number of latents.")
    architecture = property(lambda self: self._inner.architecture, doc='"standard", "topk" or "jumprelu".')
    hook_name = property(lambda self: self._inner.hook_name, doc="The hook the SAE reads, if recorded.")
    W_enc = property(lambda self: self._inner.W_enc, doc="Encoder ``[d_in, d_sae]``.")
    b_enc = property(lambda self: self._inner.b_enc, doc="Encoder bias ``[d_sae]``.")
    W_dec = property(lambda self: self._inner.W_dec, doc="Decoder ``[d_sae, d_in]``.")
    b_dec = property(lambda self: self._inner.b_dec, doc="Decoder bias ``[d_in]``.")
    threshold = property(lambda self: self._inner.threshold, doc="JumpReLU thresholds ``[d_sae]``, else None.")

    def encode(self, x) -> np.ndarray:
        """Latents ``[..., d_sae]`` of activations ``[..., d_in]``. C-contiguous float32 input is
        read in place; the result is not copied on its way out."""
        x = _f32(x)
        lead = x.shape[:-1]
        return self._inner.encode(x.reshape(-1, x.shape[-1])).reshape(lead + (self.d_sae,))

    def decode(self, latents) -> np.ndarray:
        """Reconstructions ``[..., d_in]`` of latents ``[..., d_sae]``."""
        a = _f32(latents)
        lead = a.shape[:-1]
        return self._inner.decode(a.reshape(-1, a.shape[-1])).reshape(lead + (self.d_in,))

    def forward(self, x) -> np.ndarray:
        """decode(encode(x))."""
        return self.decode(self.encode(x))

    __call__ = forward

    def evaluate(
        self,
        model: LanguageModel,
        texts: Union[str, Sequence[str], Sequence[Sequence[int]]],
        hook: Optional[str] = None,
        batch_contexts: int = 8,
        skip_first: int = 0,
    ) -> dict:
        """SAELens's ``run_evals`` metrics at ``hook`` (default: the SAE's own) of ``model`` on
        ``texts`` (strings, each one context, or token-id lists): explained_variance, mse,
        cossim, l0, l1, dead and dense fractions, and the CE/KL scores of splicing the SAE in.
        ``feature_density`` is the share of tokens each latent fires on."""
        hook = hook or self.hook_name
        if not hook:
            raise ValueError("the SAE records no hook_name; pass hook=")
        items = [texts] if isinstance(texts, str) else list(texts)
        contexts = [model._inner.encode(t) if isinstance(t, str) else _ids(t) for t in items]
        metrics, density = self._inner.evaluate(model._inner, hook, contexts, batch_contexts, skip_first)
        out = json.loads(metrics)
        out["feature_density"] = density
        return out

    def __repr__(self) -> str:
        return repr(self._inner)


def train_sae(
    activations,
    d_sae: int,
    architecture: str = "topk",
    k: Optional[int] = None,
    sparsity_coefficient: Optional[float] = None,
    steps: int = 1000,
    batch_size: int = 4096,
    lr: float = 3e-4,
    normalize_activations: bool = True,
    seed: int = 0,
    metadata: Optional[dict] = None,
    log_every: int = 0,
) -> SAE:
    """Train an SAE on ``activations`` ``[rows, d_in]`` with SAELens's recipe.

    ``architecture``: "topk", "batchtopk" (saved as JumpReLU, as SAELens does), "jumprelu" or
    "standard"; ``k`` for the TopK kinds, ``sparsity_coefficient`` (L0 or L1) for the others.
    Batches are drawn without replacement in a seeded order, reshuffled each pass.
    ``normalize_activations`` scales inputs to mean norm √d_in while training (folded out of
    the saved SAE). ``metadata`` (hook_name, model_name, ...) is stored with the SAE.
    """
    x = _f32(activations)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"activations must be [rows, d_in] with at least one row, got shape {x.shape}")
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be at least 1")
    trainer = _glassbox.SAETrainer(x.shape[1], d_sae, architecture, k, sparsity_coefficient, lr, seed)
    if normalize_activations:
        trainer.normalize_to(x)
    rng = np.random.default_rng(seed)
    order, at = rng.permutation(len(x)), 0
    for step in range(steps):
        if at + batch_size > len(order):
            order, at = rng.permutation(len(x)), 0
        batch = x[np.sort(order[at : at + batch_size])]
        at += batch_size
        stats = trainer.step(batch)
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}: mse {stats['mse_loss']:.4g}, l0 {stats['l0']:.1f}, explained variance {stats['explained_variance']:.3f}, dead {stats['dead']}")
    return SAE(trainer.to_sae(json.dumps(metadata or {})))
