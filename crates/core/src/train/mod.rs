//! Supervised training with per-epoch evaluation, checkpoints and exact resume.
//!
//! Reproducibility: initial weights come from the seed; each epoch's shuffle and input noise
//! come from a generator seeded by (seed, epoch), and the optimiser state is checkpointed, so a
//! run stopped after any epoch and resumed ends with the same weights as an unbroken run.

pub mod lm;
pub mod loss;
pub mod optim;
pub mod schedule;

use crate::checkpoint::{self, ModelCard, Task};
use crate::data::{Dataset, Split, Targets};
use crate::dataspec::DataSpec;
use crate::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use crate::model::{Architecture, Model};
use crate::tensor::{from_vec, infer_device, scalar, to_vec, train_device, Device, HostValues, Tensor};
use crate::{Error, Result};
use optim::{weighted_sum, Adam, OptimConfig, Weighted};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const RUN_FILE: &str = "run.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optim: OptimConfig,
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value (torch clip_grad_norm_).
    pub clip_grad_norm: Option<f64>,
    /// Standard deviation of i.i.d. Gaussian noise added to every training input.
    pub input_noise: f64,
    /// Drop the last incomplete batch of each epoch (the bilinear reference does).
    pub drop_last: bool,
    /// Evaluate on the test set every this many epochs (and at the last epoch).
    pub eval_every: usize,
    /// Stop early once test accuracy reaches this value (e.g. 1.0 for grokking runs).
    pub target_accuracy: Option<f64>,
    /// Row blocks per batch whose gradients are computed in parallel (see [`block_gradients`]).
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// Cross-entropy in f64 (see [`loss::cross_entropy_f64`]): for runs trained to losses
    /// near 1e-7, such as grokking.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub loss_f64: bool,
}

fn default_shards() -> usize {
    2
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            optim: OptimConfig::default(),
            schedule: Schedule { kind: schedule::ScheduleKind::Cosine, warmup_epochs: 0, min_lr: 0.0 },
            clip_grad_norm: None,
            input_noise: 0.0,
            drop_last: false,
            eval_every: 1,
            target_accuracy: None,
            shards: default_shards(),
            loss_f64: false,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.batch_size == 0 || self.eval_every == 0 || self.shards == 0 {
            return Err(Error::invalid("epochs, batch size, eval interval and shards must be at least 1"));
        }
        // NaN is not finite, so it is refused here too.
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return Err(Error::invalid(format!("learning rate must be positive, got {}", self.lr)));
        }
        if self.input_noise < 0.0 {
            return Err(Error::invalid("input noise must be >= 0"));
        }
        Ok(())
    }
}

/// Metrics of one epoch; `test_*` are absent on epochs that were not evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub seconds: f64,
}

/// Where and how a run is written.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub name: String,
    pub command: String,
    pub seed: u64,
    /// Continue from the checkpoint in `out_dir` if there is one.
    pub resume: bool,
    pub progress: bool,
    /// Stop after this many epochs in this call (tests use it to simulate a killed run).
    pub stop_after_epochs: Option<usize>,
    /// Write the checkpoint every this many epochs (and after the last); 1 = every epoch.
    /// Full-batch runs of thousands of tiny epochs would otherwise spend their time on disk.
    pub save_every: usize,
}

pub struct Trained {
    pub model: Model,
    pub history: Vec<EpochRecord>,
    pub card: ModelCard,
}

/// Loss and accuracy on a data set. Accuracy is top-1 for classes and the mean per-label
/// accuracy (logit > 0 against 0/1 target) for multi-label targets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    pub loss: f64,
    pub accuracy: f64,
}

/// Inputs and targets of rows `idx` as tensors on `device`.
pub fn batch(data: &Dataset, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>) {
    batch_from_inputs(data, idx, gather_inputs(data, idx), device)
}

