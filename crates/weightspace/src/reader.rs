//! Training a model reader on a zoo (ProbeGen's head and training recipe, Kahana et al. 2025):
//! probes (learned or fixed) → every model's outputs on them → the head → class logits
//! (cross-entropy) or one number (MSE on e.g. test accuracy); one Adam over probe parameters
//! and head (lr 3e-4, no weight decay), cosine to 0 stepped every iteration, batches of 32
//! models reshuffled each epoch, the test metric reported at the best validation epoch. The
//! zoo's weights are data: gradients flow through each model to the probes only.

use crate::kendall::tau_b;
use glassbox_zoo::dense::{cross_entropy, squared_error, Mlp};
use crate::probes::{ProbeKind, ProbeSpace, Probes};
use crate::targets::Targets;
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use glassbox_core::train::schedule::{Schedule, ScheduleKind};
use glassbox_zoo::store::Splits;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

/// ProbeGen's CosineAnnealingLR (eta_min 0, no warm-up), evaluated per optimisation step.
pub const COSINE_TO_ZERO: Schedule = Schedule {
    kind: ScheduleKind::Cosine,
    warmup_epochs: 0,
    min_lr: 0.0,
};

/// Whether validation metric `a` beats `b`: a NaN (a diverged or constant reader) never wins,
/// and anything beats a NaN.
pub fn better(a: f64, b: f64) -> bool {
    !a.is_nan() && (b.is_nan() || a > b)
}

/// What a reader predicts for each model.
#[derive(Clone, Debug)]
pub enum Task {
    /// A class (the digit an INR encodes); metric: accuracy.
    Classes {
        labels: Vec<usize>,
        n_classes: usize,
    },
    /// A number (a model's test accuracy); MSE loss, metric: Kendall's τ-b.
    Regression { values: Vec<f32> },
}

impl Task {
    pub fn outputs(&self) -> usize {
        match self {
            Task::Classes { n_classes, .. } => *n_classes,
            Task::Regression { .. } => 1,
        }
    }

    pub fn metric_name(&self) -> &'static str {
        match self {
            Task::Classes { .. } => "accuracy",
            Task::Regression { .. } => "kendall_tau",
        }
    }

    /// The loss of the head's outputs for the models `idx`, and its gradient.
    pub fn loss(&self, out: &Mat<f32>, idx: &[usize]) -> (f64, Mat<f32>) {
        match self {
            Task::Classes { labels, .. } => {
                let (loss, grad, _) =
                    cross_entropy(out, &idx.iter().map(|&i| labels[i]).collect::<Vec<_>>());
                (loss, grad)
            }
            Task::Regression { values } => {
                squared_error(out, &idx.iter().map(|&i| values[i]).collect::<Vec<_>>())
            }
        }
    }

    /// Accuracy or τ-b of the head's outputs (one row per model of `idx`).
    pub fn metric(&self, out: &Mat<f32>, idx: &[usize]) -> f64 {
        if idx.is_empty() {
            return f64::NAN;
        }
        match self {
            Task::Classes { labels, .. } => {
                cross_entropy(out, &idx.iter().map(|&i| labels[i]).collect::<Vec<_>>()).2
            }
            Task::Regression { values } => tau_b(
                &(0..idx.len())
                    .map(|r| out[(r, 0)] as f64)
                    .collect::<Vec<_>>(),
                &idx.iter().map(|&i| values[i] as f64).collect::<Vec<_>>(),
            ),
        }
    }
}

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
        ReaderConfig {
            kind,
            n_probes,
            epochs,
            lr: 3e-4,
            batch: 32,
            seed,
        }
    }
}

/// A trained reader: fixed probe inputs and the head that reads the models' answers to them.
#[derive(Clone)]
pub struct Reader {
    /// P × input_dim, row-major.
    pub probes: Vec<f32>,
    pub n_probes: usize,
    pub head: Mlp,
}

