//! What the accuracy-zoo reproductions share (ProbeGen's digits-MLP zoo R2 and its CNN
//! version): every probe reader and StatNN on a zoo labelled with test accuracy, for each
//! seed's own 60/10/30 model split and reader init, scored by Kendall's τ-b on the test models.

use super::ExperimentOptions;
use crate::probes::{ProbeKind, ProbeSpace};
use crate::reader::{train_reader, ReaderConfig, Task};
use crate::statnn::train_statnn;
use crate::targets::{Targets, ZooTargets};
use crate::{Error, Result};
use glassbox_zoo::build::random_split;
use glassbox_zoo::store::Zoo;

/// Each method's test τ at its best validation epoch, averaged over the seeds.
pub struct Means {
    /// In the order of the readers asked for.
    pub readers: Vec<f64>,
    pub statnn: f64,
}

/// Trains `readers` (P = `probes`, fixed probes from `real` where they need them) and StatNN for
/// `epochs` per seed; per-seed results and the "methods" bar chart row go to `rows`.
#[allow(clippy::too_many_arguments)]
pub fn read_accuracy_zoo(opts: &ExperimentOptions, zoo: &Zoo, space: &ProbeSpace, real: &[f32], readers: &[ProbeKind], probes: usize, epochs: usize, rows: &mut Vec<serde_json::Value>) -> Result<Means> {
    let targets = ZooTargets::of(zoo)?;
    let task = Task::Regression { values: zoo.measured("test_accuracy")?.to_vec() };
    let tensors = zoo.spec.tensor_sizes();
    let (mut results, mut statnn) = (vec![Vec::new(); readers.len()], Vec::new());
    for &seed in &opts.seeds {
        let splits = random_split(targets.len(), 0.1, 0.3, seed);
        for (r, &kind) in readers.iter().enumerate() {
            let (res, _) = train_reader(&targets, &task, &splits, space, real, &ReaderConfig::new(kind, probes, epochs, seed))?;
            if opts.progress {
                eprintln!("seed {seed}: {} P={probes}: test τ {:.3} (best val epoch {}), {:.1} s", res.method, res.test_at_best_val, res.best_epoch, res.seconds);
            }
            results[r].push(res.test_at_best_val);
            rows.push(serde_json::json!({ "seed": seed, "reader": res }));
        }
        let s = train_statnn(&zoo.params, &tensors, &task, &splits, epochs, seed);
        if opts.progress {
            eprintln!("seed {seed}: statnn: test τ {:.3} (best val epoch {})", s.test_at_best_val, s.best_epoch);
        }
        statnn.push(s.test_at_best_val);
        rows.push(serde_json::json!({ "seed": seed, "statnn_test_tau_at_best_val": s.test_at_best_val }));
    }
    if statnn.is_empty() {
        return Err(Error::invalid("an accuracy-zoo reproduction needs at least one seed"));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let means = Means { readers: results.iter().map(|v| mean(v)).collect(), statnn: mean(&statnn) };
    let bars: Vec<(String, f64)> = readers.iter().map(|k| k.name().to_string()).zip(means.readers.iter().copied()).chain([("statnn".to_string(), means.statnn)]).collect();
    rows.push(serde_json::json!({ "methods": { "metric": "test Kendall tau", "bars": bars } }));
    Ok(means)
}

/// "min …, median …, max …" of the zoo's test accuracies, and max − min.
pub fn accuracy_spread(zoo: &Zoo) -> Result<(String, f32)> {
    let mut sorted = zoo.measured("test_accuracy")?.to_vec();
    sorted.sort_by(f32::total_cmp);
    let (lo, mid, hi) = (sorted[0], sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    Ok((format!("test accuracy min {lo:.2}, median {mid:.2}, max {hi:.2}"), hi - lo))
}
