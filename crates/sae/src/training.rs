//! Training a TopK, BatchTopK, JumpReLU or ReLU-with-L1 SAE on batches of activations with
//! SAELens's recipe, for activations streamed from a store or a model (any number of tokens;
//! nothing is held but the batch).
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
//! JumpReLU (`JumpReLUTrainingSAE`, sparsity mode "step"): a learned threshold θ per latent
//! (start 0.01, kept ≥ 0), latent i active when pre_i > θ_i with value pre_i; loss = MSE +
//! c · mean over rows of the number of active latents. θ learns through the straight-through
//! estimator with the rectangle kernel of width `bandwidth` (0.05): for every pre-activation with
//! |pre − θ| < bandwidth / 2, dθ gets −(θ / bandwidth) · ∂L/∂act from the MSE and
//! −c / (bandwidth · rows) from the L0 term. No decoder-norm rescaling, no AuxK.
//!
//! Standard (`StandardTrainingSAE`): acts = relu(pre); loss = MSE + c · mean over rows of
//! Σ_i act_i ‖W_dec[i]‖ (the L1 penalty weighted by decoder norms). No AuxK.
//!
//! The sparsity coefficient c warms up linearly from 0 over `sparsity_warm_up_steps`. Inputs
//! may be multiplied by a constant `input_scale` (SAELens's `expected_average_only_in`
//! normalisation, √d_in / mean ‖x‖); the saved SAE has it folded into its weights.
//!
//! The encoder is kept as rows `[d_sae, d_in]` (its transpose on disk) so that both weight
//! gradients are sums of scaled input rows per latent, computed sparsely.

use crate::saelens::{Architecture, Sae};
use crate::{Error, Result};
use glassbox_core::io::{write_f32, HostTensor, SafetensorsFile};
use glassbox_core::train::optim::{clip_grad_norm, Adam, OptimConfig, OptimKind};
use glassbox_lm::ops::{matmul_add, matmul_new, Strided};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TrainArchitecture {
    TopK { k: usize },
    BatchTopK { k: usize },
    /// `l0_coefficient` c, `bandwidth` of the straight-through estimator, threshold at the start.
    JumpRelu { l0_coefficient: f32, bandwidth: f32, init_threshold: f32 },
    /// ReLU with the decoder-norm-weighted L1 penalty c.
    Standard { l1_coefficient: f32 },
}

impl TrainArchitecture {
    /// SAELens's defaults: bandwidth 0.05, threshold 0.01 at the start.
    pub fn jumprelu(l0_coefficient: f32) -> Self {
        TrainArchitecture::JumpRelu { l0_coefficient, bandwidth: 0.05, init_threshold: 0.01 }
    }

    fn sparsity_coefficient(&self) -> f32 {
        match *self {
            TrainArchitecture::JumpRelu { l0_coefficient, .. } => l0_coefficient,
            TrainArchitecture::Standard { l1_coefficient } => l1_coefficient,
            _ => 0.0,
        }
    }
}

/// How the weight gradients are computed: per latent over the rows where it fired, or with
/// dense matrices and GEMMs; `Auto` picks sparse when under 1/16 of the (row, latent) pairs fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientPath {
    Auto,
    Sparse,
    Dense,
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
    /// Steps over which the sparsity coefficient grows linearly from 0 (SAELens: 0).
    pub sparsity_warm_up_steps: u64,
    pub gradient_path: GradientPath,
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
            sparsity_warm_up_steps: 0,
            gradient_path: GradientPath::Auto,
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
    /// The L0 (JumpReLU) or L1 (standard) penalty, coefficient included.
    pub sparsity_loss: f64,
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
const THRESHOLD: usize = 4; // JumpReLU only

