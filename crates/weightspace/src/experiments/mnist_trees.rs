//! The real-data MNIST tree zoo: four roots pre-trained on different tasks (Fashion-MNIST,
//! rotated MNIST, an MNIST autoencoder, Fashion-MNIST from another seed), each fine-tuned on
//! random 5-of-10 MNIST digit subsets. The zoo is exported as standalone checkpoints with
//! Model-J metadata labels and read back from that folder (the import path), then studied as
//! the ProbeX tree-world reproduction studies the synthetic world: per-tree ProbeX on
//! `layers.1.weight`, dense, StatNN, linear and mixed ProbeX, cross-tree, Ward routing. Checks:
//! routing ≥ 0.99, ProbeX per-tree mean ≥ 0.65, cross-tree near chance (off-diagonal mean
//! within 0.05 of 0.5), mixing worse than experts on most trees, StatNN below ProbeX. Needs the
//! data folder.

use super::{per_tree_mean, slashed, Check, ExperimentOptions, Outcome};
use glassbox_core::experiment::mean;
use crate::collection::Collection;
use crate::probex::Ranks;
use crate::{Error, Result};
use glassbox_core::data::load_named;
use glassbox_zoo::build::{build, ShardJob};
use glassbox_zoo::mnist_trees::{MnistTrees, MnistTreesConfig};
use glassbox_zoo::store;
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub per_tree: usize,
    pub hidden: usize,
    pub root_steps: usize,
    pub epochs: usize,
}

impl Scale {
    /// 4 roots × 240 fine-tunes of a 128-wide trunk, ProbeX 300 epochs.
    pub const FULL: Scale = Scale { per_tree: 240, hidden: 128, root_steps: 1_500, epochs: 300 };
}

pub fn run(opts: &ExperimentOptions, scale: Scale) -> Result<Outcome> {
    let start = Instant::now();
    let mnist = load_named("mnist", opts.data_dir.as_deref(), 0)?;
    let fashion = load_named("fashion-mnist", opts.data_dir.as_deref(), 0)?;
    let t = Instant::now();
    let recipe = MnistTrees::new(MnistTreesConfig { per_tree: scale.per_tree, hidden: scale.hidden, root_steps: scale.root_steps, seed: 0 }, &mnist, &fashion)?;
    let zoo_dir = opts.out.join("mnist-trees-zoo");
    let report = build(&zoo_dir, &recipe, ShardJob::ALL, |_, _| {})?;
    let build_seconds = t.elapsed().as_secs_f64();
    // Standalone checkpoints with Model-J metadata, read back through the import path.
    let zoo = store::load(&zoo_dir)?;
    let ckpt_dir = opts.out.join("mnist-trees-checkpoints");
    glassbox_zoo::export::export(&zoo, &ckpt_dir)?;
    let acc = zoo.measured("test_accuracy")?.to_vec();
    let models = Collection::open(&ckpt_dir, "layers.1.weight", true, 0)?;
    let targets = models.targets("dataset_chosen_targets", None)?;
    let trees = models.known_trees().ok_or_else(|| Error::invalid("the exported checkpoints lost their 'tree' labels"))?;
    let statnn = models.statnn()?;
    let mut rows = vec![serde_json::json!({ "zoo": { "models": zoo.params.len(), "built_seconds": build_seconds, "root_scores (accuracy, or MSE for the autoencoder)": recipe.root_scores,
        "fine_tune_accuracy_mean": acc.iter().map(|&a| a as f64).sum::<f64>() / acc.len() as f64, "fine_tune_accuracy_min": acc.iter().copied().fold(f32::INFINITY, f32::min) } })];
    let studies = super::tree_studies(opts, &models.data, &targets, &trees, &models.splits, &statnn, Ranks { probes: 32, proj: 32, rep: 64 }, scale.epochs, &mut rows)?;
    let n = studies.len() as f64;
    let n_trees = studies[0].per_tree.len();
    let probex = per_tree_mean(&studies, |r| r.probex.test);
    let mixed = per_tree_mean(&studies, |r| r.mixed.unwrap_or(f64::NAN));
    let statnn_t = per_tree_mean(&studies, |r| r.statnn.as_ref().map_or(f64::NAN, |s| s.test));
    let dense = mean(&per_tree_mean(&studies, |r| r.dense.as_ref().map_or(f64::NAN, |s| s.test)));
    let linear = mean(&per_tree_mean(&studies, |r| r.linear.as_ref().map_or(f64::NAN, |s| s.test)));
    let (px, st, mx) = (mean(&probex), mean(&statnn_t), mean(&mixed));
    let cross = studies.iter().map(|s| s.cross_off_diagonal().0).sum::<f64>() / n;
    let cross_max = studies.iter().map(|s| s.cross_off_diagonal().1).fold(f64::NEG_INFINITY, f64::max);
    let route = studies.iter().map(|s| s.routing.accuracy).fold(f64::INFINITY, f64::min);
    let r0 = &studies[0].routing;
    let worse_mixed = probex.iter().zip(&mixed).filter(|(e, m)| m < e).count();
    let checks = vec![
        Check::new("zoo", acc.iter().all(|a| a.is_finite()), format!("{} fine-tunes built in {build_seconds:.1} s ({} shards written, {} reused), exported and re-imported from {}; fine-tune accuracy mean {:.3}, min {:.3}; roots {:?}", zoo.params.len(), report.shards_written, report.shards_skipped, ckpt_dir.display(), acc.iter().map(|&a| a as f64).sum::<f64>() / acc.len() as f64, acc.iter().copied().fold(f32::INFINITY, f32::min), recipe.root_scores)),
        Check::new("routing", route >= 0.99, format!("nearest-centroid routing {route:.3} >= 0.99 (Ward purity {:.3}; distance within {:.2}, between {:.2})", r0.purity, r0.mean_within, r0.mean_between)),
        Check::new("in-tree", px >= 0.65, format!("ProbeX per tree {} (mean {px:.3}) >= 0.65 (chance 0.5); dense {dense:.3}, linear ProbeX {linear:.3}", slashed(&probex))),
        Check::new("cross-tree", (cross - 0.5).abs() <= 0.05, format!("experts on other trees: mean {cross:.3} within 0.05 of chance 0.5 (largest {cross_max:.3})")),
        Check::new("mixing", worse_mixed * 2 > n_trees, format!("one ProbeX over all trees {} (mean {mx:.3}) is worse than the tree's expert on {worse_mixed} of {n_trees} trees", slashed(&mixed))),
        Check::new("statnn", st < px, format!("StatNN {} (mean {st:.3}) < ProbeX {px:.3}", slashed(&statnn_t))),
    ];
    let bars = vec![("ProbeX experts".to_string(), px), ("linear ProbeX".into(), linear), ("dense".into(), dense), ("StatNN".into(), st), ("mixed ProbeX".into(), mx), ("cross-tree".into(), cross)];
    rows.push(serde_json::json!({ "methods": { "metric": "test accuracy (mean over trees)", "bars": bars } }));
    Ok(Outcome { name: format!("ProbeX MNIST model trees (4 roots × {} fine-tunes)", scale.per_tree), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
