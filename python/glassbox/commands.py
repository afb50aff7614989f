"""The run-folder commands, run in this process exactly as the ``glassbox`` command line runs
them: training, the bilinear and LIB analyses, zoos and their readers, model trees and ProbeX,
the Universal SAE, reports.

Every command is also reachable through :data:`cli`: ``glassbox.cli.zoo.build("glyph-inr",
out="zoo", count=80)`` runs ``glassbox zoo build glyph-inr --out zoo --count 80``, and
``help(glassbox.cli.zoo.build)`` shows that command's own help. Keyword arguments become
options (``per_tree=8`` is ``--per-tree 8``; True is a bare flag; False and None are left out;
a list repeats the option).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from . import _glassbox

PathLike = Union[str, os.PathLike]


def command_args(words: Sequence[str], *positional: Any, **options: Any) -> list[str]:
    """The command line (after ``glassbox``) that ``words``, ``positional`` and ``options`` make."""
    args = [str(w) for w in words]
    for p in positional:
        if isinstance(p, (list, tuple)):
            args.extend(str(v) for v in p)
        elif p is not None:
            args.append(str(p))
    for key, value in options.items():
        flag = "--" + key.rstrip("_").replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                args.extend([flag, str(v)])
        else:
            args.extend([flag, str(value)])
    return args


def run(*args: Any) -> None:
    """Run ``glassbox ARGS...`` in this process. Errors raise with the message the command line
    prints (ValueError, OSError, glassbox.FormatError)."""
    _glassbox.run([str(a) for a in args])


class Run:
    """A run folder: ``run.json`` (metrics, history, checks) and its figures."""

    def __init__(self, path: PathLike):
        self.path = Path(path)

    @property
    def info(self) -> dict:
        """run.json as a dict."""
        with open(self.path / "run.json", encoding="utf-8") as f:
            return json.load(f)

    @property
    def metrics(self) -> dict:
        """run.json's ``metrics``."""
        return self.info.get("metrics", {})

    def figures(self) -> list[Path]:
        """The figure files of the run."""
        folder = self.path / "figures"
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"


class _Command:
    """``glassbox WORDS...`` as a Python callable; attributes name subcommands."""

    def __init__(self, words: tuple[str, ...] = ()):
        self._words = words

    def __getattr__(self, name: str) -> "_Command":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Command(self._words + (name.replace("_", "-"),))

    def __call__(self, *positional: Any, **options: Any) -> None:
        _glassbox.run(command_args(self._words, *positional, **options))

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        return _glassbox.help_text(list(self._words))

    def __repr__(self) -> str:
        return f"<glassbox command {' '.join(('glassbox',) + self._words)}>"


cli = _Command()
"""Every ``glassbox`` command as an attribute path: ``cli.sae.stream(...)``, ``cli.lm.info(...)``."""


def _run(words: Sequence[str], out: PathLike, *positional: Any, **options: Any) -> Run:
    _glassbox.run(command_args(words, *positional, out=out, **options))
    return Run(out)


def train(model: str, dataset: str, out: PathLike, **options: Any) -> Run:
    """Train a model (``glassbox train``): ``model`` mlp, bilinear, cnn or transformer;
    ``dataset`` mnist, fashion-mnist, digits, modadd, glyphs, ...; options as the command's
    (hidden=[128], epochs=20, lr=1e-3, seed=0, ...). Returns the run; its checkpoint is ``out``."""
    return _run(["train"], out, model=model, dataset=dataset, **options)


def bilinear(checkpoint: PathLike, out: PathLike, **options: Any) -> Run:
    """The bilinear-MLP analysis of a bilinear checkpoint (``glassbox bilinear``): per-class
    eigendecomposition, truncation curve, top eigenvector images. For the arrays themselves see
    :class:`glassbox.BilinearDecomposition`."""
    return _run(["bilinear"], out, checkpoint, **options)


