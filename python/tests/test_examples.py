"""The scripts under examples/ run as a researcher would run them (with --small settings)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, real_model


def run_example(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "examples" / name), "--small", *args], capture_output=True, text=True, timeout=600, env=os.environ)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_read_a_bilinear_layer(tmp_path):
    out = run_example("read_bilinear_layer.py", "--out", str(tmp_path / "run"))
    assert "the eigenvectors rebuild the logits to" in out
    rebuilt = float(out.split("rebuild the logits to ")[1].split()[0])
    assert rebuilt < 1e-3
    assert out.count("\n") > 12 and "leading eigenvector" in out


def test_train_and_inspect_an_sae_on_a_real_language_model():
    model = real_model("SmolLM2-135M-Instruct.Q4_1.gguf")
    out = run_example("sae_on_language_model.py", "--model", str(model))
    assert "explained variance" in out and "with the SAE (score" in out
    assert "strongest on:" in out


def test_predict_what_a_fine_tune_was_trained_on(tmp_path):
    out = run_example("what_was_this_finetune_trained_on.py", "--out", str(tmp_path))
    assert "fine-tunes the experts never saw" in out
    assert out.count("/20") >= 5
