//! SAE training speed of glassbox against SAELens and PyTorch (bench/sae_train.sh, bench/sae_train.py).
//!
//!     sae_train_bench train DATA_DIR THREADS BATCH TOKENS  # TopK k 32, 8 x d_in latents, on DATA_DIR's rows
//!                                                          # (ARCHITECTURE=batchtopk: BatchTopK; SAVE=DIR
//!                                                          # with SAVE_HOOK, SAVE_MODEL: write the SAE)
//!     sae_train_bench topk-step THREADS                    # one TopK step: d 512, m 4096, k 32, batch 1024
//!     sae_train_bench usae-step THREADS                    # one USAE step: d 768/384/768, m 6144, k 32, 6272 tokens
//!     sae_train_bench breakdown DATA_DIR THREADS BATCH     # where a training step's time goes
//!
//! DATA_DIR is what `bench/sae_train.py prepare` wrote: `train.f32` and `heldout.f32` (row-major
//! little-endian f32 rows, already shuffled) and `meta.json` (`d`, `train_rows`, `heldout_rows`).
//! `train` runs the `Trainer` (`TrainConfig::new(d, 8 d, TopK { k: 32 })`) over the first TOKENS
//! rows in order, BATCH rows a step, timing every step; then the explained variance on the
//! held-out rows. The step benchmarks run one warm-up step, then timed steps until about TARGET_S
//! seconds (default 5) have passed, at least MIN_STEPS (default 3); they print the median. One
//! JSON line per measurement. The thread count is rayon's global pool, built before anything
//! else runs (what `glassbox --threads` does).

use faer::Mat;
use glassbox_sae::training::{StepStats, TrainArchitecture, TrainConfig, Trainer};
use glassbox_sae::usae::{Usae, UsaeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::{json, Value};
use std::hint::black_box;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

// The allocator and settings of the glassbox binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const K: usize = 32;
const EXPANSION: usize = 8;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One warm-up call, then timed calls until TARGET_S seconds have passed and at least MIN_STEPS
/// calls ran: (median seconds, calls timed).
fn timed(mut f: impl FnMut()) -> (f64, usize) {
    let (target, min) = (env_f64("TARGET_S", 5.0), env_f64("MIN_STEPS", 3.0) as usize);
    f();
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < min.max(1) || start.elapsed().as_secs_f64() < target {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64());
    }
    let n = times.len();
    (median(times), n)
}

/// Rows of `file` (f32, little-endian), `rows` x `d`.
fn read_rows(file: &Path, rows: usize, d: usize) -> Vec<f32> {
    let mut f = std::fs::File::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut out = Vec::with_capacity(rows * d);
    let mut buf = vec![0u8; 1 << 20];
    while out.len() < rows * d {
        let want = ((rows * d - out.len()) * 4).min(buf.len());
        f.read_exact(&mut buf[..want]).unwrap_or_else(|e| panic!("{}: {e} (fewer than {rows} rows of {d})", file.display()));
        out.extend(buf[..want].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    out
}

struct Data {
    d: usize,
    train: Vec<f32>,
    heldout: Vec<f32>,
    heldout_rows: usize,
}

fn load(dir: &Path, tokens: usize) -> Data {
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).expect("meta.json")).expect("meta.json: JSON");
    let d = meta["d"].as_u64().expect("meta.json: d") as usize;
    let train_rows = meta["train_rows"].as_u64().expect("meta.json: train_rows") as usize;
    let heldout_rows = meta["heldout_rows"].as_u64().expect("meta.json: heldout_rows") as usize;
    assert!(tokens <= train_rows, "{tokens} tokens asked for, {} holds {train_rows}", dir.display());
    Data { d, train: read_rows(&dir.join("train.f32"), tokens, d), heldout: read_rows(&dir.join("heldout.f32"), heldout_rows, d), heldout_rows }
}

fn topk_trainer(d: usize) -> Trainer {
    Trainer::new(TrainConfig::new(d, EXPANSION * d, TrainArchitecture::TopK { k: K }))
}

