//! Language-model training: next-token prediction on contexts of token ids, AdamW with a
//! warm-up and a decay per step, held-out loss, checkpoints and exact resume.
//!
//! Reproducibility: epoch e visits the training contexts in an order seeded by (seed, e), and
//! step s takes the next `batch_size` of them, so a run resumed from any saved step goes on
//! exactly as an unbroken one. Row blocks of a batch run in parallel as in [`super::train`];
//! the split depends on `shards`, never on the thread count.

use super::optim::{Adam, OptimConfig, Weighted};
use super::{apply_update, epoch_seed, load_optimizer, progress_bar, recover_checkpoint, save_checkpoint, RunOptions, RUN_FILE};
use crate::checkpoint::{self, ModelCard};
use crate::io::read_json;
use crate::model::{Architecture, Model};
use crate::tensor::{from_vec, infer_device, scalar, train_device, Device, HostValues, Tensor, TensorData};
use crate::{Error, Result};
use burn::tensor::Int;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Contexts of `n_ctx + 1` consecutive tokens each: the model reads the first n_ctx and
/// predicts the last n_ctx.
#[derive(Clone, Debug, PartialEq)]
pub struct Contexts {
    pub n_ctx: usize,
    pub tokens: Vec<u32>,
}

impl Contexts {
    pub fn len(&self) -> usize {
        self.tokens.len() / (self.n_ctx + 1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inputs `[rows, n_ctx]` (token ids as f32) and targets `[rows, n_ctx]`.
    pub fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<2, Int>) {
        let w = self.n_ctx + 1;
        let (mut x, mut y) = (Vec::with_capacity(rows.len() * self.n_ctx), Vec::with_capacity(rows.len() * self.n_ctx));
        for &r in rows {
            let row = &self.tokens[r * w..(r + 1) * w];
            x.extend(row[..self.n_ctx].iter().map(|&t| t as f32));
            y.extend(row[1..].iter().map(|&t| t as i64));
        }
        let n = rows.len();
        (from_vec(x, [n, self.n_ctx], device), Tensor::from_data(TensorData::new(y, [n, self.n_ctx]), device))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    Constant,
    Linear,
    Cosine,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optim: OptimConfig,
    /// Linear warm-up: step s < warmup uses lr · (s + 1) / warmup.
    pub warmup_steps: usize,
    /// From the end of the warm-up towards `min_lr`, reached one step after the last (as
    /// Hugging Face's linear schedule).
    pub decay: Decay,
    pub min_lr: f64,
    pub clip_grad_norm: Option<f64>,
    /// Held-out loss every this many steps (and at the last).
    pub eval_every: usize,
    /// Row blocks per batch whose gradients are computed in parallel.
    pub shards: usize,
}

impl LmConfig {
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.batch_size == 0 || self.eval_every == 0 || self.shards == 0 {
            return Err(Error::invalid("steps, batch size, evaluation interval and shards must be at least 1"));
        }
        if !self.lr.is_finite() || self.lr <= 0.0 {
            return Err(Error::invalid(format!("learning rate must be positive, got {}", self.lr)));
        }
        Ok(())
    }

    /// The learning rate of 0-based `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let shape = match self.decay {
            Decay::Constant => return self.lr,
            Decay::Linear => 1.0 - t,
            Decay::Cosine => (1.0 + (std::f64::consts::PI * t).cos()) / 2.0,
        };
        self.min_lr + (self.lr - self.min_lr) * shape
    }
}

/// The vocabulary a language model predicts over.
fn vocab(model: &Model) -> Result<usize> {
    match &model.arch {
        Architecture::Transformer(t) if t.readout == crate::model::Readout::EveryPosition => Ok(t.d_vocab_out),
        other => Err(Error::invalid(format!("language-model training needs a transformer that scores every position, not a {} model", other.kind_name()))),
    }
}

/// Mean next-token loss of a batch and the gradients of its row blocks (weighted by their
/// share of the rows), blocks computed in parallel.
pub fn lm_gradients(model: &Model, x: Tensor<2>, y: Tensor<2, Int>, shards: usize, vocab: usize) -> (f64, Vec<Weighted<HostValues>>) {
    let total = x.dims()[0];
    let loss = |model: &Model, x: Tensor<2>, y: Tensor<2, Int>| match model.hidden_and_unembedding(x.clone()) {
        Some((hidden, w_u)) => super::loss::fused_lm_cross_entropy(hidden, w_u, y),
        None => super::loss::lm_cross_entropy(model.forward(x), y, vocab),
    };
    let blocks = super::row_blocks(model, x, y, shards, 1, total, &loss);
    let loss = blocks.iter().map(|(l, b)| l * b.weight as f64).sum();
    (loss, blocks.into_iter().map(|(_, b)| b).collect())
}

