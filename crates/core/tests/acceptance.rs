//! The foundation's acceptance runs on real data (the folder GLASSBOX_DATA names) and on
//! modular addition. Each prints its measured accuracy; run with `-- --nocapture` to see it:
//!   cargo test --release -p glassbox-core --test acceptance -- --nocapture --test-threads 1

mod common;
use common::real_data_dir;
use glassbox_core::data::modadd::ModularAddition;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::model::{Activation, Architecture};
use glassbox_core::train::optim::{OptimConfig, OptimKind};
use glassbox_core::train::schedule::{Schedule, ScheduleKind};
use glassbox_core::train::{self, RunOptions, TrainConfig};

fn run(name: &str, arch: Architecture, spec: DataSpec, cfg: TrainConfig) -> f64 {
    let data = spec.load(real_data_dir().as_deref()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: dir.path().to_path_buf(),
        name: name.into(),
        command: "acceptance test".into(),
        seed: 42,
        resume: false,
        progress: false,
        stop_after_epochs: None,
        save_every: 1,
    };
    let t = train::train(arch, &data, &spec, &cfg, &opts).unwrap();
    let acc = t.card.metrics["test_accuracy"];
    eprintln!("ACCEPTANCE {name}: test accuracy {acc:.4} after {} epochs", t.card.epochs_done);
    acc
}

fn adam(kind: OptimKind, weight_decay: f64) -> OptimConfig {
    OptimConfig { kind, weight_decay, ..OptimConfig::default() }
}

fn cosine() -> Schedule {
    Schedule { kind: ScheduleKind::Cosine, warmup_epochs: 0, min_lr: 0.0 }
}

#[test]
fn mlp_784_512_10_on_mnist_reaches_98_percent_in_10_epochs() {
    if real_data_dir().is_none() {
        return;
    }
    let arch = Architecture::Mlp { dims: vec![784, 512, 10], activation: Activation::Relu, bias: true, embed: None };
    let cfg = TrainConfig { epochs: 10, batch_size: 128, lr: 1e-3, optim: adam(OptimKind::Adam, 0.0), schedule: cosine(), eval_every: 10, ..Default::default() };
    let acc = run("mlp-mnist", arch, DataSpec::Mnist, cfg);
    assert!(acc >= 0.98, "MLP on MNIST: {acc}");
}

/// The bilinear-MLP paper's image setup (Pearce et al. 2024, Table 1): d_h 512, AdamW lr 1e-3
/// wd 1.0, input noise 0.5, batch 2048 (drop_last), cosine per epoch, no biases.
fn bilinear_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 2048,
        lr: 1e-3,
        optim: adam(OptimKind::AdamW, 1.0),
        schedule: cosine(),
        input_noise: 0.5,
        drop_last: true,
        eval_every: epochs,
        ..Default::default()
    }
}

fn bilinear_784() -> Architecture {
    Architecture::Bilinear { d_in: 784, d_hidden: 512, d_out: 10, bias: false, embed: true }
}

#[test]
fn bilinear_on_mnist_reaches_97_5_percent() {
    if real_data_dir().is_none() {
        return;
    }
    let acc = run("bilinear-mnist", bilinear_784(), DataSpec::Mnist, bilinear_config(50));
    assert!(acc >= 0.975, "bilinear on MNIST: {acc}");
}

/// The same model and optimiser on Fashion-MNIST, with the paper's other documented settings:
/// input noise 0.15 (its Fig 7) and the reference code's default weight decay 0.5. With
/// the MNIST values (noise 0.5, wd 1.0) it stays at 86.1 % after 50 epochs: the noise that
/// regularises digit strokes hides the fine texture that separates shirts from pullovers.
#[test]
fn bilinear_on_fashion_mnist_reaches_88_percent() {
    if real_data_dir().is_none() {
        return;
    }
    let cfg = TrainConfig { input_noise: 0.15, optim: adam(OptimKind::AdamW, 0.5), ..bilinear_config(60) };
    let acc = run("bilinear-fashion", bilinear_784(), DataSpec::FashionMnist, cfg);
    assert!(acc >= 0.88, "bilinear on Fashion-MNIST: {acc}");
}

