//! ProbeGen's MNIST-INR benchmark at scale (Kahana et al. 2025, on a 12k subset): one SIREN per
//! image for the first 1,000 training and 200 test images of each digit (train 9,166 / val 834
//! from the training images, test 2,000 from the test images), each fitted for 300 full-batch
//! Adam steps; then ProbeGen and vanilla probing with P = 128 (30 epochs) and StatNN, per seed.
//! Checks: build under 30 minutes, every fit MSE < 1e-3, ProbeGen >= 90 % and above vanilla,
//! StatNN at least 20 points below both. The zoo is reused from the run folder when present,
//! but then the build time is not measured and the build check fails: time it in a fresh
//! folder.

use super::{Check, ExperimentOptions, Outcome};
use crate::probes::{ProbeKind, ProbeSpace};
use crate::reader::{train_reader, ReaderConfig, Task};
use crate::statnn::train_statnn;
use crate::targets::InrTargets;
use crate::{Error, Result};
use glassbox_zoo::build::{build, ShardJob};
use glassbox_zoo::inr::FitOptions;
use glassbox_zoo::inr_zoo::image_inr;
use glassbox_zoo::store::{self, FitSummary};
use std::time::Instant;

pub const FIT_STEPS: usize = 300;

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let mnist = glassbox_core::data::load_named("mnist", opts.data_dir.as_deref(), 0)?;
    let recipe = image_inr("mnist-inr", &mnist, Some((1_000, 200)), FitOptions { steps: FIT_STEPS, lr: 1e-3 }, 0)?;
    let zoo_dir = opts.out.join("mnist-inr-zoo");
    let n_shards = glassbox_zoo::build::Recipe::spec(&recipe).n_shards();
    let t = Instant::now();
    let report = build(&zoo_dir, &recipe, ShardJob::ALL, |done, total| {
        if opts.progress {
            eprintln!("zoo: shard {done}/{total} ({:.0} s)", t.elapsed().as_secs_f64());
        }
    })?;
    let zoo = store::load(&zoo_dir)?;
    let fit = FitSummary::of(zoo.measured("fit_mse")?);
    let task = Task::Classes { labels: zoo.targets()?.iter().map(|&c| c as usize).collect(), n_classes: 10 };
    let targets = InrTargets { params: &zoo.params };
    let tensors = zoo.spec.tensor_sizes();
    let (mut probegen, mut vanilla, mut statnn, mut rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &seed in &opts.seeds {
        for (kind, into) in [(ProbeKind::ProbeGen, &mut probegen), (ProbeKind::Vanilla, &mut vanilla)] {
            let (res, _) = train_reader(&targets, &task, &zoo.spec.splits, &ProbeSpace::inr(), &[], &ReaderConfig::new(kind, 128, 30, seed))?;
            if opts.progress {
                eprintln!("seed {seed}: {} P=128: test {:.4} (best val epoch {}), {:.1} s", res.method, res.test_at_best_val, res.best_epoch, res.seconds);
            }
            into.push(100.0 * res.test_at_best_val);
            rows.push(serde_json::json!({ "seed": seed, "reader": res }));
        }
        let s = train_statnn(&zoo.params, &tensors, &task, &zoo.spec.splits, 40, seed);
        if opts.progress {
            eprintln!("seed {seed}: statnn: test {:.4} (best val epoch {})", s.test_at_best_val, s.best_epoch);
        }
        statnn.push(100.0 * s.test_at_best_val);
        rows.push(serde_json::json!({ "seed": seed, "statnn_test_at_best_val": s.test_at_best_val }));
    }
    if statnn.is_empty() {
        return Err(Error::invalid("the MNIST-INR experiment needs at least one seed"));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (pg, va, st) = (mean(&probegen), mean(&vanilla), mean(&statnn));
    let built_here = report.shards_skipped == 0;
    let build_detail = format!(
        "{} INRs ({} train, {} val, {} test), {FIT_STEPS} Adam steps each: {} shards built in {:.0} s ({:.1} INRs/s){}",
        zoo.params.len(),
        zoo.spec.splits.train.len(),
        zoo.spec.splits.val.len(),
        zoo.spec.splits.test.len(),
        report.shards_written,
        report.seconds,
        report.models_fitted as f64 / report.seconds.max(1e-9),
        if built_here { String::new() } else { format!("; {} of {n_shards} shards were already there, so this run does not time the whole build", report.shards_skipped) }
    );
    let checks = vec![
        Check::new("build", built_here && report.seconds < 1800.0, format!("{build_detail} (< 30 minutes)")),
        Check::new("fit", fit.all_finite && fit.worst < 1e-3, format!("every fit MSE < 1e-3: worst {:.2e}, mean {:.2e}, 90th percentile {:.2e}", fit.worst, fit.mean, fit.p90)),
        Check::new("probegen", pg >= 90.0 && pg > va, format!("ProbeGen (P = 128, 30 epochs) {pg:.2}% >= 90 and above vanilla {va:.2}%")),
        Check::new("statnn", st <= pg.min(va) - 20.0, format!("StatNN {st:.2}% at least 20 points below ProbeGen and vanilla")),
    ];
    rows.push(serde_json::json!({ "methods": { "metric": "test accuracy (%)", "bars": [["probegen", pg], ["vanilla", va], ["statnn", st]] } }));
    rows.push(serde_json::json!({ "mean_test_accuracy_percent": { "probegen": pg, "vanilla": va, "statnn": st }, "per_seed": { "probegen": probegen, "vanilla": vanilla, "statnn": statnn } }));
    Ok(Outcome { name: "ProbeGen at scale: MNIST-INR, 12,000 INRs".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