pub struct Trainer {
    pub config: TrainConfig,
    pub params: Vec<Vec<f32>>,
    pub adam: Adam,
    pub steps_since_fired: Vec<u64>,
    /// BatchTopK's learned threshold (in decoder-norm-rescaled units).
    pub threshold: f64,
    pub step: u64,
    /// Every input is multiplied by this before the SAE sees it (1: no normalisation).
    pub input_scale: f32,
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
        let mut params = vec![w_dec.clone(), vec![0.0; m], w_dec, vec![0.0; d]];
        if let TrainArchitecture::JumpRelu { init_threshold, .. } = config.architecture {
            params.push(vec![init_threshold; m]);
        }
        let sizes: Vec<usize> = params.iter().map(Vec::len).collect();
        let adam = Adam::new(OptimConfig { kind: OptimKind::Adam, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }, &sizes);
        Trainer { config, params, adam, steps_since_fired: vec![0; m], threshold: 0.0, step: 0, input_scale: 1.0 }
    }

    /// The sparsity coefficient at the current step, after its linear warm-up.
    pub fn sparsity_coefficient(&self) -> f32 {
        let c = self.config.architecture.sparsity_coefficient();
        let warm = self.config.sparsity_warm_up_steps;
        if warm > 0 && self.step < warm {
            c * self.step as f32 / warm as f32
        } else {
            c
        }
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
        // Many latents firing (JumpReLU or ReLU early in training): decode and backpropagate
        // through dense matrices and GEMMs rather than latent by latent.
        let dense = match self.config.gradient_path {
            GradientPath::Auto => active.iter().map(Vec::len).sum::<usize>() * 16 > rows * m,
            path => path == GradientPath::Dense,
        };
        let dense_acts = dense.then(|| {
            let mut a = vec![0f32; rows * m];
            for (r, latents) in active.iter().enumerate() {
                latents.iter().for_each(|&(i, v)| a[r * m + i as usize] = v);
            }
            a
        });

        // Reconstructions and the main loss.
        let decode = |latents: &[(u32, f32)], base: &[f32]| -> Vec<f32> {
            let mut out = base.to_vec();
            for &(i, a) in latents {
                out.iter_mut().zip(&w_dec[i as usize * d..][..d]).for_each(|(o, w)| *o += a * w);
            }
            out
        };
        let errors: Vec<f32> = match &dense_acts {
            Some(a) => {
                let mut out = b_dec.repeat(rows);
                matmul_add(&mut out, d, Strided::rows(a, m), Strided::rows(w_dec, d), rows, d, m, true);
                out.iter_mut().zip(x).for_each(|(o, v)| *o -= v);
                out
            }
            None => (0..rows)
                .into_par_iter()
                .flat_map_iter(|r| {
                    let out = decode(&active[r], b_dec);
                    out.into_iter().zip(&x[r * d..(r + 1) * d]).map(|(o, &v)| o - v).collect::<Vec<_>>()
                })
                .collect(),
        };
        let sq = |v: &[f32]| v.iter().map(|&e| e as f64 * e as f64).sum::<f64>();
        let mse_loss = errors.chunks(d).map(sq).sum::<f64>() / rows as f64;
        let mean: Vec<f64> = (0..d).map(|c| (0..rows).map(|r| x[r * d + c] as f64).sum::<f64>() / rows as f64).collect();
        let spread = (0..rows).map(|r| (0..d).map(|c| (x[r * d + c] as f64 - mean[c]).powi(2)).sum::<f64>()).sum::<f64>() / rows as f64;
        let scale_out = 2.0 / rows as f32;
        let g_out: Vec<f32> = errors.iter().map(|e| scale_out * e).collect();
        let coefficient = self.sparsity_coefficient();
        let sparsity_loss = match self.config.architecture {
            TrainArchitecture::JumpRelu { .. } => coefficient as f64 * active.iter().map(Vec::len).sum::<usize>() as f64 / rows as f64,
            TrainArchitecture::Standard { .. } => {
                coefficient as f64 * active.iter().flatten().map(|&(i, a)| a as f64 * norms[i as usize] as f64).sum::<f64>() / rows as f64
            }
            _ => 0.0,
        };
        // ∂(L1 penalty)/∂act_i = c ‖W_dec[i]‖ / rows (standard only).
        let l1_grad = |i: u32| match self.config.architecture {
            TrainArchitecture::Standard { .. } => coefficient * norms[i as usize] / rows as f32,
            _ => 0.0,
        };

        // AuxK over the dead latents.
        let n_dead = dead.iter().filter(|&&x| x).count();
        let uses_aux = matches!(self.config.architecture, TrainArchitecture::TopK { .. } | TrainArchitecture::BatchTopK { .. });
        let (aux_latents, g_aux, aux_loss) = if uses_aux && n_dead > 0 && self.config.aux_coefficient > 0.0 {
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
        // Dense: ∂L/∂act for every (row, latent) at once, g_out · W_decᵀ.
        let g_acts = dense.then(|| matmul_new(Strided::rows(&g_out, d), Strided::transposed(w_dec, d), rows, m, d, true));
        let g_act = |r: usize, i: u32| match &g_acts {
            Some(g) => g[r * m + i as usize],
            None => dot(&g_out[r * d..(r + 1) * d], &w_dec[i as usize * d..][..d]),
        };
        let g_pre: Vec<Vec<(u32, f32, f32)>> = (0..rows)
            .into_par_iter()
            .map(|r| {
                let mut out = Vec::with_capacity(active[r].len() + aux_latents[r].len());
                for &(i, a) in &active[r] {
                    out.push((i, a, g_act(r, i) + l1_grad(i)));
                }
                for &(i, a) in &aux_latents[r] {
                    out.push((i, a, dot(&g_aux[r * d..(r + 1) * d], &w_dec[i as usize * d..][..d])));
                }
                out
            })
            .collect();

        let mut grads = if let Some(acts) = &dense_acts {
            self.weight_gradients_dense(&g_pre, &active, acts, &xc, &g_out, &g_aux, rows, &norms, coefficient)
        } else {
            self.weight_gradients_sparse(&g_pre, &active, &xc, &g_out, &g_aux, rows, &norms, coefficient)
        };
        // b_dec: added to the output, subtracted from the input.
        let mut g_b_dec: Vec<f32> = (0..d).map(|c| (0..rows).map(|r| g_out[r * d + c]).sum()).collect();
        for (i, row) in w_enc.chunks(d).enumerate() {
            let gb = grads[B_ENC][i];
            if gb != 0.0 {
                g_b_dec.iter_mut().zip(row).for_each(|(o, w)| *o -= gb * w);
            }
        }
        grads[B_DEC] = g_b_dec;
        if let TrainArchitecture::JumpRelu { bandwidth, .. } = self.config.architecture {
            grads.push(self.threshold_gradient(&pre, rows, &g_act, coefficient, bandwidth));
        }
        let l0 = active.iter().map(Vec::len).sum::<usize>() as f64 / rows as f64;
        let explained_variance = 1.0 - mse_loss / spread.max(1e-30);
        (StepStats { mse_loss, aux_loss, sparsity_loss, l0, explained_variance, dead: n_dead }, grads, active)
    }

    /// ∂L/∂W_enc, ∂L/∂b_enc and ∂L/∂W_dec from the pre-activation gradients of the active (main
    /// and aux) latents, walking each latent's rows: the fast way when few latents fire.
    #[allow(clippy::too_many_arguments)]
    fn weight_gradients_sparse(&self, g_pre: &[Vec<(u32, f32, f32)>], active: &[RowLatents], xc: &[f32], g_out: &[f32], g_aux: &[f32], rows: usize, norms: &[f32], coefficient: f32) -> Vec<Vec<f32>> {
        let (d, m) = (self.config.d_in, self.config.d_sae);
        let w_dec = &self.params[W_DEC];
        // Per latent: (row, activation, ∂L/∂pre, from the aux path) — the sparse transpose.
        let mut by_latent: Vec<Vec<(u32, f32, f32, bool)>> = vec![Vec::new(); m];
        for (r, entries) in g_pre.iter().enumerate() {
            let n_main = active[r].len();
            for (j, &(i, a, g)) in entries.iter().enumerate() {
                by_latent[i as usize].push((r as u32, a, g, j >= n_main));
            }
        }
        let mut grads = vec![vec![0f32; m * d], vec![0f32; m], vec![0f32; m * d], vec![0f32; d]];
        let standard = matches!(self.config.architecture, TrainArchitecture::Standard { .. });
        let (enc_and_b, rest) = grads.split_at_mut(W_DEC);
        let (g_w_enc, g_b_enc) = enc_and_b.split_at_mut(B_ENC);
        g_w_enc[0].par_chunks_mut(d).zip(rest[0].par_chunks_mut(d)).zip(g_b_enc[0].par_iter_mut()).zip(&by_latent).enumerate().for_each(
            |(i, (((ge, gd), gb), entries))| {
                if standard {
                    let sum_a: f32 = entries.iter().filter(|e| !e.3).map(|e| e.1).sum();
                    let l1 = l1_decoder_scale(coefficient, sum_a, norms[i], rows);
                    gd.iter_mut().zip(&w_dec[i * d..(i + 1) * d]).for_each(|(o, w)| *o += l1 * w);
                }
                for &(r, a, g, aux) in entries {
                    let r = r as usize;
                    ge.iter_mut().zip(&xc[r * d..(r + 1) * d]).for_each(|(o, v)| *o += g * v);
                    *gb += g;
                    let g_row = if aux { &g_aux[r * d..(r + 1) * d] } else { &g_out[r * d..(r + 1) * d] };
                    gd.iter_mut().zip(g_row).for_each(|(o, v)| *o += a * v);
                }
            },
        );
        grads
    }

    /// The same gradients through dense matrices and GEMMs: the fast way when many latents fire
    /// (a JumpReLU or ReLU SAE early in training).
    #[allow(clippy::too_many_arguments)]
    fn weight_gradients_dense(&self, g_pre: &[Vec<(u32, f32, f32)>], active: &[RowLatents], acts: &[f32], xc: &[f32], g_out: &[f32], g_aux: &[f32], rows: usize, norms: &[f32], coefficient: f32) -> Vec<Vec<f32>> {
        let (d, m) = (self.config.d_in, self.config.d_sae);
        let any_aux = g_pre.iter().zip(active).any(|(e, a)| e.len() > a.len());
        let mut g = vec![0f32; rows * m];
        let mut acts_aux = if any_aux { vec![0f32; rows * m] } else { Vec::new() };
        for (r, entries) in g_pre.iter().enumerate() {
            let n_main = active[r].len();
            for (j, &(i, a, gv)) in entries.iter().enumerate() {
                let at = r * m + i as usize;
                g[at] += gv;
                if j >= n_main {
                    acts_aux[at] = a;
                }
            }
        }
        let g_w_enc = matmul_new(Strided::transposed(&g, m), Strided::rows(xc, d), m, d, rows, true);
        let mut g_w_dec = matmul_new(Strided::transposed(acts, m), Strided::rows(g_out, d), m, d, rows, true);
        if any_aux {
            matmul_add(&mut g_w_dec, d, Strided::transposed(&acts_aux, m), Strided::rows(g_aux, d), m, d, rows, true);
        }
        let mut g_b_enc = vec![0f32; m];
        for row in g.chunks(m) {
            g_b_enc.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
        if let TrainArchitecture::Standard { .. } = self.config.architecture {
            let mut sum_a = vec![0f32; m];
            for row in acts.chunks(m) {
                sum_a.iter_mut().zip(row).for_each(|(o, v)| *o += v);
            }
            let w_dec = &self.params[W_DEC];
            for (i, gd) in g_w_dec.chunks_mut(d).enumerate() {
                let l1 = l1_decoder_scale(coefficient, sum_a[i], norms[i], rows);
                gd.iter_mut().zip(&w_dec[i * d..(i + 1) * d]).for_each(|(o, w)| *o += l1 * w);
            }
        }
        vec![g_w_enc, g_b_enc, g_w_dec, vec![0f32; d]]
    }

    /// JumpReLU's straight-through threshold gradient: every pre-activation within half a
    /// bandwidth of its threshold contributes −(θ / bw) ∂L/∂act (MSE path; `g_act(row, latent)`)
    /// and −c / (bw · rows) (L0 path).
    fn threshold_gradient(&self, pre: &[f32], rows: usize, g_act: &(impl Fn(usize, u32) -> f32 + Sync), coefficient: f32, bandwidth: f32) -> Vec<f32> {
        let m = self.config.d_sae;
        let theta = &self.params[THRESHOLD];
        let l0_term = coefficient / (bandwidth * rows as f32);
        let per_row: Vec<Vec<(u32, f32)>> = (0..rows)
            .into_par_iter()
            .map(|r| {
                pre[r * m..(r + 1) * m]
                    .iter()
                    .zip(theta)
                    .enumerate()
                    .filter(|&(_, (&p, &t))| ((p - t) / bandwidth).abs() < 0.5)
                    .map(|(i, (_, &t))| (i as u32, -(t / bandwidth) * g_act(r, i as u32) - l0_term))
                    .collect()
            })
            .collect();
        let mut grad = vec![0f32; m];
        for (i, v) in per_row.into_iter().flatten() {
            grad[i as usize] += v;
        }
        grad
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
            TrainArchitecture::JumpRelu { .. } => {
                let theta = &self.params[THRESHOLD];
                (0..rows).into_par_iter().map(|r| above(&pre[r * m..(r + 1) * m], |i| theta[i])).collect()
            }
            TrainArchitecture::Standard { .. } => (0..rows).into_par_iter().map(|r| above(&pre[r * m..(r + 1) * m], |_| 0.0)).collect(),
        }
    }

    /// One training step on `rows` rows of `x`.
    pub fn step(&mut self, x: &[f32], rows: usize) -> StepStats {
        if let Some(theta) = self.params.get_mut(THRESHOLD) {
            // SAELens projects the threshold onto θ ≥ 0 before every step.
            theta.iter_mut().for_each(|t| *t = t.max(0.0));
        }
        let scaled;
        let x = if self.input_scale == 1.0 {
            x
        } else {
            scaled = x.iter().map(|v| v * self.input_scale).collect::<Vec<f32>>();
            &scaled
        };
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

    /// The trained SAE as it is shared, for inputs in their original units: the input scale is
    /// folded in (W_enc × s, W_dec / s, b_dec / s, as SAELens's
    /// `fold_activation_norm_scaling_factor`). TopK and BatchTopK also get their decoder rows
    /// scaled to norm 1 with the norms folded into the encoder (rows and bias), so that choosing
    /// by `pre · ‖W_dec[i]‖` becomes choosing by `pre`; TopK keeps `rescale_acts_by_decoder_norm`
    /// (a no-op at norm 1), BatchTopK becomes JumpReLU with its threshold on every latent.
    /// JumpReLU and standard SAEs are saved as trained, as SAELens does.
    pub fn to_sae(&self, metadata: Map<String, serde_json::Value>) -> Sae {
        let (d, m) = (self.config.d_in, self.config.d_sae);
        let p = &self.params;
        let s = self.input_scale;
        let fold_norms = matches!(self.config.architecture, TrainArchitecture::TopK { .. } | TrainArchitecture::BatchTopK { .. });
        // Decoder norms after the input scale is folded in.
        let norms: Vec<f32> = if fold_norms { self.decoder_norms().into_iter().map(|n| (n / s).max(1e-12)).collect() } else { vec![1.0; m] };
        let w_dec: Vec<f32> = p[W_DEC].chunks(d).zip(&norms).flat_map(|(r, n)| r.iter().map(move |v| v / s / n)).collect();
        let mut w_enc = vec![0f32; d * m];
        for (i, row) in p[W_ENC].chunks(d).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                w_enc[c * m + i] = v * s * norms[i];
            }
        }
        let b_enc = p[B_ENC].iter().zip(&norms).map(|(b, n)| b * n).collect();
        let b_dec = p[B_DEC].iter().map(|v| v / s).collect();
        let architecture = match self.config.architecture {
            TrainArchitecture::TopK { k } => Architecture::TopK { k, rescale_acts_by_decoder_norm: true },
            TrainArchitecture::BatchTopK { .. } => Architecture::JumpRelu { threshold: vec![(self.threshold / s as f64) as f32; m] },
            TrainArchitecture::JumpRelu { .. } => Architecture::JumpRelu { threshold: p[THRESHOLD].iter().map(|t| t.max(0.0)).collect() },
            TrainArchitecture::Standard { .. } => Architecture::Standard,
        };
        Sae { architecture, d_in: d, d_sae: m, w_enc, b_enc, w_dec, b_dec, apply_b_dec_to_input: true, metadata }
    }
}

