//! Experiment B: bilinear and ReLU models on the scikit-learn 8x8 digits, the fast CI-speed
//! reproduction of the bilinear-MLP paper's image results. Thresholds B1-B3: accuracy near
//! ReLU's, truncation at k = 6, weight decay lowering the effective rank.

use super::{analysis_view, bilinear_arch, fit, mean, relu_arch, Check, ExperimentOptions, Outcome};
use crate::decompose::decompose;
use crate::Result;
use faer::Mat;
use glassbox_core::data::{self, Split, Targets};
use glassbox_core::dataspec::DataSpec;
use glassbox_core::train::optim::{OptimConfig, OptimKind};
use glassbox_core::train::{evaluate, TrainConfig};
use std::time::Instant;

/// (σ, wd) grid: input noise 0 or 0.3 against weight decay 0, 0.5 and 1.
pub const CONFIGS: [(f64, f64); 6] = [(0.0, 0.0), (0.0, 0.5), (0.0, 1.0), (0.3, 0.0), (0.3, 0.5), (0.3, 1.0)];
pub const KS: [usize; 5] = [1, 2, 4, 6, 12];

fn config(noise: f64, wd: f64) -> TrainConfig {
    TrainConfig {
        epochs: 200,
        batch_size: 64,
        lr: 1e-3,
        optim: OptimConfig { kind: OptimKind::AdamW, weight_decay: wd, ..OptimConfig::default() },
        input_noise: noise,
        drop_last: true,
        eval_every: 200,
        shards: 1,
        ..TrainConfig::default()
    }
}

/// A 1347 / 450 split of the 1797 digits, fixed by seed 0.
pub fn split(opts: &ExperimentOptions) -> Result<Split> {
    let all = data::load_all_digits(opts.data_dir.as_deref())?;
    let (train, test) = all.split(1347.0 / 1797.0, 0);
    Ok(Split { train, test })
}

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let split = split(opts)?;
    let spec = DataSpec::Digits { seed: 0 };
    let Targets::Classes { labels, .. } = &split.test.targets else { unreachable!("digits are classes") };
    let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let x = Mat::from_fn(split.test.len(), 64, |r, j| split.test.input(r)[j] as f64);
    let mut rows = Vec::new();
    // Per config: mean bilinear acc, relu acc, eff rank, truncation accuracies.
    let mut summary = Vec::new();
    for &(noise, wd) in &CONFIGS {
        let (mut bil, mut relu, mut rank, mut trunc) = (vec![], vec![], vec![], vec![vec![]; KS.len()]);
        for &seed in &opts.seeds {
            let cfg = config(noise, wd);
            let tag = format!("s{noise}-wd{wd}-seed{seed}");
            let b = fit(bilinear_arch(64, 64, 10), &split, &spec, &cfg, seed, &opts.out, &format!("bilinear-{tag}"), opts.progress)?;
            let r = fit(relu_arch(64, 64, 10), &split, &spec, &cfg, seed, &opts.out, &format!("relu-{tag}"), opts.progress)?;
            bil.push(evaluate(&b, &split.test, 4096).accuracy);
            relu.push(evaluate(&r, &split.test, 4096).accuracy);
            let dec = decompose(&analysis_view(&b)?)?;
            rank.push(mean(&dec.effective_ranks()));
            for (i, &k) in KS.iter().enumerate() {
                trunc[i].push(dec.truncation_curve(&x, &labels, &[k])[0].1);
            }
        }
        let t: Vec<f64> = trunc.iter().map(|v| mean(v)).collect();
        rows.push(serde_json::json!({
            "noise": noise, "weight_decay": wd, "bilinear": mean(&bil), "relu": mean(&relu),
            "effective_rank": mean(&rank), "truncation_k": KS, "truncation_accuracy": t,
        }));
        summary.push((noise, wd, mean(&bil), mean(&relu), mean(&rank), t));
    }
    let mut checks = Vec::new();
    for (noise, wd, bil, relu, _, t) in &summary {
        checks.push(Check::new(
            &format!("B1 s{noise} wd{wd}"),
            *bil >= 0.94 && (bil - relu).abs() <= 0.02,
            format!("bilinear {bil:.4} >= 0.94 and |bilinear - ReLU {relu:.4}| = {:.4} <= 0.02", (bil - relu).abs()),
        ));
        let k6 = t[KS.iter().position(|&k| k == 6).expect("k 6 is measured")];
        checks.push(Check::new(&format!("B2 s{noise} wd{wd}"), k6 >= bil - 0.01, format!("acc(k=6) {k6:.4} >= full {bil:.4} - 0.01")));
    }
    for noise in [0.0, 0.3] {
        let rank = |wd: f64| summary.iter().find(|s| s.0 == noise && s.1 == wd).map_or(f64::NAN, |s| s.4);
        let (r0, r1) = (rank(0.0), rank(1.0));
        checks.push(Check::new(&format!("B3 s{noise}"), r1 < r0, format!("effective rank wd 1.0 {r1:.2} < wd 0 {r0:.2}")));
    }
    Ok(Outcome { name: "bilinear experiment B (digits)".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
