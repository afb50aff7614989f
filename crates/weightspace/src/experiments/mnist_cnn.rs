//! `mnist-cnn-acc`: how good is a CNN? A zoo of 10,000 small CNNs trained on MNIST with sampled
//! hyper-parameters (ProbeGen's small-CNN-zoo reproduction made for 28×28, mirroring
//! CIFAR10-GS), label = test accuracy; readers with P = 32 image probes (uniform, vanilla,
//! ProbeGen's transposed-convolution generator, real digits) and StatNN, scored by Kendall's
//! τ-b on the test models. Checks: ProbeGen τ above vanilla and above StatNN (mean over seeds).
//! The digits-MLP zoo's non-linear generator control is left out: ProbeGen's CNN generators are
//! linear and have no ReLU variant.

use super::accuracy::{accuracy_spread, read_accuracy_zoo};
use super::{Check, ExperimentOptions, Outcome};
use crate::probes::{ProbeKind, ProbeSpace};
use crate::Result;
use glassbox_zoo::accuracy_zoo::mnist_cnn_acc;
use glassbox_zoo::build::{build, ShardJob};
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
    /// 10,000 CNNs (rather than 2,000: ProbeGen's learned probes need the bigger zoo, 6,000
    /// training CNNs against CIFAR10-GS's 12,000, to overtake StatNN); the digits-MLP accuracy
    /// zoo's 60 reader epochs (the CNN zoo follows the same recipe).
    pub const FULL: Scale = Scale { count: 10_000, epochs: 60 };
}

/// Each reader's test τ (mean over seeds) and StatNN's, as the outcome's "methods" row holds them.
pub fn method_means(outcome: &Outcome) -> Vec<(String, f64)> {
    outcome
        .rows
        .iter()
        .filter_map(|r| r.pointer("/methods/bars"))
        .filter_map(|b| serde_json::from_value::<Vec<(String, Option<f64>)>>(b.clone()).ok())
        .flatten()
        // serde_json writes a NaN as null.
        .map(|(name, tau)| (name, tau.unwrap_or(f64::NAN)))
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
    let mut rows = Vec::new();
    let means = read_accuracy_zoo(opts, &zoo, &ProbeSpace::image28(), &recipe.train.0, &READERS, PROBES, epochs, &mut rows)?;
    let (m, s) = (&means.readers, means.statnn);
    let (uniform, vanilla, probegen, real) = (m[0], m[1], m[2], m[3]);
    let (spread, range) = accuracy_spread(&zoo)?;
    let checks = vec![
        Check::new(
            "zoo",
            zoo.params.len() == count && range > 0.5,
            format!("{} CNNs, {spread} (max − min > 0.5); {} shards built in {:.0} s", zoo.params.len(), report.shards_written, report.seconds),
        ),
        Check::new("probegen", probegen > vanilla && probegen > s, format!("ProbeGen τ {probegen:.3} > vanilla {vanilla:.3} and > StatNN {s:.3} (uniform {uniform:.3}, real digits {real:.3})")),
    ];
    Ok(Outcome { name: "ProbeGen: MNIST-CNN accuracy zoo".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
