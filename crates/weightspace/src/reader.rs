//! Training a model reader on an INR zoo (spec/probegen.md 2.4-2.5): probes (learned or fixed)
//! → every model's outputs on them → the head → class logits; cross-entropy, one Adam over probe
//! parameters and head (lr 3e-4, no weight decay), cosine to 0 stepped every iteration, batches
//! of 32 models reshuffled each epoch, test accuracy reported at the best validation epoch.
//! The zoo's weights are data: gradients flow through each INR to the probes only.

use crate::mlp::{cross_entropy, Mlp};
use crate::probes::{ProbeKind, Probes};
use faer::Mat;
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use glassbox_core::train::schedule::{Schedule, ScheduleKind};
use glassbox_zoo::inr;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

/// Spec 2.5's CosineAnnealingLR (eta_min 0, no warm-up), evaluated per optimisation step.
pub const COSINE_TO_ZERO: Schedule = Schedule { kind: ScheduleKind::Cosine, warmup_epochs: 0, min_lr: 0.0 };

#[derive(Clone, Debug)]
pub struct ReaderConfig {
    pub kind: ProbeKind,
    pub n_probes: usize,
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    pub seed: u64,
}

impl ReaderConfig {
    pub fn new(kind: ProbeKind, n_probes: usize, epochs: usize, seed: u64) -> Self {
        ReaderConfig { kind, n_probes, epochs, lr: 3e-4, batch: 32, seed }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReaderResult {
    pub method: String,
    pub n_probes: usize,
    pub epochs: usize,
    pub train_accuracy: Vec<f64>,
    pub val_accuracy: Vec<f64>,
    pub test_accuracy: Vec<f64>,
    /// Test accuracy at the epoch of best validation accuracy (the first such epoch).
    pub test_at_best_val: f64,
    pub best_epoch: usize,
    /// The probe points at the end of the best validation epoch.
    pub probes: Vec<[f32; 2]>,
    pub seconds: f64,
}

/// Every model's outputs on the probes, one row per model.
pub fn representations(models: &[&[f32]], points: &[[f32; 2]]) -> Mat<f32> {
    let rows: Vec<Vec<f32>> = models.par_iter().map(|p| inr::forward(p, points).0).collect();
    Mat::from_fn(models.len(), points.len(), |r, c| rows[r][c])
}

/// Accuracy of the head on the models `idx`: their rows of `cached` (fixed probes) or their
/// outputs on `points`.
fn accuracy(head: &Mlp, params: &[Vec<f32>], idx: &[usize], classes: &[usize], points: &[[f32; 2]], cached: Option<&Mat<f32>>) -> f64 {
    if idx.is_empty() {
        return f64::NAN;
    }
    let reps = match cached {
        Some(all) => Mat::from_fn(idx.len(), all.ncols(), |r, c| all[(idx[r], c)]),
        None => representations(&idx.iter().map(|&i| params[i].as_slice()).collect::<Vec<_>>(), points),
    };
    let labels: Vec<usize> = idx.iter().map(|&i| classes[i]).collect();
    cross_entropy(&head.forward(&reps).0, &labels).2
}

/// Train a reader on `params[train]` with class labels, evaluating on val and test every epoch.
pub fn train_reader(params: &[Vec<f32>], classes: &[usize], n_classes: usize, splits: &glassbox_zoo::store::Splits, grid: &[[f32; 2]], cfg: &ReaderConfig) -> ReaderResult {
    let start = std::time::Instant::now();
    let mut probes = Probes::new(cfg.kind, cfg.n_probes, grid, cfg.seed ^ 0x9E37);
    let mut head = Mlp::head(probes.n, n_classes, cfg.seed ^ 0x4EAD);
    let n_probe_params = probes.params.len();
    let sizes: Vec<usize> = probes.sizes().into_iter().chain(head.sizes()).collect();
    let mut adam = Adam::new(OptimConfig { kind: OptimKind::Adam, ..OptimConfig::default() }, &sizes);
    let steps_per_epoch = splits.train.len().div_ceil(cfg.batch);
    let total_steps = (cfg.epochs * steps_per_epoch).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED);
    let mut order = splits.train.clone();
    let mut result = ReaderResult {
        method: cfg.kind.name().into(),
        n_probes: probes.n,
        epochs: cfg.epochs,
        train_accuracy: Vec::new(),
        val_accuracy: Vec::new(),
        test_accuracy: Vec::new(),
        test_at_best_val: f64::NAN,
        best_epoch: 0,
        probes: Vec::new(),
        seconds: 0.0,
    };
    // Fixed probes: every model's representation once (spec 7, "caching").
    let fixed = (!cfg.kind.learned()).then(|| {
        let points = probes.points();
        let all: Vec<&[f32]> = params.iter().map(Vec::as_slice).collect();
        representations(&all, &points)
    });
    let mut step = 0;
    for _ in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let (mut correct, mut seen) = (0.0, 0usize);
        for batch in order.chunks(cfg.batch) {
            let points = probes.points();
            let models: Vec<&[f32]> = batch.iter().map(|&i| params[i].as_slice()).collect();
            let batch_classes: Vec<usize> = batch.iter().map(|&i| classes[i]).collect();
            // Forward through every INR of the batch, keeping each trace for the backward pass.
            let (reps, traces) = match &fixed {
                Some(all) => (Mat::from_fn(batch.len(), probes.n, |r, c| all[(batch[r], c)]), Vec::new()),
                None => {
                    let outs: Vec<(Vec<f32>, inr::Trace)> = models.par_iter().map(|p| inr::forward(p, &points)).collect();
                    let reps = Mat::from_fn(batch.len(), points.len(), |r, c| outs[r].0[c]);
                    (reps, outs.into_iter().map(|o| o.1).collect())
                }
            };
            let (logits, cache) = head.forward(&reps);
            let (_, d_logits, acc) = cross_entropy(&logits, &batch_classes);
            correct += acc * batch.len() as f64;
            seen += batch.len();
            let (head_grads, d_reps) = head.backward(&cache, &d_logits);
            let mut grads = Vec::with_capacity(sizes.len());
            if cfg.kind.learned() {
                // dL/dX = Σ over the batch's models of each INR's input gradient (weights frozen).
                let d_points = models
                    .par_iter()
                    .zip(&traces)
                    .enumerate()
                    .map(|(r, (p, trace))| {
                        let d_out: Vec<f32> = (0..points.len()).map(|c| d_reps[(r, c)]).collect();
                        let mut dx = vec![[0f32; 2]; points.len()];
                        inr::backward(p, &points, trace, &d_out, None, Some(&mut dx));
                        dx
                    })
                    .reduce(|| vec![[0f32; 2]; points.len()], |mut a, b| {
                        for (x, y) in a.iter_mut().zip(b) {
                            x[0] += y[0];
                            x[1] += y[1];
                        }
                        a
                    });
                grads.extend(probes.backward(&d_points));
            } else {
                grads.extend(probes.params.iter().map(|p| vec![0f32; p.len()]));
            }
            grads.extend(head_grads);
            let lr = COSINE_TO_ZERO.lr(cfg.lr, step, total_steps);
            let mut all: Vec<Vec<f32>> = probes.params.drain(..).chain(head.params.drain(..)).collect();
            adam.update(&mut all, &grads, lr);
            head.params = all.split_off(n_probe_params);
            probes.params = all;
            step += 1;
        }
        let points = probes.points();
        result.train_accuracy.push(correct / seen.max(1) as f64);
        result.val_accuracy.push(accuracy(&head, params, &splits.val, classes, &points, fixed.as_ref()));
        result.test_accuracy.push(accuracy(&head, params, &splits.test, classes, &points, fixed.as_ref()));
        let epoch = result.val_accuracy.len() - 1;
        if epoch == 0 || result.val_accuracy[epoch] > result.val_accuracy[result.best_epoch - 1] {
            result.best_epoch = epoch + 1;
            result.probes = points;
        }
    }
    result.test_at_best_val = result.best_epoch.checked_sub(1).and_then(|e| result.test_accuracy.get(e)).copied().unwrap_or(f64::NAN);
    result.seconds = start.elapsed().as_secs_f64();
    result
}
