"""Reference SAE directories written by sae_lens itself, and a checker that loads a directory with
sae_lens and compares its encode/decode with a reference. This is how we show that sae_lens reads
the files glassbox writes (and what glassbox must read). Format facts: bench/saelens_format_notes.md.

    python bench/saelens_files.py write OUT_DIR
    python bench/saelens_files.py check SAE_DIR REFERENCE.safetensors

Needs sae-lens 6.x (written against 6.54.12), torch, safetensors; CPU only, no network, tiny
tensors. E.g. PY=~/.cache/glassbox-py/bin/python.

write: for each architecture standard, topk (k=5), jumprelu and batchtopk (k=5) builds a sae_lens
SAE with d_in=16, d_sae=48, seeded random weights (torch.manual_seed(0)) and metadata
model_name "tiny", hook_name "blocks.3.hook_resid_post", and saves it with sae_lens's own save
function to OUT_DIR/<arch>/ (cfg.json + sae_weights.safetensors, v6 format):
  - standard, topk, jumprelu: the inference classes (StandardSAE, TopKSAE, JumpReLUSAE) and
    SAE.save_model;
  - batchtopk: BatchTopKTrainingSAE (there is no inference class) with its running threshold
    `topk_threshold` set to a positive value, saved with save_inference_model, the function the
    training runner uses; sae_lens writes it as architecture "jumprelu" with a per-latent
    `threshold` (the scalar broadcast) and the decoder norms folded into W_enc/b_enc/W_dec.
It then writes hand-made pre-6.0 directories with the same weights and flat cfg.json keys exactly
as old sae_lens versions wrote them, and checks that sae_lens loads them to the same SAE:
  - standard-pre6/: SAEConfig.to_dict of sae_lens 4.0-5.x (hook_name, hook_layer, activation_fn_str,
    no sae_lens_version key);
  - topk-pre6/: the same form as sae_lens 3.9-4.3 wrote TopK SAEs: architecture "standard",
    activation_fn_str "topk", activation_fn_kwargs {"k": 5} (the loader infers "topk");
  - standard-pre3/: the sae_lens 2.x form (runner config __dict__: hook_point, hook_point_layer,
    hook_point_head_index, activation_fn, normalize_activations as a bool, dtype "torch.float32",
    no architecture key) with the all-ones `scaling_factor` tensor 2.x SAEs carried.
For every directory it computes, on a fixed seeded x [10, 16], feature_acts = encode(x) and
sae_out = decode(encode(x)) with the SAE that sae_lens loads back from that directory, and saves
x, feature_acts, sae_out (float32) to <dir>/reference.safetensors.

check: loads SAE_DIR with SAE.load_from_disk, encodes REFERENCE's `x`, prints the loaded class,
architecture, metadata hook_name and the max abs differences of feature_acts and sae_out, and
exits 1 if either exceeds 1e-5 (or shapes differ).
"""
import argparse
import json
import sys
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

warnings.filterwarnings("ignore")

from sae_lens import (  # noqa: E402
    SAE,
    JumpReLUSAE,
    JumpReLUSAEConfig,
    StandardSAE,
    StandardSAEConfig,
    TopKSAE,
    TopKSAEConfig,
)
from sae_lens.saes import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig  # noqa: E402
from sae_lens.saes.sae import SAEMetadata  # noqa: E402

D_IN, D_SAE, K = 16, 48, 5
HOOK, MODEL = "blocks.3.hook_resid_post", "tiny"
TOL = 1e-5
BATCHTOPK_THRESHOLD = 0.5


def metadata():
    return SAEMetadata(model_name=MODEL, hook_name=HOOK)


def fill_weights(sae, threshold=False):
    """Seeded random weights; W_dec rows get non-unit norms on purpose."""
    torch.manual_seed(0)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(D_IN, D_SAE) * 0.5)
        sae.b_enc.copy_(torch.randn(D_SAE) * 0.2)
        sae.W_dec.copy_(torch.randn(D_SAE, D_IN) * 0.3)
        sae.b_dec.copy_(torch.randn(D_IN) * 0.1)
        if threshold:
            sae.threshold.copy_(torch.rand(D_SAE) * 0.5 + 0.05)  # positive
    return sae


def fixed_x():
    g = torch.Generator().manual_seed(1234)
    return torch.randn(10, D_IN, generator=g)


