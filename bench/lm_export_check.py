"""Check that transformers opens a language model trained by `glassbox lm train` and computes
what glassbox computes: loads MODEL_DIR with AutoModelForCausalLM and AutoTokenizer (from its
tokenizer.json), runs each prompt of PROMPTS, and compares the tokens, the logits and every
block's residual stream with HOOKS, the file `glassbox lm run MODEL_DIR --prompts PROMPTS
--hooks logits,blocks.{i}.hook_resid_post... --out HOOKS` wrote. Prints one JSON line with the
largest absolute and relative differences.

python bench/lm_export_check.py MODEL_DIR PROMPTS HOOKS
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast


def main(model_dir, prompts_path, hooks_path):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    ours = load_file(hooks_path)
    offsets = ours["offsets"].tolist()
    prompts = [l for l in open(prompts_path, encoding="utf-8").read().split("\n") if l]
    worst = {}
    tokens_equal = True
    for i, prompt in enumerate(prompts):
        ids = tokenizer(prompt)["input_ids"]
        lo, hi = offsets[i], offsets[i + 1]
        tokens_equal &= ours["tokens"][lo:hi].tolist() == ids
        with torch.no_grad():
            out = model(torch.tensor([ids]), output_hidden_states=True)
        pairs = [("logits", out.logits[0])]
        # hidden_states[l + 1] is block l's output (the last one after the final norm).
        n_layers = model.config.num_hidden_layers
        pairs += [(f"blocks.{l}.hook_resid_post", out.hidden_states[l + 1][0]) for l in range(n_layers - 1)]
        for name, ref in pairs:
            mine = ours[name][lo:hi]
            diff = (mine - ref).abs().max().item()
            scale = ref.abs().max().item()
            a, r = worst.get(name, (0.0, 0.0))
            worst[name] = (max(a, diff), max(r, diff / max(scale, 1e-12)))
    print(json.dumps({
        "model": model_dir, "class": type(model).__name__, "prompts": len(prompts), "tokens_equal": tokens_equal,
        "max_abs_diff": {k: v[0] for k, v in worst.items()}, "max_rel_diff": {k: v[1] for k, v in worst.items()},
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