fn gather_inputs(data: &Dataset, idx: &[usize]) -> Vec<f32> {
    let mut x = Vec::with_capacity(idx.len() * data.input_dim);
    for &i in idx {
        x.extend_from_slice(data.input(i));
    }
    x
}

/// Like [`batch`], with N(0, sigma²) noise from `rng` added to every input value. The noise
/// comes from the run's own generator, not a global one, so runs are reproducible.
pub fn noisy_batch(data: &Dataset, idx: &[usize], sigma: f64, rng: &mut ChaCha8Rng, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let mut x = gather_inputs(data, idx);
    if sigma > 0.0 {
        let normal = rand_distr::Normal::new(0.0f32, sigma as f32).expect("sigma is finite and >= 0");
        for v in x.iter_mut() {
            *v += rand::Rng::sample(rng, normal);
        }
    }
    batch_from_inputs(data, idx, x, device)
}

fn batch_from_inputs(data: &Dataset, idx: &[usize], x: Vec<f32>, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let d = data.input_dim;
    let k = data.n_outputs();
    let mut y = vec![0f32; idx.len() * k];
    match &data.targets {
        Targets::Classes { labels, .. } => {
            for (r, &i) in idx.iter().enumerate() {
                y[r * k + labels[i] as usize] = 1.0;
            }
        }
        Targets::MultiLabel { values, .. } => {
            for (r, &i) in idx.iter().enumerate() {
                y[r * k..(r + 1) * k].copy_from_slice(&values[i * k..(i + 1) * k]);
            }
        }
    }
    (from_vec(x, [idx.len(), d], device), from_vec(y, [idx.len(), k], device))
}

/// Batches smaller than this per shard are not split: the split would cost more than it saves.
const MIN_SHARD_ROWS: usize = 32;

/// Mean loss of a batch and its gradient per parameter, as host vectors (see
/// [`block_gradients`], whose block gradients this sums).
pub fn loss_and_grads(model: &Model, data: &Dataset, x: Tensor<2>, y: Tensor<2>, shards: usize, loss_f64: bool) -> (f64, Vec<Vec<f32>>) {
    let (loss, blocks) = block_gradients(model, data, x, y, shards, loss_f64);
    (loss, weighted_sum(&blocks))
}

/// Mean loss of a batch and the gradients of its row blocks. The batch is cut into `shards`
/// row blocks whose forward and backward passes run in parallel (rayon::join); each block's
/// gradient is weighted by its share of the rows, so their sum is the gradient of the mean
/// loss. This is how one training step uses several cores: burn's matmuls barely scale at
/// small batch sizes (an MLP step at batch 128 runs no faster on two threads). The split
/// depends on `shards`, never on the thread count, so results are identical at any --threads.
/// The blocks are returned unsummed so that Adam can sum them as it reads them
/// ([`Adam::update_weighted`]).
pub fn block_gradients(model: &Model, data: &Dataset, x: Tensor<2>, y: Tensor<2>, shards: usize, loss_f64: bool) -> (f64, Vec<Weighted<HostValues>>) {
    let n = x.dims()[0];
    let blocks = split_blocks(model, data, x, y, shards, n, loss_f64);
    let loss = blocks.iter().map(|(loss, b)| loss * b.weight as f64).sum();
    (loss, blocks.into_iter().map(|(_, b)| b).collect())
}

/// The blocks of [`block_gradients`] with their mean losses; `total` is the batch's row count.
fn split_blocks(model: &Model, data: &Dataset, x: Tensor<2>, y: Tensor<2>, shards: usize, total: usize, loss_f64: bool) -> Vec<(f64, Weighted<HostValues>)> {
    let loss = |model: &Model, x: Tensor<2>, y: Tensor<2>| match data.targets {
        Targets::Classes { .. } if loss_f64 => loss::cross_entropy_f64(model.forward(x), y),
        _ => loss_fn(data, model.forward(x), y),
    };
    row_blocks(model, x, y, shards, MIN_SHARD_ROWS, total, &loss)
}

