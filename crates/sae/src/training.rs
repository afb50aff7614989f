//! Training a TopK or BatchTopK SAE on batches of activations with SAELens's recipe, for
//! activations streamed from a store or a model (any number of tokens; nothing is held but the
//! batch).
//!
//! The recipe (SAELens 6 `TopKTrainingSAE` / `BatchTopKTrainingSAE`):
//! - decoder rows random with norm 0.1, encoder = decoderᵀ, biases 0; b_dec is subtracted from
//!   the input before encoding;
//! - latents are chosen by `pre · ‖W_dec[i]‖` (the decoder-norm rescaling): per row the k
//!   largest (TopK), or the `k · rows` largest of the whole batch (BatchTopK), kept if positive;
//!   the reconstruction is `b_dec + Σ relu(pre_i) W_dec[i]` over them;
//! - loss = ‖x − x̂‖² summed over the width, mean over rows, plus AuxK when latents are dead
//!   (none fired for `dead_feature_window` steps): the top `d_in / 2` dead pre-activations of each
//!   row (no ReLU) reconstruct the detached residual, weighted by min(dead / (d_in / 2), 1);
//! - gradients clipped to global norm 1, Adam (0.9, 0.999, eps 1e-8), lr 3e-4;
//! - BatchTopK learns a threshold: after each step θ ← 0.99 θ + 0.01 · (smallest positive
//!   latent of the batch); it is saved as a JumpReLU SAE with that threshold.
//!
//! The encoder is kept as rows `[d_sae, d_in]` (its transpose on disk) so that both weight
//! gradients are sums of scaled input rows per latent, computed sparsely.

use crate::saelens::{Architecture, Sae};
use glassbox_core::train::optim::{clip_grad_norm, Adam, OptimConfig, OptimKind};
use glassbox_lm::ops::{matmul_add, Strided};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::Map;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainArchitecture {
    TopK { k: usize },
    BatchTopK { k: usize },
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub d_in: usize,
    pub d_sae: usize,
    pub architecture: TrainArchitecture,
    pub lr: f64,
    pub aux_coefficient: f32,
    /// Steps without firing after which a latent counts as dead (SAELens: 1000).
    pub dead_feature_window: u64,
    pub decoder_init_norm: f32,
    pub threshold_lr: f64,
    pub seed: u64,
}

impl TrainConfig {
    pub fn new(d_in: usize, d_sae: usize, architecture: TrainArchitecture) -> Self {
        TrainConfig {
            d_in,
            d_sae,
            architecture,
            lr: 3e-4,
            aux_coefficient: 1.0,
            dead_feature_window: 1000,
            decoder_init_norm: 0.1,
            threshold_lr: 0.01,
            seed: 0,
        }
    }
}

/// What one step measured (before its update).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepStats {
    /// ‖x − x̂‖² summed over the width, mean over rows.
    pub mse_loss: f64,
    pub aux_loss: f64,
    /// Active latents per row.
    pub l0: f64,
    /// SAELens's training-log form: 1 − mean ‖x − x̂‖² / mean ‖x − mean_batch(x)‖².
    pub explained_variance: f64,
    /// Latents dead at the start of the step.
    pub dead: usize,
}

/// Parameter order in `Trainer::params` and the gradients.
const W_ENC: usize = 0; // [d_sae, d_in]: encoder rows
const B_ENC: usize = 1;
const W_DEC: usize = 2; // [d_sae, d_in]
const B_DEC: usize = 3;

pub struct Trainer {
    pub config: TrainConfig,
    pub params: Vec<Vec<f32>>,
    pub adam: Adam,
    pub steps_since_fired: Vec<u64>,
    /// BatchTopK's learned threshold (in decoder-norm-rescaled units).
    pub threshold: f64,
    pub step: u64,
}

/// Active latents of one row: (latent, pre-activation).
type RowLatents = Vec<(u32, f32)>;