/// One optimisation step; returns the batch loss (weights untouched when it is not finite).
pub fn lm_step(model: &mut Model, adam: &mut Adam, x: Tensor<2>, y: Tensor<2, Int>, cfg: &LmConfig, lr: f64) -> Result<f64> {
    let (loss, blocks) = lm_gradients(model, x, y, cfg.shards, vocab(model)?);
    if loss.is_finite() {
        apply_update(model, adam, &blocks, cfg.clip_grad_norm, lr);
    }
    Ok(loss)
}

/// Mean next-token loss over all of `data` (any device; moved to an inference device).
pub fn evaluate_lm(model: &Model, data: &Contexts, batch_size: usize) -> Result<f64> {
    let vocab = vocab(model)?;
    let dev = infer_device();
    let model = model.to_device(&dev);
    let rows: Vec<usize> = (0..data.len()).collect();
    let mut sum = 0.0;
    for chunk in rows.chunks(batch_size.max(1)) {
        let (x, y) = data.batch(chunk, &dev);
        sum += scalar(super::loss::lm_cross_entropy(model.forward(x), y, vocab)) * chunk.len() as f64;
    }
    Ok(sum / data.len().max(1) as f64)
}

/// The weights as trained, from the optimiser state: the checkpoint's weights file may hold a
/// converted layout (an attention scale folded into a matrix) that is not bit-exact.
fn exact_weights(dir: &std::path::Path, model: Model, dev: &Device) -> Result<Model> {
    let file = crate::io::SafetensorsFile::open(&dir.join(super::OPTIMIZER_FILE))?;
    let host = model.params.specs.iter().map(|s| Ok(file.tensor_f32(&format!("param.{}", s.name))?.data)).collect::<Result<Vec<_>>>()?;
    Ok(Model { params: crate::model::Params::from_host(model.params.specs.clone(), host, dev).require_grad(), arch: model.arch })
}

/// The training rows of step `step`: epoch orders seeded by (seed, epoch), concatenated.
fn step_rows(seed: u64, step: usize, batch: usize, n: usize) -> Vec<usize> {
    let mut rows = Vec::with_capacity(batch);
    let mut i = step * batch;
    let mut cached: Option<(usize, Vec<usize>)> = None;
    while rows.len() < batch {
        let epoch = i / n;
        if cached.as_ref().map(|c| c.0) != Some(epoch) {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(seed, epoch)));
            cached = Some((epoch, order));
        }
        rows.push(cached.as_ref().unwrap().1[i % n]);
        i += 1;
    }
    rows
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: Option<f64>,
    pub seconds: f64,
}