def lib(checkpoint: PathLike, out: PathLike, **options: Any) -> Run:
    """The Local Interaction Basis of a checkpoint (``glassbox lib``): the basis per layer,
    node- and edge-ablation curves against PCA and the original basis."""
    return _run(["lib"], out, checkpoint, **options)


def acts(checkpoint: PathLike, out: PathLike, **options: Any) -> Path:
    """Cache activations (``glassbox acts``): a checkpoint's sites on its data into one
    safetensors file (sites="embed,logits"), or a language model's hooks on text (text=...,
    hooks=...) into a resumable activation store folder. Returns ``out``."""
    _glassbox.run(command_args(["acts"], checkpoint, out=out, **options))
    return Path(out)


def zoo_build(preset: str, out: PathLike, shard: Optional[str] = None, **options: Any) -> Path:
    """Build a model zoo (``glassbox zoo build``): digits-inr, mnist-inr, glyph-inr,
    digits-mlp-acc, mnist-cnn-acc, tree-world, mnist-trees, ... ``shard="i/n"`` builds only
    the shards s with s % n == i; running again resumes. Returns the zoo folder."""
    _glassbox.run(command_args(["zoo", "build"], preset, out=out, shard=shard, **options))
    return Path(out)


def probe_train(zoo: PathLike, out: PathLike, method: str = "probegen", **options: Any) -> Run:
    """Train a reader over a zoo (``glassbox probe train``): ProbeGen (``method="probegen"``),
    vanilla probes, fixed inputs, or StatNN weight statistics (``"statnn"``)."""
    return _run(["probe", "train"], out, zoo, method=method, **options)


def probe_predict(reader: PathLike, zoo: PathLike, out: PathLike = "predictions.csv") -> Path:
    """A trained reader's predictions for every model of a zoo, written as CSV."""
    _glassbox.run(command_args(["probe", "predict"], reader, zoo, out=out))
    return Path(out)


def trees(models: PathLike, layer: str, out: PathLike, **options: Any) -> Run:
    """Recover the model tree of a population (``glassbox trees``): which models were
    fine-tuned from which root, by weight distances at ``layer``."""
    return _run(["trees"], out, models, layer=layer, **options)


def probex_train(models: PathLike, layer: str, out: PathLike, **options: Any) -> Run:
    """Train ProbeX experts, one per model tree (``glassbox probex train``), to predict what a
    fine-tune was trained on from its weights at ``layer``."""
    return _run(["probex", "train"], out, models, layer=layer, **options)


def probex_predict(experts: PathLike, models: PathLike, out: PathLike = "predictions.csv") -> Path:
    """Predict with trained ProbeX experts what each model of a folder or zoo was trained on;
    writes a CSV and returns its path."""
    _glassbox.run(command_args(["probex", "predict"], experts, models, out=out))
    return Path(out)


def sae_universal(models: Sequence[str], text: PathLike, out: PathLike, **options: Any) -> Run:
    """Train a Universal SAE over several language models (``glassbox sae universal``) and
    measure its universality: cross-model R², firing entropy, co-firing, concept cards."""
    return _run(["sae", "universal"], out, model=list(models), text=text, **options)


def sae_stream(model: str, hook: str, text: PathLike, out: PathLike, **options: Any) -> "SAE":
    """Train an SAE on a language model's hook, streaming activations from text (``glassbox
    sae stream``); resumable with resume=True. ``out`` receives the SAE in SAELens's format and
    training.json; the trained SAE is returned."""
    from .sae import SAE

    _glassbox.run(command_args(["sae", "stream"], out=out, model=model, hook=hook, text=text, **options))
    return SAE.load_from_disk(out)


def report(runs: Union[PathLike, Sequence[PathLike]], out: PathLike, title: Optional[str] = None) -> Path:
    """Render run folders (or folders of them) into one self-contained HTML report."""
    folders = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    _glassbox.run(command_args(["report"], folders, out=out, title=title))
    return Path(out)
