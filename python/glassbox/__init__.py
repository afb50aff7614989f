"""glassbox: tells you what a trained neural network learned.

Open a language model and read its activations as TransformerLens does
(:func:`load_model`, :meth:`LanguageModel.run_with_cache`), train and evaluate sparse
autoencoders in SAELens's format (:class:`SAE`, :func:`train_sae`), decompose bilinear layers
(:class:`BilinearDecomposition`), run glassbox's own checkpoints (:func:`load_checkpoint`), and
run every ``glassbox`` command from Python (:mod:`glassbox.commands`, :data:`cli`).
:mod:`glassbox.distributed` spreads zoo builds over a Ray cluster.

Arrays in and out are numpy; C-contiguous float32 input is read where it lies, and results are
handed to numpy without a copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from ._glassbox import BilinearDecomposition, DivergedError, FormatError, __version__, set_threads
from .checkpoint import Checkpoint
from .commands import (
    Run,
    acts,
    bilinear,
    cli,
    lib,
    probe_predict,
    probe_train,
    probex_predict,
    probex_train,
    report,
    run,
    sae_stream,
    sae_universal,
    train,
    trees,
    zoo_build,
)
from .model import ActivationCache, Ablate, Add, HookPoint, LanguageModel, MeanAblate, Replace
from .sae import SAE, train_sae


def load_model(source: Union[str, Path]) -> LanguageModel:
    """Open a language model: a Hugging Face folder, an ``ORG/NAME`` id in the local Hugging
    Face cache, a ``.gguf`` file, or a glassbox language-model checkpoint. Nothing is downloaded."""
    path = Path(source).expanduser()
    return LanguageModel.load(str(path) if path.exists() else str(source))


def load_checkpoint(path: Union[str, Path]) -> Checkpoint:
    """Open a checkpoint folder written by ``glassbox train``."""
    return Checkpoint.load(Path(path).expanduser())


__all__ = [
    "__version__",
    "Ablate",
    "ActivationCache",
    "Add",
    "BilinearDecomposition",
    "Checkpoint",
    "DivergedError",
    "FormatError",
    "HookPoint",
    "LanguageModel",
    "MeanAblate",
    "Replace",
    "Run",
    "SAE",
    "acts",
    "bilinear",
    "cli",
    "lib",
    "load_checkpoint",
    "load_model",
    "probe_predict",
    "probe_train",
    "probex_predict",
    "probex_train",
    "report",
    "run",
    "sae_stream",
    "set_threads",
    "sae_universal",
    "train",
    "train_sae",
    "trees",
    "zoo_build",
]
