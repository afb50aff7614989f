//! The Universal SAE (spec 1): one encoder and one unit-row dictionary per model over a shared
//! latent index. Each step samples one model i, encodes its batch, decodes the codes with every
//! model's dictionary, and updates encoder i and decoder i only (the code's rule).

use crate::dictionary;
use crate::encoder::{self, Cache};
use crate::topk::{topk, topk_excluding, SparseCodes};
use crate::{Error, Result};
use faer::{Mat, MatRef};
use glassbox_core::train::optim::{clip_grad_norm, Adam, OptimConfig, OptimKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Mean absolute error (the code's choice).
    L1,
    /// Mean squared error (`loss_criterion: L2`).
    L2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleTick {
    /// Each model's scheduler ticks only when that model is sampled (the code's quirk).
    PerModel,
    /// One schedule over global steps (the paper's stated intent).
    Global,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UsaeConfig {
    /// Latents (the shared dictionary size).
    pub m: usize,
    pub k: usize,
    pub loss: Loss,
    /// Weight of the auxiliary term over the top m/2 non-selected latents (0 turns it off).
    pub aux_coef: f32,
    pub batch_norm: bool,
    pub lr: f64,
    pub weight_decay: f64,
    /// Global gradient-norm clip per SAE (the code's 1.0); None turns it off.
    pub clip: Option<f64>,
    /// Gao-style tied init (the spec's Test A prototype): raw dictionary rows of unit norm and
    /// encoder W = 0.5·D with zero bias, instead of V ~ N(0, 1) and PyTorch's Linear init. The
    /// row norm matters: an Adam step turns a unit row about √d times further than an N(0, 1) one.
    pub tied_init: bool,
    /// Linear warm-up from 1e-6 over this many ticks, then cosine to 1e-6 at `total_ticks`.
    pub warmup_ticks: usize,
    pub total_ticks: usize,
    pub tick: ScheduleTick,
    /// Cross terms in the loss (false: independent SAEs, the control of spec 5).
    pub universal: bool,
    /// Also step every decoder j != i from its own term (not the code's rule).
    pub update_all_decoders: bool,
}

impl UsaeConfig {
    pub fn new(m: usize, k: usize, total_ticks: usize) -> Self {
        UsaeConfig {
            m,
            k,
            loss: Loss::L1,
            aux_coef: 0.1,
            batch_norm: true,
            lr: 3e-4,
            weight_decay: 1e-5,
            clip: Some(1.0),
            tied_init: false,
            warmup_ticks: total_ticks / 30,
            total_ticks,
            tick: ScheduleTick::PerModel,
            universal: true,
            update_all_decoders: false,
        }
    }

    /// Learning rate after `tick` scheduler ticks: the first step runs at the base rate (the
    /// scheduler is applied after each step), then warm-up from 1e-6 and cosine to 1e-6.
    pub fn lr_at(&self, tick: usize) -> f64 {
        let floor = 1e-6;
        if tick == 0 {
            self.lr
        } else if tick < self.warmup_ticks {
            floor + (self.lr - floor) * tick as f64 / self.warmup_ticks as f64
        } else {
            let span = self.total_ticks.saturating_sub(self.warmup_ticks).max(1) as f64;
            let p = ((tick - self.warmup_ticks) as f64 / span).min(1.0);
            floor + 0.5 * (self.lr - floor) * (1.0 + (std::f64::consts::PI * p).cos())
        }
    }
}

/// Parameter slots of one model's SAE, in the order the optimiser sees them.
pub const W: usize = 0;
pub const B: usize = 1;
pub const GAMMA: usize = 2;
pub const BETA: usize = 3;
pub const V: usize = 4;

/// One model's encoder and dictionary, its scalar standardisation and its optimiser.
pub struct ModelSae {
    pub name: String,
    pub d: usize,
    /// (a − mean) / (std + 1e-5) is what the SAE sees (spec 1.5).
    pub mean: f32,
    pub std: f32,
    /// W (m × d), b (m), γ (m), β (m), raw V (m × d), row-major.
    pub params: Vec<Vec<f32>>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    /// AdamW state of the encoder (W, b, γ, β) and of the dictionary (V): PyTorch keeps a step
    /// count per parameter, so a decoder updated more often than its encoder has its own.
    pub encoder_adam: Adam,
    pub decoder_adam: Adam,
    pub ticks: usize,
}

impl ModelSae {
    fn new(name: &str, d: usize, m: usize, cfg: &UsaeConfig, rng: &mut ChaCha8Rng) -> Self {
        // PyTorch Linear init for W and b; BN γ = 1, β = 0; V ~ N(0, 1) (spec 1.8).
        let bound = 1.0 / (d as f32).sqrt();
        let w = (0..m * d).map(|_| rng.random_range(-bound..bound)).collect();
        let b = (0..m).map(|_| rng.random_range(-bound..bound)).collect();
        let v: Vec<f32> = (0..m * d).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
        let (w, b, v) = if cfg.tied_init {
            let unit = row_major(&dictionary::normalise(&MatRef::from_row_major_slice(&v, m, d).to_owned()).0);
            (unit.iter().map(|x| 0.5 * x).collect(), vec![0.0; m], unit)
        } else {
            (w, b, v)
        };
        let params = vec![w, b, vec![1.0; m], vec![0.0; m], v];
        let optim = OptimConfig { kind: OptimKind::AdamW, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: cfg.weight_decay };
        ModelSae {
            name: name.into(),
            d,
            mean: 0.0,
            std: 1.0,
            params,
            running_mean: vec![0.0; m],
            running_var: vec![1.0; m],
            encoder_adam: Adam::new(optim.clone(), &[m * d, m, m, m]),
            decoder_adam: Adam::new(optim, &[m * d]),
            ticks: 0,
        }
    }

    /// The unit-row dictionary D (m × d).
    pub fn dictionary(&self) -> Mat<f32> {
        dictionary::normalise(&self.raw()).0
    }

    fn raw(&self) -> Mat<f32> {
        MatRef::from_row_major_slice(&self.params[V], self.params[B].len(), self.d).to_owned()
    }

    /// Scalar standardisation from the given activations (spec 1.5: one mean and one std over
    /// every entry).
    pub fn fit_standardisation(&mut self, a: &Mat<f32>) {
        let n = (a.nrows() * a.ncols()).max(1) as f64;
        let mean = (0..a.nrows()).flat_map(|r| (0..a.ncols()).map(move |c| (r, c))).map(|rc| a[rc] as f64).sum::<f64>() / n;
        let var = (0..a.nrows()).flat_map(|r| (0..a.ncols()).map(move |c| (r, c))).map(|rc| (a[rc] as f64 - mean).powi(2)).sum::<f64>() / n;
        self.mean = mean as f32;
        self.std = var.sqrt() as f32;
    }

    pub fn standardise(&self, a: &Mat<f32>) -> Mat<f32> {
        standardise(a, self.mean, self.std)
    }

    /// Pre-activations in evaluation mode (BN running statistics).
    pub fn pre_eval(&self, x: &Mat<f32>, batch_norm: bool) -> Mat<f32> {
        let h = encoder::linear(x, &self.params[W], &self.params[B]);
        if batch_norm {
            encoder::batch_norm_eval(&h, &self.params[GAMMA], &self.params[BETA], &self.running_mean, &self.running_var)
        } else {
            h
        }
    }

    fn pre_train(&mut self, x: &Mat<f32>, batch_norm: bool) -> (Mat<f32>, Cache) {
        let h = encoder::linear(x, &self.params[W], &self.params[B]);
        if batch_norm {
            encoder::batch_norm_train(&h, &self.params[GAMMA], &self.params[BETA], &mut self.running_mean, &mut self.running_var)
        } else {
            (h.clone(), encoder::identity_cache(h))
        }
    }
}

pub struct Usae {
    pub config: UsaeConfig,
    pub models: Vec<ModelSae>,
    pub steps: usize,
}

pub use glassbox_core::matrix::row_major;

/// (a − mean) / (std + 1e-5), the code's scalar standardisation.
pub fn standardise(a: &Mat<f32>, mean: f32, std: f32) -> Mat<f32> {
    Mat::from_fn(a.nrows(), a.ncols(), |r, c| (a[(r, c)] - mean) / (std + 1e-5))
}

/// Σ_(l, v) v·D[l, :] for each row: the k selected rows only.
pub fn sparse_decode(codes: &SparseCodes, dict: &Mat<f32>) -> Mat<f32> {
    let (d, rows) = (dict.ncols(), row_major(dict));
    let mut out = vec![0f32; codes.rows.len() * d];
    for (t, row) in codes.rows.iter().enumerate() {
        for &(l, v) in row {
            for (o, w) in out[t * d..][..d].iter_mut().zip(&rows[l as usize * d..][..d]) {
                *o += v * w;
            }
        }
    }
    MatRef::from_row_major_slice(&out, codes.rows.len(), d).to_owned()
}

/// Elementwise dL/d(residual) of the mean error over a T × d residual, with sign(0) = 0.
fn error_grad(loss: Loss, r: f32, n: f32) -> f32 {
    match loss {
        Loss::L1 => (if r > 0.0 { 1.0 } else if r < 0.0 { -1.0 } else { 0.0 }) / n,
        Loss::L2 => 2.0 * r / n,
    }
}

fn error(loss: Loss, r: f32) -> f64 {
    match loss {
        Loss::L1 => r.abs() as f64,
        Loss::L2 => (r * r) as f64,
    }
}

impl Usae {
    pub fn new(config: UsaeConfig, models: &[(&str, usize)], seed: u64) -> Result<Self> {
        if config.k == 0 || config.k > config.m {
            return Err(Error::invalid(format!("k must be in 1..=m (m = {}), got {}", config.m, config.k)));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let models = models.iter().map(|&(name, d)| ModelSae::new(name, d, config.m, &config, &mut rng)).collect();
        Ok(Usae { config, models, steps: 0 })
    }

    /// Codes of standardised activations of model i (evaluation mode).
    pub fn encode(&self, i: usize, x: &Mat<f32>) -> SparseCodes {
        topk(&self.models[i].pre_eval(x, self.config.batch_norm), self.config.k)
    }

    pub fn decode(&self, j: usize, codes: &SparseCodes) -> Mat<f32> {
        sparse_decode(codes, &self.models[j].dictionary())
    }

    /// One training step on model i's batch; `batch[j]` holds model j's standardised
    /// activations of the same inputs. Returns the loss summed over the decoders used.
    pub fn train_step(&mut self, i: usize, batch: &[Mat<f32>]) -> Result<f64> {
        let (loss, grads) = self.loss_and_gradients(i, batch)?;
        self.apply(i, grads);
        Ok(loss)
    }

    /// The loss of a step on model i and its gradients: encoder i's (W, b, γ, β), and the raw
    /// dictionary gradient of every decoder that will move. BN statistics are updated.
    pub fn loss_and_gradients(&mut self, i: usize, batch: &[Mat<f32>]) -> Result<(f64, Gradients)> {
        let cfg = self.config.clone();
        if batch.len() != self.models.len() || batch.iter().zip(&self.models).any(|(a, s)| a.ncols() != s.d || a.nrows() != batch[i].nrows()) {
            return Err(Error::invalid("a USAE batch needs every model's activations of the same inputs, with each model's width"));
        }
        let x = &batch[i];
        let (t, m) = (x.nrows(), cfg.m);
        let (pre, cache) = self.models[i].pre_train(x, cfg.batch_norm);
        let codes = topk(&pre, cfg.k);
        // Auxiliary latents: the top m/2 of ReLU(pre) once the k selected ones are removed.
        let aux_codes = if cfg.aux_coef > 0.0 { topk_excluding(&pre, m / 2, Some(&codes)) } else { SparseCodes { m, rows: vec![vec![]; t] } };
        // m/2 auxiliary latents per row is dense work: matrix products, not gathers.
        let u_dense = aux_codes.to_dense();
        let targets: Vec<usize> = if cfg.universal { (0..self.models.len()).collect() } else { vec![i] };
        let mut d_pre = Mat::<f32>::zeros(t, m);
        let mut loss = 0.0;
        let mut decoder_grads: Vec<(usize, Mat<f32>)> = Vec::new();
        for &j in &targets {
            let raw = self.models[j].raw();
            let (dict, norms) = dictionary::normalise(&raw);
            let d = dict.ncols();
            // Row-major copies: the sparse loops walk dictionary rows and per-sample rows.
            let dict_rows = row_major(&dict);
            let a = row_major(&batch[j]);
            let aux_recon = row_major(&(&u_dense * &dict));
            let n = (t * d) as f32;
            // L = mean err(A − zD) + c·mean err(A − zD − uD); G_main = ∂L/∂(zD), G_aux = ∂L/∂(uD).
            let mut g_main = vec![0f32; t * d];
            let mut g_aux = vec![0f32; t * d];
            // Rows in parallel; each row's loss is kept and summed in order, so the loss does
            // not depend on the thread count.
            let row_losses: Vec<f64> = g_main
                .par_chunks_mut(d)
                .zip(g_aux.par_chunks_mut(d))
                .enumerate()
                .map(|(r, (g_main, g_aux))| {
                    let mut recon = vec![0f32; d];
                    for &(l, v) in &codes.rows[r] {
                        for (o, w) in recon.iter_mut().zip(&dict_rows[l as usize * d..][..d]) {
                            *o += v * w;
                        }
                    }
                    let mut loss = 0.0;
                    for c in 0..d {
                        let res = a[r * d + c] - recon[c];
                        loss += error(cfg.loss, res) / n as f64;
                        let ga = if cfg.aux_coef > 0.0 {
                            let e = res - aux_recon[r * d + c];
                            loss += cfg.aux_coef as f64 * error(cfg.loss, e) / n as f64;
                            -cfg.aux_coef * error_grad(cfg.loss, e, n)
                        } else {
                            0.0
                        };
                        g_aux[c] = ga;
                        g_main[c] = -error_grad(cfg.loss, res, n) + ga;
                    }
                    loss
                })
                .collect();
            loss += row_losses.iter().sum::<f64>();
            let g_aux_mat = MatRef::from_row_major_slice(&g_aux, t, d);
            // Codes: dz_l = G_main·D_l on the selected latents, du_l = G_aux·D_l on the aux ones.
            let dz: Vec<Vec<(u32, f32)>> = (0..t)
                .into_par_iter()
                .map(|r| {
                    let g = &g_main[r * d..][..d];
                    codes.rows[r].iter().map(|&(l, _)| (l, g.iter().zip(&dict_rows[l as usize * d..][..d]).map(|(x, y)| x * y).sum::<f32>())).collect()
                })
                .collect();
            for (r, row) in dz.iter().enumerate() {
                for &(l, v) in row {
                    d_pre[(r, l as usize)] += v;
                }
            }
            if cfg.aux_coef > 0.0 {
                // The aux latents are exactly the nonzero entries of u (they are chosen among
                // positive pre-activations): one pass down each column.
                let du = g_aux_mat * dict.transpose();
                for l in 0..m {
                    let (u, du) = (u_dense.col_as_slice(l), du.col_as_slice(l));
                    for ((o, &u), &g) in d_pre.col_as_slice_mut(l).iter_mut().zip(u).zip(du) {
                        if u != 0.0 {
                            *o += g;
                        }
                    }
                }
            }
            if j == i || cfg.update_all_decoders {
                let mut d_dict = row_major(&(u_dense.transpose() * g_aux_mat));
                for r in 0..t {
                    let g = &g_main[r * d..][..d];
                    for &(l, v) in &codes.rows[r] {
                        for (o, x) in d_dict[l as usize * d..][..d].iter_mut().zip(g) {
                            *o += v * x;
                        }
                    }
                }
                decoder_grads.push((j, dictionary::backward(&raw, &norms, &MatRef::from_row_major_slice(&d_dict, m, d).to_owned())));
            }
        }
        // ReLU: selected and aux latents are positive, so d_pre passes through unchanged.
        let gamma = cfg.batch_norm.then(|| self.models[i].params[GAMMA].clone());
        let (dw, db, dg, dbeta) = encoder::backward(x, &cache, gamma.as_deref(), &d_pre);
        let (dg, dbeta) = if cfg.batch_norm { (dg, dbeta) } else { (vec![0.0; m], vec![0.0; m]) };
        let decoders = decoder_grads.into_iter().map(|(j, d_raw)| (j, row_major(&d_raw))).collect();
        Ok((loss, Gradients { encoder: vec![dw, db, dg, dbeta], decoders }))
    }

    /// AdamW steps from `loss_and_gradients` of model i, each SAE clipped to the global norm.
    pub fn apply(&mut self, i: usize, grads: Gradients) {
        let cfg = &self.config;
        let mut encoder = Some(grads.encoder);
        for (j, dv) in grads.decoders {
            let model = &mut self.models[j];
            let lr = cfg.lr_at(match cfg.tick {
                ScheduleTick::PerModel => model.ticks,
                ScheduleTick::Global => self.steps,
            });
            let mut decoder = model.params.split_off(V);
            if j == i {
                // Clip over the whole SAE (encoder and decoder), then step both.
                let mut all = encoder.take().expect("one gradient per model");
                all.push(dv);
                if let Some(clip) = cfg.clip {
                    clip_grad_norm(&mut all, clip);
                }
                let dv = all.pop().unwrap();
                model.encoder_adam.update(&mut model.params, &all, lr);
                model.decoder_adam.update(&mut decoder, &[dv], lr);
                model.ticks += 1;
            } else {
                let mut only = vec![dv];
                if let Some(clip) = cfg.clip {
                    clip_grad_norm(&mut only, clip);
                }
                model.decoder_adam.update(&mut decoder, &only, lr);
            }
            model.params.append(&mut decoder);
        }
        self.steps += 1;
    }
}

/// Gradients of one step: encoder i's [W, b, γ, β] and (model, raw dictionary) pairs.
pub struct Gradients {
    pub encoder: Vec<Vec<f32>>,
    pub decoders: Vec<(usize, Vec<f32>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_l1_gradient_is_zero_at_a_zero_residual_as_torch_sign_is() {
        assert_eq!(error_grad(Loss::L1, 0.0, 4.0), 0.0);
        assert_eq!(error_grad(Loss::L1, -2.0, 4.0), -0.25);
        assert_eq!(error_grad(Loss::L2, 3.0, 2.0), 3.0);
    }
}
