//! Not from the LIB paper: a 784-128-128-10 ReLU MLP on full MNIST. Bases from 10,000 training
//! images, node ablation of LIB vs PCA on the full test set. No threshold; the run folder holds
//! the curves and the report shows them.

use super::{lib_and_pca, show, Check, ExperimentOptions, Outcome};
use crate::analysis::AnalysisOptions;
use crate::{Result, Variant};
use glassbox_core::dataspec::DataSpec;
use glassbox_core::experiment::fit;
use glassbox_core::model::{Activation, Architecture};
use glassbox_core::train::{evaluate, TrainConfig};
use std::time::Instant;

pub fn architecture() -> Architecture {
    Architecture::Mlp { dims: vec![784, 128, 128, 10], activation: Activation::Relu, bias: true, embed: None }
}

pub fn run(opts: &ExperimentOptions, epochs: usize) -> Result<Outcome> {
    let start = Instant::now();
    let split = DataSpec::Mnist.load(opts.data_dir.as_deref())?;
    let (mut rows, mut checks) = (Vec::new(), Vec::new());
    for &seed in &opts.seeds {
        let name = format!("mnist-mlp-seed{seed}");
        let cfg = TrainConfig { epochs, batch_size: 128, eval_every: epochs, ..TrainConfig::default() };
        let model = fit(architecture(), &split, &DataSpec::Mnist, &cfg, seed, &opts.out, &name, opts.progress)?;
        let acc = evaluate(&model, &split.test, 4096).accuracy;
        let idx: Vec<usize> = (0..10_000.min(split.train.len())).collect();
        let basis_set = split.train.subset(&idx);
        let t = Instant::now();
        let options = AnalysisOptions { edge_ablation: false, ..AnalysisOptions::default() };
        let (_, analysis) = lib_and_pca(&model, &basis_set, &split.test, &options, &opts.out.join(format!("{name}-lib")), &format!("LIB vs PCA, {name}"))?;
        let seconds = t.elapsed().as_secs_f64();
        let (lib, pca) = (analysis.variant(Variant::Lib).unwrap(), analysis.variant(Variant::Pca).unwrap());
        let needed = |r: &crate::analysis::VariantResult| r.nodes.iter().map(|n| n.needed).collect::<Vec<_>>();
        rows.push(serde_json::json!({
            "seed": seed, "test_accuracy": acc, "lib_widths": lib.widths, "pca_widths": pca.widths,
            "features_needed": { "lib": needed(lib), "pca": needed(pca) },
            "seconds": { "analysis": seconds, "lib_build": lib.build_seconds, "lib_edges": lib.edge_seconds },
        }));
        checks.push(Check::new(
            &format!("runs seed{seed}"),
            acc >= 0.97,
            format!("test accuracy {acc:.4} >= 0.97; features needed (input/h1/h2) LIB {} vs PCA {}; analysis {seconds:.1} s", show(&needed(lib)), show(&needed(pca))),
        ));
    }
    Ok(Outcome { name: "LIB on a 784-128-128-10 MNIST MLP".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
