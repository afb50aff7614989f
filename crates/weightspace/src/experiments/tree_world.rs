//! ProbeX's small-scale reproduction (Horwitz et al. 2025), the synthetic Model-Tree world (4
//! roots × 240 fine-tunes, probed layer `layers.1.weight`, 128 × 128), read by per-tree ProbeX
//! experts (r 32/32/64), the dense logistic regression, StatNN, linear ProbeX, a ProbeX over
//! all trees mixed, every expert across trees, and Ward routing; thresholds A1-A7 on the mean
//! over seeds (the zoo is built once, from seed 0, and reused from the run folder; each seed
//! re-initialises and re-shuffles the meta-models).

use super::{per_tree_mean, slashed, Check, ExperimentOptions, Outcome};
use glassbox_core::experiment::mean;
use crate::collection::Collection;
use crate::probex::Ranks;
use crate::tree_study::StudyResult;
use crate::{Error, Result};
use glassbox_zoo::build::{build, ShardJob};
use glassbox_zoo::tree_world::{TreeWorld, TreeWorldConfig};
use std::time::Instant;

/// The size of a run (the full one: about 80 s per seed; the default test suite runs it).
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub per_tree: usize,
    pub hidden: usize,
    pub root_steps: usize,
    pub epochs: usize,
    pub ranks: Ranks,
}

impl Scale {
    pub const FULL: Scale = Scale { per_tree: 240, hidden: 128, root_steps: 1_500, epochs: 300, ranks: Ranks { probes: 32, proj: 32, rep: 64 } };
}

