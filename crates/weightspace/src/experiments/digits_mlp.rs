//! ProbeGen's reproduction R2 (digits-MLP accuracy zoo, mirroring CIFAR10-GS): how good is a
//! model? A zoo of 1,200 MLPs 64-16-16-10 trained on the digits with sampled hyper-parameters,
//! label = test accuracy; readers with P = 32 image probes (uniform, vanilla, ProbeGen, its
//! non-linear control, real digits) and StatNN, scored by Kendall's τ-b on the test models;
//! thresholds B1-B3 on the mean over seeds (each seed: its own 60/10/30 model split and reader
//! init; the zoo is built once and reused from the run folder).

use super::accuracy::{accuracy_spread, read_accuracy_zoo};
use super::{Check, ExperimentOptions, Outcome};
use crate::probes::{ProbeKind, ProbeSpace};
use crate::Result;
use glassbox_zoo::build::{build, ShardJob};
use glassbox_zoo::accuracy_zoo::digits_mlp_acc;
use glassbox_zoo::store;
use std::time::Instant;

/// The probe readers, in the order of the thresholds; all P = 32, 60 epochs.
pub const READERS: [ProbeKind; 5] = [
    ProbeKind::Uniform,
    ProbeKind::Vanilla,
    ProbeKind::Nonlinear,
    ProbeKind::ProbeGen,
    ProbeKind::Real,
];
pub const PROBES: usize = 32;
pub const EPOCHS: usize = 60;

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let digits = glassbox_core::data::load_all_digits(opts.data_dir.as_deref())?;
    let recipe = digits_mlp_acc(&digits, 1_200, 0)?;
    let zoo_dir = opts.out.join("digits-mlp-zoo");
    let t = Instant::now();
    let report = build(&zoo_dir, &recipe, ShardJob::ALL, |_, _| {})?;
    let build_seconds = t.elapsed().as_secs_f64();
    let zoo = store::load(&zoo_dir)?;
    let mut rows = Vec::new();
    // Real-image probes: the first training digits the zoo's models were trained on, in [−1, 1].
    let means = read_accuracy_zoo(opts, &zoo, &ProbeSpace::image(64), &recipe.train.0, &READERS, PROBES, EPOCHS, &mut rows)?;
    let m = &means.readers;
    let (uniform, vanilla, nonlinear, probegen, real) = (m[0], m[1], m[2], m[3], m[4]);
    let s = means.statnn;
    let (spread, range) = accuracy_spread(&zoo)?;
    let mut checks = vec![Check::new("zoo", range > 0.5, format!("{} MLPs, {spread} (reference implementation: 0.06 / 0.61 / 0.96); built in {build_seconds:.1} s ({} shards written, {} reused)", zoo.params.len(), report.shards_written, report.shards_skipped))];
    let probing_min = m[..4].iter().copied().fold(f64::INFINITY, f64::min);
    checks.push(Check::new("B1", probegen >= vanilla + 0.015 && probegen >= nonlinear && probing_min > s, format!("ProbeGen τ {probegen:.3} >= vanilla {vanilla:.3} + 0.015 and >= non-linear generator {nonlinear:.3}; every probing τ (lowest {probing_min:.3}) > StatNN {s:.3}")));
    checks.push(Check::new(
        "B2",
        (vanilla - uniform).abs() <= 0.03,
        format!("|vanilla {vanilla:.3} − uniform {uniform:.3}| <= 0.03"),
    ));
    checks.push(Check::new(
        "B3",
        real >= probegen,
        format!("real-image probes {real:.3} >= ProbeGen {probegen:.3}"),
    ));
    rows.push(serde_json::json!({ "mean_test_tau": READERS.iter().zip(m).map(|(k, v)| serde_json::json!({ "reader": k.name(), "tau": v })).collect::<Vec<_>>(), "statnn_tau": s }));
    Ok(Outcome {
        name: "ProbeGen R2: digits-MLP accuracy zoo".into(),
        rows,
        checks,
        wall_time_s: start.elapsed().as_secs_f64(),
    })
}