/// The trainer `train` runs: TopK, or BatchTopK with ARCHITECTURE=batchtopk.
fn trainer_from_env(d: usize) -> (Trainer, String) {
    let name = std::env::var("ARCHITECTURE").unwrap_or_else(|_| "topk".into());
    let architecture = match name.as_str() {
        "topk" => TrainArchitecture::TopK { k: K },
        "batchtopk" => TrainArchitecture::BatchTopK { k: K },
        other => panic!("ARCHITECTURE must be topk or batchtopk, not {other}"),
    };
    (Trainer::new(TrainConfig::new(d, EXPANSION * d, architecture)), name)
}

/// Explained variance of the held-out rows (SAELens's form: 1 − mean ‖x − x̂‖² / mean ‖x − x̄‖²)
/// and their mean squared error, from the trainer's own forward pass.
fn heldout(trainer: &Trainer, data: &Data) -> StepStats {
    trainer.loss_and_gradients(&data.heldout, data.heldout_rows, &vec![false; trainer.config.d_sae]).0
}

fn train(dir: &Path, threads: usize, batch: usize, tokens: usize) {
    let data = load(dir, tokens);
    let d = data.d;
    let (mut trainer, architecture) = trainer_from_env(d);
    let mut times = Vec::new();
    let mut last = StepStats::default();
    for x in data.train.chunks_exact(batch * d) {
        let t0 = Instant::now();
        last = trainer.step(x, batch);
        times.push(t0.elapsed().as_secs_f64());
    }
    let steps = times.len();
    let total: f64 = times.iter().sum();
    // The first step pays for first-touch page faults and warm-up: left out of the rate.
    let timed: f64 = times[1..].iter().sum();
    let ev = heldout(&trainer, &data);
    let never_fired = trainer.steps_since_fired.iter().filter(|&&s| s as usize == steps).count();
    let dead_in_training = trainer.steps_since_fired.iter().filter(|&&s| s > trainer.config.dead_feature_window).count();
    if let Ok(out) = std::env::var("SAVE") {
        // For `glassbox sae eval`: the hook and model come from SAVE_HOOK and SAVE_MODEL.
        let mut metadata = serde_json::Map::new();
        for (key, var) in [("hook_name", "SAVE_HOOK"), ("model_name", "SAVE_MODEL")] {
            metadata.insert(key.into(), json!(std::env::var(var).unwrap_or_default()));
        }
        metadata.insert("context_size".into(), json!(128));
        metadata.insert("seqpos_slice".into(), json!([1, null]));
        metadata.insert("training_architecture".into(), json!(architecture));
        trainer.to_sae(metadata).save(Path::new(&out)).expect("save the SAE");
    }
    println!(
        "{}",
        json!({ "bench": "sae_train", "impl": "glassbox", "architecture": architecture, "dead_in_training": dead_in_training, "threads": threads, "batch": batch, "tokens": steps * batch, "steps": steps,
            "seconds": total, "tokens_per_s": ((steps - 1) * batch) as f64 / timed, "median_step_s": median(times),
            "heldout_explained_variance": ev.explained_variance, "heldout_mse": ev.mse_loss, "heldout_rows": data.heldout_rows,
            "last_train_explained_variance": last.explained_variance, "last_train_mse": last.mse_loss, "never_fired": never_fired, "d_sae": EXPANSION * d, "k": K })
    );
}

/// Standard-normal values from a fixed seed.
fn normal(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()
}

fn topk_step(threads: usize) {
    let (d, m, rows) = (512, 4096, 1024);
    let x = normal(rows * d, 1);
    let mut trainer = Trainer::new(TrainConfig::new(d, m, TrainArchitecture::TopK { k: K }));
    let (seconds, reps) = timed(|| {
        black_box(trainer.step(&x, rows));
    });
    println!(
        "{}",
        json!({ "bench": "sae_step", "impl": "glassbox", "model": "topk", "threads": threads, "d": d, "m": m, "k": K, "batch": rows,
            "seconds": seconds, "reps": reps })
    );
}

