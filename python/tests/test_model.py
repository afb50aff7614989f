"""Language models from Python: tokens, run_with_cache against the transformers references,
interventions, generation, embeddings and errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import glassbox
from conftest import TINY_GPT2, prompts, real_model, reference, relative_error


def sequences(ref: dict, tokens: str = "tokens", offsets: str = "offsets") -> list[list[int]]:
    o = ref[offsets]
    return [ref[tokens][o[i] : o[i + 1]].tolist() for i in range(len(o) - 1)]


def flat(name: str, batched: np.ndarray, lengths: list[int]) -> np.ndarray:
    """run_with_cache's [batch, pos, ...] (attention: [batch, head, q, k]) back to the
    references' [tokens, ...]."""
    if name.endswith("hook_attn_scores") or name.endswith("hook_pattern"):
        batched = batched.transpose(0, 2, 1, 3)
    return np.concatenate([batched[i, :n] for i, n in enumerate(lengths)])


def check_against_reference(model: glassbox.LanguageModel, ref: dict, tolerance: float) -> tuple:
    seqs = sequences(ref)
    for text, want in zip(prompts(), seqs):
        assert model.to_tokens(text)[0].tolist() == want, text
    names = [k for k in ref if k in set(model.hook_names())]
    assert len(names) >= 20
    logits, cache = model.run_with_cache(seqs, names=names)
    lengths = [len(s) for s in seqs]
    assert cache.lengths == lengths
    worst = max((relative_error(flat(n, cache[n], lengths), ref[n]), n) for n in names)
    assert worst[0] <= tolerance, worst
    return logits, worst


def test_tiny_gpt2_matches_transformers_on_every_reference_hook(tiny):
    ref = reference("tiny-gpt2")
    logits, _ = check_against_reference(tiny, ref, 1e-4)
    lengths = [len(s) for s in sequences(ref)]
    assert relative_error(flat("logits", logits, lengths), ref["logits"]) <= 1e-4


def test_minilm_hidden_states_and_sentence_embeddings_match_sentence_transformers():
    model = glassbox.load_model(real_model("all-MiniLM-L6-v2"))
    ref = reference("minilm")
    logits, _ = check_against_reference(model, ref, 1e-4)
    assert logits is None, "an encoder has no unembedding"
    texts = prompts()
    got = model.sentence_embeddings(texts)
    assert np.abs(got - ref["all_sentence_embedding"]).max() <= 1e-5


def test_smollm2_gguf_matches_transformers_with_last_logits():
    model = glassbox.load_model(real_model("SmolLM2-135M-Instruct.Q4_1.gguf"))
    ref = reference("smollm2")
    check_against_reference(model, ref, 1e-3)
    last = model(sequences(ref), return_type="last")
    want = ref["last_logits"]
    assert np.abs(last - want).max() <= 1e-3 * np.abs(want).max()
    greedy = model.generate(sequences(ref)[0], max_new_tokens=ref["greedy"].shape[1], stop_at_eos=False)
    assert greedy == ref["greedy"][0].tolist()


def test_tokens_round_trip_and_token_strings(tiny):
    ids = tiny.to_tokens(["Hello world", "Hi"])
    assert ids.shape == (2, max(len(tiny.to_tokens("Hello world")[0]), len(tiny.to_tokens("Hi")[0])))
    assert ids[1, -1] == -1, "shorter prompts are padded with -1"
    assert tiny.to_string(ids[0]) == "Hello world"
    assert "".join(tiny.to_str_tokens("Hello world")) == "Hello world".replace(" ", "Ġ")
    assert tiny.to_str_tokens(ids[0]) == tiny.to_str_tokens("Hello world")


def test_cfg_and_hook_names(tiny):
    cfg = tiny.cfg
    assert (cfg["family"], cfg["n_layers"]) == ("gpt2", 2)
    names = tiny.hook_names()
    assert names[0] == "hook_embed" and "blocks.1.hook_resid_post" in names
    assert "LanguageModel(" in repr(tiny)


