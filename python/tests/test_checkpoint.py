"""glassbox's own checkpoints and the bilinear decomposition from Python."""

from __future__ import annotations

import numpy as np
import pytest

import glassbox


@pytest.fixture(scope="module")
def bilinear_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "bilinear"
    run = glassbox.train("bilinear", "glyphs", out, hidden=[16], epochs=3, glyph_train=300, glyph_test=100, quiet=True, seed=3)
    return run


def test_train_returns_the_run_and_its_checkpoint_runs(bilinear_run):
    assert 0.0 <= bilinear_run.metrics["test_accuracy"] <= 1.0
    ckpt = glassbox.load_checkpoint(bilinear_run.path)
    assert ckpt.kind == "bilinear" and ckpt.card["architecture"]
    x = np.random.default_rng(0).random((7, ckpt.input_dim), dtype=np.float32)
    out = ckpt(x)
    assert out.shape == (7, ckpt.output_dim)
    logits, cache = ckpt.run_with_cache(x)
    np.testing.assert_array_equal(logits, out)
    assert list(cache) == ckpt.site_names()
    _, one = ckpt.run_with_cache(x, names=[ckpt.site_names()[0]])
    assert list(one) == ckpt.site_names()[:1]
    assert "Checkpoint(bilinear" in repr(ckpt)


def test_checkpoint_errors_name_the_problem(tmp_path, bilinear_run):
    with pytest.raises(glassbox.FormatError, match="not a checkpoint folder"):
        glassbox.load_checkpoint(tmp_path / "none")
    ckpt = glassbox.load_checkpoint(bilinear_run.path)
    with pytest.raises(ValueError, match="unknown activation site 'nope'"):
        ckpt.run_with_cache(np.zeros((1, ckpt.input_dim), np.float32), names=["nope"])
    with pytest.raises(ValueError, match=r"expected \[rows, "):
        ckpt(np.zeros((1, 3), np.float32))


def test_the_decomposition_of_a_checkpoint_reproduces_its_logits(bilinear_run):
    ckpt = glassbox.load_checkpoint(bilinear_run.path)
    d = glassbox.BilinearDecomposition.from_checkpoint(bilinear_run.path)
    assert d.n_classes == ckpt.output_dim
    x = np.random.default_rng(1).random((5, ckpt.input_dim), dtype=np.float32)
    xs = np.hstack([x, np.ones((5, 1), np.float32)]) if d.bias_folded else x
    logits = np.stack([((xs @ d.input_vectors(c)) ** 2 * d.eigenvalues(c)).sum(1) for c in range(d.n_classes)], axis=1)
    np.testing.assert_allclose(logits, ckpt(x), atol=1e-4 * np.abs(logits).max())
    top = glassbox.BilinearDecomposition.from_checkpoint(bilinear_run.path, top_k=3)
    np.testing.assert_allclose(np.abs(top.eigenvalues(0)), np.abs(d.eigenvalues(0)[:3]), rtol=1e-4)


def test_the_decomposition_of_arrays_equals_numpy_eigh():
    rng = np.random.default_rng(2)
    w, v = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    p, e = rng.standard_normal((3, 6)).astype(np.float32), rng.standard_normal((4, 9)).astype(np.float32)
    d = glassbox.BilinearDecomposition.from_weights(w, v, p, embed=e)
    assert (d.n_classes, d.bias_folded) == (3, False)
    for c in range(3):
        b = 0.5 * (w.T.astype(np.float64) @ np.diag(p[c]) @ v + v.T.astype(np.float64) @ np.diag(p[c]) @ w)
        want = np.linalg.eigvalsh(b)
        want = want[np.argsort(-np.abs(want), kind="stable")]
        np.testing.assert_allclose(d.eigenvalues(c), want, rtol=1e-5, atol=1e-6)
        vecs = d.eigenvectors(c)
        np.testing.assert_allclose(vecs.T.astype(np.float64) @ b @ vecs, np.diag(want), atol=1e-4)
        np.testing.assert_allclose(d.input_vectors(c), e.T @ vecs, atol=1e-5)
    ranks = d.effective_ranks()
    lam = d.eigenvalues(0).astype(np.float64)
    assert ranks[0] == pytest.approx(np.abs(lam).sum() ** 2 / (lam**2).sum(), rel=1e-5)
    biased = glassbox.BilinearDecomposition.from_weights(w, v, p, b1=np.ones(6, np.float32), b2=np.zeros(6, np.float32))
    assert biased.bias_folded and biased.eigenvectors(0).shape[0] == 5
    with pytest.raises(IndexError, match="class 3 is out of range"):
        d.eigenvalues(3)
    with pytest.raises(ValueError, match="W and V must match"):
        glassbox.BilinearDecomposition.from_weights(w, v[:, :3], p)
    with pytest.raises(ValueError, match=r"b1 has shape \[2\]; expected \[6\]"):
        glassbox.BilinearDecomposition.from_weights(w, v, p, b1=np.ones(2, np.float32))


def test_a_transformer_checkpoint_takes_token_ids_only(tmp_path):
    run = glassbox.train("transformer", "modadd", tmp_path / "t", p=7, epochs=1, quiet=True)
    model = glassbox.load_checkpoint(run.path)
    tokens = np.zeros((2, model.input_dim), np.float32)
    assert model(tokens).shape == (2, model.output_dim)
    for bad in (-1.0, 0.5, 1e6):
        tokens[1, 0] = bad
        with pytest.raises(ValueError, match="not a token id"):
            model(tokens)


def test_divergence_raises_diverged_error(tmp_path):
    with pytest.raises(glassbox.DivergedError, match="training loss became NaN at step 2"):
        glassbox.train("mlp", "glyphs", tmp_path / "d", lr=1e30, epochs=3, glyph_train=64, glyph_test=32, quiet=True)
