//! Small-scale reproductions of ProbeGen (Kahana et al. 2025) and ProbeX (Horwitz et al. 2025),
//! each with its thresholds as named checks: `glassbox repro probegen-digits-inr --check` runs
//! R1 (digits INRs), `probegen-digits-mlp` R2 (the digits-MLP accuracy zoo),
//! `probegen-mnist-inr` the 12k MNIST-INR zoo, `probegen-mnist-cnn` the MNIST CNN accuracy zoo
//! (10,000 CNNs); `probex-tree-world` the synthetic tree world (A1-A7), `probex-zeroshot` its
//! zero-shot variant (A8), `probex-mnist-trees` the real-data tree zoo.

pub mod accuracy;
pub mod digits_inr;
pub mod digits_mlp;
pub mod mnist_cnn;
pub mod mnist_inr;
pub mod mnist_trees;
pub mod tree_world;
pub mod tree_world_zeroshot;

pub use glassbox_core::experiment::{Check, ExperimentOptions, Outcome};

use crate::fit::FitConfig;
use crate::layers::{LayerSet, MultiHot};
use crate::probex::Ranks;
use crate::tree_study::{run_study, StudyConfig, StudyEvent, StudyResult, TreeResult};
use glassbox_zoo::store::Splits;

/// The tree reproductions' study, once per seed: ProbeX at `ranks` and the dense, StatNN,
/// linear and mixed baselines with the tree world's settings for `epochs` epochs. Each seed's
/// summary goes to `rows`, its full result (with the dendrogram) to study-seed{S}.json in the
/// run folder.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tree_studies(opts: &ExperimentOptions, data: &LayerSet, targets: &MultiHot, trees: &[usize], splits: &Splits, statnn: &LayerSet, ranks: Ranks, epochs: usize, rows: &mut Vec<serde_json::Value>) -> crate::Result<Vec<StudyResult>> {
    let mut studies = Vec::new();
    for &seed in &opts.seeds {
        let config = StudyConfig {
            ranks,
            probex: FitConfig { epochs, ..FitConfig::probex(seed) },
            dense: Some(FitConfig { epochs, ..FitConfig::dense(seed) }),
            statnn: Some(FitConfig { epochs, ..FitConfig::statnn(seed) }),
            linear: true,
            mixed: true,
        };
        let study = run_study(data, targets, trees, splits, Some(statnn), &config, |event| {
            if let (true, StudyEvent::Line(line)) = (opts.progress, event) {
                eprintln!("seed {seed}: {line}");
            }
        })?;
        rows.push(serde_json::json!({ "seed": seed, "study": study.summary() }));
        glassbox_core::io::write_json(&opts.out.join(format!("study-seed{seed}.json")), &study)?;
        studies.push(study);
    }
    if studies.is_empty() {
        return Err(crate::Error::invalid("a tree study needs at least one seed"));
    }
    Ok(studies)
}

/// Per tree, the mean over the seeds' studies of `f` of that tree's result.
pub(crate) fn per_tree_mean(studies: &[StudyResult], f: impl Fn(&TreeResult) -> f64) -> Vec<f64> {
    let n_trees = studies.first().map_or(0, |s| s.per_tree.len());
    (0..n_trees).map(|t| studies.iter().map(|s| f(&s.per_tree[t])).sum::<f64>() / studies.len() as f64).collect()
}

/// Per-tree values as "0.770 / 0.769 / …".
pub(crate) fn slashed(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(" / ")
}
