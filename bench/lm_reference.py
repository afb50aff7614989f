"""PyTorch/transformers reference activations for `glassbox lm` (crates/lm).

    python bench/lm_reference.py MODEL --prompts FILE --out OUT.safetensors
        [--hooks all|fast|H1,H2,...] [--max-prompts K] [--generate N]
        [--score TEXTFILE --score-out JSON] [--score-only]

MODEL is a Hugging Face folder (GPT-2 / Llama causal LM, or a BERT sentence-transformers folder)
or a .gguf file (loaded by transformers, which dequantises it with the `gguf` package).

Hooks follow TransformerLens HookedTransformer / HookedEncoder names and semantics WITHOUT weight
processing (as `from_pretrained_no_processing`); see the hook table printed by --list-hooks and
crates/lm/tests/fixtures/README.md. Every hook is computed from the HF model: HF submodule
outputs are captured with forward hooks, attention internals (q/k/v, rotary, scores, pattern, z)
and norm scales are recomputed from the module weights, and the script ASSERTS that the
recomputation reproduces the HF module outputs (attention output, norm outputs, MLP output,
block output, HF hidden_states, logits), so the reference is self-checked.

Output (what `glassbox lm run` writes): one F32 tensor per hook named by the hook, prompts'
positions concatenated along axis 0: per-token hooks [T, ...]; attention scores/pattern
[T, heads, max_len] (columns past a prompt's own length are 0, masked future scores are -inf);
`logits` [T, vocab]; `last_logits` [prompts, vocab]; `tokens` I64 [T]; `offsets` I64
[prompts+1]; `sentence_embedding` [prompts, d] (BERT); `greedy` I64 [prompts, N] (--generate N).
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)

SCORE_HOOKS = ("attn.hook_attn_scores", "attn.hook_pattern")


# ----------------------------------------------------------------------------- hook lists

def block_hooks(family, i):
    p = f"blocks.{i}."
    if family == "bert":
        return [p + h for h in (
            "hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores",
            "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "ln1.hook_scale",
            "ln1.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post",
            "ln2.hook_scale", "ln2.hook_normalized", "hook_normalized_resid_post")]
    attn = ["attn.hook_q", "attn.hook_k", "attn.hook_v"]
    if family == "llama":
        attn += ["attn.hook_rot_q", "attn.hook_rot_k"]
    attn += ["attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z"]
    mlp = ["mlp.hook_pre"] + (["mlp.hook_pre_linear"] if family == "llama" else []) + ["mlp.hook_post"]
    return [p + h for h in (
        ["hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized"] + attn
        + ["hook_attn_out", "hook_resid_mid", "ln2.hook_scale", "ln2.hook_normalized"] + mlp
        + ["hook_mlp_out", "hook_resid_post"])]


def optional_block_hooks(family, i):
    """TL hooks that exist only with non-default cfg flags (use_attn_result, use_hook_mlp_in,
    use_split_qkv_input, use_attn_in). Emitted only when named explicitly."""
    p = f"blocks.{i}."
    hs = ["attn.hook_result", "hook_q_input", "hook_k_input", "hook_v_input", "hook_mlp_in"]
    if family != "bert":
        hs.append("hook_attn_in")
    return [p + h for h in hs]


def embed_hooks(family):
    if family == "bert":
        return ["embed.hook_embed", "embed.hook_pos_embed", "embed.hook_token_type_embed",
                "embed.ln.hook_scale", "embed.ln.hook_normalized", "hook_full_embed"]
    if family == "gpt2":
        return ["hook_embed", "hook_pos_embed"]
    return ["hook_embed"]


def final_hooks(family):
    return [] if family == "bert" else ["ln_final.hook_scale", "ln_final.hook_normalized"]


def all_hooks(family, n_layers):
    hs = embed_hooks(family)
    for i in range(n_layers):
        hs += block_hooks(family, i)
    hs += final_hooks(family)
    hs += ["sentence_embedding"] if family == "bert" else ["logits"]
    return hs


def fast_hooks(family, n_layers):
    hs = embed_hooks(family) + block_hooks(family, 0)
    for i in range(1, n_layers - 1):
        hs.append(f"blocks.{i}.hook_resid_post")
        if family == "bert":
            hs.append(f"blocks.{i}.hook_normalized_resid_post")
    if n_layers > 1:
        hs += block_hooks(family, n_layers - 1)
    hs += final_hooks(family)
    hs += ["sentence_embedding"] if family == "bert" else ["last_logits"]
    return hs


# ----------------------------------------------------------------------------- self-check

class Checker:
    """Collects max |a - b| of every self-check and fails loudly past the tolerance.
    The tolerance is relative to the scale of the checked tensor: |a-b| <= atol + rtol*max|b|."""

    def __init__(self, atol=1e-5, rtol=1e-5):
        self.atol, self.rtol = atol, rtol
        self.worst = {}  # kind -> (abs err, rel err)

    def __call__(self, kind, a, b):
        a = a.detach().float()
        b = b.detach().float()
        assert a.shape == b.shape, f"{kind}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        err = (a - b).abs().max().item() if a.numel() else 0.0
        scale = b.abs().max().item() if b.numel() else 0.0
        rel = err / max(scale, 1e-30)
        w = self.worst.get(kind, (0.0, 0.0))
        self.worst[kind] = (max(w[0], err), max(w[1], rel))
        if not err <= self.atol + self.rtol * scale:
            raise AssertionError(f"self-check {kind}: max|diff| {err:.3e} (scale {scale:.3e})")

    def summary(self):
        return {k: {"max_abs": v[0], "max_rel": v[1]} for k, v in sorted(self.worst.items())}


class Capture:
    """Forward hooks storing (first input, output) of HF submodules."""

    def __init__(self):
        self.d = {}
        self.handles = []

    def add(self, name, module):
        def fn(mod, args, kwargs, out):
            inp = args[0] if args else kwargs.get("hidden_states", kwargs.get("input"))
            if isinstance(out, tuple):
                out = out[0]
            self.d[name] = (inp, out, kwargs)
        self.handles.append(module.register_forward_hook(fn, with_kwargs=True))

    def inp(self, name):
        return self.d[name][0][0]  # drop batch dim

    def out(self, name):
        return self.d[name][1][0]

    def kwargs(self, name):
        return self.d[name][2]

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def layer_norm_hooks(x, w, b, eps):
    xc = x - x.mean(-1, keepdim=True)
    scale = (xc.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return scale, xc / scale * w + b


def rms_norm_hooks(x, eps):
    scale = (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return scale, x / scale


def attention_core(q, k, v, causal):
    """q [n,H,dh], k/v [n,H,dh] (already repeated for GQA). Returns scores, pattern, z."""
    dh = q.shape[-1]
    scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(dh)
    n = q.shape[0]
    if causal:
        mask = torch.ones(n, n, dtype=torch.bool).tril()
        scores = torch.where(mask, scores, torch.tensor(-math.inf))
    pattern = scores.softmax(-1)
    pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
    z = torch.einsum("hqk,khd->qhd", pattern, v)
    return scores.permute(1, 0, 2), pattern.permute(1, 0, 2), z  # [q, H, k]


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


# ----------------------------------------------------------------------------- per family

def run_gpt2(model, ids, chk, want):
    tr = model.transformer
    cfg = model.config
    H = cfg.n_head
    d = cfg.n_embd
    dh = d // H
    eps = cfg.layer_norm_epsilon
    cap = Capture()
    cap.add("wte", tr.wte)
    cap.add("wpe", tr.wpe)
    for i, blk in enumerate(tr.h):
        for nm, mod in (("blk", blk), ("ln1", blk.ln_1), ("attn", blk.attn), ("ln2", blk.ln_2),
                        ("mlp", blk.mlp), ("act", blk.mlp.act), ("mlp_proj", blk.mlp.c_proj)):
            cap.add(f"{nm}{i}", mod)
    cap.add("lnf", tr.ln_f)
    try:
        out = model(ids, output_hidden_states=True, use_cache=False)
    finally:
        cap.remove()
    hs = [h[0] for h in out.hidden_states]
    r = {}
    r["hook_embed"] = cap.out("wte")
    r["hook_pos_embed"] = cap.out("wpe")
    resid = r["hook_embed"] + r["hook_pos_embed"]
    chk("embed_sum_vs_hidden_states[0]", resid, hs[0])
    n = ids.shape[1]
    for i, blk in enumerate(tr.h):
        p = f"blocks.{i}."
        rp = cap.inp(f"blk{i}")
        chk("resid_pre_vs_prev_block_out", rp, resid)
        r[p + "hook_resid_pre"] = rp
        scale, normed = layer_norm_hooks(rp, blk.ln_1.weight, blk.ln_1.bias, eps)
        chk("ln_normalized_vs_hf_ln_out", normed, cap.out(f"ln1{i}"))
        r[p + "ln1.hook_scale"], r[p + "ln1.hook_normalized"] = scale, cap.out(f"ln1{i}")
        qkv = r[p + "ln1.hook_normalized"] @ blk.attn.c_attn.weight + blk.attn.c_attn.bias
        q, k, v = (t.reshape(n, H, dh) for t in qkv.split(d, dim=-1))
        scores, pattern, z = attention_core(q, k, v, causal=True)
        attn_out = z.reshape(n, d) @ blk.attn.c_proj.weight + blk.attn.c_proj.bias
        chk("attn_out_recomputed_vs_hf", attn_out, cap.out(f"attn{i}"))
        r.update({p + "attn.hook_q": q, p + "attn.hook_k": k, p + "attn.hook_v": v,
                  p + "attn.hook_attn_scores": scores, p + "attn.hook_pattern": pattern,
                  p + "attn.hook_z": z, p + "hook_attn_out": cap.out(f"attn{i}")})
        if p + "attn.hook_result" in want:
            W_O = blk.attn.c_proj.weight.reshape(H, dh, d)
            r[p + "attn.hook_result"] = torch.einsum("qhd,hdm->qhm", z, W_O)
        for nm in ("hook_q_input", "hook_k_input", "hook_v_input", "hook_attn_in"):
            r[p + nm] = rp[:, None, :].expand(n, H, d)
        mid = rp + r[p + "hook_attn_out"]
        chk("resid_mid_vs_hf_ln2_input", mid, cap.inp(f"ln2{i}"))
        r[p + "hook_resid_mid"] = r[p + "hook_mlp_in"] = mid
        scale, normed = layer_norm_hooks(mid, blk.ln_2.weight, blk.ln_2.bias, eps)
        chk("ln_normalized_vs_hf_ln_out", normed, cap.out(f"ln2{i}"))
        r[p + "ln2.hook_scale"], r[p + "ln2.hook_normalized"] = scale, cap.out(f"ln2{i}")
        pre = r[p + "ln2.hook_normalized"] @ blk.mlp.c_fc.weight + blk.mlp.c_fc.bias
        chk("mlp_pre_recomputed_vs_hf", pre, cap.inp(f"act{i}"))
        r[p + "mlp.hook_pre"] = cap.inp(f"act{i}")
        post = cap.out(f"act{i}")
        if cfg.activation_function == "gelu_new":
            chk("mlp_act_recomputed_vs_hf", gelu_new(r[p + "mlp.hook_pre"]), post)
        r[p + "mlp.hook_post"] = post
        mlp_out = post @ blk.mlp.c_proj.weight + blk.mlp.c_proj.bias
        chk("mlp_out_recomputed_vs_hf", mlp_out, cap.out(f"mlp{i}"))
        r[p + "hook_mlp_out"] = cap.out(f"mlp{i}")
        post_resid = mid + r[p + "hook_mlp_out"]
        chk("resid_post_vs_hf_block_out", post_resid, cap.out(f"blk{i}"))
        if i + 1 < len(tr.h):
            chk("block_out_vs_hidden_states", cap.out(f"blk{i}"), hs[i + 1])
        r[p + "hook_resid_post"] = resid = cap.out(f"blk{i}")
    scale, normed = layer_norm_hooks(resid, tr.ln_f.weight, tr.ln_f.bias, eps)
    chk("ln_normalized_vs_hf_ln_out", normed, cap.out("lnf"))
    chk("ln_final_vs_hidden_states[-1]", cap.out("lnf"), hs[-1])
    r["ln_final.hook_scale"], r["ln_final.hook_normalized"] = scale, cap.out("lnf")
    logits = out.logits[0]
    chk("logits_vs_unembed", r["ln_final.hook_normalized"] @ model.lm_head.weight.T, logits)
    r["logits"] = logits
    return r


def rope_theta(cfg):
    rp = getattr(cfg, "rope_parameters", None) or {}
    if isinstance(rp, dict) and "rope_theta" in rp:
        assert rp.get("rope_type", "default") == "default", rp
        return float(rp["rope_theta"])
    assert getattr(cfg, "rope_scaling", None) in (None, {}), cfg.rope_scaling
    return float(cfg.rope_theta)


def rotary(n, dh, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    freqs = torch.arange(n, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def run_llama(model, ids, chk, want):
    m = model.model
    cfg = model.config
    H = cfg.num_attention_heads
    Hk = cfg.num_key_value_heads
    d = cfg.hidden_size
    dh = getattr(cfg, "head_dim", None) or d // H
    g = H // Hk
    cap = Capture()
    cap.add("emb", m.embed_tokens)
    for i, L in enumerate(m.layers):
        for nm, mod in (("blk", L), ("ln1", L.input_layernorm), ("attn", L.self_attn),
                        ("o_proj", L.self_attn.o_proj), ("ln2", L.post_attention_layernorm),
                        ("mlp", L.mlp), ("gate", L.mlp.gate_proj), ("up", L.mlp.up_proj),
                        ("down", L.mlp.down_proj)):
            cap.add(f"{nm}{i}", mod)
    cap.add("lnf", m.norm)
    try:
        out = model(ids, output_hidden_states=True, use_cache=False)
    finally:
        cap.remove()
    hs = [h[0] for h in out.hidden_states]
    n = ids.shape[1]
    cos, sin = rotary(n, dh, rope_theta(cfg))
    pe = cap.kwargs("attn0").get("position_embeddings")
    if pe is not None:
        chk("rope_cos_sin_vs_hf", torch.stack([cos, sin]), torch.stack([pe[0][0], pe[1][0]]))
    cos, sin = cos[:, None, :], sin[:, None, :]
    r = {"hook_embed": cap.out("emb")}
    chk("embed_vs_hidden_states[0]", r["hook_embed"], hs[0])
    resid = r["hook_embed"]
    eps = cfg.rms_norm_eps
    for i, L in enumerate(m.layers):
        p = f"blocks.{i}."
        A = L.self_attn
        rp = cap.inp(f"blk{i}")
        chk("resid_pre_vs_prev_block_out", rp, resid)
        r[p + "hook_resid_pre"] = rp
        scale, normed = rms_norm_hooks(rp, eps)
        chk("rms_normalized_times_w_vs_hf_ln_out", normed * L.input_layernorm.weight, cap.out(f"ln1{i}"))
        r[p + "ln1.hook_scale"], r[p + "ln1.hook_normalized"] = scale, normed
        x = cap.out(f"ln1{i}")
        q = A.q_proj(x).reshape(n, H, dh)
        k = A.k_proj(x).reshape(n, Hk, dh)
        v = A.v_proj(x).reshape(n, Hk, dh)
        rq = q * cos + rotate_half(q) * sin
        rk = k * cos + rotate_half(k) * sin
        scores, pattern, z = attention_core(rq, rk.repeat_interleave(g, dim=1),
                                            v.repeat_interleave(g, dim=1), causal=True)
        chk("z_recomputed_vs_hf_o_proj_input", z.reshape(n, H * dh), cap.inp(f"o_proj{i}"))
        attn_out = A.o_proj(z.reshape(n, H * dh))
        chk("attn_out_recomputed_vs_hf", attn_out, cap.out(f"attn{i}"))
        r.update({p + "attn.hook_q": q, p + "attn.hook_k": k, p + "attn.hook_v": v,
                  p + "attn.hook_rot_q": rq, p + "attn.hook_rot_k": rk,
                  p + "attn.hook_attn_scores": scores, p + "attn.hook_pattern": pattern,
                  p + "attn.hook_z": z, p + "hook_attn_out": cap.out(f"attn{i}")})
        if p + "attn.hook_result" in want:
            W_O = A.o_proj.weight.T.reshape(H, dh, d)
            r[p + "attn.hook_result"] = torch.einsum("qhd,hdm->qhm", z, W_O)
        r[p + "hook_q_input"] = r[p + "hook_attn_in"] = rp[:, None, :].expand(n, H, d)
        r[p + "hook_k_input"] = r[p + "hook_v_input"] = rp[:, None, :].expand(n, Hk, d)
        mid = rp + r[p + "hook_attn_out"]
        chk("resid_mid_vs_hf_ln2_input", mid, cap.inp(f"ln2{i}"))
        r[p + "hook_resid_mid"] = r[p + "hook_mlp_in"] = mid
        scale, normed = rms_norm_hooks(mid, eps)
        chk("rms_normalized_times_w_vs_hf_ln_out", normed * L.post_attention_layernorm.weight,
            cap.out(f"ln2{i}"))
        r[p + "ln2.hook_scale"], r[p + "ln2.hook_normalized"] = scale, normed
        pre, pre_lin = cap.out(f"gate{i}"), cap.out(f"up{i}")
        assert cfg.hidden_act == "silu", cfg.hidden_act
        post = F.silu(pre) * pre_lin
        chk("mlp_post_recomputed_vs_hf_down_input", post, cap.inp(f"down{i}"))
        r[p + "mlp.hook_pre"], r[p + "mlp.hook_pre_linear"], r[p + "mlp.hook_post"] = pre, pre_lin, post
        r[p + "hook_mlp_out"] = cap.out(f"mlp{i}")
        chk("mlp_out_recomputed_vs_hf", L.mlp.down_proj(post), r[p + "hook_mlp_out"])
        chk("resid_post_vs_hf_block_out", mid + r[p + "hook_mlp_out"], cap.out(f"blk{i}"))
        if i + 1 < len(m.layers):
            chk("block_out_vs_hidden_states", cap.out(f"blk{i}"), hs[i + 1])
        r[p + "hook_resid_post"] = resid = cap.out(f"blk{i}")
    scale, normed = rms_norm_hooks(resid, eps)
    chk("rms_normalized_times_w_vs_hf_ln_out", normed * m.norm.weight, cap.out("lnf"))
    chk("ln_final_vs_hidden_states[-1]", cap.out("lnf"), hs[-1])
    r["ln_final.hook_scale"], r["ln_final.hook_normalized"] = scale, normed
    logits = out.logits[0]
    chk("logits_vs_unembed", cap.out("lnf") @ model.lm_head.weight.T, logits)
    r["logits"] = logits
    return r


def run_bert(model, ids, chk, want):
    cfg = model.config
    E = model.embeddings
    H = cfg.num_attention_heads
    d = cfg.hidden_size
    dh = d // H
    eps = cfg.layer_norm_eps
    cap = Capture()
    for nm, mod in (("word", E.word_embeddings), ("pos", E.position_embeddings),
                    ("tt", E.token_type_embeddings), ("eln", E.LayerNorm)):
        cap.add(nm, mod)
    layers = model.encoder.layer
    for i, L in enumerate(layers):
        for nm, mod in (("blk", L), ("q", L.attention.self.query), ("k", L.attention.self.key),
                        ("v", L.attention.self.value), ("ao", L.attention.output.dense),
                        ("ln1", L.attention.output.LayerNorm), ("fc", L.intermediate.dense),
                        ("inter", L.intermediate), ("fo", L.output.dense), ("ln2", L.output.LayerNorm)):
            cap.add(f"{nm}{i}", mod)
    tt = torch.zeros_like(ids)
    try:
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=tt,
                    output_hidden_states=True)
    finally:
        cap.remove()
    hs = [h[0] for h in out.hidden_states]
    n = ids.shape[1]
    r = {"embed.hook_embed": cap.out("word"), "embed.hook_pos_embed": cap.out("pos"),
         "embed.hook_token_type_embed": cap.out("tt")}
    chk("pos_embed_is_first_rows", r["embed.hook_pos_embed"], E.position_embeddings.weight[:n])
    s = r["embed.hook_embed"] + r["embed.hook_pos_embed"] + r["embed.hook_token_type_embed"]
    chk("embed_sum_vs_hf_ln_input", s, cap.inp("eln"))
    scale, normed = layer_norm_hooks(s, E.LayerNorm.weight, E.LayerNorm.bias, eps)
    chk("ln_normalized_vs_hf_ln_out", normed, cap.out("eln"))
    r["embed.ln.hook_scale"], r["embed.ln.hook_normalized"] = scale, cap.out("eln")
    r["hook_full_embed"] = cap.out("eln")
    chk("full_embed_vs_hidden_states[0]", r["hook_full_embed"], hs[0])
    resid = r["hook_full_embed"]
    for i, L in enumerate(layers):
        p = f"blocks.{i}."
        rp = cap.inp(f"blk{i}")
        chk("resid_pre_vs_prev_block_out", rp, resid)
        r[p + "hook_resid_pre"] = rp
        q = cap.out(f"q{i}").reshape(n, H, dh)
        k = cap.out(f"k{i}").reshape(n, H, dh)
        v = cap.out(f"v{i}").reshape(n, H, dh)
        chk("q_recomputed_vs_hf", (rp @ L.attention.self.query.weight.T + L.attention.self.query.bias).reshape(n, H, dh), q)
        scores, pattern, z = attention_core(q, k, v, causal=False)
        chk("z_recomputed_vs_hf_dense_input", z.reshape(n, d), cap.inp(f"ao{i}"))
        attn_out = L.attention.output.dense(z.reshape(n, d))
        chk("attn_out_recomputed_vs_hf", attn_out, cap.out(f"ao{i}"))
        r.update({p + "attn.hook_q": q, p + "attn.hook_k": k, p + "attn.hook_v": v,
                  p + "attn.hook_attn_scores": scores, p + "attn.hook_pattern": pattern,
                  p + "attn.hook_z": z, p + "hook_attn_out": cap.out(f"ao{i}")})
        if p + "attn.hook_result" in want:
            W_O = L.attention.output.dense.weight.T.reshape(H, dh, d)
            r[p + "attn.hook_result"] = torch.einsum("qhd,hdm->qhm", z, W_O)
        for nm in ("hook_q_input", "hook_k_input", "hook_v_input"):
            r[p + nm] = rp[:, None, :].expand(n, H, d)
        mid = rp + r[p + "hook_attn_out"]
        chk("resid_mid_vs_hf_ln1_input", mid, cap.inp(f"ln1{i}"))
        r[p + "hook_resid_mid"] = r[p + "hook_mlp_in"] = mid
        ln1 = L.attention.output.LayerNorm
        scale, normed = layer_norm_hooks(mid, ln1.weight, ln1.bias, eps)
        chk("ln_normalized_vs_hf_ln_out", normed, cap.out(f"ln1{i}"))
        r[p + "ln1.hook_scale"], r[p + "ln1.hook_normalized"] = scale, cap.out(f"ln1{i}")
        r[p + "mlp.hook_pre"] = cap.out(f"fc{i}")
        r[p + "mlp.hook_post"] = cap.out(f"inter{i}")
        assert cfg.hidden_act == "gelu", cfg.hidden_act
        chk("mlp_act_recomputed_vs_hf", F.gelu(r[p + "mlp.hook_pre"]), r[p + "mlp.hook_post"])
        r[p + "hook_mlp_out"] = cap.out(f"fo{i}")
        post_resid = r[p + "ln1.hook_normalized"] + r[p + "hook_mlp_out"]
        chk("resid_post_vs_hf_ln2_input", post_resid, cap.inp(f"ln2{i}"))
        r[p + "hook_resid_post"] = post_resid
        ln2 = L.output.LayerNorm
        scale, normed = layer_norm_hooks(post_resid, ln2.weight, ln2.bias, eps)
        chk("ln_normalized_vs_hf_ln_out", normed, cap.out(f"ln2{i}"))
        r[p + "ln2.hook_scale"], r[p + "ln2.hook_normalized"] = scale, cap.out(f"ln2{i}")
        r[p + "hook_normalized_resid_post"] = resid = cap.out(f"ln2{i}")
        chk("block_out_vs_hidden_states", resid, hs[i + 1])
        chk("block_out_vs_hf_layer_out", resid, cap.out(f"blk{i}"))
    r["_last_hidden"] = out.last_hidden_state[0]
    return r


# ----------------------------------------------------------------------------- loading

def versions():
    import transformers
    import tokenizers
    v = {"torch": torch.__version__, "transformers": transformers.__version__,
         "tokenizers": tokenizers.__version__, "python": sys.version.split()[0]}
    for mod in ("sentence_transformers", "gguf", "safetensors", "numpy"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            pass
    return v


def gguf_tokenizer_info(path):
    import gguf
    rd = gguf.GGUFReader(path)
    info = {}
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.add_bos_token",
                "tokenizer.ggml.add_eos_token", "tokenizer.ggml.bos_token_id",
                "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
                "tokenizer.ggml.unknown_token_id", "general.architecture", "llama.rope.freq_base",
                "llama.context_length", "llama.attention.layer_norm_rms_epsilon"):
        f = rd.fields.get(key)
        if f is None:
            continue
        val = f.contents() if hasattr(f, "contents") else f.parts[f.data[0]].tolist()
        info[key] = val
    return info


def load(model_path):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    info = {}
    if model_path.endswith(".gguf"):
        folder, name = os.path.split(os.path.abspath(model_path))
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                     attn_implementation="eager")
        info["gguf"] = gguf_tokenizer_info(model_path)
    else:
        cfg = AutoConfig.from_pretrained(model_path)
        tok = AutoTokenizer.from_pretrained(model_path)
        if cfg.model_type == "bert":
            model = AutoModel.from_pretrained(model_path, dtype=torch.float32,
                                              attn_implementation="eager")
        else:
            model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32,
                                                         attn_implementation="eager")
    model.eval()
    dts = {p.dtype for p in model.parameters()}
    assert dts == {torch.float32}, dts
    mt = model.config.model_type
    family = {"gpt2": "gpt2", "llama": "llama", "bert": "bert"}[mt]
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is not None:
        info["tokenizer_json_padding"] = str(backend.padding)
        info["tokenizer_json_truncation"] = str(backend.truncation)
        # tokenizer.json of all-MiniLM-L6-v2 enables fixed padding to 128 and truncation: off.
        backend.no_padding()
        backend.no_truncation()
    info["tokenizer_class"] = type(tok).__name__
    info["add_bos_token"] = str(getattr(tok, "add_bos_token", None))
    info["add_eos_token"] = str(getattr(tok, "add_eos_token", None))
    info["bos_token"] = str(tok.bos_token)
    info["eos_token"] = str(tok.eos_token)
    return tok, model, family, info


def n_layers_of(model, family):
    c = model.config
    return c.n_layer if family == "gpt2" else c.num_hidden_layers


def ctx_len(model, family):
    c = model.config
    return c.n_positions if family == "gpt2" else c.max_position_embeddings


def encode(tok, text):
    ids = tok(text)["input_ids"]
    return list(ids)


# ----------------------------------------------------------------------------- main paths

def sha256_file(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def greedy(model, ids, n_new, ctx):
    ids = list(ids)
    new = []
    for _ in range(n_new):
        assert len(ids) <= ctx, "greedy continuation exceeds the context length"
        logits = model(torch.tensor([ids]), use_cache=False).logits[0, -1]
        nxt = int(logits.argmax())
        new.append(nxt)
        ids.append(nxt)
    return new


def run_hooks(args, tok, model, family, info, prompts, all_prompts):
    nl = n_layers_of(model, family)
    if args.hooks == "all":
        want = all_hooks(family, nl)
    elif args.hooks == "fast":
        want = fast_hooks(family, nl)
    else:
        want = [h.strip() for h in args.hooks.split(",") if h.strip()]
    run = {"gpt2": run_gpt2, "llama": run_llama, "bert": run_bert}[family]
    chk = Checker(atol=args.atol, rtol=args.rtol)
    per, toks = [], []
    for pr in prompts:
        ids = encode(tok, pr)
        toks.append(ids)
        with torch.inference_mode():
            per.append(run(model, torch.tensor([ids]), chk, set(want)))
    lens = [len(t) for t in toks]
    L = max(lens)
    out = {"tokens": torch.tensor([t for ts in toks for t in ts], dtype=torch.int64),
           "offsets": torch.tensor([0] + list(torch.tensor(lens).cumsum(0).tolist()), dtype=torch.int64)}
    for h in want:
        if h == "sentence_embedding":
            out[h] = sentence_embeddings(args.model, prompts, per, chk)
        elif h == "last_logits":
            out[h] = torch.stack([r["logits"][-1] for r in per])
        elif h.endswith(SCORE_HOOKS):
            parts = []
            for r, n in zip(per, lens):
                t = r[h]
                parts.append(F.pad(t, (0, L - n), value=0.0))
            out[h] = torch.cat(parts, 0)
        else:
            if h not in per[0]:
                raise SystemExit(f"unknown hook {h!r} for family {family}")
            out[h] = torch.cat([r[h] for r in per], 0)
    if args.generate:
        with torch.inference_mode():
            out["greedy"] = torch.tensor([greedy(model, t, args.generate, ctx_len(model, family))
                                          for t in toks], dtype=torch.int64)
    if len(all_prompts) > len(prompts):
        # Cheap outputs for every prompt of the file, so a subset fixture still covers the
        # tokenizer (and greedy / sentence embedding) on all prompts.
        all_toks = [encode(tok, pr) for pr in all_prompts]
        assert all_toks[:len(toks)] == toks
        out["all_tokens"] = torch.tensor([t for ts in all_toks for t in ts], dtype=torch.int64)
        out["all_offsets"] = torch.tensor([0] + torch.tensor([len(t) for t in all_toks]).cumsum(0).tolist(),
                                          dtype=torch.int64)
        if args.generate:
            with torch.inference_mode():
                rest = [greedy(model, t, args.generate, ctx_len(model, family)) for t in all_toks[len(toks):]]
            out["all_greedy"] = torch.cat([out["greedy"], torch.tensor(rest, dtype=torch.int64)], 0)
        if family == "bert" and "sentence_embedding" in want:
            from sentence_transformers import SentenceTransformer
            st = SentenceTransformer(args.model, device="cpu")
            with torch.inference_mode():
                emb = st.encode(all_prompts, batch_size=1, convert_to_tensor=True).float()
            chk("sentence_embedding_subset_vs_all", out["sentence_embedding"], emb[:len(prompts)])
            out["all_sentence_embedding"] = emb
    out = {k: (v.contiguous().float() if v.is_floating_point() else v.contiguous())
           for k, v in out.items()}
    meta = {"versions": json.dumps(versions()), "model": os.path.abspath(args.model),
            "model_basename": os.path.basename(os.path.normpath(args.model)),
            "family": family, "prompts_file": os.path.basename(args.prompts),
            "prompts_sha256": sha256_file(args.prompts), "n_prompts": str(len(prompts)),
            "hooks": args.hooks if args.hooks in ("all", "fast") else "list",
            "tokenizer": json.dumps(info, default=str),
            "self_check_max_err": json.dumps(chk.summary()),
            "command": "python bench/lm_reference.py " + " ".join(
                os.path.relpath(a) if os.path.exists(a) and a.startswith("/work") else a
                for a in sys.argv[1:]),
            "semantics": "TransformerLens hooks, no weight processing (from_pretrained_no_processing); "
                         "attention [T, heads, max_len], future scores -inf, padding columns 0"}
    if args.generate:
        meta["greedy"] = f"argmax continuation, {args.generate} tokens, full recompute each step, no eos stop"
    if args.max_prompts:
        meta["note"] = (f"hooks, tokens, offsets, logits, greedy, sentence_embedding cover only the first "
                        f"{len(prompts)} of the {len(all_prompts)} prompts of {os.path.basename(args.prompts)} "
                        f"(size); all_tokens / all_offsets / all_greedy / all_sentence_embedding cover all")
    from safetensors.torch import save_file
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file(out, args.out, metadata=meta)
    print(json.dumps({"out": args.out, "bytes": os.path.getsize(args.out), "tensors": len(out),
                      "tokens": toks, "tokenizer": info, "self_check": chk.summary()}, indent=1,
                     default=str))


def sentence_embeddings(model_path, prompts, per, chk):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(model_path, device="cpu")
    with torch.inference_mode():
        emb = st.encode(prompts, batch_size=1, convert_to_tensor=True, normalize_embeddings=False)
    mine = torch.stack([F.normalize(r["_last_hidden"].mean(0), dim=-1) for r in per])
    chk("sentence_embedding_vs_mean_pool_l2", emb.float(), mine)
    return emb.float()


# ----------------------------------------------------------------------------- scoring

def split_documents(text):
    docs, cur = [], []
    for line in text.split("\n"):
        if line.strip() == "":
            if cur:
                docs.append("\n".join(cur).strip())
            cur = []
        else:
            cur.append(line)
    if cur:
        docs.append("\n".join(cur).strip())
    return [d for d in docs if d]


def nll_batch(model, chunks):
    """Sum of next-token NLL and count of predicted positions for each chunk (right padded)."""
    L = max(len(c) for c in chunks)
    ids = torch.zeros(len(chunks), L, dtype=torch.int64)
    mask = torch.zeros(len(chunks), L, dtype=torch.int64)
    for b, c in enumerate(chunks):
        ids[b, :len(c)] = torch.tensor(c)
        mask[b, :len(c)] = 1
    if len(chunks) == 1:
        logits = model(ids, use_cache=False).logits
    else:
        logits = model(ids, attention_mask=mask, use_cache=False).logits
    lp = logits[:, :-1].float().log_softmax(-1)
    tgt = ids[:, 1:]
    nll = -lp.gather(-1, tgt[..., None])[..., 0] * mask[:, 1:]
    return nll.sum(1).tolist(), (mask[:, 1:].sum(1)).tolist()


def score(args, tok, model, family):
    t0 = time.time()
    text = open(args.score, encoding="utf-8").read()
    docs = split_documents(text)
    ctx = ctx_len(model, family)
    chunks, owner = [], []
    for di, dtext in enumerate(docs):
        ids = encode(tok, dtext)
        for s in range(0, len(ids), ctx):
            chunks.append(ids[s:s + ctx])
            owner.append(di)
    order = sorted(range(len(chunks)), key=lambda j: -len(chunks[j]))
    sums = [0.0] * len(chunks)
    cnts = [0] * len(chunks)
    budget = args.score_tokens_per_batch
    i = 0
    padded = []  # chunks that were scored with right padding in their batch
    with torch.inference_mode():
        while i < len(order):
            L = len(chunks[order[i]])
            bs = max(1, budget // max(L, 1))
            batch = order[i:i + bs]
            s, c = nll_batch(model, [chunks[j] for j in batch])
            for j, sj, cj in zip(batch, s, c):
                sums[j], cnts[j] = sj, cj
                if len(chunks[j]) < L:
                    padded.append(j)
            i += bs
            if args.verbose and (i // bs) % 20 == 0:
                print(f"  scored {i}/{len(order)} chunks, {time.time() - t0:.0f}s", file=sys.stderr)
        # Padded batching must agree with unpadded single runs.
        check = []
        pick = [0, 1, 2, order[0]] + padded[:: max(1, len(padded) // 6)][:6]
        for j in sorted(set(pick)):
            s1, c1 = nll_batch(model, [chunks[j]])
            assert c1[0] == cnts[j]
            check.append(abs(s1[0] - sums[j]) / max(c1[0], 1))
        assert max(check) < 1e-4, f"padded vs unpadded mean NLL differ by {max(check)}"
    dsum = [0.0] * len(docs)
    dcnt = [0] * len(docs)
    for j, di in enumerate(owner):
        dsum[di] += sums[j]
        dcnt[di] += cnts[j]
    per_doc = [dsum[k] / dcnt[k] if dcnt[k] else None for k in range(len(docs))]
    total_nll, total_n = sum(dsum), sum(dcnt)
    overall = total_nll / total_n
    res = {
        "model": os.path.basename(os.path.normpath(args.model)),
        "text": os.path.basename(args.score),
        "text_sha256": sha256_file(args.score),
        "documents": len(docs),
        "documents_scored": sum(1 for c in dcnt if c),
        "tokens": sum(len(c) for c in chunks),
        "predicted_tokens": total_n,
        "chunks": len(chunks),
        "context_length": ctx,
        "loss": overall,
        "perplexity": math.exp(overall),
        "mean_document_loss": sum(x for x in per_doc if x is not None) / sum(1 for x in per_doc if x is not None),
        "first_document_losses": per_doc[:5],
        "padded_vs_unpadded_max_diff": max(check),
        "padded_vs_unpadded_checked_chunks": len(check),
        "padded_chunks": len(padded),
        "definition": "documents = text split at blank lines (stripped, empty skipped); each tokenized "
                      "with default special tokens, chunked at context length; loss = total next-token "
                      "NLL (nats) / predicted tokens; perplexity = exp(loss)",
        "tokenizer_add_bos": str(getattr(tok, "add_bos_token", None)),
        "versions": versions(),
        "threads": torch.get_num_threads(),
        "wall_seconds": time.time() - t0,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.score_out)), exist_ok=True)
    with open(args.score_out, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print(json.dumps(res, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--prompts")
    ap.add_argument("--out")
    ap.add_argument("--hooks", default="all")
    ap.add_argument("--max-prompts", type=int, default=0)
    ap.add_argument("--generate", type=int, default=0)
    ap.add_argument("--score")
    ap.add_argument("--score-out")
    ap.add_argument("--score-tokens-per-batch", type=int, default=2048)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--list-hooks", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    tok, model, family, info = load(args.model)
    if args.list_hooks:
        print("\n".join(all_hooks(family, n_layers_of(model, family))))
        return
    if args.out:
        all_prompts = [ln.rstrip("\n") for ln in open(args.prompts, encoding="utf-8") if ln.strip()]
        prompts = all_prompts[:args.max_prompts] if args.max_prompts else all_prompts
        run_hooks(args, tok, model, family, info, prompts, all_prompts)
    if args.score:
        assert args.score_out, "--score needs --score-out"
        score(args, tok, model, family)


if __name__ == "__main__":
    main()
