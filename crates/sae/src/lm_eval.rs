//! SAELens's `run_evals` for an SAE at a language model's hook: how well it reconstructs the
//! activations, how sparse it is, and what splicing it in costs the model's next-token
//! predictions. Names and definitions follow SAELens (`sae_lens/evals.py`):
//!
//! - `explained_variance` = 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) over all evaluated tokens;
//! - `mse` = mean over tokens of ‖x − x̂‖² (summed over the hook's width); `cossim`, `l2_norm_in`,
//!   `l2_norm_out` and `l2_ratio` = ‖x̂‖ / ‖x‖ (‖x‖ below 1e-4 counted as 1), means over tokens;
//! - `l0`, `l1`: active latents and Σ|a| per token, means;
//! - `ce_loss_score` = (CE_ablation − CE_sae) / (CE_ablation − CE_clean), the ablation being zero
//!   at the hook; `kl_div_score` = (KL_ablation − KL_sae) / KL_ablation, KL from the clean
//!   next-token distribution; CE and KL are means over predicted tokens.
//!
//! Tokens whose input is a special token (BOS, EOS, padding, CLS, SEP), and optionally the first
//! positions of each context, are left out, and keep their original activation when the SAE is
//! spliced in, as SAELens does by default. SAELens has
//! no dead or dense fraction among its evals; here a latent is dead when it fires on no evaluated
//! token and dense when it fires on more than 10 % of them.

use crate::saelens::Sae;
use crate::{Error, Result};
use glassbox_lm::{Batch, HookTensor, Hooks, Intervention, LoadedModel, Logits};
use rayon::prelude::*;
use serde::Serialize;

/// A latent firing on more than this share of tokens counts as dense.
pub const DENSE_SHARE: f64 = 0.1;

/// Rows of logits formed at once: `[rows, vocab]` stays small for large vocabularies.
const LOGIT_ROWS: usize = 256;

/// The evaluation's results, under SAELens's names.
#[derive(Clone, Debug, Serialize)]
pub struct SaeEval {
    pub hook_name: String,
    pub tokens: usize,
    pub explained_variance: f64,
    pub mse: f64,
    pub cossim: f64,
    pub l2_norm_in: f64,
    pub l2_norm_out: f64,
    pub l2_ratio: f64,
    pub l0: f64,
    pub l1: f64,
    /// Tokens the firing shares (dead and dense fractions, feature density) are counted over:
    /// the evaluated tokens and any given for density alone.
    pub density_tokens: usize,
    pub dead_fraction: f64,
    pub dense_fraction: f64,
    /// Share of tokens on which each latent fires.
    #[serde(skip)]
    pub feature_density: Vec<f64>,
    /// Next-token metrics; `None` for models without an unembedding (BERT encoders).
    pub predictions: Option<PredictionEval>,
    /// For encoders instead: what splicing does to the mean-pooled output embedding.
    pub embedding: Option<EmbeddingEval>,
}

/// An encoder's output embedding per context (the last hidden state averaged over the
/// context's tokens, as sentence-transformers pools, L2-normalised), with the SAE spliced in
/// and with the hook zero-ablated, against the clean one. Not a SAELens metric: SAELens only
/// evaluates language models with an unembedding. `embedding_score` = (cos_sae − cos_ablation)
/// / (1 − cos_ablation), 1 when the SAE leaves the embedding unchanged, 0 when it does no better
/// than ablation.
#[derive(Clone, Debug, Serialize)]
pub struct EmbeddingEval {
    pub contexts: usize,
    pub embedding_cossim_with_sae: f64,
    pub embedding_cossim_with_ablation: f64,
    pub embedding_score: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PredictionEval {
    pub predicted_tokens: usize,
    pub ce_loss_without_sae: f64,
    pub ce_loss_with_sae: f64,
    pub ce_loss_with_ablation: f64,
    pub ce_loss_score: f64,
    pub kl_div_with_sae: f64,
    pub kl_div_with_ablation: f64,
    pub kl_div_score: f64,
}

/// Running sums of the reconstruction and sparsity metrics (f64, streamed over batches).
#[derive(Clone, Debug)]
pub struct ReconstructionStats {
    d_in: usize,
    tokens: usize,
    sum_x: Vec<f64>,
    sum_sq_norm: f64,
    sum_sq_residual: f64,
    sum_cossim: f64,
    sum_norm_in: f64,
    sum_norm_out: f64,
    sum_ratio: f64,
    sum_l0: f64,
    sum_l1: f64,
    fired: Vec<u64>,
    /// Tokens counted in `fired` only.
    density_only: usize,
}

impl ReconstructionStats {
    pub fn new(d_in: usize, d_sae: usize) -> Self {
        ReconstructionStats {
            d_in,
            tokens: 0,
            sum_x: vec![0.0; d_in],
            sum_sq_norm: 0.0,
            sum_sq_residual: 0.0,
            sum_cossim: 0.0,
            sum_norm_in: 0.0,
            sum_norm_out: 0.0,
            sum_ratio: 0.0,
            sum_l0: 0.0,
            sum_l1: 0.0,
            fired: vec![0; d_sae],
            density_only: 0,
        }
    }

