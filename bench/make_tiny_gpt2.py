"""Write the tiny random GPT-2 test checkpoint into crates/lm/tests/fixtures/tiny-gpt2/.

    python bench/make_tiny_gpt2.py [--out DIR] [--text FILE]

- tokenizer: byte-level BPE (GPT-2 style: ByteLevel pre-tokenizer with add_prefix_space=False,
  ByteLevel decoder and post-processor, `<|endoftext|>` as bos/eos/unk) trained with the
  `tokenizers` library on tinyshakespeare, vocab 512. Saved as tokenizer.json plus
  tokenizer_config.json / special_tokens_map.json so AutoTokenizer loads it.
- model: GPT2LMHeadModel(n_layer=2, n_embd=64, n_head=4, n_positions=64, gelu_new,
  layer_norm_epsilon=1e-5, initializer_range=0.1) initialised after torch.manual_seed(0), then every
  LayerNorm weight/bias and every bias is perturbed with small random values (HF inits them to
  1/0, which would hide bugs in applying them). initializer_range=0.1 instead of GPT-2's 0.02 so
  activations leave the near-linear region of GELU/softmax and bugs show above float noise.
  Saved with save_pretrained(safe_serialization=True), F32.

Deterministic: the tokenizer is trained single-threaded (RAYON_NUM_THREADS=1) and the weights come
from fixed seeds; the script prints sha256 of every file it writes.
"""
import argparse
import hashlib
import os
import sys

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EOT = "<|endoftext|>"


def train_tokenizer(text_path, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    # Train on paragraphs so training is independent of file chunking.
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    tok.train_from_iterator(paragraphs, trainer=trainer)
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "crates/lm/tests/fixtures/tiny-gpt2"))
    ap.add_argument("--text", default=os.path.join(os.environ.get("GLASSBOX_DATA", os.path.expanduser("~/.cache/glassbox/data")), "tinyshakespeare/input.txt"))
    ap.add_argument("--vocab", type=int, default=512)
    args = ap.parse_args()

    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    os.makedirs(args.out, exist_ok=True)
    tok = train_tokenizer(args.text, args.vocab)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        model_max_length=64,
        add_prefix_space=False,
    )
    hf_tok.save_pretrained(args.out)
    vocab = tok.get_vocab_size()

    torch.manual_seed(0)
    cfg = GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=4,
        n_positions=64,
        vocab_size=vocab,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        initializer_range=0.1,
        bos_token_id=tok.token_to_id(EOT),
        eos_token_id=tok.token_to_id(EOT),
        attn_implementation="eager",
    )
    model = GPT2LMHeadModel(cfg).float().eval()
    # Perturb LayerNorm weights/biases and all biases (HF inits them to 1 / 0).
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                if name.endswith(".weight"):
                    p.add_(0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(args.out, safe_serialization=True)

    total = 0
    for fn in sorted(os.listdir(args.out)):
        path = os.path.join(args.out, fn)
        data = open(path, "rb").read()
        total += len(data)
        print(f"{hashlib.sha256(data).hexdigest()}  {len(data):8d}  {fn}")
    print(f"vocab {vocab}, params {sum(p.numel() for p in model.parameters())}, {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