/// Train `arch` on `train`, scoring `val`; `data` describes the text for model.json. Writes
/// the checkpoint, optimiser state and run.json every `opts.save_every` steps and at the end.
/// The card's `epochs_done` counts steps.
pub fn train_lm(arch: Architecture, train: &Contexts, val: &Contexts, data: serde_json::Value, cfg: &LmConfig, opts: &RunOptions) -> Result<(Model, ModelCard)> {
    cfg.validate()?;
    arch.validate()?;
    if train.is_empty() {
        return Err(Error::invalid(format!("no training context of {} tokens", train.n_ctx + 1)));
    }
    let dev = train_device();
    let training_json = serde_json::json!({ "config": cfg, "data": data });
    let card_path = opts.out_dir.join(checkpoint::CARD_FILE);
    let mut wall_before = 0.0;
    if opts.resume {
        recover_checkpoint(&opts.out_dir)?;
    }
    let (mut model, mut adam, mut history, start) = if opts.resume && card_path.exists() {
        let (model, old) = checkpoint::load(&opts.out_dir, &dev)?;
        if old.architecture != arch || old.training.as_ref() != Some(&training_json) || old.seed != opts.seed {
            return Err(Error::format(card_path, "cannot resume: the architecture, training configuration, data or seed differ from this run's"));
        }
        let adam = load_optimizer(&opts.out_dir, &model, cfg.optim.clone())?;
        let model = exact_weights(&opts.out_dir, model, &dev)?;
        let run: serde_json::Value = read_json(&opts.out_dir.join(RUN_FILE))?;
        wall_before = run["wall_time_s"].as_f64().unwrap_or(0.0);
        let history: Vec<StepRecord> = serde_json::from_value(run["history"].clone()).map_err(|e| Error::format(opts.out_dir.join(RUN_FILE), format!("bad history: {e}")))?;
        (model, adam, history, old.epochs_done)
    } else {
        let model = Model::init(arch.clone(), opts.seed, &dev)?;
        let sizes: Vec<usize> = model.params.specs.iter().map(|s| s.numel()).collect();
        (model, Adam::new(cfg.optim.clone(), &sizes), Vec::new(), 0)
    };
    vocab(&model)?;
    let mut card = ModelCard::new(arch, opts.seed);
    card.training = Some(training_json);
    card.epochs_done = start;
    let end = opts.stop_after_epochs.map_or(cfg.steps, |n| (start + n).min(cfg.steps));
    let bar = progress_bar(opts.progress, cfg.steps as u64, start as u64);
    let clock = Instant::now();
    for step in start..end {
        let t0 = Instant::now();
        let lr = cfg.lr_at(step);
        let (x, y) = train.batch(&step_rows(opts.seed, step, cfg.batch_size, train.len()), &dev);
        let loss = lm_step(&mut model, &mut adam, x, y, cfg, lr)?;
        if !loss.is_finite() {
            bar.abandon();
            return Err(Error::Diverged(format!("training loss became {loss} at step {}; the last checkpoint is in {}", step + 1, opts.out_dir.display())));
        }
        let val_loss = ((step + 1) % cfg.eval_every == 0 || step + 1 == cfg.steps).then(|| evaluate_lm(&model, val, 64)).transpose()?;
        if let Some(v) = val_loss {
            card.metrics.insert("val_loss".into(), v);
            bar.println(format!("step {:>6}  train loss {loss:.4}  val loss {v:.4}", step + 1));
        }
        card.metrics.insert("last_step_train_loss".into(), loss);
        history.push(StepRecord { step: step + 1, lr, train_loss: loss, val_loss, seconds: t0.elapsed().as_secs_f64() });
        card.epochs_done = step + 1;
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);
        if (step + 1) % opts.save_every.max(1) == 0 || step + 1 == end {
            let run = serde_json::json!({
                "name": opts.name, "command": opts.command, "seed": opts.seed,
                "wall_time_s": wall_before + clock.elapsed().as_secs_f64(),
                "config": { "architecture": card.architecture, "training": card.training },
                "metrics": card.metrics, "history": history,
            });
            save_checkpoint(&opts.out_dir, &model, &adam, &card, &run, true)?;
        }
    }
    bar.finish_and_clear();
    Ok((model, card))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_walk_through_seeded_epoch_orders() {
        // 10 contexts, batch 4: steps 0-1 take epoch 0's first 8, step 2 its last 2 and
        // epoch 1's first 2.
        let all: Vec<usize> = (0..5).flat_map(|s| step_rows(7, s, 4, 10)).collect();
        let mut first: Vec<usize> = all[..10].to_vec();
        first.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        assert_ne!(all[..10], all[10..20]);
        assert_eq!(step_rows(7, 2, 4, 10), all[8..12]);
    }

    /// Row blocks weight each block's mean loss by its share of the rows: two shards give the
    /// loss and the gradients of one.
    #[test]
    fn sharded_gradients_equal_unsharded_ones() {
        use rand::{Rng, SeedableRng};
        let dev = crate::tensor::train_device();
        let arch = Architecture::Transformer(crate::model::TransformerConfig::gpt_style(2, 16, 2, 24, 29, 8));
        let model = Model::init(arch, 3, &dev).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // Five contexts: the two shards hold 2 and 3 of them.
        let data = Contexts { n_ctx: 8, tokens: (0..5 * 9).map(|_| rng.random_range(0..29u32)).collect() };
        let (x, y) = data.batch(&[0, 1, 2, 3, 4], &dev);
        let (one, one_blocks) = lm_gradients(&model, x.clone(), y.clone(), 1, 29);
        let (two, two_blocks) = lm_gradients(&model, x, y, 2, 29);
        assert_eq!(two_blocks.len(), 2);
        assert!((one - two).abs() < 1e-6, "loss {one} vs {two}");
        for (a, b) in crate::train::optim::weighted_sum(&one_blocks).iter().zip(&crate::train::optim::weighted_sum(&two_blocks)) {
            let worst = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(worst < 1e-6, "gradients differ by {worst}");
        }
    }

    #[test]
    fn warmup_then_linear_decay() {
        let cfg = LmConfig { steps: 12, batch_size: 1, lr: 1.0, optim: OptimConfig::default(), warmup_steps: 2, decay: Decay::Linear, min_lr: 0.0, clip_grad_norm: None, eval_every: 1, shards: 1 };
        assert_eq!(cfg.lr_at(0), 0.5);
        assert_eq!(cfg.lr_at(2), 1.0);
        assert!((cfg.lr_at(7) - 0.5).abs() < 1e-12);
        assert!((cfg.lr_at(11) - 0.1).abs() < 1e-12, "the last step");
    }
}