/// Forward and backward passes of `shards` row blocks of a batch in parallel (rayon::join),
/// each block's mean `loss` weighted by its share of the `total` rows; blocks smaller than
/// `min_rows` are not split further.
pub(crate) fn row_blocks<K: burn::tensor::kind::Basic>(
    model: &Model,
    x: Tensor<2>,
    y: Tensor<2, K>,
    shards: usize,
    min_rows: usize,
    total: usize,
    loss: &(dyn Fn(&Model, Tensor<2>, Tensor<2, K>) -> Tensor<1> + Sync),
) -> Vec<(f64, Weighted<HostValues>)>
where
    Tensor<2, K>: Send + Sync,
{
    let n = x.dims()[0];
    if shards <= 1 || n < 2 * min_rows {
        // Fresh parameter leaves per shard: concurrent backward passes must not share
        // graph nodes (burn consumes a node's tape on backward).
        let local = Model { arch: model.arch.clone(), params: model.params.clone().require_grad() };
        let loss = loss(&local, x, y);
        let value = scalar(loss.clone());
        let mut grads = loss.backward();
        // grad_remove hands over the only reference, so HostValues keeps the buffer uncopied.
        let g = local.params.values.iter().map(|p| p.grad_remove(&mut grads).map_or_else(|| HostValues::zeros(p.dims()[0]), HostValues::new)).collect();
        return vec![(value, Weighted { weight: (n as f64 / total as f64) as f32, grads: g })];
    }
    let (left, right) = (shards / 2, shards - shards / 2);
    let h = n * left / shards;
    let (mut a, b) = rayon::join(
        || row_blocks(model, x.clone().narrow(0, 0, h), y.clone().narrow(0, 0, h), left, min_rows, total, loss),
        || row_blocks(model, x.clone().narrow(0, h, n - h), y.clone().narrow(0, h, n - h), right, min_rows, total, loss),
    );
    a.extend(b);
    a
}

pub fn loss_fn(data: &Dataset, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    match data.targets {
        Targets::Classes { .. } => loss::cross_entropy(logits, targets),
        Targets::MultiLabel { .. } => loss::bce_with_logits(logits, targets),
    }
}

/// Evaluate `model` (any device; moved to an inference device) on all of `data`.
pub fn evaluate(model: &Model, data: &Dataset, batch_size: usize) -> Eval {
    let dev = infer_device();
    let model = model.to_device(&dev);
    let (mut loss_sum, mut correct, mut count) = (0.0f64, 0.0f64, 0.0f64);
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let (x, y) = batch(data, chunk, &dev);
        let logits = model.forward(x);
        let l = scalar(loss_fn(data, logits.clone(), y.clone()));
        loss_sum += l * chunk.len() as f64;
        let (lv, yv) = (to_vec(logits), to_vec(y));
        let k = data.n_outputs();
        for r in 0..chunk.len() {
            let (lr, yr) = (&lv[r * k..(r + 1) * k], &yv[r * k..(r + 1) * k]);
            correct += match data.targets {
                Targets::Classes { .. } => (yr[argmax(lr)] == 1.0) as u8 as f64,
                Targets::MultiLabel { .. } => {
                    lr.iter().zip(yr).filter(|(l, y)| (**l > 0.0) == (**y > 0.5)).count() as f64 / k as f64
                }
            };
        }
        count += chunk.len() as f64;
    }
    Eval { loss: loss_sum / count.max(1.0), accuracy: correct / count.max(1.0) }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Every file of a training checkpoint, in the order they are put in place: the card, last,
/// marks a complete set (see [`save_checkpoint`]).
pub(crate) const CHECKPOINT_FILES: [&str; 5] = [OPTIMIZER_FILE, RUN_FILE, checkpoint::HF_CONFIG_FILE, checkpoint::WEIGHTS_FILE, checkpoint::CARD_FILE];