@torch.no_grad()
def run(sae, x):
    acts = sae.encode(x)
    if acts.is_sparse:
        acts = acts.to_dense()
    return acts.float(), sae.decode(acts).float()


def write_reference(d, x, acts, out):
    save_file(
        {"x": x.float().contiguous(), "feature_acts": acts.contiguous(), "sae_out": out.contiguous()},
        str(Path(d) / "reference.safetensors"),
    )


def maxdiff(a, b):
    return (a - b).abs().max().item()


def pre6_cfg(arch, activation_fn_str, kwargs):
    """cfg.json as SAEConfig.to_dict wrote it in sae_lens 4.0-5.x (key order kept)."""
    return {
        "architecture": arch,
        "d_in": D_IN,
        "d_sae": D_SAE,
        "dtype": "float32",
        "device": "cpu",
        "model_name": MODEL,
        "hook_name": HOOK,
        "hook_layer": 3,
        "hook_head_index": None,
        "activation_fn_str": activation_fn_str,
        "activation_fn_kwargs": kwargs,
        "apply_b_dec_to_input": True,
        "finetuning_scaling_factor": False,
        "sae_lens_training_version": "5.11.0",
        "prepend_bos": True,
        "dataset_path": "",
        "dataset_trust_remote_code": True,
        "context_size": 128,
        "normalize_activations": "none",
        "neuronpedia_id": None,
        "model_from_pretrained_kwargs": {},
        "seqpos_slice": [None],
    }


def pre3_cfg():
    """cfg.json as sae_lens 2.x wrote it ({**runner_cfg.__dict__, dtype/device as str}); the keys
    that matter to the loader plus a few others, in the 2.1.3 field order."""
    return {
        "model_name": MODEL,
        "model_class_name": "HookedTransformer",
        "hook_point": HOOK,
        "hook_point_eval": "blocks.{layer}.attn.pattern",
        "hook_point_layer": 3,
        "hook_point_head_index": None,
        "dataset_path": "NeelNanda/c4-tokenized-2b",
        "streaming": True,
        "is_dataset_tokenized": True,
        "context_size": 128,
        "use_cached_activations": False,
        "cached_activations_path": None,
        "d_in": D_IN,
        "d_sae": D_SAE,
        "b_dec_init_method": "geometric_median",
        "expansion_factor": 3,
        "activation_fn": "relu",
        "normalize_sae_decoder": True,
        "noise_scale": 0.0,
        "from_pretrained_path": None,
        "apply_b_dec_to_input": True,
        "decoder_orthogonal_init": False,
        "n_batches_in_buffer": 20,
        "training_tokens": 2000000,
        "finetuning_tokens": 0,
        "store_batch_size_prompts": 32,
        "train_batch_size_tokens": 4096,
        "normalize_activations": False,
        "device": "cpu",
        "seed": 42,
        "dtype": "torch.float32",
        "prepend_bos": True,
        "l1_coefficient": 0.001,
        "lp_norm": 1,
        "lr": 0.0003,
        "feature_sampling_window": 2000,
        "dead_feature_window": 1000,
        "dead_feature_threshold": 1e-08,
    }


def write_pre6(out_dir, name, cfg, sae, x, ref_acts, ref_out, extra=None):
    d = Path(out_dir) / name
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().clone().contiguous() for k, v in sae.state_dict().items()}
    tensors.update(extra or {})
    save_file(tensors, str(d / "sae_weights.safetensors"))
    (d / "cfg.json").write_text(json.dumps(cfg))
    loaded = SAE.load_from_disk(str(d))
    acts, out = run(loaded, x)
    da, do = maxdiff(acts, ref_acts), maxdiff(out, ref_out)
    ok = da <= TOL and do <= TOL and loaded.cfg.metadata.hook_name == HOOK
    print(
        f"{name}: loaded as {type(loaded).__name__} (architecture {loaded.cfg.architecture()!r}, "
        f"hook_name {loaded.cfg.metadata.hook_name!r}); vs v6 reference: "
        f"feature_acts {da:.3g}, sae_out {do:.3g} -> {'OK' if ok else 'MISMATCH'}"
    )
    if not ok:
        raise SystemExit(f"{name}: sae_lens did not load the pre-6.0 directory to the same SAE")
    write_reference(d, x, acts, out)


