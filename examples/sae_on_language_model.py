"""Train and inspect an SAE on a real language model: cache a layer's residual stream on text,
train a TopK SAE on it, evaluate it as SAELens does, and show the tokens that fire a few
latents hardest.

    python examples/sae_on_language_model.py [--model PATH] [--text FILE] [--small]

The model defaults to SmolLM2-135M (``glassbox data fetch smollm2`` puts it in the models
folder); the text defaults to glassbox's own documentation.
"""

import argparse
import os
from pathlib import Path

import numpy as np

import glassbox

repo = Path(__file__).resolve().parents[1]
models = Path(os.environ.get("GLASSBOX_MODELS") or Path.home() / ".cache" / "glassbox" / "models")
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default=str(models / "SmolLM2-135M-Instruct.Q4_1.gguf"))
parser.add_argument("--text", type=Path, nargs="*", default=sorted((repo / "docs").rglob("*.md")))
parser.add_argument("--layer", type=int, default=6)
parser.add_argument("--small", action="store_true", help="a quick run (as the test suite uses)")
args = parser.parse_args()

model = glassbox.load_model(args.model)
hook = f"blocks.{args.layer}.hook_resid_post"
words = " ".join(p.read_text(encoding="utf-8") for p in args.text).split()
contexts = [" ".join(words[i : i + 48]) for i in range(0, len(words), 48)][: 24 if args.small else 400]
print(f"{model}\ncaching {hook} on {len(contexts)} contexts")

tokens, rows = [], []
for text in contexts:
    _, cache = model.run_with_cache(text, names=[hook], logits="none")
    rows.append(cache[hook][0, 1:])  # the first position's residual stream is an outlier
    tokens += model.to_str_tokens(text)[1:]
x = np.concatenate(rows)
print(f"{len(x)} activations of width {x.shape[1]}")

sae = glassbox.train_sae(x, d_sae=4 * x.shape[1], k=32, steps=60 if args.small else 3000, batch_size=256, lr=1e-3, metadata={"hook_name": hook, "model_name": Path(args.model).name})
metrics = sae.evaluate(model, contexts[:8], skip_first=1)
p = metrics["predictions"]
print(f"explained variance {metrics['explained_variance']:.3f}, L0 {metrics['l0']:.1f}, dead {metrics['dead_fraction']:.2f}, "
      f"CE {p['ce_loss_without_sae']:.3f} clean / {p['ce_loss_with_sae']:.3f} with the SAE (score {p['ce_loss_score']:.3f})")

latents = sae.encode(x)
density = (latents > 0).mean(0)
selective = np.flatnonzero((density > 0.002) & (density < 0.05))
for j in selective[np.argsort(-latents[:, selective].max(0))][:6]:
    strongest = [tokens[i].replace("Ġ", " ").replace("Ċ", "\\n") for i in np.argsort(-latents[:, j])[:50]]
    distinct = list(dict.fromkeys(strongest))[:6]
    print(f"latent {j:5d} fires on {density[j]:5.1%} of tokens; strongest on: {' | '.join(map(repr, distinct))}")
