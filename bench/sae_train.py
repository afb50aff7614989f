"""SAELens and PyTorch references for the SAE training benchmark (bench/sae_train.sh).

  python bench/sae_train.py prepare STORE OUT_DIR N_TRAIN N_HELDOUT [SEED]
      Rows for both implementations from a glassbox activation store (index.json + safetensors
      shards, one hook): every shard but the last gives training rows, the last gives held-out
      rows. Rows at a context's first position (SmolLM2 makes it an attention sink, ~100x the
      norm of the others) and special tokens (ids < 17 in SmolLM2's vocabulary, or the ids listed
      in SPECIAL_IDS) are left out, as `glassbox sae stream` does. N_TRAIN rows (0: all of them)
      are drawn at random (fixed SEED) and written in a shuffled order: `train.f32`,
      `heldout.f32` (row-major little-endian f32) and `meta.json`.

  python bench/sae_train.py train DATA_DIR THREADS BATCH TOKENS
      SAELens 6's own training code on the first TOKENS rows, BATCH rows a step: a
      TopKTrainingSAE (k 32, d_sae 8 x d_in, TopKTrainingSAEConfig defaults:
      rescale_acts_by_decoder_norm, aux loss coefficient 1, decoder_init_norm 0.1) stepped by
      SAETrainer itself (`maybe_reset_sparsity`, `step`: training_forward_pass, loss, backward,
      clip_grad_norm_ 1.0, Adam lr 3e-4, constant schedule, the dead-latent bookkeeping), exactly
      as `SAETrainer.fit` loops, minus its wandb logging and progress bar. The data provider is
      these rows. Then the explained variance on the held-out rows.

  python bench/sae_train.py fit DATA_DIR topk|batchtopk THREADS BATCH OUT_SAE MODEL
      The same SAELens training over every training row of DATA_DIR (prepare it with N_TRAIN 0:
      all usable rows), for TopK or BatchTopK (BatchTopKTrainingSAEConfig defaults: threshold
      learning rate 0.01, AuxK as TopK), k 32, 8 x d_in latents, lr 3e-4, batch BATCH. Prints the
      latents SAELens itself counts dead at the end (no firing in its dead_feature_window of 1,000
      steps) and saves the inference SAE (BatchTopK as JumpReLU, as SAELens saves it) to OUT_SAE
      with the store's hook and MODEL in cfg.json's metadata, so `glassbox sae eval OUT_SAE` can
      judge it on held-out text as it judges glassbox's own SAEs.

  python bench/sae_train.py topk-step THREADS
      One step of the TopK SAE computation in plain PyTorch, dense: d 512, m 4096, k 32, batch
      1024 of N(0, 1) data (fixed seed); encode, top-k of the decoder-norm-rescaled
      pre-activations, ReLU, scatter, dense decode, summed-squared error, backward,
      clip_grad_norm_ 1.0, Adam (what glassbox's trainer does; its aux loss is idle without dead
      latents, as here).

  python bench/sae_train.py usae-step THREADS [official|lean]
      One Universal SAE step as the official code computes it: for the sampled model i,
      Linear + BatchNorm1d (train mode) + ReLU, TopK k 32 of the codes, the top m/2 of the rest
      for the auxiliary term, decoders D_j = V_j / (|V_j| + 1e-8), for every model j the L1
      reconstruction error + 0.1 x the L1 auxiliary error, summed; backward; clip_grad_norm_ 1.0
      per SAE; AdamW (lr 3e-4, weight decay 1e-5) of SAE i. m 6144, d 768/384/768, 6272 tokens of
      N(0, 1) data. "official": every decoder takes part in autograd, as in the official code
      (the gradients of decoders j != i are computed and then dropped); "lean": decoders j != i
      are detached (no gradient that is thrown away). Each model's step is timed on its own.

One warm-up step, then timed steps until about TARGET_S seconds (default 5) and at least
MIN_STEPS (default 3); the median is printed, one JSON line per measurement.
"""
import json
import os
import statistics
import sys
import time