def test_a_ragged_batch_gives_each_prompt_what_it_gets_alone(tiny):
    texts = ["The cat sat on the mat.", "Dogs bark."]
    names = ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]
    logits, cache = tiny.run_with_cache(texts, names=names)
    for i, text in enumerate(texts):
        one_logits, one = tiny.run_with_cache(text, names=names)
        n = one["blocks.0.hook_resid_post"].shape[1]
        np.testing.assert_allclose(cache["blocks.0.hook_resid_post"][i, :n], one["blocks.0.hook_resid_post"][0], rtol=0, atol=1e-5)
        np.testing.assert_allclose(cache["blocks.1.attn.hook_pattern"][i, :, :n, :n], one["blocks.1.attn.hook_pattern"][0], rtol=0, atol=1e-6)
        np.testing.assert_allclose(logits[i, :n], one_logits[0], rtol=0, atol=1e-4)
    assert not cache["blocks.0.hook_resid_post"][1, cache.lengths[1] :].any(), "padding is zero"


def test_names_filter_and_default_keep_every_hook(tiny):
    _, every = tiny.run_with_cache("Hi there")
    assert sorted(every) == sorted(tiny.hook_names())
    _, some = tiny.run_with_cache("Hi there", names_filter=lambda n: n.endswith("hook_resid_post"))
    assert sorted(some) == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    _, one = tiny.run_with_cache("Hi there", names_filter="hook_embed")
    assert list(one) == ["hook_embed"]
    logits, _ = tiny.run_with_cache("Hi there", names=[], logits="last")
    assert logits.shape == (1, tiny.cfg["d_vocab"])


HOOK = "blocks.0.hook_resid_post"


def test_interventions_do_what_they_say(tiny):
    text = "The quick brown fox"
    _, clean = tiny.run_with_cache(text, names=[HOOK])
    x = clean[HOOK]
    d = x.shape[-1]
    vector = np.linspace(-1, 1, d, dtype=np.float32)

    def after(what):
        _, cache = tiny.run_with_hooks(text, fwd_hooks=[(HOOK, what)], names=[HOOK])
        return cache[HOOK]

    assert not after(glassbox.Ablate()).any()
    np.testing.assert_allclose(after(glassbox.Add(vector)), x + vector, atol=1e-6)
    np.testing.assert_allclose(after(glassbox.MeanAblate()), np.broadcast_to(x.mean(axis=1, keepdims=True), x.shape), atol=1e-5)
    np.testing.assert_allclose(after(glassbox.MeanAblate(vector)), np.broadcast_to(vector, x.shape), atol=0)
    np.testing.assert_array_equal(after(glassbox.Replace(2 * x)), 2 * x)

    seen = []

    def double(activation, hook):
        seen.append((hook.name, activation.shape))
        activation *= 2  # in place

    np.testing.assert_allclose(after(double), 2 * x, atol=1e-6)
    assert seen == [(HOOK, x.shape)]
    np.testing.assert_allclose(after(lambda a, hook: a + 1.0), x + 1, atol=1e-6)

    clean_logits = tiny(text)
    np.testing.assert_array_equal(tiny.run_with_hooks(text, fwd_hooks=[(HOOK, glassbox.Replace(x))]), clean_logits)
    assert not np.allclose(tiny.run_with_hooks(text, fwd_hooks=[(HOOK, glassbox.Ablate())]), clean_logits)


def test_an_attention_pattern_can_be_replaced_in_transformerlens_shape(tiny):
    name = "blocks.0.attn.hook_pattern"
    texts = ["one two three", "four five"]
    logits, cache = tiny.run_with_cache(texts, names=[name])
    again = tiny.run_with_hooks(texts, fwd_hooks=[(name, glassbox.Replace(cache[name]))])
    np.testing.assert_array_equal(again, logits)