/// Write a training checkpoint: optimiser state (with `exact_params`, the weights as trained
/// too), run.json, weights and card. A kill at any point leaves the previous checkpoint or this
/// one, never parts of both: every file is written whole to `NAME.next`, then all are renamed
/// into place, the card last; [`recover_checkpoint`] finishes or undoes a commit cut short.
pub(crate) fn save_checkpoint(dir: &Path, model: &Model, adam: &Adam, card: &ModelCard, run: &serde_json::Value, exact_params: bool) -> Result<()> {
    // Staged files left by a killed run that was then started afresh (no --resume, so nothing
    // recovered them) must not join this set: a staged card would mark it complete too early.
    for name in CHECKPOINT_FILES {
        let stale = crate::io::staged(dir, name);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| crate::Error::io(&stale, e))?;
        }
    }
    save_optimizer(&crate::io::staged(dir, OPTIMIZER_FILE), model, adam, exact_params)?;
    write_json(&crate::io::staged(dir, RUN_FILE), run)?;
    let mut names = vec![OPTIMIZER_FILE, RUN_FILE];
    names.extend(checkpoint::save_staged(dir, model, card)?);
    crate::io::commit_set(dir, &names)
}

/// Before reading a checkpoint folder: finish a checkpoint commit that was cut short, or delete
/// the staged files of one that was still being written, and the temporary files of killed
/// writes (see [`crate::io::recover_set`]).
pub fn recover_checkpoint(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        crate::io::recover_set(dir, &CHECKPOINT_FILES)?;
    }
    Ok(())
}

/// Adam's state, to `path`; with `with_params`, also the exact weights (for checkpoints whose
/// weights file holds a converted layout, so that a resume starts from bit-identical weights).
pub(crate) fn save_optimizer(path: &Path, model: &Model, adam: &Adam, with_params: bool) -> Result<()> {
    let mut tensors = if with_params { crate::checkpoint::params_to_host(&model.params).into_iter().map(|t| HostTensor { name: format!("param.{}", t.name), ..t }).collect() } else { Vec::new() };
    for (i, spec) in model.params.specs.iter().enumerate() {
        for (kind, state) in [("m", &adam.m[i]), ("v", &adam.v[i])] {
            tensors.push(HostTensor { name: format!("{kind}.{}", spec.name), shape: vec![spec.numel()], data: state.clone() });
        }
    }
    let meta = HashMap::from([("step".to_string(), adam.step.to_string())]);
    write_f32(path, &tensors, meta)
}

pub(crate) fn load_optimizer(dir: &Path, model: &Model, config: OptimConfig) -> Result<Adam> {
    let path = dir.join(OPTIMIZER_FILE);
    let file = SafetensorsFile::open(&path)?;
    let step = file
        .metadata()?
        .get("step")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::format(&path, "metadata has no valid 'step'"))?;
    let mut adam = Adam::new(config, &[]);
    adam.step = step;
    for spec in &model.params.specs {
        for kind in ["m", "v"] {
            let t = file.tensor_f32(&format!("{kind}.{}", spec.name))?;
            if t.data.len() != spec.numel() {
                return Err(Error::format(&path, format!("{kind}.{} has {} values, expected {}", spec.name, t.data.len(), spec.numel())));
            }
            if kind == "m" { adam.m.push(t.data) } else { adam.v.push(t.data) }
        }
    }
    Ok(adam)
}

fn run_json(opts: &RunOptions, card: &ModelCard, history: &[EpochRecord], wall: f64) -> serde_json::Value {
    serde_json::json!({
        "name": opts.name,
        "command": opts.command,
        "seed": opts.seed,
        "wall_time_s": wall,
        "versions": { "glassbox": env!("CARGO_PKG_VERSION"), "burn": "0.22.1" },
        "config": { "architecture": card.architecture, "task": card.task, "training": card.training },
        "metrics": card.metrics,
        "history": history,
    })
}