TARGET_S = float(os.environ.get("TARGET_S", "5"))
MIN_STEPS = int(os.environ.get("MIN_STEPS", "3"))
K, EXPANSION = 32, 8
SPECIAL_BELOW = 17  # SmolLM2: ids 0-16 are its special tokens
# Another model's special token ids, comma-separated (MiniLM: 0,100,101,102,103).
SPECIAL_IDS = [int(i) for i in os.environ.get("SPECIAL_IDS", "").split(",") if i]


def prepare(store, out, n_train, n_heldout, seed=0):
    import numpy as np
    from safetensors.numpy import load_file

    index = json.load(open(os.path.join(store, "index.json")))
    (hook,) = [h["name"] for h in index["hooks"]]
    context = index["context"]
    shards = [s["file"] for s in index["shards"]]

    def usable(tokens):
        special = np.isin(tokens, SPECIAL_IDS) if SPECIAL_IDS else tokens < SPECIAL_BELOW
        return (np.arange(len(tokens)) % context != 0) & ~special

    def rows(file):
        t = load_file(os.path.join(store, file))
        return t[hook][usable(t["tokens"])]

    held = rows(shards[-1])
    assert len(held) >= n_heldout, f"the last shard has {len(held)} usable rows, {n_heldout} asked for"
    held = held[:n_heldout]
    # A random N_TRAIN of the usable rows of the other shards, without keeping them all in memory.
    counts = []
    for f in shards[:-1]:
        t = load_file(os.path.join(store, f))
        counts.append(int(usable(t["tokens"]).sum()))
    total = sum(counts)
    n_train = n_train or total
    assert total >= n_train, f"{total} usable training rows, {n_train} asked for"
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, n_train, replace=False))
    d = held.shape[1]
    train = np.empty((n_train, d), dtype=np.float32)
    start, filled = 0, 0
    for f, c in zip(shards[:-1], counts):
        sel = chosen[(chosen >= start) & (chosen < start + c)] - start
        if len(sel):
            train[filled:filled + len(sel)] = rows(f)[sel]
            filled += len(sel)
        start += c
    train = train[rng.permutation(n_train)]
    os.makedirs(out, exist_ok=True)
    train.astype("<f4").tofile(os.path.join(out, "train.f32"))
    held.astype("<f4").tofile(os.path.join(out, "heldout.f32"))
    json.dump({"store": store, "hook": hook, "d": d, "train_rows": n_train, "heldout_rows": n_heldout, "seed": seed,
               "usable_training_rows": total, "held_out_shard": shards[-1],
               "left_out": f"each context's first position and token ids {SPECIAL_IDS or f'< {SPECIAL_BELOW}'}"},
              open(os.path.join(out, "meta.json"), "w"), indent=1)
    print(f"{n_train} training rows from {total} usable, {n_heldout} held-out rows, d {d}", file=sys.stderr)


def load(data_dir, tokens):
    import numpy as np
    import torch

    meta = json.load(open(os.path.join(data_dir, "meta.json")))
    d = meta["d"]
    assert tokens <= meta["train_rows"], f"{tokens} tokens asked for, {data_dir} holds {meta['train_rows']}"
    train = np.fromfile(os.path.join(data_dir, "train.f32"), dtype="<f4", count=tokens * d).reshape(tokens, d)
    held = np.fromfile(os.path.join(data_dir, "heldout.f32"), dtype="<f4").reshape(-1, d)
    return d, torch.from_numpy(train.copy()), torch.from_numpy(held.copy())


