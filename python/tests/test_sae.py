"""SAEs from Python: encode and decode against a numpy reimplementation, SAELens files round
trip, training on arrays, SAELens's evals against numpy on the model's own activations."""

from __future__ import annotations

import json

import numpy as np
import pytest

import glassbox
from glassbox import _glassbox

HOOK = "blocks.0.hook_resid_post"


def numpy_encode(sae: glassbox.SAE, x: np.ndarray) -> np.ndarray:
    """SAELens's encode, written from its equations."""
    pre = (x.astype(np.float64) - sae.b_dec) @ sae.W_enc.astype(np.float64) + sae.b_enc
    if sae.architecture == "standard":
        return np.maximum(pre, 0)
    if sae.architecture == "jumprelu":
        return np.where(pre > sae.threshold, np.maximum(pre, 0), 0)
    pre = pre * np.linalg.norm(sae.W_dec.astype(np.float64), axis=1)  # rescale_acts_by_decoder_norm
    k = sae.cfg["k"]
    out = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(pre))[:, None]
    out[rows, top] = np.maximum(pre[rows, top], 0)
    return out


def data(rows=600, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, d)) @ rng.standard_normal((d, d))).astype(np.float32)


@pytest.mark.parametrize("architecture,options", [("topk", {"k": 3}), ("jumprelu", {"sparsity_coefficient": 1e-3}), ("standard", {"sparsity_coefficient": 1e-3}), ("batchtopk", {"k": 3})])
def test_encode_and_decode_follow_the_equations(architecture, options):
    x = data()
    sae = glassbox.train_sae(x, d_sae=24, architecture=architecture, steps=40, batch_size=64, lr=1e-3, **options)
    want = numpy_encode(sae, x)
    got = sae.encode(x)
    assert got.shape == (600, 24) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    recon = sae.decode(got)
    scale = np.linalg.norm(sae.W_dec.astype(np.float64), axis=1) if architecture == "topk" else 1.0
    np.testing.assert_allclose(recon, (got / scale) @ sae.W_dec.astype(np.float64) + sae.b_dec, rtol=0, atol=1e-4 * np.abs(recon).max())
    np.testing.assert_array_equal(sae.forward(x), recon)
    np.testing.assert_array_equal(sae(x), recon)
    # Leading axes are kept: [batch, pos, d_in] -> [batch, pos, d_sae].
    np.testing.assert_array_equal(sae.encode(x.reshape(20, 30, 12)), got.reshape(20, 30, 24))
    assert sae.architecture == ("jumprelu" if architecture == "batchtopk" else architecture)


def test_training_learns_and_is_deterministic():
    x = data(rows=2000)
    a = glassbox.train_sae(x, d_sae=48, k=4, steps=300, batch_size=128, lr=3e-3, seed=1)
    b = glassbox.train_sae(x, d_sae=48, k=4, steps=300, batch_size=128, lr=3e-3, seed=1)
    np.testing.assert_array_equal(a.W_enc, b.W_enc)
    residual = ((x - a(x)) ** 2).sum(1).mean() / ((x - x.mean(0)) ** 2).sum(1).mean()
    assert residual < 0.35, f"fraction of variance unexplained {residual:.3f}"
    assert (a.encode(x) > 0).sum(1).max() <= 4


def test_trainer_steps_report_saelens_training_stats():
    x = data()
    t = _glassbox.SAETrainer(12, 24, "topk", k=3, lr=1e-3)
    scale = t.normalize_to(x)
    assert scale == pytest.approx(np.sqrt(12) / np.linalg.norm(x, axis=1).mean(), rel=1e-5)
    stats = t.step(x[:64])
    assert set(stats) == {"mse_loss", "aux_loss", "sparsity_loss", "l0", "explained_variance", "dead"}
    assert stats["l0"] <= 3 and t.steps == 1
    sae = glassbox.SAE(t.to_sae(json.dumps({"hook_name": HOOK})))
    assert sae.hook_name == HOOK