/// One optimisation step on the batch (x, y): sharded forward and backward, optional
/// clipping, then Adam. Returns the batch loss; when it is not finite the weights are left
/// untouched so the caller can stop on the last good state.
pub fn train_step(model: &mut Model, adam: &mut Adam, data: &Dataset, x: Tensor<2>, y: Tensor<2>, cfg: &TrainConfig, lr: f64) -> f64 {
    let (loss_value, blocks) = block_gradients(model, data, x, y, cfg.shards, cfg.loss_f64);
    if loss_value.is_finite() {
        apply_update(model, adam, &blocks, cfg.clip_grad_norm, lr);
    }
    loss_value
}

/// Adam on the summed block gradients, with optional global-norm clipping.
pub(crate) fn apply_update(model: &mut Model, adam: &mut Adam, blocks: &[Weighted<HostValues>], clip_grad_norm: Option<f64>, lr: f64) {
    let device = model.params.values[0].device();
    // Taking the tensors out leaves their buffers unshared, and from_vec made them with f32's
    // alignment, so to_vec moves rather than copies.
    let mut host: Vec<Vec<f32>> = std::mem::take(&mut model.params.values).into_iter().map(to_vec).collect();
    if let Some(max) = clip_grad_norm {
        let mut g = weighted_sum(blocks);
        optim::clip_grad_norm(&mut g, max);
        adam.update(&mut host, &g, lr);
    } else {
        adam.update_weighted(&mut host, blocks, lr);
    }
    model.params.values = host.into_iter().map(|h| {
        let n = h.len();
        from_vec(h, [n], &device).require_grad()
    }).collect();
}

