"""Models glassbox trained (``glassbox train``): MLP, bilinear MLP, CNN, INR, transformer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from . import _glassbox
from .model import _f32


class Checkpoint:
    """A glassbox checkpoint folder (``model.json`` and ``model.safetensors``) ready to run."""

    def __init__(self, inner: _glassbox.Checkpoint):
        self._inner = inner

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Checkpoint":
        """Open a checkpoint folder."""
        return cls(_glassbox.Checkpoint.load(str(path)))

    @property
    def card(self) -> dict:
        """model.json: architecture, task, training recipe, metrics."""
        return json.loads(self._inner.card_json())

    kind = property(lambda self: self._inner.kind, doc='"mlp", "bilinear", "cnn", "inr", "transformer", ...')
    input_dim = property(lambda self: self._inner.input_dim, doc="Values per input row.")
    output_dim = property(lambda self: self._inner.output_dim, doc="Values per output row.")

    def site_names(self) -> list[str]:
        """The activation sites (``layers.0.pre``, ...), in the order of the forward pass."""
        return self._inner.site_names()

    def __call__(self, x) -> np.ndarray:
        """Outputs ``[rows, output_dim]`` of inputs ``[rows, input_dim]``."""
        return self._inner.forward(_f32(x), [])[0]

    def run_with_cache(self, x, names: Optional[Sequence[str]] = None) -> tuple[np.ndarray, dict]:
        """Outputs and the activations at ``names`` (default: every site), each
        ``[rows, ...per-sample shape]``."""
        return self._inner.forward(_f32(x), list(self.site_names() if names is None else names))

    def __repr__(self) -> str:
        return repr(self._inner)
