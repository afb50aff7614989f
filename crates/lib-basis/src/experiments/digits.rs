//! Model B: a 64-64-64-10 ReLU MLP on the scikit-learn 8x8 digits (1200 train /
//! 597 test, seeded); LIB vs PCA node and edge ablation. Thresholds 7-9.

use super::{lib_and_pca, ratio_check, Check, ExperimentOptions, Outcome};
use crate::analysis::AnalysisOptions;
use crate::{Result, Variant};
use glassbox_core::data::{self, Split};
use glassbox_core::dataspec::DataSpec;
use glassbox_core::experiment::{fit, median};
use glassbox_core::model::{Activation, Architecture};
use glassbox_core::train::optim::{OptimConfig, OptimKind};
use glassbox_core::train::{evaluate, TrainConfig};
use std::collections::BTreeMap;
use std::time::Instant;

const LAYERS: [&str; 3] = ["input", "layers.0.post", "layers.1.post"];

pub fn split(opts: &ExperimentOptions, seed: u64) -> Result<Split> {
    let all = data::load_all_digits(opts.data_dir.as_deref())?;
    let (train, test) = all.split(1200.0 / 1797.0, seed);
    Ok(Split { train, test })
}

/// PyTorch-style uniform init, Adam lr 1e-3, batch 32, 60 epochs.
pub fn config() -> TrainConfig {
    TrainConfig {
        epochs: 60,
        batch_size: 32,
        lr: 1e-3,
        optim: OptimConfig { kind: OptimKind::Adam, ..OptimConfig::default() },
        eval_every: 20,
        shards: 1,
        ..TrainConfig::default()
    }
}

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let (mut rows, mut checks) = (Vec::new(), Vec::new());
    let mut need: BTreeMap<(&str, Variant), Vec<Option<usize>>> = BTreeMap::new();
    let mut edges: BTreeMap<(&str, Variant), Vec<Option<usize>>> = BTreeMap::new();
    let mut h2_width = Vec::new();
    for &seed in &opts.seeds {
        let split = split(opts, seed)?;
        let name = format!("digits-mlp-seed{seed}");
        let arch = Architecture::Mlp { dims: vec![64, 64, 64, 10], activation: Activation::Relu, bias: true, embed: None };
        let model = fit(arch, &split, &DataSpec::Digits { seed }, &config(), seed, &opts.out, &name, opts.progress)?;
        let acc = evaluate(&model, &split.test, 4096).accuracy;
        let (_, analysis) = lib_and_pca(&model, &split.train, &split.test, &AnalysisOptions::default(), &opts.out.join(format!("{name}-lib")), &format!("LIB vs PCA, {name}"))?;
        let (lib, pca) = (analysis.variant(Variant::Lib).unwrap(), analysis.variant(Variant::Pca).unwrap());
        h2_width.push(lib.widths[2]);
        for layer in LAYERS {
            for r in [lib, pca] {
                need.entry((layer, r.variant)).or_default().push(r.needed(layer));
                edges.entry((layer, r.variant)).or_default().push(r.edges_needed(layer));
            }
        }
        rows.push(serde_json::json!({
            "seed": seed, "test_accuracy": acc, "lib_widths": lib.widths, "pca_widths": pca.widths,
            "features_needed": { "lib": lib.nodes.iter().map(|n| (n.layer.clone(), n.needed)).collect::<Vec<_>>(), "pca": pca.nodes.iter().map(|n| (n.layer.clone(), n.needed)).collect::<Vec<_>>() },
            "edges_needed": { "lib": lib.edge_ablations.iter().map(|e| (e.from.clone(), e.needed, e.total)).collect::<Vec<_>>(), "pca": pca.edge_ablations.iter().map(|e| (e.from.clone(), e.needed, e.total)).collect::<Vec<_>>() },
        }));
    }
    let n = |layer, v| &need[&(layer, v)];
    let e = |layer, v| &edges[&(layer, v)];
    checks.push(ratio_check("7 nodes input", "features needed at the input", n(LAYERS[0], Variant::Lib), n(LAYERS[0], Variant::Pca), 0.6, 0.0));
    checks.push(ratio_check("7 nodes h1", "features needed at h1", n(LAYERS[1], Variant::Lib), n(LAYERS[1], Variant::Pca), 1.0, 0.0));
    checks.push(ratio_check("7 nodes h2", "features needed at h2", n(LAYERS[2], Variant::Lib), n(LAYERS[2], Variant::Pca), 1.0, 0.0));
    let w = median(h2_width.iter().map(|&w| w as f64).collect());
    checks.push(Check::new("8 width h2", w == 11.0, format!("LIB width of h2 {h2_width:?} (median {w}) = 11 (10 classes + constant)")));
    checks.push(ratio_check("9 edges input→h1", "edges needed input→h1", e(LAYERS[0], Variant::Lib), e(LAYERS[0], Variant::Pca), 0.3, 0.0));
    checks.push(ratio_check("9 edges h1→h2", "edges needed h1→h2", e(LAYERS[1], Variant::Lib), e(LAYERS[1], Variant::Pca), 0.5, 0.0));
    Ok(Outcome { name: "LIB model B (scikit-learn digits MLP)".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