impl Reader {
    /// The head's outputs (one row per model of `idx`).
    pub fn predict<T: Targets>(&self, targets: &T, idx: &[usize]) -> Mat<f32> {
        self.head
            .forward(&representations(targets, idx, &self.probes))
            .0
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReaderResult {
    pub method: String,
    /// "accuracy" or "kendall_tau".
    pub metric: String,
    pub n_probes: usize,
    pub epochs: usize,
    pub train_metric: Vec<f64>,
    pub val_metric: Vec<f64>,
    pub test_metric: Vec<f64>,
    /// The test metric at the epoch of best validation metric (the first such epoch).
    pub test_at_best_val: f64,
    pub best_epoch: usize,
    pub seconds: f64,
}

/// The models' answers to the probes, one row per model of `idx` (P · output_dim values).
pub fn representations<T: Targets>(targets: &T, idx: &[usize], points: &[f32]) -> Mat<f32> {
    let rows: Vec<Vec<f32>> = idx
        .par_iter()
        .map(|&m| targets.forward(m, points).0)
        .collect();
    let width = points.len() / targets.input_dim() * targets.output_dim();
    Mat::from_fn(idx.len(), width, |r, c| rows[r][c])
}

fn select(all: &Mat<f32>, idx: &[usize]) -> Mat<f32> {
    Mat::from_fn(idx.len(), all.ncols(), |r, c| all[(idx[r], c)])
}

/// Train a reader on `splits.train`, evaluating on val and test after every epoch. Returns the
/// curves and the reader of the best validation epoch. `given` holds the inputs of grid and
/// real probes (see [`Probes::new`]).
pub fn train_reader<T: Targets>(
    targets: &T,
    task: &Task,
    splits: &Splits,
    space: &ProbeSpace,
    given: &[f32],
    cfg: &ReaderConfig,
) -> Result<(ReaderResult, Reader)> {
    let start = std::time::Instant::now();
    if space.dim != targets.input_dim() {
        return Err(Error::invalid(format!("probes of {} values cannot be fed to models that take {} inputs", space.dim, targets.input_dim())));
    }
    let mut probes = Probes::new(cfg.kind, cfg.n_probes, space, given, cfg.seed ^ 0x9E37)?;
    let mut head = Mlp::head(
        probes.n * targets.output_dim(),
        task.outputs(),
        cfg.seed ^ 0x4EAD,
    );
    let sizes: Vec<usize> = probes.sizes().into_iter().chain(head.sizes()).collect();
    let mut adam = Adam::new(
        OptimConfig {
            kind: OptimKind::Adam,
            ..OptimConfig::default()
        },
        &sizes,
    );
    let total_steps = (cfg.epochs * splits.train.len().div_ceil(cfg.batch)).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED);
    let mut order = splits.train.clone();
    let mut result = ReaderResult {
        method: cfg.kind.name().into(),
        metric: task.metric_name().into(),
        n_probes: probes.n,
        epochs: cfg.epochs,
        train_metric: Vec::new(),
        val_metric: Vec::new(),
        test_metric: Vec::new(),
        test_at_best_val: f64::NAN,
        best_epoch: 0,
        seconds: 0.0,
    };
    let mut best: Option<Reader> = None;
    // Fixed probes: every model's representation is computed once and cached.
    let all: Vec<usize> = (0..targets.len()).collect();
    let fixed = (!cfg.kind.learned()).then(|| representations(targets, &all, &probes.forward().0));
    let c_out = targets.output_dim();
    let mut step = 0;
    for _ in 0..cfg.epochs {
        order.shuffle(&mut rng);
        // The head's training outputs of this epoch, row-major, for the training metric.
        let (mut outs, mut seen) = (Vec::new(), Vec::new());
        for batch in order.chunks(cfg.batch) {
            let (points, probe_trace) = probes.forward();
            let (reps, traces) = match &fixed {
                Some(all) => (select(all, batch), Vec::new()),
                None => {
                    let runs: Vec<(Vec<f32>, T::Trace)> = batch
                        .par_iter()
                        .map(|&m| targets.forward(m, &points))
                        .collect();
                    let reps = Mat::from_fn(batch.len(), runs[0].0.len(), |r, c| runs[r].0[c]);
                    (reps, runs.into_iter().map(|r| r.1).collect())
                }
            };
            let (out, cache) = head.forward(&reps);
            let (_, d_out) = task.loss(&out, batch);
            outs.extend(
                (0..out.nrows())
                    .flat_map(|r| (0..out.ncols()).map(move |c| (r, c)))
                    .map(|(r, c)| out[(r, c)]),
            );
            seen.extend_from_slice(batch);
            let (head_grads, d_reps) = head.backward(&cache, &d_out);
            let mut grads = Vec::with_capacity(sizes.len());
            if cfg.kind.learned() {
                // dL/d(probes) = Σ over the batch's models of each model's input gradient,
                // summed in batch order so a reader trains to the same bits on any thread count.
                let per_model: Vec<Vec<f32>> = batch
                    .par_iter()
                    .zip(&traces)
                    .enumerate()
                    .map(|(r, (&m, trace))| {
                        let d_rep: Vec<f32> =
                            (0..probes.n * c_out).map(|c| d_reps[(r, c)]).collect();
                        targets.input_grad(m, &points, trace, &d_rep)
                    })
                    .collect();
                let mut d_points = vec![0f32; points.len()];
                for g in per_model {
                    d_points.iter_mut().zip(g).for_each(|(x, y)| *x += y);
                }
                grads.extend(probes.backward(&probe_trace, &d_points));
            }
            grads.extend(head_grads);
            let lr = COSINE_TO_ZERO.lr(cfg.lr, step, total_steps);
            let mut params: Vec<Vec<f32>> = probes
                .take_params()
                .into_iter()
                .chain(head.params.drain(..))
                .collect();
            adam.update(&mut params, &grads, lr);
            head.params = params.split_off(params.len() - 2 * (head.dims.len() - 1));
            probes.put_params(params);
            step += 1;
        }
        let k = task.outputs();
        result
            .train_metric
            .push(task.metric(&Mat::from_fn(seen.len(), k, |r, c| outs[r * k + c]), &seen));
        let reader = Reader {
            probes: probes.forward().0,
            n_probes: probes.n,
            head: head.clone(),
        };
        let eval = |idx: &[usize]| match &fixed {
            Some(all) => task.metric(&reader.head.forward(&select(all, idx)).0, idx),
            None => task.metric(&reader.predict(targets, idx), idx),
        };
        result.val_metric.push(eval(&splits.val));
        result.test_metric.push(eval(&splits.test));
        let epoch = result.val_metric.len() - 1;
        if best.is_none() || better(result.val_metric[epoch], result.val_metric[result.best_epoch - 1]) {
            result.best_epoch = epoch + 1;
            best = Some(reader);
        }
    }
    result.test_at_best_val = result
        .best_epoch
        .checked_sub(1)
        .and_then(|e| result.test_metric.get(e))
        .copied()
        .unwrap_or(f64::NAN);
    result.seconds = start.elapsed().as_secs_f64();
    let reader = best.unwrap_or(Reader {
        probes: probes.forward().0,
        n_probes: probes.n,
        head,
    });
    Ok((result, reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::InrTargets;
    use glassbox_zoo::inr;

    #[test]
    fn a_reader_trains_to_the_same_bits_on_one_and_two_threads() {
        let params: Vec<Vec<f32>> = (0..40).map(inr::init).collect();
        let task = Task::Classes { labels: (0..40).map(|m| m % 3).collect(), n_classes: 3 };
        let splits = Splits { train: (0..30).collect(), val: (30..35).collect(), test: (35..40).collect() };
        let cfg = ReaderConfig { batch: 8, ..ReaderConfig::new(ProbeKind::ProbeGen, 8, 2, 1) };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| train_reader(&InrTargets { params: &params }, &task, &splits, &ProbeSpace::inr(), &[], &cfg)).unwrap()
        };
        let ((a, reader_a), (b, reader_b)) = (run(1), run(2));
        assert_eq!(reader_a.probes, reader_b.probes);
        assert_eq!(reader_a.head.params, reader_b.head.params);
        assert_eq!(a.val_metric, b.val_metric);
    }
}