const PARAM_NAMES: [&str; 5] = ["W_enc_rows", "b_enc", "W_dec", "b_dec", "threshold"];

impl Trainer {
    /// Write the whole training state (weights, Adam moments, dead-latent counters, learned
    /// threshold, input scale) to one safetensors file, atomically, with `progress` (the
    /// caller's position in its data) in its header.
    pub fn save_checkpoint(&self, path: &Path, progress: &Value) -> Result<()> {
        let mut tensors = Vec::new();
        for (i, p) in self.params.iter().enumerate() {
            for (prefix, data) in [("", p), ("adam_m.", &self.adam.m[i]), ("adam_v.", &self.adam.v[i])] {
                tensors.push(HostTensor { name: format!("{prefix}{}", PARAM_NAMES[i]), shape: vec![data.len()], data: data.clone() });
            }
        }
        let state = json!({
            "config": format!("{:?}", self.config), "step": self.step, "adam_step": self.adam.step,
            "threshold": self.threshold, "input_scale": self.input_scale, "steps_since_fired": self.steps_since_fired,
        });
        let metadata = HashMap::from([("trainer".to_string(), state.to_string()), ("progress".to_string(), progress.to_string())]);
        write_f32(path, &tensors, metadata)
    }

    /// A trainer restored from `save_checkpoint`'s file, and the progress saved with it. The
    /// configuration must be the one the checkpoint was made with.
    pub fn load_checkpoint(config: TrainConfig, path: &Path) -> Result<(Trainer, Value)> {
        let file = SafetensorsFile::open(path)?;
        let meta = file.metadata()?;
        let bad = |msg: String| Error::format(path, msg);
        let json_field = |key: &str| -> Result<Value> {
            let text = meta.get(key).ok_or_else(|| bad(format!("not a glassbox SAE training checkpoint (no '{key}' in its header)")))?;
            serde_json::from_str(text).map_err(|e| bad(format!("corrupt '{key}' in its header: {e}")))
        };
        let (state, progress) = (json_field("trainer")?, json_field("progress")?);
        let saved_config = state["config"].as_str().unwrap_or_default();
        let wanted = format!("{config:?}");
        if saved_config != wanted {
            return Err(bad(format!("made with a different training configuration:\n  checkpoint: {saved_config}\n  now:        {wanted}")));
        }
        let mut t = Trainer::new(config);
        for (i, param) in PARAM_NAMES.iter().enumerate().take(t.params.len()) {
            for (prefix, slot) in [("", &mut t.params[i]), ("adam_m.", &mut t.adam.m[i]), ("adam_v.", &mut t.adam.v[i])] {
                let name = format!("{prefix}{param}");
                let tensor = file.tensor_f32(&name)?;
                if tensor.data.len() != slot.len() {
                    return Err(bad(format!("tensor '{name}' has {} values, the trainer {}", tensor.data.len(), slot.len())));
                }
                *slot = tensor.data;
            }
        }
        let field = |key: &str| state.get(key).ok_or_else(|| bad(format!("no '{key}' in the trainer state")));
        let number = |key: &str| field(key).and_then(|v| v.as_f64().ok_or_else(|| bad(format!("'{key}' is not a number"))));
        t.step = number("step")? as u64;
        t.adam.step = number("adam_step")? as u64;
        t.threshold = number("threshold")?;
        t.input_scale = number("input_scale")? as f32;
        let fired: Vec<u64> = serde_json::from_value(field("steps_since_fired")?.clone()).map_err(|e| bad(format!("'steps_since_fired': {e}")))?;
        if fired.len() != t.config.d_sae {
            return Err(bad(format!("'steps_since_fired' has {} entries for {} latents", fired.len(), t.config.d_sae)));
        }
        t.steps_since_fired = fired;
        Ok((t, progress))
    }
}

/// √d_in / mean ‖x‖ over the rows of `x`: SAELens's `expected_average_only_in` scale, which
/// makes the average input norm √d_in.
pub fn expected_average_scale(x: &[f32], d_in: usize) -> f32 {
    let rows = x.len() / d_in;
    let mean_norm = x.chunks(d_in).map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt()).sum::<f64>() / rows.max(1) as f64;
    ((d_in as f64).sqrt() / mean_norm.max(1e-30)) as f32
}

/// ∂(L1 penalty)/∂W_dec[i] = c (Σ_rows act_i) W_dec[i] / (‖W_dec[i]‖ rows): this scale times
/// the decoder row (standard SAEs).
fn l1_decoder_scale(coefficient: f32, sum_acts: f32, norm: f32, rows: usize) -> f32 {
    coefficient * sum_acts / (norm.max(1e-12) * rows as f32)
}

/// The entries of `pre` above their threshold, as (latent, pre-activation).
fn above(pre: &[f32], threshold: impl Fn(usize) -> f32) -> RowLatents {
    pre.iter().enumerate().filter(|&(i, &a)| a > threshold(i)).map(|(i, &a)| (i as u32, a)).collect()
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