impl Trainer {
    pub fn new(config: TrainConfig) -> Trainer {
        let (d, m) = (config.d_in, config.d_sae);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut w_dec: Vec<f32> = (0..m * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        for row in w_dec.chunks_mut(d) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            row.iter_mut().for_each(|v| *v *= config.decoder_init_norm / norm);
        }
        let params = vec![w_dec.clone(), vec![0.0; m], w_dec, vec![0.0; d]];
        let adam = Adam::new(OptimConfig { kind: OptimKind::Adam, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }, &[m * d, m, m * d, d]);
        Trainer { config, params, adam, steps_since_fired: vec![0; m], threshold: 0.0, step: 0 }
    }

    fn decoder_norms(&self) -> Vec<f32> {
        self.params[W_DEC].chunks(self.config.d_in).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect()
    }

    fn dead_mask(&self) -> Vec<bool> {
        self.steps_since_fired.iter().map(|&s| s > self.config.dead_feature_window).collect()
    }

    /// Loss and gradients of one batch (`rows` rows of `x`), given which latents are dead; also
    /// the active latents of every row. Changes nothing.
    pub fn loss_and_gradients(&self, x: &[f32], rows: usize, dead: &[bool]) -> (StepStats, Vec<Vec<f32>>, Vec<RowLatents>) {
        let (d, m) = (self.config.d_in, self.config.d_sae);
        assert_eq!(x.len(), rows * d, "training batch: {} values for {rows} rows of {d}", x.len());
        let p = &self.params;
        let (w_enc, b_enc, w_dec, b_dec) = (&p[W_ENC], &p[B_ENC], &p[W_DEC], &p[B_DEC]);
        let xc: Vec<f32> = x.chunks(d).flat_map(|r| r.iter().zip(b_dec).map(|(v, b)| v - b)).collect();
        let mut pre = b_enc.repeat(rows);
        matmul_add(&mut pre, m, Strided::rows(&xc, d), Strided::transposed(w_enc, d), rows, m, d, true);
        let norms = self.decoder_norms();
        let active = self.select(&pre, rows, &norms);

        // Reconstructions and the main loss.
        let decode = |latents: &[(u32, f32)], base: &[f32]| -> Vec<f32> {
            let mut out = base.to_vec();
            for &(i, a) in latents {
                out.iter_mut().zip(&w_dec[i as usize * d..][..d]).for_each(|(o, w)| *o += a * w);
            }
            out
        };
        let errors: Vec<f32> = (0..rows)
            .into_par_iter()
            .flat_map_iter(|r| {
                let out = decode(&active[r], b_dec);
                out.into_iter().zip(&x[r * d..(r + 1) * d]).map(|(o, &v)| o - v).collect::<Vec<_>>()
            })
            .collect();
        let sq = |v: &[f32]| v.iter().map(|&e| e as f64 * e as f64).sum::<f64>();
        let mse_loss = errors.chunks(d).map(sq).sum::<f64>() / rows as f64;
        let mean: Vec<f64> = (0..d).map(|c| (0..rows).map(|r| x[r * d + c] as f64).sum::<f64>() / rows as f64).collect();
        let spread = (0..rows).map(|r| (0..d).map(|c| (x[r * d + c] as f64 - mean[c]).powi(2)).sum::<f64>()).sum::<f64>() / rows as f64;
        let scale_out = 2.0 / rows as f32;
        let g_out: Vec<f32> = errors.iter().map(|e| scale_out * e).collect();

        // AuxK over the dead latents.
        let n_dead = dead.iter().filter(|&&x| x).count();
        let (aux_latents, g_aux, aux_loss) = if n_dead > 0 && self.config.aux_coefficient > 0.0 {
            let k_aux_full = (d / 2).max(1);
            let weight = self.config.aux_coefficient * (n_dead as f32 / k_aux_full as f32).min(1.0);
            let k_aux = k_aux_full.min(n_dead);
            let aux: Vec<RowLatents> = (0..rows)
                .into_par_iter()
                .map(|r| top_k_where(&pre[r * m..(r + 1) * m], &norms, k_aux, |i| dead[i]))
                .collect();
            let zero = vec![0f32; d];
            // aux_r − residual_r = aux_r + error_r (the residual x − x̂ is detached).
            let diffs: Vec<f32> = (0..rows)
                .into_par_iter()
                .flat_map_iter(|r| decode(&aux[r], &zero).into_iter().zip(&errors[r * d..(r + 1) * d]).map(|(a, e)| a + e).collect::<Vec<_>>())
                .collect();
            let loss = weight as f64 * diffs.chunks(d).map(sq).sum::<f64>() / rows as f64;
            let g: Vec<f32> = diffs.iter().map(|v| weight * scale_out * v).collect();
            (aux, g, loss)
        } else {
            (vec![Vec::new(); rows], Vec::new(), 0.0)
        };

        // Gradients of the pre-activations, per (row, latent): the decoder row against the
        // output gradient (main and aux paths).
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let g_pre: Vec<Vec<(u32, f32, f32)>> = (0..rows)
            .into_par_iter()
            .map(|r| {
                let mut out = Vec::with_capacity(active[r].len() + aux_latents[r].len());
                for &(i, a) in &active[r] {
                    out.push((i, a, dot(&g_out[r * d..(r + 1) * d], &w_dec[i as usize * d..][..d])));
                }
                for &(i, a) in &aux_latents[r] {
                    out.push((i, a, dot(&g_aux[r * d..(r + 1) * d], &w_dec[i as usize * d..][..d])));
                }
                out
            })
            .collect();

        // Per latent: (row, pre-activation, d pre, which output gradient) — the sparse transpose.
        let mut by_latent: Vec<Vec<(u32, f32, f32, bool)>> = vec![Vec::new(); m];
        for (r, entries) in g_pre.iter().enumerate() {
            let n_main = active[r].len();
            for (j, &(i, a, g)) in entries.iter().enumerate() {
                by_latent[i as usize].push((r as u32, a, g, j >= n_main));
            }
        }
        let mut grads = vec![vec![0f32; m * d], vec![0f32; m], vec![0f32; m * d], vec![0f32; d]];
        {
            let (enc_and_b, rest) = grads.split_at_mut(W_DEC);
            let (g_w_enc, g_b_enc) = enc_and_b.split_at_mut(B_ENC);
            g_w_enc[0]
                .par_chunks_mut(d)
                .zip(rest[0].par_chunks_mut(d))
                .zip(g_b_enc[0].par_iter_mut())
                .zip(&by_latent)
                .for_each(|(((ge, gd), gb), entries)| {
                    for &(r, a, g, aux) in entries {
                        let r = r as usize;
                        ge.iter_mut().zip(&xc[r * d..(r + 1) * d]).for_each(|(o, v)| *o += g * v);
                        *gb += g;
                        let g_row = if aux { &g_aux[r * d..(r + 1) * d] } else { &g_out[r * d..(r + 1) * d] };
                        gd.iter_mut().zip(g_row).for_each(|(o, v)| *o += a * v);
                    }
                });
        }
        // b_dec: added to the output, subtracted from the input.
        let mut g_b_dec: Vec<f32> = (0..d).map(|c| (0..rows).map(|r| g_out[r * d + c]).sum()).collect();
        for (i, row) in w_enc.chunks(d).enumerate() {
            let gb = grads[B_ENC][i];
            if gb != 0.0 {
                g_b_dec.iter_mut().zip(row).for_each(|(o, w)| *o -= gb * w);
            }
        }
        grads[B_DEC] = g_b_dec;
        let l0 = active.iter().map(Vec::len).sum::<usize>() as f64 / rows as f64;
        let explained_variance = 1.0 - mse_loss / spread.max(1e-30);
        (StepStats { mse_loss, aux_loss, l0, explained_variance, dead: n_dead }, grads, active)
    }