def cmd_write(out_dir):
    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    x = fixed_x()
    saes = {
        "standard": fill_weights(StandardSAE(StandardSAEConfig(D_IN, D_SAE, metadata=metadata()))),
        "topk": fill_weights(TopKSAE(TopKSAEConfig(D_IN, D_SAE, k=K, metadata=metadata()))),
        "jumprelu": fill_weights(
            JumpReLUSAE(JumpReLUSAEConfig(D_IN, D_SAE, metadata=metadata())), threshold=True
        ),
    }
    refs = {}
    for arch, sae in saes.items():
        d = out_dir / arch
        sae.save_model(str(d))
        loaded = SAE.load_from_disk(str(d))
        acts, out = run(loaded, x)
        mem_acts, mem_out = run(sae, x)
        assert maxdiff(acts, mem_acts) == 0 and maxdiff(out, mem_out) == 0, arch
        write_reference(d, x, acts, out)
        refs[arch] = (acts, out)
        print(f"{arch}: wrote {d} ({type(loaded).__name__}); l0 per row {(acts != 0).sum(-1).tolist()}")

    # BatchTopK: only a training class exists; its inference save is a JumpReLU SAE.
    bt = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(D_IN, D_SAE, k=K, metadata=metadata()))
    fill_weights(bt)
    bt.topk_threshold = torch.tensor(BATCHTOPK_THRESHOLD, dtype=torch.double)
    d = out_dir / "batchtopk"
    bt.save_inference_model(str(d))
    loaded = SAE.load_from_disk(str(d))
    acts, out = run(loaded, x)
    # Same thing by hand from the unfolded training weights (rescale_acts_by_decoder_norm=True):
    with torch.no_grad():
        norms = bt.W_dec.norm(dim=-1)
        pre = ((x - bt.b_dec) @ bt.W_enc + bt.b_enc) * norms
        hand_acts = pre.relu() * (pre > BATCHTOPK_THRESHOLD)
        hand_out = (hand_acts / norms) @ bt.W_dec + bt.b_dec
    assert maxdiff(acts, hand_acts) <= TOL and maxdiff(out, hand_out) <= TOL, "batchtopk fold"
    write_reference(d, x, acts, out)
    cfg = json.loads((d / "cfg.json").read_text())
    print(
        f"batchtopk: wrote {d} as architecture {cfg['architecture']!r} ({type(loaded).__name__}), "
        f"threshold {BATCHTOPK_THRESHOLD} on every latent; l0 per row {(acts != 0).sum(-1).tolist()}"
    )

    write_pre6(out_dir, "standard-pre6", pre6_cfg("standard", "relu", {}), saes["standard"], x, *refs["standard"])
    write_pre6(out_dir, "topk-pre6", pre6_cfg("standard", "topk", {"k": K}), saes["topk"], x, *refs["topk"])
    write_pre6(
        out_dir, "standard-pre3", pre3_cfg(), saes["standard"], x, *refs["standard"],
        extra={"scaling_factor": torch.ones(D_SAE)},
    )


def cmd_check(sae_dir, reference):
    torch.set_num_threads(1)
    ref = load_file(reference)
    sae = SAE.load_from_disk(sae_dir)
    acts, out = run(sae, ref["x"])
    print(
        f"{sae_dir}: {type(sae).__name__}, architecture {sae.cfg.architecture()!r}, "
        f"d_in {sae.cfg.d_in}, d_sae {sae.cfg.d_sae}, dtype {sae.cfg.dtype}, "
        f"hook_name {sae.cfg.metadata.hook_name!r}"
    )
    if acts.shape != ref["feature_acts"].shape or out.shape != ref["sae_out"].shape:
        print(f"shape mismatch: {tuple(acts.shape)}/{tuple(out.shape)} vs "
              f"{tuple(ref['feature_acts'].shape)}/{tuple(ref['sae_out'].shape)}")
        return 1
    da, do = maxdiff(acts, ref["feature_acts"]), maxdiff(out, ref["sae_out"])
    ok = da <= TOL and do <= TOL
    print(f"max abs diff: feature_acts {da:.3g}, sae_out {do:.3g} (tol {TOL}) -> {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write reference SAE directories")
    w.add_argument("out_dir")
    c = sub.add_parser("check", help="load SAE_DIR with sae_lens and compare with REFERENCE")
    c.add_argument("sae_dir")
    c.add_argument("reference")
    a = p.parse_args()
    if a.cmd == "write":
        cmd_write(a.out_dir)
        return 0
    return cmd_check(a.sae_dir, a.reference)


if __name__ == "__main__":
    sys.exit(main())
