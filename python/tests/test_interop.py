"""glassbox next to PyTorch, transformers and SAELens in one process: hidden states equal
transformers' within the tolerances the Rust reference tests use (relative 1e-4 for MiniLM,
1e-3 for the Q4_1 SmolLM2), SAEs trained by glassbox load in SAELens and encode identically,
and arrays cross the boundary without copies."""

from __future__ import annotations

import os

import numpy as np
import pytest

import glassbox
from glassbox import _glassbox
from conftest import need, prompts, real_model, relative_error


def hf_hidden_states(model, ids: list[int]) -> list[np.ndarray]:
    torch = need("torch")
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    return [h[0].numpy() for h in out.hidden_states], (out.logits[0].numpy() if hasattr(out, "logits") else None)


def test_minilm_run_with_cache_equals_transformers_hidden_states():
    transformers = need("transformers")
    path = real_model("all-MiniLM-L6-v2")
    hf = transformers.AutoModel.from_pretrained(str(path), dtype=need("torch").float32, attn_implementation="eager").eval()
    ours = glassbox.load_model(path)
    n = ours.cfg["n_layers"]
    names = ["hook_full_embed"] + [f"blocks.{i}.hook_normalized_resid_post" for i in range(n)]
    worst = 0.0
    for text in prompts():
        _, cache = ours.run_with_cache(text, names=names)
        hidden, _ = hf_hidden_states(hf, ours.to_tokens(text)[0].tolist())
        for name, want in zip(names, hidden):
            worst = max(worst, relative_error(cache[name][0], want))
    print(f"MiniLM: worst relative error over {len(prompts())} prompts and {len(names)} hidden states: {worst:.2e}")
    assert worst <= 1e-4


def test_smollm2_run_with_cache_equals_transformers_hidden_states_and_logits():
    transformers = need("transformers")
    torch = need("torch")
    need("gguf")
    path = real_model("SmolLM2-135M-Instruct.Q4_1.gguf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    ours = glassbox.load_model(path)
    n = ours.cfg["n_layers"]
    # transformers' last hidden state has the final norm applied; the logits check that end.
    names = ["hook_embed"] + [f"blocks.{i}.hook_resid_post" for i in range(n - 1)]
    worst, worst_logits = 0.0, 0.0
    for text in prompts():
        logits, cache = ours.run_with_cache(text, names=names)
        hidden, hf_logits = hf_hidden_states(hf, ours.to_tokens(text)[0].tolist())
        for name, want in zip(names, hidden):
            worst = max(worst, relative_error(cache[name][0], want))
        worst_logits = max(worst_logits, relative_error(logits[0], hf_logits))
    print(f"SmolLM2: worst relative error, hidden states {worst:.2e}, logits {worst_logits:.2e}")
    assert worst <= 1e-3 and worst_logits <= 1e-3


@pytest.mark.parametrize("architecture,options", [("topk", {"k": 4}), ("batchtopk", {"k": 4}), ("jumprelu", {"sparsity_coefficient": 1e-3}), ("standard", {"sparsity_coefficient": 1e-3})])
def test_an_sae_trained_by_glassbox_loads_in_saelens_and_encodes_identically(tmp_path, architecture, options):
    torch = need("torch")
    sae_lens = need("sae_lens")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((512, 16)) @ rng.standard_normal((16, 16))).astype(np.float32)
    ours = glassbox.train_sae(x, d_sae=32, architecture=architecture, steps=50, batch_size=64, lr=1e-3, metadata={"hook_name": "blocks.0.hook_resid_post"}, **options)
    ours.save_model(tmp_path / "sae")
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path / "sae"), device="cpu")
    with torch.no_grad():
        latents = theirs.encode(torch.from_numpy(x)).numpy()
        recon = theirs.decode(torch.from_numpy(latents)).numpy()
    mine = ours.encode(x)
    assert (mine > 0).sum() > 0, "the SAE fires"
    np.testing.assert_allclose(mine, latents, rtol=0, atol=1e-5 * np.abs(latents).max())
    np.testing.assert_allclose(ours.decode(mine), recon, rtol=0, atol=1e-5 * np.abs(recon).max())
    assert np.array_equal(mine > 0, latents > 0), "the same latents fire"


def test_contiguous_float32_arrays_cross_without_copies():
    x = np.arange(4096 * 8, dtype=np.float32).reshape(4096, 8)
    assert _glassbox._input_address(x) == x.ctypes.data, "Rust reads numpy's own buffer"
    out, address = _glassbox._output_with_address(1000)
    assert out.ctypes.data == address and not out.flags.owndata, "numpy keeps Rust's buffer"
    # The API's conversion leaves such arrays alone, and so does the reshape around SAE.encode.
    from glassbox.model import _f32

    assert _f32(x) is x
    assert _glassbox._input_address(_f32(x).reshape(-1, 8)) == x.ctypes.data
    # Anything else is converted once, to a new buffer.
    assert _f32(x.astype(np.float64)).ctypes.data != x.ctypes.data
    assert _glassbox._input_address(x[:, ::2]) != x.ctypes.data
    assert _glassbox._input_address(x.astype(np.float64)) != x.ctypes.data
    with pytest.raises(ValueError, match="x is not a float32 array and cannot be made one"):
        _glassbox._input_address("text")


def test_results_are_views_of_rust_memory(tiny):
    _, cache = tiny.run_with_cache("Hello there", names=["blocks.0.hook_resid_post"])
    a = cache["blocks.0.hook_resid_post"]
    assert not a.flags.owndata and a.base is not None
    sae = glassbox.train_sae(np.ones((8, 4), np.float32), d_sae=4, k=1, steps=1)
    z = sae.encode(np.ones((3, 4), np.float32))
    assert not z.flags.owndata