    /// One token's latents, for the firing shares only.
    pub fn add_density(&mut self, acts: &[f32]) {
        self.density_only += 1;
        self.fired.iter_mut().zip(acts).filter(|(_, &a)| a != 0.0).for_each(|(f, _)| *f += 1);
    }

    /// One token: its activation `x`, latents `acts` and reconstruction `recon`.
    pub fn add(&mut self, x: &[f32], acts: &[f32], recon: &[f32]) {
        debug_assert_eq!((x.len(), recon.len(), acts.len()), (self.d_in, self.d_in, self.fired.len()));
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
        let (xx, rr, xr) = (dot(x, x), dot(recon, recon), dot(x, recon));
        let (norm_in, norm_out) = (xx.sqrt(), rr.sqrt());
        self.tokens += 1;
        self.sum_x.iter_mut().zip(x).for_each(|(s, &v)| *s += v as f64);
        self.sum_sq_norm += xx;
        self.sum_sq_residual += x.iter().zip(recon).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>();
        self.sum_cossim += xr / (norm_in * norm_out);
        self.sum_norm_in += norm_in;
        self.sum_norm_out += norm_out;
        self.sum_ratio += norm_out / if norm_in < 1e-4 { 1.0 } else { norm_in };
        for (f, &a) in self.fired.iter_mut().zip(acts) {
            if a != 0.0 {
                *f += 1;
                self.sum_l0 += 1.0;
                self.sum_l1 += a.abs() as f64;
            }
        }
    }

    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// (explained_variance, mse, cossim, l2_norm_in, l2_norm_out, l2_ratio, l0, l1) and the
    /// per-latent firing shares.
    fn finish(&self, hook_name: &str, predictions: Option<PredictionEval>) -> SaeEval {
        let n = self.tokens.max(1) as f64;
        let total_variance = self.sum_sq_norm / n - self.sum_x.iter().map(|s| (s / n).powi(2)).sum::<f64>();
        let mse = self.sum_sq_residual / n;
        // SAELens's convention for inputs without variance.
        let explained_variance = if total_variance < 1e-10 {
            if mse < 1e-10 {
                1.0
            } else {
                0.0
            }
        } else {
            1.0 - mse / total_variance
        };
        let density_tokens = self.tokens + self.density_only;
        let feature_density: Vec<f64> = self.fired.iter().map(|&f| f as f64 / density_tokens.max(1) as f64).collect();
        let share = |pred: &dyn Fn(f64) -> bool| feature_density.iter().filter(|&&d| pred(d)).count() as f64 / feature_density.len().max(1) as f64;
        SaeEval {
            hook_name: hook_name.to_string(),
            tokens: self.tokens,
            explained_variance,
            mse,
            cossim: self.sum_cossim / n,
            l2_norm_in: self.sum_norm_in / n,
            l2_norm_out: self.sum_norm_out / n,
            l2_ratio: self.sum_ratio / n,
            l0: self.sum_l0 / n,
            l1: self.sum_l1 / n,
            density_tokens,
            dead_fraction: share(&|d| d == 0.0),
            dense_fraction: share(&|d| d > DENSE_SHARE),
            feature_density,
            predictions,
            embedding: None,
        }
    }
}

/// Sums of the next-token metrics.
#[derive(Clone, Debug, Default)]
struct PredictionSums {
    tokens: usize,
    ce: [f64; 3],
    kl: [f64; 2],
}

/// Evaluate `sae` at `hook` of `model` on `contexts` (token ids, each run as one sequence),
/// `batch_contexts` at a time, leaving out special tokens and the first `skip_first` positions
/// of every context (SAELens's `seqpos_slice`; see `ShuffledBatches::skipping_first_positions`);
/// `progress` is told the contexts done so far.
pub fn evaluate(model: &LoadedModel, sae: &Sae, hook: &str, contexts: &[Vec<u32>], batch_contexts: usize, skip_first: usize, progress: impl FnMut(usize)) -> Result<SaeEval> {
    evaluate_with_density(model, sae, hook, contexts, &[], batch_contexts, skip_first, progress)
}

/// `evaluate`, with the firing shares (dead and dense fractions) also counted over
/// `density_contexts`, which run only as far as the hook: a latent that fires once in 100,000
/// tokens looks dead on a few thousand. `progress` counts both kinds of contexts.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with_density(
    model: &LoadedModel,
    sae: &Sae,
    hook: &str,
    contexts: &[Vec<u32>],
    density_contexts: &[Vec<u32>],
    batch_contexts: usize,
    skip_first: usize,
    mut progress: impl FnMut(usize),
) -> Result<SaeEval> {
    let (config, transformer) = (&model.model.config, &model.model);
    let special: Vec<u32> = model.tokenizer.special_ids().to_vec();
    let mut stats = ReconstructionStats::new(sae.d_in, sae.d_sae);
    let mut sums = PredictionSums::default();
    let (mut embedding_sums, mut embedded) = ([0f64; 2], 0usize);
    let with_logits = config.has_unembed();
    let mut done = 0;
    for group in contexts.chunks(batch_contexts.max(1)) {
        let batch = Batch::new(group);
        let keep: Vec<bool> = (0..batch.n_sequences())
            .flat_map(|s| batch.range(s).enumerate().map(|(pos, i)| (pos, batch.tokens[i])).collect::<Vec<_>>())
            .map(|(pos, t)| pos >= skip_first && !special.contains(&t))
            .collect();
        let mut hooks = Hooks::capture(config, [hook]).map_err(lm_error)?;
        let clean = transformer.forward(&batch, &mut hooks, Logits::None).map_err(lm_error)?;
        let x = hooks.take_cache().remove(hook).expect("the captured hook");
        let width = x.row_len();
        if width != sae.d_in {
            return Err(Error::invalid(format!("the SAE reads {} values per token but hook {hook} has {width} (shape {:?})", sae.d_in, &x.shape[1..])));
        }
        let rows = batch.n_tokens();
        let acts = sae.encode(&x.data, rows);
        let recon = sae.decode(&acts, rows);
        for r in (0..rows).filter(|&r| keep[r]) {
            let (d, m) = (sae.d_in, sae.d_sae);
            stats.add(&x.data[r * d..][..d], &acts[r * m..][..m], &recon[r * d..][..d]);
        }
        if with_logits {
            let [sae_run, ablation_run] = spliced_runs(model, &batch, hook, &x, &recon, &keep)?;
            add_predictions(model, &batch, &keep, [&clean.hidden, &sae_run.hidden, &ablation_run.hidden], &mut sums);
        } else {
            let [sae_run, ablation_run] = spliced_runs(model, &batch, hook, &x, &recon, &keep)?;
            let pooled = |hidden: &[f32]| pooled_embeddings(hidden, &batch, config.d_model);
            let clean = pooled(&clean.hidden);
            for (e, other) in embedding_sums.iter_mut().zip([pooled(&sae_run.hidden), pooled(&ablation_run.hidden)]) {
                *e += clean.iter().zip(&other).map(|(a, b)| a.iter().zip(b).map(|(&a, &b)| a * b).sum::<f64>()).sum::<f64>();
            }
            embedded += batch.n_sequences();
        }
        done += group.len();
        progress(done);
    }
    for group in density_contexts.chunks(batch_contexts.max(1)) {
        let batch = Batch::new(group);
        let mut hooks = Hooks::capture(config, [hook]).map_err(lm_error)?;
        transformer.run_hooks(&batch, &mut hooks).map_err(lm_error)?;
        let x = hooks.take_cache().remove(hook).expect("the captured hook");
        if x.row_len() != sae.d_in {
            return Err(Error::invalid(format!("the SAE reads {} values per token but hook {hook} has {}", sae.d_in, x.row_len())));
        }
        let acts = sae.encode(&x.data, batch.n_tokens());
        for s in 0..batch.n_sequences() {
            for (pos, i) in batch.range(s).enumerate() {
                if pos >= skip_first && !special.contains(&batch.tokens[i]) {
                    stats.add_density(&acts[i * sae.d_sae..(i + 1) * sae.d_sae]);
                }
            }
        }
        done += group.len();
        progress(done);
    }
    let predictions = with_logits.then(|| {
        let n = sums.tokens.max(1) as f64;
        let [clean, with_sae, ablation] = sums.ce.map(|s| s / n);
        let [kl_sae, kl_ablation] = sums.kl.map(|s| s / n);
        PredictionEval {
            predicted_tokens: sums.tokens,
            ce_loss_without_sae: clean,
            ce_loss_with_sae: with_sae,
            ce_loss_with_ablation: ablation,
            ce_loss_score: (ablation - with_sae) / (ablation - clean),
            kl_div_with_sae: kl_sae,
            kl_div_with_ablation: kl_ablation,
            kl_div_score: (kl_ablation - kl_sae) / kl_ablation,
        }
    });
    let embedding = (!with_logits && embedded > 0).then(|| {
        let [with_sae, with_ablation] = embedding_sums.map(|s| s / embedded as f64);
        EmbeddingEval {
            contexts: embedded,
            embedding_cossim_with_sae: with_sae,
            embedding_cossim_with_ablation: with_ablation,
            embedding_score: (with_sae - with_ablation) / (1.0 - with_ablation),
        }
    });
    let mut result = stats.finish(hook, predictions);
    result.embedding = embedding;
    Ok(result)
}

