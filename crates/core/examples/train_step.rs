//! Training-step benchmark on MNIST shapes: the step `glassbox train` runs (sharded forward
//! and backward, Adam), timed on one fixed synthetic batch. bench/train_step.py is the PyTorch
//! reference of the identical computation; bench/train_step.sh runs both and prints ratios.
//!
//! cargo run --release -p glassbox-core --example train_step -- MODEL THREADS [SHARDS]
//! MODEL is mlp (784-512-10 ReLU, B=128), bilinear (784 -> 512 -> 512 -> 10, B=128) or
//! cnn (conv16 + pool, conv32 + pool, fc128, B=64). Prints one JSON line.

use glassbox_core::data::{Dataset, Targets};
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::train_device;
use glassbox_core::train::{batch, optim::Adam, train_step, TrainConfig};
use rand::{Rng, SeedableRng};
use std::time::Instant;

// The allocator the glassbox binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BLOCKS: usize = 7;

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: train_step mlp|bilinear|cnn THREADS [SHARDS]";
    let model_name = args.first().expect(usage).as_str();
    let threads: usize = args.get(1).expect(usage).parse().expect(usage);
    let shards: usize = args.get(2).map_or(2, |s| s.parse().expect(usage));
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("first pool");

    let (arch, batch_size, warmup, steps) = match model_name {
        "mlp" => (Architecture::Mlp { dims: vec![784, 512, 10], activation: Activation::Relu, bias: true, embed: None }, 128, 20, 50),
        "bilinear" => (Architecture::Bilinear { d_in: 784, d_hidden: 512, d_out: 10, bias: false, embed: true }, 128, 20, 50),
        "cnn" => (Architecture::Cnn { image: [1, 28, 28], channels: vec![16, 32], kernel: 3, hidden: 128, d_out: 10 }, 64, 10, 30),
        _ => panic!("{usage}"),
    };
    let batch_size = std::env::var("BATCH").map_or(batch_size, |b| b.parse().expect("BATCH is a number"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let data = Dataset {
        name: "synthetic".into(),
        inputs: (0..batch_size * 784).map(|_| rng.random::<f32>()).collect(),
        input_dim: 784,
        image_shape: Some([1, 28, 28]),
        targets: Targets::Classes { labels: (0..batch_size).map(|_| rng.random_range(0..10)).collect(), n_classes: 10 },
    };
    let idx: Vec<usize> = (0..batch_size).collect();
    let dev = train_device();
    let mut model = Model::init(arch, 0, &dev).expect("valid architecture");
    let sizes: Vec<usize> = model.params.specs.iter().map(|s| s.numel()).collect();
    let cfg = TrainConfig { shards, ..TrainConfig::default() };
    let mut adam = Adam::new(cfg.optim.clone(), &sizes);
    let mut step = |model: &mut Model| {
        let (x, y) = batch(&data, &idx, &dev);
        train_step(model, &mut adam, &data, x, y, &cfg, 1e-3)
    };
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
    println!(
        "{}",
        serde_json::json!({
            "impl": "glassbox", "model": model_name, "threads": threads, "shards": shards,
            "batch": batch_size, "ms_per_step": median(wall), "cpu_ms_per_step": median(cpu), "final_loss": loss,
        })
    );
}
