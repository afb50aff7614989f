"""Shared fixtures: the repo's tiny GPT-2, the transformers references beside it, the real
models `glassbox data fetch minilm smollm2` puts in the models folder, and the data folder.

Like the Rust tests, tests that need a real model or data set skip when it is missing, and fail
instead when GLASSBOX_REQUIRE_DATA=1 (as CI sets). Tests that need PyTorch, transformers or
SAELens in the same process do the same under GLASSBOX_REQUIRE_INTEROP=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "crates" / "lm" / "tests" / "fixtures"
TINY_GPT2 = FIXTURES / "tiny-gpt2"


def _missing(what: str, flag: str = "GLASSBOX_REQUIRE_DATA"):
    if os.environ.get(flag) == "1":
        pytest.fail(f"{flag}=1 but {what}")
    pytest.skip(what)


def models_dir() -> Path:
    return Path(os.environ.get("GLASSBOX_MODELS") or Path.home() / ".cache" / "glassbox" / "models")


def real_model(name: str) -> Path:
    path = models_dir() / name
    if not path.exists():
        _missing(f"{path} not found (run `glassbox data fetch minilm smollm2`)")
    return path


def data_dir() -> Path:
    path = Path(os.environ.get("GLASSBOX_DATA") or Path.home() / ".cache" / "glassbox" / "data")
    if not (path / "sklearn-digits").exists():
        _missing(f"no data sets in {path} (run `glassbox data fetch digits`)")
    return path


def need(module: str):
    """Import `module` for an interop test, or skip (fail under GLASSBOX_REQUIRE_INTEROP=1)."""
    try:
        return __import__(module)
    except ImportError:
        _missing(f"{module} is not installed", "GLASSBOX_REQUIRE_INTEROP")


def reference(name: str) -> dict:
    """A transformers reference file of crates/lm/tests/fixtures/reference as numpy arrays."""
    from safetensors.numpy import load_file

    return load_file(str(FIXTURES / "reference" / f"{name}.safetensors"))


def prompts() -> list[str]:
    return (REPO / "bench" / "lm_prompts.txt").read_text(encoding="utf-8").splitlines()


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| over finite reference values; non-finite ones must match."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape}, reference {want.shape}"
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite], want[~finite]), "non-finite values differ"
    if not finite.any():
        return 0.0
    return float(np.abs(got[finite] - want[finite]).max() / max(np.abs(want[finite]).max(), np.finfo(float).tiny))


@pytest.fixture(scope="session")
def tiny():
    import glassbox

    return glassbox.load_model(TINY_GPT2)