/// The model run with the SAE's reconstruction spliced in at `hook` (kept tokens only) and with
/// the hook zero-ablated.
fn spliced_runs(model: &LoadedModel, batch: &Batch, hook: &str, x: &HookTensor, recon: &[f32], keep: &[bool]) -> Result<[glassbox_lm::Output; 2]> {
    let (config, width) = (&model.model.config, x.row_len());
    let spliced: Vec<f32> = x.data.chunks(width).zip(recon.chunks(width)).zip(keep).flat_map(|((orig, new), &k)| if k { new } else { orig }).copied().collect();
    let mut with_sae = Hooks::new();
    with_sae.intervene(config, hook, Intervention::Replace(HookTensor { shape: x.shape.clone(), data: spliced })).map_err(lm_error)?;
    let sae_run = model.model.forward(batch, &mut with_sae, Logits::None).map_err(lm_error)?;
    let mut ablated = Hooks::new();
    ablated.intervene(config, hook, Intervention::Zero).map_err(lm_error)?;
    let ablation_run = model.model.forward(batch, &mut ablated, Logits::None).map_err(lm_error)?;
    Ok([sae_run, ablation_run])
}

/// Per sequence: the mean of `hidden` over its tokens, L2-normalised (sentence-transformers'
/// mean pooling).
fn pooled_embeddings(hidden: &[f32], batch: &Batch, d: usize) -> Vec<Vec<f64>> {
    (0..batch.n_sequences())
        .map(|s| {
            let r = batch.range(s);
            let mut mean = vec![0f64; d];
            for row in hidden[r.start * d..r.end * d].chunks(d) {
                mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
            }
            let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-30);
            mean.into_iter().map(|v| v / norm).collect()
        })
        .collect()
}

