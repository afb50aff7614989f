"""PyTorch reference for the language-model forward benchmark (bench/lm_forward.sh): forward
tokens/s of all-MiniLM-L6-v2 (BERT encoder, last_hidden_state) and SmolLM2-135M-Instruct (Llama,
from its Q4_1 GGUF file, dequantised to f32 by transformers) on two workloads whose token ids
both implementations read from one JSON file:

  short   64 prompts = the first 64 non-empty TinyStories validation lines, at most 32 tokens
          each (MiniLM: with [CLS]/[SEP]); PyTorch runs them as one right-padded batch with an
          attention_mask (its normal usage); tokens/s counts the real tokens only.
  ctx512  8 contexts of 512 consecutive TinyStories tokens (MiniLM: 510 + [CLS]/[SEP]).

SmolLM2 has two variants: "body" = the transformer up to the final norm (`model.model(...)`) and
"logits" = with logits at every position (`model(...)`); MiniLM has "body" only (`AutoModel`).
torch.inference_mode(), float32, the default attention implementation (sdpa),
torch.set_num_threads(THREADS). One warm-up forward, then timed forwards until about TARGET_S
seconds have passed (at least one): the median is reported, one JSON line per configuration.

  python bench/lm_forward.py tokens OUT.json          # write the shared token ids
  python bench/lm_forward.py run TOKENS.json THREADS  # the PyTorch timings (JSON lines)
  python bench/lm_forward.py profile TOKENS.json      # torch.profiler table, SmolLM2 ctx512 body, 1 thread
"""
import json
import math
import os
import statistics
import sys
import time

MODELS_DIR = os.environ.get("GLASSBOX_MODELS", "/root/.cache/glassbox/models")
MINILM = os.path.join(MODELS_DIR, "all-MiniLM-L6-v2")
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = os.environ.get("TINYSTORIES", os.path.join(os.environ.get("GLASSBOX_DATA", os.path.expanduser("~/.cache/glassbox/data")), "tinystories/tinystories_val.txt"))
SHORT_PROMPTS, SHORT_MAX = 64, 32
CONTEXTS, CONTEXT_LEN = 8, 512
TARGET_S = float(os.environ.get("TARGET_S", "5"))


def make_tokens(out):
    from transformers import AutoTokenizer

    text = open(TEXT, encoding="utf-8").read()
    lines = [l.strip() for l in text.splitlines() if l.strip()][:SHORT_PROMPTS]
    head = text[:200_000]
    doc = {"source": TEXT, "models": {"minilm": MINILM, "smollm2": os.path.join(MODELS_DIR, SMOL_FILE)}}
    for name, tok in (
        ("minilm", AutoTokenizer.from_pretrained(MINILM)),
        ("smollm2", AutoTokenizer.from_pretrained(MODELS_DIR, gguf_file=SMOL_FILE)),
    ):
        short = [tok(l, truncation=True, max_length=SHORT_MAX).input_ids for l in lines]
        stream = tok(head, add_special_tokens=False).input_ids
        if name == "minilm":
            n = CONTEXT_LEN - 2
            ctx = [[tok.cls_token_id] + stream[i * n:(i + 1) * n] + [tok.sep_token_id] for i in range(CONTEXTS)]
        else:
            ctx = [stream[i * CONTEXT_LEN:(i + 1) * CONTEXT_LEN] for i in range(CONTEXTS)]
        assert all(len(c) == CONTEXT_LEN for c in ctx), "not enough text for the contexts"
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        doc[name] = {"short": short, "ctx512": ctx, "pad_id": pad}
    with open(out, "w") as f:
        json.dump(doc, f)
    for name in ("minilm", "smollm2"):
        s = doc[name]["short"]
        print(f"{name}: short {len(s)} prompts, {sum(map(len, s))} tokens (max {max(map(len, s))}); "
              f"ctx512 {CONTEXTS} x {CONTEXT_LEN}", file=sys.stderr)


def padded(seqs, pad_id):
    import torch

    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def timed(fn):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start >= TARGET_S or len(times) >= 200:
            break
    return statistics.median(times), len(times)


def load_models():
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    minilm = AutoModel.from_pretrained(MINILM, dtype=torch.float32).eval()
    smol = AutoModelForCausalLM.from_pretrained(MODELS_DIR, gguf_file=SMOL_FILE, dtype=torch.float32).eval()
    return minilm, smol


def run(tokens_path, threads):
    import torch
    import transformers

    torch.set_num_threads(threads)
    doc = json.load(open(tokens_path))
    minilm, smol = load_models()
    configs = [
        ("minilm", "body", minilm),
        ("smollm2", "body", smol.model),
        ("smollm2", "logits", smol),
    ]
    with torch.inference_mode():
        for model_name, variant, module in configs:
            for workload in ("short", "ctx512"):
                seqs = doc[model_name][workload]
                ids, mask = padded(seqs, doc[model_name]["pad_id"])
                n_tokens = sum(map(len, seqs))
                seconds, reps = timed(lambda: module(input_ids=ids, attention_mask=mask))
                print(json.dumps({
                    "bench": "lm_forward", "impl": "torch", "model": model_name, "workload": workload,
                    "variant": variant, "threads": threads, "tokens": n_tokens,
                    "padded_tokens": int(ids.numel()), "seconds": seconds,
                    "tokens_per_s": n_tokens / seconds, "reps": reps,
                    "attn": module.config._attn_implementation,
                    "torch": torch.__version__, "transformers": transformers.__version__,
                }), flush=True)


def profile(tokens_path, model="smollm2"):
    """Where PyTorch's time goes on MODEL's ctx512 (body) at 1 thread, for comparison with
    glassbox's breakdown: self CPU time per aten op, as JSON lines plus a table on stderr."""
    import torch
    from torch.profiler import ProfilerActivity, profile as tprofile

    torch.set_num_threads(1)
    doc = json.load(open(tokens_path))
    minilm, smol = load_models()
    body = minilm if model == "minilm" else smol.model
    ids, mask = padded(doc[model]["ctx512"], doc[model]["pad_id"])
    with torch.inference_mode():
        body(input_ids=ids, attention_mask=mask)
        t0 = time.perf_counter()
        body(input_ids=ids, attention_mask=mask)
        plain = time.perf_counter() - t0
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            body(input_ids=ids, attention_mask=mask)
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15), file=sys.stderr)
    print(json.dumps({"bench": "lm_forward_profile", "impl": "torch", "model": model, "workload": "ctx512",
                      "variant": "body", "threads": 1, "forward_s": plain}))
    for e in events[:15]:
        print(json.dumps({"bench": "lm_forward_profile", "impl": "torch", "model": model, "op": e.key,
                          "calls": e.count, "self_s": e.self_cpu_time_total / 1e6}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tokens":
        make_tokens(sys.argv[2])
    elif mode == "run":
        run(sys.argv[2], int(sys.argv[3]))
    elif mode == "profile":
        profile(*sys.argv[2:4])
    else:
        sys.exit(__doc__)
