//! Language-model training-step benchmark: the step glassbox's language-model training runs (sharded forward
//! and backward of next-token loss, AdamW), timed on one fixed random batch of token contexts.
//! bench/lm_train_step.py is the PyTorch reference of the identical models; bench/lm_train_step.sh
//! runs both alternately and prints tokens/s ratios.
//!
//! cargo run --release -p glassbox-lm --example lm_train_step -- MODEL THREADS [SHARDS]
//! MODEL is gpt (pre-LayerNorm, learned positions, GELU MLP 768, biases, tied embeddings) or
//! bilinear (RMSNorm without gain, rotary, bilinear MLP 512, no biases, attention scaled by
//! 1/√8); both 4 layers, d_model 256, 4 heads of 64, vocabulary 4096, context 128, batch 16,
//! equal parameter counts outside the embeddings. It lives in this crate to build with the
//! binary's GEMM kernels (AVX-512) and allocator settings. Prints one JSON line.

use glassbox_core::model::{Architecture, MlpKind, Model, TransformerConfig};
use glassbox_core::tensor::train_device;
use glassbox_core::train::lm::{lm_step, Contexts, Decay, LmConfig};
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::{Rng, SeedableRng};
use std::time::Instant;

// The allocator the glassbox binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BLOCKS: usize = 5;
const VOCAB: usize = 4096;
const CTX: usize = 128;
const BATCH: usize = 16;

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub fn config(model: &str) -> TransformerConfig {
    match model {
        "gpt" => TransformerConfig::gpt_style(4, 256, 4, 768, VOCAB, CTX),
        "bilinear" => TransformerConfig::bilinear_lm(4, 256, 4, 512, VOCAB, CTX, MlpKind::Bilinear),
        _ => panic!("usage: lm_train_step gpt|bilinear THREADS [SHARDS]"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: lm_train_step gpt|bilinear THREADS [SHARDS]";
    let model_name = args.first().expect(usage).as_str();
    let threads: usize = args.get(1).expect(usage).parse().expect(usage);
    let shards: usize = args.get(2).map_or(threads, |s| s.parse().expect(usage));
    glassbox_lm::allocator::keep_freed_memory();
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("first pool");
    let dev = train_device();
    let mut model = Model::init(Architecture::Transformer(config(model_name)), 0, &dev).expect("valid architecture");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let data = Contexts { n_ctx: CTX, tokens: (0..BATCH * (CTX + 1)).map(|_| rng.random_range(0..VOCAB as u32)).collect() };
    let rows: Vec<usize> = (0..BATCH).collect();
    let sizes: Vec<usize> = model.params.specs.iter().map(|s| s.numel()).collect();
    let optim = OptimConfig { kind: OptimKind::AdamW, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };
    let cfg = LmConfig { steps: 1, batch_size: BATCH, lr: 1e-3, optim: optim.clone(), warmup_steps: 0, decay: Decay::Constant, min_lr: 0.0, clip_grad_norm: None, eval_every: 1, shards };
    let mut adam = Adam::new(optim, &sizes);
    let mut step = |model: &mut Model| {
        let (x, y) = data.batch(&rows, &dev);
        lm_step(model, &mut adam, x, y, &cfg, 1e-3).expect("a language model")
    };
    let (warmup, steps) = (3, 5);
    for _ in 0..warmup {
        step(&mut model);
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut loss = 0.0;
    for _ in 0..BLOCKS {
        let (w0, c0) = (Instant::now(), cpu_seconds());
        for _ in 0..steps {
            loss = step(&mut model);
        }
        wall.push(w0.elapsed().as_secs_f64() / steps as f64 * 1e3);
        cpu.push((cpu_seconds() - c0) / steps as f64 * 1e3);
    }
    let ms = median(wall);
    println!(
        "{}",
        serde_json::json!({
            "impl": "glassbox", "model": model_name, "threads": threads, "shards": shards, "params": model.params.numel(),
            "batch": BATCH, "context": CTX, "ms_per_step": ms, "tokens_per_s": (BATCH * CTX) as f64 / ms * 1e3,
            "cpu_ms_per_step": median(cpu), "final_loss": loss,
        })
    );
}