fn lm_error(e: glassbox_lm::error::Error) -> Error {
    Error::invalid(e.to_string())
}

/// Next-token CE of the three runs (clean, SAE, ablation) and KL of the last two from the clean
/// one, at every position that has a next token in its sequence and a non-special input token.
fn add_predictions(model: &LoadedModel, batch: &Batch, keep: &[bool], hidden: [&Vec<f32>; 3], sums: &mut PredictionSums) {
    let d = model.model.config.d_model;
    let targets: Vec<(usize, u32)> = (0..batch.n_sequences())
        .flat_map(|s| {
            let r = batch.range(s);
            (r.start..r.end.saturating_sub(1)).map(|i| (i, batch.tokens[i + 1])).collect::<Vec<_>>()
        })
        .filter(|&(i, _)| keep[i])
        .collect();
    for chunk in targets.chunks(LOGIT_ROWS) {
        let gather = |h: &Vec<f32>| chunk.iter().flat_map(|&(i, _)| h[i * d..(i + 1) * d].iter().copied()).collect::<Vec<f32>>();
        let logits = hidden.map(|h| model.model.unembed(&gather(h)));
        let vocab = logits[0].len() / chunk.len();
        let per_row: Vec<([f64; 3], [f64; 2])> = (0..chunk.len())
            .into_par_iter()
            .map(|j| {
                let lp = logits.each_ref().map(|l| log_softmax(&l[j * vocab..(j + 1) * vocab]));
                let target = chunk[j].1 as usize;
                let ce = lp.each_ref().map(|l| -l[target]);
                let kl = |other: &[f64]| lp[0].iter().zip(other).map(|(&p, &q)| p.exp() * (p - q)).sum::<f64>();
                (ce, [kl(&lp[1]), kl(&lp[2])])
            })
            .collect();
        for (ce, kl) in per_row {
            sums.tokens += 1;
            sums.ce.iter_mut().zip(ce).for_each(|(s, v)| *s += v);
            sums.kl.iter_mut().zip(kl).for_each(|(s, v)| *s += v);
        }
    }
}