#[test]
fn small_cnn_on_mnist_reaches_98_5_percent() {
    if real_data_dir().is_none() {
        return;
    }
    let arch = Architecture::Cnn { image: [1, 28, 28], channels: vec![16, 32], kernel: 3, hidden: 128, d_out: 10 };
    let cfg = TrainConfig { epochs: 5, batch_size: 128, lr: 1e-3, optim: adam(OptimKind::Adam, 0.0), schedule: cosine(), eval_every: 5, ..Default::default() };
    let acc = run("cnn-mnist", arch, DataSpec::Mnist, cfg);
    assert!(acc >= 0.985, "CNN on MNIST: {acc}");
}

/// Grokking setup: full batch, AdamW with strong weight decay, constant learning rate, stop
/// when every held-out pair is right.
fn grokking(p: usize, epochs: usize) -> (DataSpec, TrainConfig) {
    let spec = DataSpec::Modadd(ModularAddition { p, train_fraction: 0.5, seed: 0, tokens: false });
    let cfg = TrainConfig {
        epochs,
        batch_size: p * p,
        lr: 3e-3,
        optim: adam(OptimKind::AdamW, 1.0),
        schedule: Schedule { kind: ScheduleKind::Constant, warmup_epochs: 0, min_lr: 0.0 },
        eval_every: 25,
        target_accuracy: Some(1.0),
        ..Default::default()
    };
    (spec, cfg)
}

fn modadd_mlp(p: usize, hidden: usize) -> Architecture {
    Architecture::Mlp { dims: vec![2 * p, hidden, p], activation: Activation::Relu, bias: true, embed: None }
}

fn modadd_bilinear(p: usize, hidden: usize) -> Architecture {
    Architecture::Bilinear { d_in: 2 * p, d_hidden: hidden, d_out: p, bias: false, embed: true }
}

/// The tour's recipe (p = 59, one learning rate for both models): both must generalise far
/// beyond chance (1/59) on held-out pairs.
#[test]
fn mlp_and_bilinear_generalise_on_modular_addition_59() {
    let (spec, cfg) = grokking(59, 1500);
    let cfg = TrainConfig { lr: 1e-2, target_accuracy: Some(0.95), ..cfg };
    let acc = run("mlp-modadd-59", modadd_mlp(59, 256), spec.clone(), cfg.clone());
    assert!(acc >= 0.95, "MLP on a + b mod 59: {acc}");
    let acc = run("bilinear-modadd-59", modadd_bilinear(59, 256), spec, cfg);
    assert!(acc >= 0.95, "bilinear on a + b mod 59: {acc}");
}

/// The grokking recipe that solves p = 113 (the p = 31 bilinear modular-addition experiment
/// scaled up): AdamW with betas (0.9, 0.98) and weight decay 1, full batch, constant learning
/// rate. Measured: the bilinear model is exact after ~400 epochs (~70 s on one core), the MLP
/// after ~800 (~160 s).
fn grokking_113(lr: f64) -> (DataSpec, TrainConfig) {
    let (spec, cfg) = grokking(113, 20000);
    let optim = OptimConfig { beta2: 0.98, ..adam(OptimKind::AdamW, 1.0) };
    (spec, TrainConfig { lr, optim, eval_every: 50, ..cfg })
}

#[test]
fn mlp_solves_modular_addition_113() {
    let (spec, cfg) = grokking_113(3e-3);
    let acc = run("mlp-modadd-113", modadd_mlp(113, 1024), spec, cfg);
    assert_eq!(acc, 1.0, "MLP on a + b mod 113");
}

#[test]
fn bilinear_solves_modular_addition_113() {
    let (spec, cfg) = grokking_113(5e-3);
    let arch = Architecture::Bilinear { d_in: 226, d_hidden: 512, d_out: 113, bias: false, embed: false };
    let acc = run("bilinear-modadd-113", arch, spec, cfg);
    assert_eq!(acc, 1.0, "bilinear on a + b mod 113");
}