    /// The active latents of every row (see the module documentation).
    fn select(&self, pre: &[f32], rows: usize, norms: &[f32]) -> Vec<RowLatents> {
        let m = self.config.d_sae;
        match self.config.architecture {
            TrainArchitecture::TopK { k } => (0..rows)
                .into_par_iter()
                .map(|r| top_k_where(&pre[r * m..(r + 1) * m], norms, k, |_| true).into_iter().filter(|&(_, a)| a > 0.0).collect())
                .collect(),
            TrainArchitecture::BatchTopK { k } => {
                // The k·rows largest rescaled positive pre-activations of the whole batch.
                let mut all: Vec<(f32, u32, u32)> = Vec::new();
                for r in 0..rows {
                    for (i, (&a, &n)) in pre[r * m..(r + 1) * m].iter().zip(norms).enumerate() {
                        if a > 0.0 {
                            all.push((a * n, r as u32, i as u32));
                        }
                    }
                }
                let keep = (k * rows).min(all.len());
                if keep < all.len() && keep > 0 {
                    all.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
                }
                all.truncate(keep);
                let mut per_row: Vec<RowLatents> = vec![Vec::new(); rows];
                for (_, r, i) in all {
                    per_row[r as usize].push((i, pre[r as usize * m + i as usize]));
                }
                per_row
            }
        }
    }