/// log softmax of a row of logits, in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let lse = glassbox_lm::ops::log_sum_exp(row);
    row.iter().map(|&v| v as f64 - lse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metrics against hand-computed values on two tokens.
    #[test]
    fn reconstruction_metrics_follow_their_definitions() {
        let mut s = ReconstructionStats::new(2, 3);
        // x = (3, 4), x̂ = (3, 0); x = (0, 2), x̂ = (0, 2).
        s.add(&[3.0, 4.0], &[1.0, 0.0, -2.0], &[3.0, 0.0]);
        s.add(&[0.0, 2.0], &[0.0, 0.0, 0.5], &[0.0, 2.0]);
        let e = s.finish("h", None);
        // E‖x‖² = (25 + 4) / 2 = 14.5; E x = (1.5, 3) → ‖E x‖² = 11.25; total variance 3.25.
        // E‖x − x̂‖² = 16 / 2 = 8.
        assert!((e.mse - 8.0).abs() < 1e-12);
        assert!((e.explained_variance - (1.0 - 8.0 / 3.25)).abs() < 1e-12);
        assert!((e.cossim - (0.6 + 1.0) / 2.0).abs() < 1e-12);
        assert!((e.l2_norm_in - 3.5).abs() < 1e-12 && (e.l2_norm_out - 2.5).abs() < 1e-12);
        assert!((e.l2_ratio - (0.6 + 1.0) / 2.0).abs() < 1e-12);
        assert!((e.l0 - 1.5).abs() < 1e-12 && (e.l1 - 1.75).abs() < 1e-12);
        assert_eq!(e.feature_density, vec![0.5, 0.0, 1.0]);
        assert!((e.dead_fraction - 1.0 / 3.0).abs() < 1e-12 && (e.dense_fraction - 2.0 / 3.0).abs() < 1e-12);
        // Two more tokens for the firing shares only: latent 1 fires once in four.
        s.add_density(&[0.0, 3.0, 0.0]);
        s.add_density(&[0.0, 0.0, 0.0]);
        let e = s.finish("h", None);
        assert_eq!((e.tokens, e.density_tokens), (2, 4));
        assert!((e.mse - 8.0).abs() < 1e-12 && (e.l0 - 1.5).abs() < 1e-12);
        assert_eq!(e.feature_density, vec![0.25, 0.25, 0.5]);
        assert!(e.dead_fraction == 0.0 && (e.dense_fraction - 1.0).abs() < 1e-12);
    }

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f64 = lp.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12 && (lp[2] - lp[1] - 1.0).abs() < 1e-12);
    }
}
