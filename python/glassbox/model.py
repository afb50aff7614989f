"""Language models with TransformerLens-style hooks.

Activations come back in TransformerLens's shapes: ``[batch, pos, ...]``, and attention scores
and patterns ``[batch, head, query_pos, key_pos]``. A batch of prompts of different lengths is
padded with zeros after each prompt's end (``cache.lengths`` gives the lengths). For a single
prompt, or prompts of equal length, the arrays are views of the memory Rust wrote: nothing is
copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import _glassbox

Input = Union[str, Sequence[str], Sequence[int], Sequence[Sequence[int]], np.ndarray]


@dataclass(frozen=True)
class Ablate:
    """Set the activation to zero."""


@dataclass(frozen=True)
class MeanAblate:
    """Replace every position by ``mean`` (one value per position's row), or by the batch's own
    mean over positions when ``mean`` is None."""

    mean: Optional[np.ndarray] = None


@dataclass(frozen=True)
class Replace:
    """Replace the activation by ``value``, in the shape ``run_with_cache`` gives the hook."""

    value: np.ndarray


@dataclass(frozen=True)
class Add:
    """Add ``vector`` at every position (steering)."""

    vector: np.ndarray


@dataclass(frozen=True)
class HookPoint:
    """What a hook function is told about where it runs, as TransformerLens's ``hook``."""

    name: str


HookFunction = Callable[[np.ndarray, HookPoint], Optional[np.ndarray]]
Intervention = Union[Ablate, MeanAblate, Replace, Add, HookFunction]


class ActivationCache(dict):
    """Activations by hook name; ``lengths`` holds each prompt's token count."""

    def __init__(self, arrays: dict, lengths: list[int]):
        super().__init__(arrays)
        self.lengths = lengths


def _f32(x) -> np.ndarray:
    """``x`` as C-contiguous float32; arrays that already are pass through uncopied."""
    return np.ascontiguousarray(x, dtype=np.float32)


def _is_attention_map(name: str) -> bool:
    return name.endswith("hook_attn_scores") or name.endswith("hook_pattern")


class LanguageModel:
    """A transformer opened from a Hugging Face folder or cache id, a GGUF file or a glassbox
    language-model checkpoint. Use :func:`glassbox.load_model` to open one."""

    def __init__(self, inner: _glassbox.LanguageModel):
        self._inner = inner

    @classmethod
    def load(cls, source: str) -> "LanguageModel":
        """Open ``source``: a model folder, a ``.gguf`` file or an ``ORG/NAME`` id in the local
        Hugging Face cache. Nothing is downloaded."""
        return cls(_glassbox.LanguageModel.load(str(source)))

    @property
    def cfg(self) -> dict:
        """The architecture: n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, ..."""
        return self._inner.cfg

    def hook_names(self) -> list[str]:
        """Every hook name, in the order of the forward pass."""
        return self._inner.hook_names()

    def to_tokens(self, text: Union[str, Sequence[str]]) -> np.ndarray:
        """Token ids as the model's own tokenizer gives them (as transformers' ``tokenizer(text)``),
        ``[batch, pos]`` int64; prompts of different lengths are padded with -1."""
        texts = [text] if isinstance(text, str) else list(text)
        return _pad_ids([self._inner.encode(t) for t in texts])

    def to_string(self, tokens: Union[Sequence[int], np.ndarray]) -> str:
        """Decode token ids to text (the -1 padding of :meth:`to_tokens` is skipped)."""
        return self._inner.decode(_ids(tokens))

    def to_str_tokens(self, input: Union[str, Sequence[int], np.ndarray]) -> list[Optional[str]]:
        """The text of each token of a prompt (or of the given ids)."""
        return self._inner.token_strings(self._inner.encode(input) if isinstance(input, str) else _ids(input))

    def _sequences(self, input: Input) -> list[list[int]]:
        """Prompts as token-id lists: text is tokenized; ids may carry -1 padding."""
        if isinstance(input, str):
            sequences = [self._inner.encode(input)]
        elif isinstance(input, np.ndarray):
            sequences = [_ids(input)] if input.ndim == 1 else [_ids(row) for row in input]
        else:
            items = list(input)
            if items and all(isinstance(i, str) for i in items):
                sequences = [self._inner.encode(i) for i in items]
            elif all(isinstance(i, (int, np.integer)) for i in items):
                sequences = [_ids(items)]
            else:
                sequences = [_ids(row) for row in items]
        if not sequences or not all(sequences):
            raise ValueError("every prompt needs at least one token")
        return sequences

    def _run(self, input: Input, names: list[str], logits: str, hooks: Iterable[tuple[str, Intervention]]):
        sequences = self._sequences(input)
        lengths = [len(s) for s in sequences]
        edits = [_intervention(name, what, lengths) for name, what in hooks]
        flat_logits, flat_cache = self._inner.forward(sequences, names, logits, edits)
        cache = ActivationCache({n: _batched(n, a, lengths) for n, a in flat_cache.items()}, lengths)
        if flat_logits is None:
            return None, cache
        if logits == "last":
            return flat_logits, cache
        return _batched("logits", flat_logits, lengths), cache

    def __call__(self, input: Input, return_type: str = "logits") -> Optional[np.ndarray]:
        """Logits ``[batch, pos, d_vocab]`` (``return_type="logits"``), only each prompt's last
        position ``[batch, d_vocab]`` (``"last"``), or nothing (``None``). Encoders without an
        unembedding return None."""
        if return_type is None:
            self._run(input, [], "none", [])
            return None
        which = {"logits": "all", "last": "last"}.get(return_type)
        if which is None:
            raise ValueError(f"return_type must be 'logits', 'last' or None, not {return_type!r}")
        return self._run(input, [], which if self._has_unembed() else "none", [])[0]

    forward = __call__

    def _has_unembed(self) -> bool:
        return self._inner.cfg["has_unembed"]

    def run_with_cache(
        self,
        input: Input,
        names: Optional[Sequence[str]] = None,
        names_filter: Union[None, str, Sequence[str], Callable[[str], bool]] = None,
        logits: str = "all",
    ) -> tuple[Optional[np.ndarray], ActivationCache]:
        """Run the model and keep activations, as TransformerLens's ``run_with_cache``.

        ``names`` (or ``names_filter``: a name, a list or a predicate) picks the hooks; by
        default every hook is kept. ``logits``: "all" positions, each prompt's "last", or
        "none". Returns (logits, cache); logits is None for encoders and for ``logits="none"``.
        """
        wanted = _select(self.hook_names(), names if names is not None else names_filter)
        which = logits if self._has_unembed() else "none"
        if which not in ("all", "last", "none"):
            raise ValueError(f"logits must be 'all', 'last' or 'none', not {logits!r}")
        return self._run(input, wanted, which, [])

    def run_with_hooks(
        self,
        input: Input,
        fwd_hooks: Sequence[tuple[str, Intervention]] = (),
        names: Optional[Sequence[str]] = None,
        return_type: str = "logits",
    ):
        """Run with interventions at hooks, as TransformerLens's ``run_with_hooks``.

        Each of ``fwd_hooks`` is (hook name, what): :class:`Ablate`, :class:`MeanAblate`,
        :class:`Replace`, :class:`Add`, or a function ``f(activation, hook)`` that edits the
        array in place or returns a new one. With ``names``, returns (logits, cache) of those
        hooks after the interventions; otherwise the logits as ``__call__`` does.
        """
        which = {"logits": "all", "last": "last", None: "none"}.get(return_type)
        if which is None:
            raise ValueError(f"return_type must be 'logits', 'last' or None, not {return_type!r}")
        if not self._has_unembed():
            which = "none"
        logits, cache = self._run(input, list(names or []), which, fwd_hooks)
        return (logits, cache) if names is not None else logits

    def generate(
        self,
        input: Union[str, Sequence[int]],
        max_new_tokens: int = 20,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        stop_at_eos: bool = True,
    ) -> Union[str, list[int]]:
        """Continue a prompt (greedy at temperature 0). Text in gives text out (the prompt and
        its continuation); token ids in give the new token ids."""
        prompt = self._inner.encode(input) if isinstance(input, str) else [int(t) for t in input]
        stop = self._inner.eos_token_id if stop_at_eos else None
        new = self._inner.generate(prompt, max_new_tokens, temperature, top_p, seed, stop)
        return self._inner.decode(prompt + new) if isinstance(input, str) else new

    def sentence_embeddings(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings ``[texts, d_model]`` (sentence-transformers'
        recipe), for encoders such as all-MiniLM-L6-v2."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self._inner.sentence_embeddings([self._inner.encode(t) for t in texts])

    def __repr__(self) -> str:
        return repr(self._inner)


def _select(all_names: list[str], which) -> list[str]:
    if which is None:
        return list(all_names)
    if isinstance(which, str):
        return [which]
    if callable(which):
        return [n for n in all_names if which(n)]
    return list(which)


def _ids(tokens) -> list[int]:
    """Token ids as a list, without the -1 padding of :meth:`LanguageModel.to_tokens`."""
    return [int(t) for t in np.asarray(tokens).ravel() if t >= 0]


def _pad_ids(sequences: list[list[int]]) -> np.ndarray:
    width = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), width), -1, dtype=np.int64)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


