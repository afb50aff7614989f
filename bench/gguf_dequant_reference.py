"""Reference dequantisation of every tensor in a GGUF file, for checking glassbox's GGUF reader
(crates/lm/src/gguf.rs) bit for bit against the Python `gguf` package (gguf-py, which follows
ggml's ggml-quants.c).

python bench/gguf_dequant_reference.py MODEL.gguf OUT.safetensors

Needs `pip install gguf==0.19.0 numpy safetensors`. Every tensor is written as float32 under its
GGUF name. Shapes are in numpy order as gguf-py returns them: the GGUF stores dims fastest-varying
first (ggml's ne[0], ne[1], ...), and numpy/PyTorch order is those dims reversed, so a GGUF tensor
with dims [576, 49152] comes out as a (49152, 576) array; the data is row-major in that order,
which is the order glassbox's GgufFile::dequantize returns and GgufTensorInfo::shape reports.
Then `GLASSBOX_GGUF_REFERENCE=OUT.safetensors cargo test -p glassbox-lm --test gguf_real -- --ignored`
compares glassbox's output with this file.
"""
import argparse
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the .gguf file")
    parser.add_argument("out", help="the .safetensors file to write")
    args = parser.parse_args()

    reader = GGUFReader(args.model)
    out = {}
    counts = {}
    for t in reader.tensors:
        # t.data is the raw block bytes (uint8, last axis in bytes) for quantised types and a typed
        # array for F32/F16; dequantize turns either into float32 in numpy order (reversed dims).
        x = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        expected = tuple(int(d) for d in reversed(t.shape.tolist()))
        if x.shape != expected:
            sys.exit(f"{t.name}: dequantised shape {x.shape} is not the reversed dims {expected}")
        out[t.name] = x
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    save_file(out, args.out)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"wrote {len(out)} tensors ({summary}) to {args.out}")


if __name__ == "__main__":
    main()
