//! ProbeGen's reproduction R1 (digits INRs, mirroring MNIST-INR): which digit does an INR
//! encode? A zoo of one SIREN per scikit-learn digit (1,797), read by StatNN, fixed uniform
//! probes, vanilla probing, ProbeGen and the grid oracle; thresholds A1-A4 on the mean over
//! seeds (each seed: its own 70/10/20 split and reader init; the zoo is built once and reused
//! from the run folder).

use super::{Check, ExperimentOptions, Outcome};
use crate::probes::{ProbeKind, ProbeSpace};
use crate::reader::{train_reader, ReaderConfig, Task};
use crate::statnn::train_statnn;
use crate::targets::InrTargets;
use crate::{Error, Result};
use glassbox_zoo::build::{build, random_split, ShardJob};
use glassbox_zoo::inr_zoo::digits_inr;
use glassbox_zoo::{inr, store};
use std::time::Instant;

/// (probe kind, P, epochs) of every reader the thresholds need.
pub const READERS: [(ProbeKind, usize, usize); 8] = [
    (ProbeKind::Grid, 64, 30),
    (ProbeKind::Uniform, 64, 30),
    (ProbeKind::Vanilla, 64, 30),
    (ProbeKind::ProbeGen, 64, 30),
    (ProbeKind::Vanilla, 16, 30),
    (ProbeKind::ProbeGen, 16, 30),
    (ProbeKind::Vanilla, 128, 100),
    (ProbeKind::ProbeGen, 128, 100),
];

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let digits = glassbox_core::data::load_all_digits(opts.data_dir.as_deref())?;
    let zoo_dir = opts.out.join("digits-inr-zoo");
    let t = Instant::now();
    let report = build(&zoo_dir, &digits_inr(&digits, 0)?, ShardJob::ALL, |_, _| {})?;
    let build_seconds = t.elapsed().as_secs_f64();
    let zoo = store::load(&zoo_dir)?;
    let task = Task::Classes {
        labels: zoo.targets()?.iter().map(|&c| c as usize).collect(),
        n_classes: 10,
    };
    let targets = InrTargets {
        params: &zoo.params,
    };
    let fit = glassbox_zoo::store::FitSummary::of(zoo.measured("fit_mse")?);
    let grid: Vec<f32> = inr::grid(8).into_iter().flatten().collect();
    let tensors = zoo.spec.tensor_sizes();
    let mut rows = Vec::new();
    // results[reader][seed]: test accuracy at best validation.
    let mut results = vec![Vec::new(); READERS.len()];
    let mut statnn = Vec::new();
    for &seed in &opts.seeds {
        let splits = random_split(zoo.params.len(), 0.1, 0.2, seed);
        for (r, &(kind, p, epochs)) in READERS.iter().enumerate() {
            let (res, _) = train_reader(
                &targets,
                &task,
                &splits,
                &ProbeSpace::inr(),
                &grid,
                &ReaderConfig::new(kind, p, epochs, seed),
            )?;
            if opts.progress {
                eprintln!("seed {seed}: {} P={p} {epochs} epochs: test {:.3} (best val epoch {}), {:.1} s", res.method, res.test_at_best_val, res.best_epoch, res.seconds);
            }
            results[r].push(res.test_at_best_val);
            rows.push(serde_json::json!({ "seed": seed, "reader": res }));
        }
        let s = train_statnn(&zoo.params, &tensors, &task, &splits, 40, seed).test_at_best_val;
        statnn.push(s);
        rows.push(serde_json::json!({ "seed": seed, "statnn_test_at_best_val": s }));
    }
    if results[0].is_empty() {
        return Err(Error::invalid(
            "the digits-INR experiment needs at least one seed",
        ));
    }
    let mean = |v: &[f64]| 100.0 * v.iter().sum::<f64>() / v.len() as f64;
    let m: Vec<f64> = results.iter().map(|v| mean(v)).collect();
    let s = mean(&statnn);
    let fit_ok = fit.all_finite && fit.mean < 1e-5 && fit.p90 < 1e-5;
    let mut checks = vec![Check::new("zoo", fit_ok, format!("{} INRs, fit MSE mean {:.2e} and 90th percentile {:.2e} < 1e-5 (worst {:.2e}, all finite: {}); built in {build_seconds:.1} s ({} shards written, {} reused)", zoo.params.len(), fit.mean, fit.p90, fit.worst, fit.all_finite, report.shards_written, report.shards_skipped))];
    checks.push(Check::new(
        "A1",
        m[0] >= 93.0 && s <= 25.0,
        format!("grid oracle {:.1}% >= 93, StatNN {s:.1}% <= 25", m[0]),
    ));
    checks.push(Check::new(
        "A2",
        m[2] >= m[1] + 5.0 && m[3] >= m[2] + 3.0,
        format!(
            "P=64, 30 epochs: vanilla {:.1}% >= uniform {:.1}% + 5; ProbeGen {:.1}% >= vanilla + 3",
            m[2], m[1], m[3]
        ),
    ));
    checks.push(Check::new(
        "A3",
        m[5] >= m[4] + 6.0,
        format!("P=16: ProbeGen {:.1}% >= vanilla {:.1}% + 6", m[5], m[4]),
    ));
    checks.push(Check::new(
        "A4",
        m[7] >= m[6] - 1.0,
        format!(
            "P=128, 100 epochs: ProbeGen {:.1}% >= vanilla {:.1}% - 1",
            m[7], m[6]
        ),
    ));
    let bars: Vec<(String, f64)> = READERS.iter().zip(&m).map(|(r, v)| (format!("{} P{} {}ep", r.0.name(), r.1, r.2), *v)).chain([("statnn".to_string(), s)]).collect();
    rows.push(serde_json::json!({ "methods": { "metric": "test accuracy (%)", "bars": bars } }));
    rows.push(serde_json::json!({ "mean_test_accuracy_percent": READERS.iter().zip(&m).map(|(r, v)| serde_json::json!({ "reader": r.0.name(), "probes": r.1, "epochs": r.2, "accuracy": v })).collect::<Vec<_>>(), "statnn_percent": s }));
    Ok(Outcome {
        name: "ProbeGen R1: digits-INR zoo".into(),
        rows,
        checks,
        wall_time_s: start.elapsed().as_secs_f64(),
    })
}
