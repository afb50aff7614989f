#!/usr/bin/env bash
# Python environment for the transformer and SAE references (bench/lm_reference.py,
# bench/make_tiny_gpt2.py, bench/saelens_files.py).
# Creates a venv at ${GLASSBOX_PYENV:-$HOME/.cache/glassbox-py} with pinned versions. Idempotent:
# re-running only installs what is missing or at another version. PyPI's torch wheel is the CUDA
# build (several GB); it runs on CPU.
set -euo pipefail
ENV=${GLASSBOX_PYENV:-$HOME/.cache/glassbox-py}
PY=${PYTHON:-python3}
PINS=(
  torch==2.15.0
  transformers==5.23.0
  sentence-transformers==6.2.0
  gguf==0.19.0
  accelerate==1.15.0
  tokenizers==0.23.3
  sae-lens==6.54.12
  safetensors
  numpy
)
if [ ! -x "$ENV/bin/python" ]; then
  "$PY" -m venv "$ENV"
fi
# Skip pip entirely when every pin is already satisfied.
if "$ENV/bin/python" - "${PINS[@]}" <<'PYEOF' 2>/dev/null; then
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and have != want:
        sys.exit(1)
PYEOF
  echo "glassbox-py: $ENV already up to date"
else
  "$ENV/bin/python" -m pip install -q --upgrade pip
  # One resolver run for all pins, so that sae-lens's own requirements cannot move the others.
  "$ENV/bin/python" -m pip install -q "${PINS[@]}"
fi
"$ENV/bin/python" -c 'import torch, transformers, sentence_transformers, gguf, tokenizers, sae_lens; print("torch", torch.__version__, "transformers", transformers.__version__, "sentence-transformers", sentence_transformers.__version__, "tokenizers", tokenizers.__version__, "sae-lens", sae_lens.__version__)'
echo "PYTHON=$ENV/bin/python"