def timed(fn):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < MIN_STEPS or time.perf_counter() - start < TARGET_S:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def saelens_train(data_dir, threads, batch, tokens):
    import torch
    import sae_lens
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d, train, held = load(data_dir, tokens)
    steps = tokens // batch
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=EXPANSION * d, k=K, dtype="float32", device="cpu"))
    cfg = SAETrainerConfig(total_training_samples=steps * batch, train_batch_size_samples=batch, lr=3e-4, lr_end=3e-4 / 10,
                           logger=LoggingConfig(log_to_wandb=False))
    batches = (train[s * batch:(s + 1) * batch] for s in range(steps))
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=batches)
    trainer.sae.to(cfg.device)
    times = []
    # SAETrainer.fit's loop without wandb and the progress bar.
    while trainer.n_training_samples < cfg.total_training_samples:
        t0 = time.perf_counter()
        trainer.maybe_reset_sparsity()
        out = trainer.step(next(trainer.data_provider))
        trainer.n_training_steps += 1
        times.append(time.perf_counter() - t0)
    last = trainer.build_train_step_log_dict(out, trainer.n_training_samples)
    with torch.no_grad():
        sae.eval()
        acts, _ = sae.encode_with_hidden_pre(held)
        recon = sae.decode(acts).double()
        x = held.double()
        per_token = (recon - x).pow(2).sum(-1)
        ev = 1 - per_token.mean() / (x - x.mean(0)).pow(2).sum(-1).mean()
    never_fired = int((trainer.n_forward_passes_since_fired == steps).sum())
    print(json.dumps({
        "bench": "sae_train", "impl": "saelens", "threads": threads, "batch": batch, "tokens": steps * batch, "steps": steps,
        "seconds": sum(times), "tokens_per_s": (steps - 1) * batch / sum(times[1:]), "median_step_s": statistics.median(times),
        "heldout_explained_variance": ev.item(), "heldout_mse": per_token.mean().item(), "heldout_rows": len(held),
        "last_train_explained_variance": last["metrics/explained_variance"], "last_train_mse": last["losses/mse_loss"],
        "never_fired": never_fired, "d_sae": EXPANSION * d, "k": K,
        "torch": torch.__version__, "sae_lens": sae_lens.__version__,
    }), flush=True)