def _batched(name: str, flat: np.ndarray, lengths: list[int]) -> np.ndarray:
    """``[tokens, ...]`` (prompts one after another) as ``[batch, pos, ...]``; attention maps
    ``[tokens, head, key]`` as ``[batch, head, query, key]``. Views when no padding is needed."""
    batch, width = len(lengths), max(lengths)
    if all(n == width for n in lengths):
        out = flat.reshape((batch, width) + flat.shape[1:])
    else:
        out = np.zeros((batch, width) + flat.shape[1:], dtype=flat.dtype)
        start = 0
        for i, n in enumerate(lengths):
            out[i, :n] = flat[start : start + n]
            start += n
    if _is_attention_map(name):
        out = out.transpose(0, 2, 1, 3)
    return out


def _flat(name: str, value, lengths: list[int]) -> np.ndarray:
    """The inverse of :func:`_batched`: a value in the shape ``run_with_cache`` returns, as the
    ``[tokens, ...]`` float32 array the extension module takes."""
    value = np.asarray(value)
    if _is_attention_map(name) and value.ndim == 4:
        value = value.transpose(0, 2, 1, 3)
    if value.ndim < 2 or value.shape[:2] != (len(lengths), max(lengths)):
        raise ValueError(
            f"the value for hook {name} has shape {value.shape}; expected the shape run_with_cache "
            f"gives it, starting [batch {len(lengths)}, pos {max(lengths)}]"
        )
    if all(n == value.shape[1] for n in lengths):
        return _f32(value.reshape((-1,) + value.shape[2:]))
    return _f32(np.concatenate([value[i, :n] for i, n in enumerate(lengths)]))


def _intervention(name: str, what: Intervention, lengths: list[int]):
    """(hook, kind, value) as the extension module takes interventions."""
    if isinstance(what, Ablate):
        return (name, "zero", None)
    if isinstance(what, MeanAblate):
        return (name, "mean", None if what.mean is None else _f32(what.mean).ravel())
    if isinstance(what, Replace):
        return (name, "replace", _flat(name, what.value, lengths))
    if isinstance(what, Add):
        return (name, "add", _f32(what.vector).ravel())
    if callable(what):
        return (name, "call", _hook_call(name, what, lengths))
    raise TypeError(f"the intervention at {name} must be Ablate, MeanAblate, Replace, Add or a function, not {type(what).__name__}")


def _hook_call(name: str, fn: HookFunction, lengths: list[int]):
    """``fn`` seeing TransformerLens's shape, its edits passed back as ``[tokens, ...]``."""
    hook = HookPoint(name)

    def call(flat: np.ndarray, _name: str) -> np.ndarray:
        shaped = _batched(name, flat, lengths)
        returned = fn(shaped, hook)
        return _flat(name, shaped if returned is None else returned, lengths)

    return call
