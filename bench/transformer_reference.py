"""TransformerLens references for glassbox's own transformer (crates/core/src/model/transformer.rs).

For each of the three configurations glassbox trains, builds a small random HookedTransformer in
float64 and writes one safetensors file with
- its weights under glassbox's (TransformerLens's) names,
- `tokens` [batch, n_ctx] and `labels` ([batch] for the classifier, [batch, n_ctx] for the
  language models: the next token at each position),
- every hook glassbox records (a LayerNorm's `hook_normalized` with its gain and bias applied,
  as glassbox defines it); for the classifier, the last block at the last position only
  (glassbox computes the read-out block there alone),
- `logits` ([batch, vocab] at the last position, or [batch, n_ctx * vocab]),
- `grad.<param>`: the gradient of the mean cross-entropy of those logits against `labels`.

Configurations:
- nanda: no normalisation, learned positions, ReLU MLP with biases, no attention or unembedding
  biases, read at the last position (Nanda et al.'s grokking model);
- gpt: pre-LayerNorm, learned positions, gelu_new MLP, all biases, unembedding tied to the
  embedding (W_U = W_E^T), every position scored (GPT-2's layout);
- bilinear: RMSNorm without gain (TransformerLens's RMSPre, eps 1e-8), rotary positions over the
  whole head (base 10000), MLP (x W_gate) * (x W_in) W_out without biases (a gated MLP whose
  activation is replaced by the identity), attention output scaled by 1/sqrt(2 n_layers)
  (folded into W_O here), every position scored.

python bench/transformer_reference.py OUT_DIR
"""
import math
import os
import sys

import torch
from safetensors.torch import save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig

N_LAYERS, D_MODEL, N_HEADS, D_HEAD, D_MLP, D_VOCAB, N_CTX, BATCH = 2, 16, 2, 8, 24, 11, 4, 6
ZERO_BIASES = {
    "nanda": ("b_Q", "b_K", "b_V", "b_O", "b_U"),
    "gpt": ("b_U",),
    "bilinear": ("b_Q", "b_K", "b_V", "b_O", "b_U", "b_in", "b_out"),
}


def config(kind):
    common = dict(n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_mlp=D_MLP,
                  d_vocab=D_VOCAB, d_vocab_out=D_VOCAB, n_ctx=N_CTX, seed=0,
                  default_prepend_bos=False, dtype=torch.float64)
    if kind == "nanda":
        return HookedTransformerConfig(act_fn="relu", normalization_type=None, **common)
    if kind == "gpt":
        return HookedTransformerConfig(act_fn="gelu_new", normalization_type="LN", eps=1e-5, **common)
    return HookedTransformerConfig(act_fn="relu", normalization_type="RMSPre", eps=1e-8, gated_mlp=True,
                                   positional_embedding_type="rotary", rotary_dim=D_HEAD,
                                   rotary_base=10000, **common)


def build(kind):
    model = HookedTransformer(config(kind))
    if kind == "bilinear":
        for block in model.blocks:
            block.mlp.act_fn = lambda x: x  # bilinear: no activation on the gate
    weights = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in ZERO_BIASES[kind]:
                p.zero_()
                continue
            if leaf == "W_U" and kind == "gpt":
                continue  # tied below
            if leaf == "w":  # LayerNorm gain around 1
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * 0.25)
            weights[name] = p
        if kind == "gpt":
            model.unembed.W_U.copy_(model.embed.W_E.T)
        if kind == "bilinear":
            for l in range(N_LAYERS):
                # glassbox scales the attention output; TransformerLens's W_O carries the scale.
                model.blocks[l].attn.W_O.mul_(1.0 / math.sqrt(2 * N_LAYERS))
    return model, weights


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for kind in ("nanda", "gpt", "bilinear"):
        torch.manual_seed(0)
        model, weights = build(kind)
        tokens = torch.randint(0, D_VOCAB, (BATCH, N_CTX))
        last_only = kind == "nanda"
        labels = torch.randint(0, D_VOCAB, (BATCH,) if last_only else (BATCH, N_CTX))
        logits, cache = model.run_with_cache(tokens)
        if last_only:
            logits = logits[:, -1]
            loss = torch.nn.functional.cross_entropy(logits, labels)
        else:
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, D_VOCAB), labels.reshape(-1))
        loss.backward()
        if kind == "bilinear":
            for l in range(N_LAYERS):
                w_o = model.blocks[l].attn.W_O
                weights[f"blocks.{l}.attn.W_O"] = w_o * math.sqrt(2 * N_LAYERS)
                # d loss / d W_O(glassbox) = d loss / d W_O(TL) * scale
                w_o.grad.mul_(1.0 / math.sqrt(2 * N_LAYERS))
        out = {"tokens": tokens.to(torch.float32), "labels": labels.to(torch.int64),
               "logits": logits.reshape(BATCH, -1)}
        for name, p in weights.items():
            out[name] = p.detach()
            param = dict(model.named_parameters())[name]
            out["grad." + name] = param.grad
        if kind == "gpt":
            # Tied: the gradient of W_E includes the unembedding's.
            out["grad.embed.W_E"] = model.embed.W_E.grad + model.unembed.W_U.grad.T
        final = f"blocks.{N_LAYERS - 1}."
        for name, value in cache.items():
            if name.startswith("unembed."):
                continue
            if kind == "gpt" and name.endswith("hook_normalized"):
                # glassbox's (and its language-model loader's) LayerNorm hook_normalized is the
                # LayerNorm's output, gain and bias included; TransformerLens 4 hooks before them.
                ln = model.get_submodule(name.rsplit(".", 1)[0])
                value = value * ln.w + ln.b
            if last_only and name.startswith(final) and not name.endswith(("hook_resid_pre", "hook_k", "hook_v", "ln1.hook_scale", "ln1.hook_normalized")):
                value = value[:, :, -1:] if name.endswith(("hook_attn_scores", "hook_pattern")) else value[:, -1:]
            if last_only and name.startswith("ln_final."):
                value = value[:, -1:]
            out[name] = value
        path = os.path.join(out_dir, f"transformer_{kind}.safetensors")
        save_file({k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}, path)
        print(f"wrote {path}: {len(out)} tensors, loss {loss.item():.6f}")


if __name__ == "__main__":
    main(sys.argv[1])
