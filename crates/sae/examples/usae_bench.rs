//! Time USAE training steps in the Test A setting (planted concepts: m 256, k 8, batch 512,
//! d 64/48/32) and the Test B setting (glyph networks: m 384, k 8, batch 256, d 64/96/32),
//! apart from data generation. `cargo run --release -p glassbox-sae --example usae_bench [steps]`

use faer::Mat;
use glassbox_sae::experiments::planted_concepts::{config, BATCH};
use glassbox_sae::planted::{Planted, PlantedConfig};
use glassbox_sae::usae::{Usae, UsaeConfig};
use std::time::Instant;

fn time_steps(label: &str, config: UsaeConfig, batches: &[Vec<Mat<f32>>], steps: usize) {
    let names: Vec<(String, usize)> = batches[0].iter().enumerate().map(|(i, a)| (format!("model{i}"), a.ncols())).collect();
    let names: Vec<(&str, usize)> = names.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let mut usae = Usae::new(config, &names, 0).expect("valid config");
    let start = Instant::now();
    for s in 0..steps {
        usae.train_step(s % names.len(), &batches[s % batches.len()]).expect("step");
    }
    let ms = start.elapsed().as_secs_f64() * 1e3 / steps as f64;
    println!("{label:<40} {ms:7.3} ms/step");
}

fn main() {
    let steps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let planted = Planted::new(&PlantedConfig::default());
    let t = Instant::now();
    let batches: Vec<Vec<Mat<f32>>> = (0..20).map(|s| planted.sample(BATCH, s)).collect();
    println!("{:<40} {:7.3} ms/batch", "planted sampling (batch 512)", t.elapsed().as_secs_f64() * 1e3 / 20.0);
    time_steps("test A step, BN", config(true, true), &batches, steps);
    time_steps("test A step, no BN", config(false, true), &batches, steps);
    time_steps("test A step, independent", config(true, false), &batches, steps);
    let wide: Vec<Vec<Mat<f32>>> = (0..20u64).map(|s| [64, 96, 32].iter().map(|&d| Mat::from_fn(256, d, |r, c| (((r * 31 + c * 17) as u64 + s) % 13) as f32 / 6.0 - 1.0)).collect()).collect();
    time_steps("test B step (m 384, batch 256)", UsaeConfig { batch_norm: false, ..UsaeConfig::new(384, 8, steps) }, &wide, steps);
}