def test_intervention_errors_are_raised(tiny):
    with pytest.raises(ValueError, match="steering vector for hook blocks.0.hook_resid_post has 3 values"):
        tiny.run_with_hooks("Hi", fwd_hooks=[(HOOK, glassbox.Add(np.ones(3)))])
    with pytest.raises(ValueError, match="shape"):
        tiny.run_with_hooks("Hi", fwd_hooks=[(HOOK, glassbox.Replace(np.ones((1, 1, 3))))])

    def broken(a, hook):
        raise KeyError("inside the hook")

    with pytest.raises(KeyError, match="inside the hook"):
        tiny.run_with_hooks("Hi", fwd_hooks=[(HOOK, broken)])
    with pytest.raises(ValueError, match=r"has shape \(1, 1, 64\); expected the shape run_with_cache gives it"):
        tiny.run_with_hooks("Hi", fwd_hooks=[(HOOK, lambda a, hook: a[:, :1])])
    with pytest.raises(ValueError, match=r"returned shape \[2, 1\]; the activation has \[2, 64\]"):
        tiny.run_with_hooks("Hi", fwd_hooks=[(HOOK, lambda a, hook: a[..., :1])])
    with pytest.raises(TypeError, match="Ablate, MeanAblate, Replace, Add or a function"):
        tiny.run_with_hooks("Hi", fwd_hooks=[(HOOK, 3)])
    with pytest.raises(ValueError, match="blocks.9.hook_resid_post"):
        tiny.run_with_cache("Hi", names=["blocks.9.hook_resid_post"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tiny([10**6])
    with pytest.raises(ValueError, match="return_type"):
        tiny("Hi", return_type="loss")


def test_generate_text_and_ids(tiny):
    ref = reference("tiny-gpt2")
    prompt = sequences(ref)[0]
    n = ref["greedy"].shape[1]
    assert tiny.generate(prompt, max_new_tokens=n, stop_at_eos=False) == ref["greedy"][0].tolist()
    text = tiny.generate("Once upon a time", max_new_tokens=5)
    assert text.startswith("Once upon a time")
    sampled = tiny.generate(prompt, max_new_tokens=5, temperature=1.0, seed=3, stop_at_eos=False)
    assert sampled == tiny.generate(prompt, max_new_tokens=5, temperature=1.0, seed=3, stop_at_eos=False)


def test_return_type_none_and_forward(tiny):
    assert tiny("Hi", return_type=None) is None
    np.testing.assert_array_equal(tiny.forward("Hi"), tiny("Hi"))


def test_missing_and_damaged_models_raise_with_the_path(tmp_path):
    with pytest.raises(ValueError, match="nothing: no such file or folder"):
        glassbox.load_model(tmp_path / "nothing")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 5)
    with pytest.raises(ValueError, match="bad.gguf"):
        glassbox.load_model(bad)


def test_loading_a_model_folder_by_its_config_json(tiny):
    again = glassbox.load_model(TINY_GPT2 / "config.json")
    np.testing.assert_array_equal(again("Hi"), tiny("Hi"))


def test_a_hugging_face_cache_id_opens_the_cached_snapshot(tmp_path, monkeypatch, tiny):
    snapshot = tmp_path / "hub" / "models--someone--tiny-gpt2" / "snapshots" / "abc123"
    shutil.copytree(TINY_GPT2, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = glassbox.load_model("someone/tiny-gpt2")
    assert model.cfg["source"] == str(snapshot)
    np.testing.assert_array_equal(model("Hi"), tiny("Hi"))
    with pytest.raises(ValueError, match="model someone/other is not in the local Hugging Face cache"):
        glassbox.load_model("someone/other")


def test_a_language_model_glassbox_trained_opens_like_any_other(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join(f"the cat sat on the mat number {i} and the dog ran to the tree." for i in range(60)))
    glassbox.cli.lm.train(text, arch="gpt", vocab=300, lowercase=True, layers=2, d_model=32, heads=2, d_mlp=48, context=16, steps=4, batch_size=4, out=tmp_path / "lm", quiet=True)
    model = glassbox.load_model(tmp_path / "lm")
    assert (model.cfg["n_layers"], model.cfg["d_model"]) == (2, 32)
    logits, cache = model.run_with_cache("the cat sat", names=["blocks.1.hook_resid_post"])
    assert logits.shape[-1] == model.cfg["d_vocab"] and cache["blocks.1.hook_resid_post"].shape[-1] == 32
