//! Issue 6's `mnist-cnn-acc`: how good is a CNN? A zoo of 2,000 small CNNs trained on MNIST with
//! sampled hyper-parameters (spec/probegen.md 6 R3 made for 28×28, mirroring CIFAR10-GS),
//! label = test accuracy; readers with P = 32 image probes (uniform, vanilla, ProbeGen's
//! transposed-convolution generator, real digits) and StatNN, scored by Kendall's τ-b on the
//! test models. Checks: ProbeGen τ above vanilla and above StatNN (mean over seeds).

use super::{Check, ExperimentOptions, Outcome};
use crate::probes::{ProbeKind, ProbeSpace};
use crate::reader::{train_reader, ReaderConfig, Task};
use crate::statnn::train_statnn;
use crate::targets::{Targets, ZooTargets};
use crate::{Error, Result};
use glassbox_zoo::accuracy_zoo::mnist_cnn_acc;
use glassbox_zoo::build::{build, random_split, ShardJob};
use glassbox_zoo::store;
use std::time::Instant;

pub const READERS: [ProbeKind; 4] = [ProbeKind::Uniform, ProbeKind::Vanilla, ProbeKind::ProbeGen, ProbeKind::Real];
pub const PROBES: usize = 32;

/// How many CNNs and how long the readers train.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub count: usize,
    pub epochs: usize,
}

impl Scale {
    /// The 2,000 CNNs; R2's 60 reader epochs (spec 6 R3 is "the same as R2").
    pub const FULL: Scale = Scale { count: 2_000, epochs: 60 };
}

/// Each reader's test τ (mean over seeds) and StatNN's, as the outcome's "methods" row holds them.
pub fn method_means(outcome: &Outcome) -> Vec<(String, f64)> {
    outcome
        .rows
        .iter()
        .filter_map(|r| r.pointer("/methods/bars"))
        .filter_map(|b| serde_json::from_value::<Vec<(String, f64)>>(b.clone()).ok())
        .flatten()
        .collect()
}

pub fn run(opts: &ExperimentOptions, scale: Scale) -> Result<Outcome> {
    let (count, epochs) = (scale.count, scale.epochs);
    let start = Instant::now();
    let mnist = glassbox_core::data::load_named("mnist", opts.data_dir.as_deref(), 0)?;
    let recipe = mnist_cnn_acc(&mnist, count, 0)?;
    let zoo_dir = opts.out.join("mnist-cnn-zoo");
    let report = build(&zoo_dir, &recipe, ShardJob::ALL, |done, total| {
        if opts.progress {
            eprintln!("zoo: shard {done}/{total}");
        }
    })?;
    let zoo = store::load(&zoo_dir)?;
    let accuracy = zoo.measured("test_accuracy")?.to_vec();
    let targets = ZooTargets::of(&zoo)?;
    let task = Task::Regression { values: accuracy.clone() };
    let real = &recipe.train.0;
    let tensors: Vec<usize> = zoo.spec.tensors.iter().map(|(_, s)| s.iter().product()).collect();
    let (mut rows, mut results, mut statnn) = (Vec::new(), vec![Vec::new(); READERS.len()], Vec::new());
    for &seed in &opts.seeds {
        let splits = random_split(targets.len(), 0.1, 0.3, seed);
        for (r, &kind) in READERS.iter().enumerate() {
            let (res, _) = train_reader(&targets, &task, &splits, &ProbeSpace::image28(), real, &ReaderConfig::new(kind, PROBES, epochs, seed))?;
            if opts.progress {
                eprintln!("seed {seed}: {} P={PROBES}: test τ {:.3} (best val epoch {}), {:.1} s", res.method, res.test_at_best_val, res.best_epoch, res.seconds);
            }
            results[r].push(res.test_at_best_val);
            rows.push(serde_json::json!({ "seed": seed, "reader": res }));
        }
        let s = train_statnn(&zoo.params, &tensors, &task, &splits, epochs, seed);
        if opts.progress {
            eprintln!("seed {seed}: statnn: test τ {:.3}", s.test_at_best_val);
        }
        statnn.push(s.test_at_best_val);
    }
    if statnn.is_empty() {
        return Err(Error::invalid("the MNIST-CNN experiment needs at least one seed"));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let m: Vec<f64> = results.iter().map(|v| mean(v)).collect();
    let (uniform, vanilla, probegen, real, s) = (m[0], m[1], m[2], m[3], mean(&statnn));
    let mut sorted = accuracy.clone();
    sorted.sort_by(f32::total_cmp);
    let checks = vec![
        Check::new("zoo", zoo.params.len() >= 2_000, format!("{} CNNs (>= 2,000), test accuracy min {:.2}, median {:.2}, max {:.2}; {} shards built in {:.0} s", zoo.params.len(), sorted[0], sorted[sorted.len() / 2], sorted[sorted.len() - 1], report.shards_written, report.seconds)),
        Check::new("probegen", probegen > vanilla && probegen > s, format!("ProbeGen τ {probegen:.3} > vanilla {vanilla:.3} and > StatNN {s:.3} (uniform {uniform:.3}, real digits {real:.3})")),
    ];
    let bars: Vec<(String, f64)> = READERS.iter().map(|k| k.name().to_string()).zip(m.iter().copied()).chain([("statnn".to_string(), s)]).collect();
    rows.push(serde_json::json!({ "methods": { "metric": "test Kendall tau", "bars": bars } }));
    Ok(Outcome { name: "ProbeGen: MNIST-CNN accuracy zoo".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