pub fn run(opts: &ExperimentOptions, scale: Scale) -> Result<Outcome> {
    let start = Instant::now();
    let world = TreeWorld::new(TreeWorldConfig { per_tree: scale.per_tree, hidden: scale.hidden, root_steps: scale.root_steps, ..TreeWorldConfig::spec(0) });
    let zoo_dir = opts.out.join("tree-world-zoo");
    let t = Instant::now();
    let report = build(&zoo_dir, &world, ShardJob::ALL, |_, _| {})?;
    let build_seconds = t.elapsed().as_secs_f64();
    let models = Collection::open(&zoo_dir, "layers.1.weight", true, 0)?;
    let zoo = models.zoo().expect("a zoo folder");
    let (data, splits) = (&models.data, &models.splits);
    let targets = models.targets("dataset_chosen_targets", None)?;
    let trees = models.known_trees().ok_or_else(|| Error::invalid("the tree world's models lack 'tree' labels"))?;
    // StatNN reads the trunk's six tensors (W1-W3, b1-b3), not the fresh head.
    let statnn = models.statnn()?;
    let acc = zoo.measured("test_accuracy")?;
    let mut rows = vec![serde_json::json!({
        "zoo": { "models": zoo.params.len(), "built_seconds": build_seconds, "root_accuracy": zoo.spec.generation["root_accuracy"],
                 "fine_tune_accuracy_mean": acc.iter().map(|&a| a as f64).sum::<f64>() / acc.len() as f64,
                 "fine_tune_accuracy_min": acc.iter().copied().fold(f32::INFINITY, f32::min) }
    })];
    let studies = super::tree_studies(opts, data, &targets, &trees, splits, &statnn, scale.ranks, scale.epochs, &mut rows)?;
    let n_trees = studies[0].per_tree.len();
    let avg = |f: &dyn Fn(&StudyResult) -> f64| studies.iter().map(f).sum::<f64>() / studies.len() as f64;
    let probex_t = per_tree_mean(&studies, |r| r.probex.test);
    let probex_train = per_tree_mean(&studies, |r| r.probex.train);
    // "Every tree" holds in every seed, not only on average.
    let worst_tree = |f: &dyn Fn(&crate::tree_study::TreeResult) -> f64| studies.iter().flat_map(|s| s.per_tree.iter().map(f)).fold(f64::INFINITY, f64::min);
    let (worst_test, worst_train) = (worst_tree(&|r| r.probex.test), worst_tree(&|r| r.probex.train));
    let mixed_t = per_tree_mean(&studies, |r| r.mixed.unwrap_or(f64::NAN));
    let (px, dense, statnn_m, linear) = (mean(&probex_t), avg(&|s| s.mean(|r| r.dense.as_ref().map(|d| d.test))), avg(&|s| s.mean(|r| r.statnn.as_ref().map(|d| d.test))), avg(&|s| s.mean(|r| r.linear.as_ref().map(|d| d.test))));
    let mixed = mean(&mixed_t);
    let mixed_dense = avg(&|s| s.mean(|r| r.mixed_dense));
    let (cross_mean, cross_max) = (avg(&|s| s.cross_off_diagonal().0), studies.iter().map(|s| s.cross_off_diagonal().1).fold(f64::NEG_INFINITY, f64::max));
    let route = studies.iter().map(|s| s.routing.accuracy).fold(f64::INFINITY, f64::min);
    let r0 = &studies[0].routing;
    let ratio = r0.mean_within / r0.mean_between;
    let (p_probex, p_dense) = (studies[0].params["probex"].as_u64().unwrap_or(0) as f64, studies[0].params["dense"].as_u64().unwrap_or(1) as f64);
    let better_than_mixed = probex_t.iter().zip(&mixed_t).filter(|(e, m)| m < e).count();
    let mut checks = vec![Check::new("zoo", acc.iter().all(|a| a.is_finite()), format!("{} fine-tunes built in {build_seconds:.1} s ({} shards written, {} reused); fine-tune test accuracy mean {:.3}, min {:.3}; root pre-training accuracy {}", zoo.params.len(), report.shards_written, report.shards_skipped, acc.iter().map(|&a| a as f64).sum::<f64>() / acc.len() as f64, acc.iter().copied().fold(f32::INFINITY, f32::min), zoo.spec.generation["root_accuracy"]))];
    checks.push(Check::new("A1", px >= 0.68 && worst_test >= 0.65 && dense >= 0.72, format!("ProbeX per tree {} (mean {px:.3}) >= 0.68, each tree in each seed >= 0.65 (lowest {worst_test:.3}); dense {dense:.3} >= 0.72", slashed(&probex_t))));
    checks.push(Check::new("A2", statnn_m <= 0.60 && statnn_m <= px - 0.10, format!("StatNN {statnn_m:.3} <= 0.60 and <= ProbeX {px:.3} − 0.10")));
    checks.push(Check::new("A3", (0.46..=0.54).contains(&cross_mean) && cross_max <= 0.56, format!("cross-tree mean {cross_mean:.3} in [0.46, 0.54], largest {cross_max:.3} <= 0.56")));
    checks.push(Check::new("A4", mixed <= px - 0.02 && better_than_mixed >= 3.min(n_trees), format!("mixed ProbeX per tree {} (mean {mixed:.3}) <= experts {px:.3} − 0.02; experts better on {better_than_mixed} of {n_trees} trees (mixed dense {mixed_dense:.3} vs dense experts {dense:.3})", slashed(&mixed_t))));
    checks.push(Check::new("A5", route >= 0.99 && ratio <= 0.5, format!("nearest-centroid routing {route:.3} >= 0.99 (Ward purity {:.3}); within / between distance {:.2} / {:.2} = {ratio:.2} <= 0.5", r0.purity, r0.mean_within, r0.mean_between)));
    checks.push(Check::new("A6", px >= dense - 0.10 && p_probex <= p_dense / 4.0, format!("ProbeX {px:.3} >= dense {dense:.3} − 0.10, with {p_probex} parameters <= 1/4 of dense's {p_dense} ({:.2}×); linear ProbeX {linear:.3}", p_probex / p_dense)));
    checks.push(Check::new("A7", worst_train >= 0.95 && worst_test >= 0.65, format!("ProbeX train accuracy per tree {} (lowest tree in any seed {worst_train:.3}) >= 0.95; test {} (lowest {worst_test:.3}) >= 0.65", slashed(&probex_train), slashed(&probex_t))));
    let bars = vec![("ProbeX experts".to_string(), px), ("linear ProbeX".into(), linear), ("dense".into(), dense), ("StatNN".into(), statnn_m), ("mixed ProbeX".into(), mixed), ("mixed dense".into(), mixed_dense), ("cross-tree".into(), cross_mean)];
    rows.push(serde_json::json!({ "methods": { "metric": "test accuracy (mean over trees)", "bars": bars } }));
    Ok(Outcome { name: format!("ProbeX tree world ({} trees × {} models, {}² layer)", n_trees, scale.per_tree, scale.hidden), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