    /// One training step on `rows` rows of `x`.
    pub fn step(&mut self, x: &[f32], rows: usize) -> StepStats {
        let dead = self.dead_mask();
        let norms = self.decoder_norms();
        let (stats, mut grads, active) = self.loss_and_gradients(x, rows, &dead);
        clip_grad_norm(&mut grads, 1.0);
        self.adam.update(&mut self.params, &grads, self.config.lr);
        self.step += 1;
        self.steps_since_fired.iter_mut().for_each(|s| *s += 1);
        for row in &active {
            for &(i, _) in row {
                self.steps_since_fired[i as usize] = 0;
            }
        }
        if let TrainArchitecture::BatchTopK { .. } = self.config.architecture {
            // Smallest positive latent of the batch, in the units latents are chosen in
            // (pre · ‖W_dec[i]‖ with the decoder the batch saw).
            let smallest = active.iter().flatten().map(|&(i, a)| a as f64 * norms[i as usize] as f64).fold(f64::INFINITY, f64::min);
            if smallest.is_finite() {
                self.threshold = (1.0 - self.config.threshold_lr) * self.threshold + self.config.threshold_lr * smallest;
            }
        }
        stats
    }

    /// The trained SAE as it is shared: decoder rows scaled to norm 1 with the norms folded into
    /// the encoder (rows and bias), so that choosing by `pre · ‖W_dec[i]‖` becomes choosing by
    /// `pre`; TopK keeps `rescale_acts_by_decoder_norm` (a no-op at norm 1), BatchTopK becomes
    /// JumpReLU with its threshold on every latent.
    pub fn to_sae(&self, metadata: Map<String, serde_json::Value>) -> Sae {
        let (d, m) = (self.config.d_in, self.config.d_sae);
        let p = &self.params;
        let norms: Vec<f32> = self.decoder_norms().into_iter().map(|n| n.max(1e-12)).collect();
        let w_dec: Vec<f32> = p[W_DEC].chunks(d).zip(&norms).flat_map(|(r, n)| r.iter().map(move |v| v / n)).collect();
        let mut w_enc = vec![0f32; d * m];
        for (i, row) in p[W_ENC].chunks(d).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                w_enc[c * m + i] = v * norms[i];
            }
        }
        let b_enc = p[B_ENC].iter().zip(&norms).map(|(b, n)| b * n).collect();
        let architecture = match self.config.architecture {
            TrainArchitecture::TopK { k } => Architecture::TopK { k, rescale_acts_by_decoder_norm: true },
            TrainArchitecture::BatchTopK { .. } => Architecture::JumpRelu { threshold: vec![self.threshold as f32; m] },
        };
        Sae { architecture, d_in: d, d_sae: m, w_enc, b_enc, w_dec, b_dec: p[B_DEC].clone(), apply_b_dec_to_input: true, metadata }
    }
}

/// The k entries of `pre` with the largest `pre · norm` among those `allowed`, as
/// (latent, pre-activation), largest first (ties to the lower index).
fn top_k_where(pre: &[f32], norms: &[f32], k: usize, allowed: impl Fn(usize) -> bool) -> RowLatents {
    let mut cand: Vec<(f32, u32)> = pre.iter().zip(norms).enumerate().filter(|&(i, _)| allowed(i)).map(|(i, (&a, &n))| (a * n, i as u32)).collect();
    let by = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k < cand.len() && k > 0 {
        cand.select_nth_unstable_by(k - 1, by);
        cand.truncate(k);
    }
    cand.truncate(k);
    cand.sort_by(by);
    cand.into_iter().map(|(_, i)| (i, pre[i as usize])).collect()
}