def test_save_and_load_round_trip(tmp_path):
    sae = glassbox.train_sae(data(), d_sae=24, architecture="jumprelu", sparsity_coefficient=1e-3, steps=5, metadata={"hook_name": HOOK, "model_name": "tiny"})
    sae.save_model(tmp_path / "sae")
    assert sorted(p.name for p in (tmp_path / "sae").iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    back = glassbox.SAE.load_from_disk(tmp_path / "sae")
    for name in ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"]:
        np.testing.assert_array_equal(getattr(back, name), getattr(sae, name))
    assert back.cfg["metadata"]["model_name"] == "tiny" and back.hook_name == HOOK
    assert (back.d_in, back.d_sae, back.architecture) == (12, 24, "jumprelu")
    assert "SAE(jumprelu, d_in 12, d_sae 24, hook blocks.0.hook_resid_post)" == repr(back)
    assert sae.threshold is not None and glassbox.train_sae(data(), d_sae=8, k=2, steps=1).threshold is None


def test_bad_files_and_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        glassbox.SAE.load_from_disk(tmp_path)
    (tmp_path / "cfg.json").write_text('{"d_in": 0}')
    with pytest.raises(glassbox.FormatError, match="cfg.json: missing or non-positive integer field 'd_in'"):
        glassbox.SAE.load_from_disk(tmp_path)
    sae = glassbox.train_sae(data(), d_sae=8, k=2, steps=1)
    with pytest.raises(ValueError, match=r"x has shape \[5, 3\]; expected \[rows, 12\]"):
        sae.encode(np.ones((5, 3), np.float32))
    with pytest.raises(ValueError, match="topk needs k between 1 and d_sae"):
        glassbox.train_sae(data(), d_sae=8, steps=1)
    with pytest.raises(ValueError, match="unknown architecture 'gated'"):
        glassbox.train_sae(data(), d_sae=8, architecture="gated", steps=1)
    with pytest.raises(ValueError, match="jumprelu needs a sparsity_coefficient"):
        glassbox.train_sae(data(), d_sae=8, architecture="jumprelu", steps=1)
    with pytest.raises(ValueError, match="activations must be"):
        glassbox.train_sae(np.ones(5, np.float32), d_sae=8, k=1)


def test_evaluate_matches_numpy_on_the_models_own_activations(tiny):
    texts = ["Once upon a time there was a little girl.", "She loved to play in the garden with her dog."]
    _, cache = tiny.run_with_cache(texts, names=[HOOK])
    x = np.concatenate([cache[HOOK][i, :n] for i, n in enumerate(cache.lengths)])
    sae = glassbox.train_sae(np.tile(x, (20, 1)), d_sae=128, k=8, steps=200, batch_size=32, lr=3e-3, metadata={"hook_name": HOOK})
    got = sae.evaluate(tiny, texts)
    latents = sae.encode(x).astype(np.float64)
    recon = sae.decode(sae.encode(x)).astype(np.float64)
    x64 = x.astype(np.float64)
    assert got["hook_name"] == HOOK and got["tokens"] == len(x)
    assert got["mse"] == pytest.approx(((x64 - recon) ** 2).sum(1).mean(), rel=1e-4)
    assert got["l0"] == pytest.approx((latents > 0).sum(1).mean(), rel=1e-6)
    assert got["l1"] == pytest.approx(np.abs(latents).sum(1).mean(), rel=1e-4)
    ev = 1 - ((x64 - recon) ** 2).sum(1).mean() / (((x64**2).sum(1)).mean() - (x64.mean(0) ** 2).sum())
    assert got["explained_variance"] == pytest.approx(ev, rel=1e-4)
    np.testing.assert_allclose(got["feature_density"], (latents > 0).mean(0), atol=1e-6)

    # The CE score from logits with the SAE spliced in and with the hook zeroed.
    def ce(logits):
        total, count = 0.0, 0
        for i, n in enumerate(cache.lengths):
            ids = tiny.to_tokens(texts[i])[0]
            z = logits[i, : n - 1].astype(np.float64)
            logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
            total += -logp[np.arange(n - 1), ids[1:n]].sum()
            count += n - 1
        return total / count

    spliced = sae.forward(cache[HOOK])
    clean = ce(tiny(texts))
    with_sae = ce(tiny.run_with_hooks(texts, fwd_hooks=[(HOOK, glassbox.Replace(spliced))]))
    ablated = ce(tiny.run_with_hooks(texts, fwd_hooks=[(HOOK, glassbox.Ablate())]))
    p = got["predictions"]
    assert p["ce_loss_without_sae"] == pytest.approx(clean, rel=1e-4)
    assert p["ce_loss_with_sae"] == pytest.approx(with_sae, rel=1e-4)
    assert p["ce_loss_with_ablation"] == pytest.approx(ablated, rel=1e-4)
    assert p["ce_loss_score"] == pytest.approx((ablated - with_sae) / (ablated - clean), rel=1e-3)
    with pytest.raises(ValueError, match="at least one context"):
        sae.evaluate(tiny, [])