def saelens_fit(data_dir, arch, threads, batch, out_sae, model):
    import numpy as np
    import torch
    import sae_lens
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    meta = json.load(open(os.path.join(data_dir, "meta.json")))
    d, steps = meta["d"], meta["train_rows"] // batch
    train = np.memmap(os.path.join(data_dir, "train.f32"), dtype="<f4", mode="r", shape=(meta["train_rows"], d))
    classes = {"topk": (TopKTrainingSAE, TopKTrainingSAEConfig), "batchtopk": (BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig)}
    sae_class, cfg_class = classes[arch]
    sae = sae_class(cfg_class(d_in=d, d_sae=EXPANSION * d, k=K, dtype="float32", device="cpu"))
    cfg = SAETrainerConfig(total_training_samples=steps * batch, train_batch_size_samples=batch, lr=3e-4, lr_end=3e-4 / 10,
                           logger=LoggingConfig(log_to_wandb=False))
    batches = (torch.from_numpy(np.array(train[s * batch:(s + 1) * batch])) for s in range(steps))
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=batches)
    start, l0s = time.perf_counter(), []
    while trainer.n_training_samples < cfg.total_training_samples:
        trainer.maybe_reset_sparsity()
        out = trainer.step(next(trainer.data_provider))
        trainer.n_training_steps += 1
        l0s.append((out.feature_acts > 0).float().sum(-1).mean().item())
        if trainer.n_training_steps % max(1, steps // 10) == 0:
            print(f"step {trainer.n_training_steps}/{steps}, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    last = trainer.build_train_step_log_dict(out, trainer.n_training_samples)
    dead = int(trainer.dead_neurons.sum())
    sae.save_inference_model(out_sae)
    cfg_path = os.path.join(out_sae, "cfg.json")
    saved = json.load(open(cfg_path))
    store_index = json.load(open(os.path.join(meta["store"], "index.json")))
    saved.setdefault("metadata", {}).update({"hook_name": meta["hook"], "model_name": model, "context_size": store_index["context"],
                                             "exclude_special_tokens": True, "seqpos_slice": [1, None]})
    json.dump(saved, open(cfg_path, "w"), indent=1)
    print(json.dumps({
        "bench": "sae_fit", "impl": "saelens", "architecture": arch, "threads": threads, "batch": batch, "tokens": steps * batch,
        "steps": steps, "seconds": time.perf_counter() - start, "dead_in_training": dead, "dead_window_steps": cfg.dead_feature_window,
        "d_sae": EXPANSION * d, "k": K, "train_l0_last_1000_steps": statistics.mean(l0s[-1000:]),
        "last_train_explained_variance": last["metrics/explained_variance"], "out": out_sae,
        "torch": torch.__version__, "sae_lens": sae_lens.__version__,
    }), flush=True)


def topk_step(threads):
    import torch

    torch.set_num_threads(threads)
    d, m, rows = 512, 4096, 1024
    g = torch.Generator().manual_seed(1)
    x = torch.randn(rows, d, generator=g)
    w_dec = torch.rand(m, d, generator=g) * 2 - 1
    w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True) * 0.1
    params = {
        "W_enc": torch.nn.Parameter(w_dec.T.clone()),
        "b_enc": torch.nn.Parameter(torch.zeros(m)),
        "W_dec": torch.nn.Parameter(w_dec.clone()),
        "b_dec": torch.nn.Parameter(torch.zeros(d)),
    }
    opt = torch.optim.Adam(params.values(), lr=3e-4, betas=(0.9, 0.999))
    p = params

    def step():
        norms = p["W_dec"].norm(dim=-1)
        pre = ((x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]) * norms
        vals, idx = torch.topk(pre, K, dim=-1, sorted=False)
        acts = torch.zeros_like(pre).scatter(-1, idx, vals.relu())
        out = (acts / norms) @ p["W_dec"] + p["b_dec"]
        loss = (out - x).pow(2).sum(-1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        opt.step()
        opt.zero_grad()

    seconds, reps = timed(step)
    print(json.dumps({"bench": "sae_step", "impl": "torch", "model": "topk", "threads": threads, "d": d, "m": m, "k": K,
                      "batch": rows, "seconds": seconds, "reps": reps, "torch": torch.__version__}), flush=True)


def usae_step(threads, variant="official"):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    dims, m, t = (768, 384, 768), 6144, 6272
    g = torch.Generator().manual_seed(10)
    acts = [torch.randn(t, d, generator=g) for d in dims]
    torch.manual_seed(0)
    enc = [nn.Sequential(nn.Linear(d, m), nn.BatchNorm1d(m)) for d in dims]
    dic = [nn.Parameter(torch.randn(m, d)) for d in dims]
    saes = [list(e.parameters()) + [v] for e, v in zip(enc, dic)]
    opts = [torch.optim.AdamW(ps, lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-5) for ps in saes]

    def step(i):
        for ps in saes[i]:
            ps.grad = None
        pre = enc[i](acts[i])
        codes = torch.relu(pre)
        vals, idx = torch.topk(codes, K, dim=-1)
        z = torch.zeros_like(codes).scatter(-1, idx, vals)
        rest = codes - z
        vals_aux, idx_aux = torch.topk(rest, m // 2, dim=-1)
        u = torch.zeros_like(rest).scatter(-1, idx_aux, vals_aux)
        loss = 0
        for j in range(len(dims)):
            v = dic[j] if (variant == "official" or j == i) else dic[j].detach()
            dj = v / (v.norm(dim=-1, keepdim=True) + 1e-8)
            r = acts[j] - z @ dj
            loss = loss + r.abs().mean() + 0.1 * (r - u @ dj).abs().mean()
        loss.backward()
        for ps in saes:
            torch.nn.utils.clip_grad_norm_([q for q in ps if q.grad is not None], 1.0)
        opts[i].step()

    for i in range(len(dims)):
        step(i)  # warm-up
    per_model = [[] for _ in dims]
    start = time.perf_counter()
    while len(per_model[0]) < MIN_STEPS or time.perf_counter() - start < TARGET_S:
        for i in range(len(dims)):
            t0 = time.perf_counter()
            step(i)
            per_model[i].append(time.perf_counter() - t0)
    medians = [statistics.median(v) for v in per_model]
    print(json.dumps({"bench": "sae_step", "impl": "torch" if variant == "official" else "torch-lean", "model": "usae",
                      "threads": threads, "d": list(dims), "m": m, "k": K, "batch": t, "seconds": sum(medians) / len(dims),
                      "seconds_per_model": medians, "reps": len(per_model[0]), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "prepare":
        prepare(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), *(int(a) for a in sys.argv[6:7]))
    elif mode == "train":
        saelens_train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "fit":
        saelens_fit(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7])
    elif mode == "topk-step":
        topk_step(int(sys.argv[2]))
    elif mode == "usae-step":
        usae_step(int(sys.argv[2]), *sys.argv[3:4])
    else:
        sys.exit(__doc__)