fn usae_step(threads: usize) {
    let (dims, m, t) = ([768usize, 384, 768], 6144, 6272);
    let batch: Vec<Mat<f32>> = dims.iter().enumerate().map(|(i, &d)| {
        let v = normal(t * d, 10 + i as u64);
        Mat::from_fn(t, d, |r, c| v[r * d + c])
    }).collect();
    let names: Vec<(&str, usize)> = vec![("a", dims[0]), ("b", dims[1]), ("c", dims[2])];
    let mut usae = Usae::new(UsaeConfig::new(m, K, 1_000_000), &names, 0).expect("USAE config");
    // One step per model is one round; each model's step is timed on its own.
    let mut per_model: Vec<Vec<f64>> = vec![Vec::new(); dims.len()];
    for i in 0..dims.len() {
        black_box(usae.train_step(i, &batch).expect("step"));
    }
    let (target, min) = (env_f64("TARGET_S", 5.0), env_f64("MIN_STEPS", 3.0) as usize);
    let start = Instant::now();
    while per_model[0].len() < min.max(1) || start.elapsed().as_secs_f64() < target {
        for (i, times) in per_model.iter_mut().enumerate() {
            let t0 = Instant::now();
            black_box(usae.train_step(i, &batch).expect("step"));
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let reps = per_model[0].len();
    let medians: Vec<f64> = per_model.into_iter().map(median).collect();
    println!(
        "{}",
        json!({ "bench": "sae_step", "impl": "glassbox", "model": "usae", "threads": threads, "d": dims, "m": m, "k": K, "batch": t,
            "seconds": medians.iter().sum::<f64>() / dims.len() as f64, "seconds_per_model": medians, "reps": reps })
    );
}

/// Time of a training step and of its parts on the first rows of DATA_DIR: the trainer's whole
/// step, its loss-and-gradients pass, and the rest (clipping, Adam, bookkeeping) by difference.
fn breakdown(dir: &Path, threads: usize, batch: usize) {
    let data = load(dir, 8 * batch);
    let d = data.d;
    let mut trainer = topk_trainer(d);
    let batches: Vec<&[f32]> = data.train.chunks_exact(batch * d).collect();
    let mut n = 0;
    let (step_s, _) = timed(|| {
        black_box(trainer.step(batches[n % batches.len()], batch));
        n += 1;
    });
    let dead = vec![false; trainer.config.d_sae];
    let (grad_s, _) = timed(|| {
        black_box(trainer.loss_and_gradients(batches[n % batches.len()], batch, &dead));
        n += 1;
    });
    let mut params = trainer.params.clone();
    let grads: Vec<Vec<f32>> = params.iter().map(|p| p.iter().map(|v| v * 1e-3).collect()).collect();
    let (adam_s, _) = timed(|| {
        trainer.adam.update(&mut params, &grads, 1e-9);
    });
    // The encoder GEMM alone: [batch, d] x [d, 8 d].
    let m = trainer.config.d_sae;
    let w = trainer.params[0].clone();
    let (gemm_s, _) = timed(|| {
        let mut pre = vec![0f32; batch * m];
        glassbox_lm::ops::matmul_add(&mut pre, m, glassbox_lm::ops::Strided::rows(batches[0], d), glassbox_lm::ops::Strided::transposed(&w, d), batch, m, d, true);
        black_box(pre);
    });
    for (part, s) in [("step", step_s), ("loss_and_gradients", grad_s), ("adam update (4 tensors)", adam_s), ("encoder GEMM", gemm_s), ("rest of step (clip, adam, bookkeeping)", step_s - grad_s)] {
        println!("{}", json!({ "bench": "sae_train_breakdown", "impl": "glassbox", "threads": threads, "batch": batch, "part": part, "seconds": s, "share": s / step_s }));
    }
}

fn main() {
    glassbox_lm::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "sae_train_bench train DATA_DIR THREADS BATCH TOKENS | topk-step THREADS | usae-step THREADS | breakdown DATA_DIR THREADS BATCH";
    let arg = |i: usize| args.get(i).unwrap_or_else(|| panic!("{usage}")).as_str();
    let num = |i: usize| arg(i).parse::<usize>().unwrap_or_else(|_| panic!("{usage}"));
    let threads = match arg(0) {
        "topk-step" | "usae-step" => num(1),
        _ => num(2),
    };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    match arg(0) {
        "train" => train(Path::new(arg(1)), threads, num(3), num(4)),
        "topk-step" => topk_step(threads),
        "usae-step" => usae_step(threads),
        "breakdown" => breakdown(Path::new(arg(1)), threads, num(3)),
        _ => panic!("{usage}"),
    }
}