/// Train `arch` on `data`. Writes a checkpoint, optimiser state and run.json after every epoch.
pub fn train(arch: Architecture, data: &Split, spec: &DataSpec, cfg: &TrainConfig, opts: &RunOptions) -> Result<Trained> {
    cfg.validate()?;
    arch.validate()?;
    let train_set = &data.train;
    if arch.input_dim() != train_set.input_dim || arch.output_dim() != train_set.n_outputs() {
        return Err(Error::invalid(format!(
            "the {} model maps {} -> {} but data set {} has {} inputs and {} outputs",
            arch.kind_name(), arch.input_dim(), arch.output_dim(), train_set.name, train_set.input_dim, train_set.n_outputs()
        )));
    }
    let steps_per_epoch = if cfg.drop_last { train_set.len() / cfg.batch_size } else { train_set.len().div_ceil(cfg.batch_size) };
    if steps_per_epoch == 0 {
        return Err(Error::invalid(format!("batch size {} exceeds the {} training samples with drop_last", cfg.batch_size, train_set.len())));
    }
    let dev = train_device();
    let training_json = serde_json::to_value(cfg).expect("config serialises");
    let mut card = ModelCard::new(arch.clone(), opts.seed);
    card.task = Some(Task {
        data: spec.clone(),
        n_outputs: train_set.n_outputs(),
        multilabel: matches!(train_set.targets, Targets::MultiLabel { .. }),
    });
    card.training = Some(training_json.clone());

    if opts.resume {
        recover_checkpoint(&opts.out_dir)?;
    }
    let resuming = opts.resume && opts.out_dir.join(checkpoint::CARD_FILE).exists();
    let (mut model, mut adam, mut history, start) = if resuming {
        let (model, old) = checkpoint::load(&opts.out_dir, &dev)?;
        let card_path = opts.out_dir.join(checkpoint::CARD_FILE);
        if old.architecture != arch || old.training.as_ref() != Some(&training_json) || old.seed != opts.seed {
            return Err(Error::format(card_path, "cannot resume: the architecture, training configuration or seed differ from this run's"));
        }
        let adam = load_optimizer(&opts.out_dir, &model, cfg.optim.clone())?;
        let run: serde_json::Value = read_json(&opts.out_dir.join(RUN_FILE))?;
        let history: Vec<EpochRecord> = serde_json::from_value(run["history"].clone())
            .map_err(|e| Error::format(opts.out_dir.join(RUN_FILE), format!("bad history: {e}")))?;
        card.metrics = old.metrics;
        (model, adam, history, old.epochs_done)
    } else {
        let model = Model::init(arch.clone(), opts.seed, &dev)?;
        let sizes: Vec<usize> = model.params.specs.iter().map(|s| s.numel()).collect();
        (model, Adam::new(cfg.optim.clone(), &sizes), Vec::new(), 0)
    };
    card.epochs_done = start;
    let already_done = history.last().and_then(|h| h.test_accuracy).zip(cfg.target_accuracy).is_some_and(|(a, t)| a >= t);
    let end = if already_done { start } else { opts.stop_after_epochs.map_or(cfg.epochs, |n| (start + n).min(cfg.epochs)) };

    let bar = progress_bar(opts.progress, (cfg.epochs * steps_per_epoch) as u64, (start * steps_per_epoch) as u64);
    let clock = Instant::now();
    let mut global_step = start * steps_per_epoch;
    let mut last_saved = start;
    for epoch in start..end {
        let t0 = Instant::now();
        let lr = cfg.schedule.lr(cfg.lr, epoch, cfg.epochs);
        let mut rng = ChaCha8Rng::seed_from_u64(epoch_seed(opts.seed, epoch));
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for (b, idx) in order.chunks(cfg.batch_size).take(steps_per_epoch).enumerate() {
            let (x, y) = noisy_batch(train_set, idx, cfg.input_noise, &mut rng, &dev);
            let loss_value = train_step(&mut model, &mut adam, train_set, x, y, cfg, lr);
            global_step += 1;
            if !loss_value.is_finite() {
                bar.abandon();
                return Err(Error::Diverged(format!(
                    "training loss became {loss_value} at step {global_step} (epoch {}, batch {}); the last good checkpoint{} is in {}",
                    epoch + 1, b + 1,
                    if last_saved > 0 { format!(" (after epoch {last_saved})") } else { " (none: it failed before the first save)".into() },
                    opts.out_dir.display()
                )));
            }
            loss_sum += loss_value;
            bar.set_message(format!("epoch {}/{} loss {loss_value:.4}", epoch + 1, cfg.epochs));
            bar.inc(1);
        }
        let evaluate_now = (epoch + 1) % cfg.eval_every == 0 || epoch + 1 == cfg.epochs;
        let test = evaluate_now.then(|| evaluate(&model, &data.test, 4096));
        let record = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / steps_per_epoch as f64,
            test_loss: test.map(|t| t.loss),
            test_accuracy: test.map(|t| t.accuracy),
            seconds: t0.elapsed().as_secs_f64(),
        };
        card.epochs_done = epoch + 1;
        card.metrics.insert("train_loss".into(), record.train_loss);
        if let Some(t) = test {
            card.metrics.insert("test_loss".into(), t.loss);
            card.metrics.insert("test_accuracy".into(), t.accuracy);
            bar.println(format!("epoch {:>4}  train loss {:.4}  test loss {:.4}  test acc {:.4}", epoch + 1, record.train_loss, t.loss, t.accuracy));
        }
        history.push(record);
        let reached = matches!((test, cfg.target_accuracy), (Some(t), Some(target)) if t.accuracy >= target);
        if (epoch + 1) % opts.save_every.max(1) == 0 || epoch + 1 == end || reached {
            let run = run_json(opts, &card, &history, clock.elapsed().as_secs_f64());
            save_checkpoint(&opts.out_dir, &model, &adam, &card, &run, false)?;
            last_saved = epoch + 1;
        }
        if reached {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(Trained { model, history, card })
}

/// A bar with rate and ETA (hidden when `show` is false), starting at `done` of `total` steps.
pub fn progress_bar(show: bool, total: u64, done: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
            .expect("valid template"),
    );
    bar.set_position(done);
    bar
}
