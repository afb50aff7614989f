//! The Universal SAE (Thasarathan et al. 2025): one encoder and one unit-row dictionary per
//! model over a shared latent index. Each step samples one model i, encodes its batch, decodes
//! the codes with every model's dictionary, and updates encoder i and decoder i only (the
//! code's rule).

use crate::dictionary;
use crate::encoder::{self, BatchNormTrain};
use crate::topk::{topk, topk_and_rest, SparseCodes};
use crate::{Error, Result};
use faer::{Mat, MatRef};
use glassbox_core::train::optim::{clip_grad_norm, Adam, OptimConfig, OptimKind};
use glassbox_lm::ops::{matmul, matmul_new, Strided};
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
    /// Gao-style tied init (what the planted-concepts test's thresholds were calibrated with):
    /// raw dictionary rows of unit norm and encoder W = 0.5·D with zero bias, instead of
    /// V ~ N(0, 1) and PyTorch's Linear init. The row norm matters: an Adam step turns a unit row
    /// about √d times further than an N(0, 1) one.
    pub tied_init: bool,
    /// Linear warm-up from 1e-6 over this many ticks, then cosine to 1e-6 at `total_ticks`.
    pub warmup_ticks: usize,
    pub total_ticks: usize,
    pub tick: ScheduleTick,
    /// Cross terms in the loss (false: independent SAEs, the reproductions' control).
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
    /// (a − mean) / (std + 1e-5) is what the SAE sees (the reference code's scalar
    /// standardisation).
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
        // PyTorch Linear init for W and b; BN γ = 1, β = 0; V ~ N(0, 1) (as the reference code).
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

    /// Scalar standardisation from the given activations (as the reference code: one mean and
    /// one std over every entry).
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
}

pub struct Usae {
    pub config: UsaeConfig,
    pub models: Vec<ModelSae>,
    pub steps: usize,
    workspace: Workspace,
}

/// A training step's T × m buffers, kept between steps (each is 154 MB at the paper's scale,
/// and fresh pages cost more to fault in than to reuse).
#[derive(Default)]
struct Workspace {
    /// h = x Wᵀ, then x̂.
    x_hat: Vec<f32>,
    /// pre-activations, then dL/dpre, then dL/dh.
    pre: Vec<f32>,
    /// c = z + u.
    codes: Vec<f32>,
}

pub use glassbox_core::matrix::row_major;

/// (a − mean) / (std + 1e-5), the code's scalar standardisation.
pub fn standardise(a: &Mat<f32>, mean: f32, std: f32) -> Mat<f32> {
    Mat::from_fn(a.nrows(), a.ncols(), |r, c| (a[(r, c)] - mean) / (std + 1e-5))
}

fn axpy(out: &mut [f32], a: f32, x: &[f32]) {
    out.iter_mut().zip(x).for_each(|(o, x)| *o += a * x);
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The selected (row, value) pairs of each latent: the sparse transpose of the codes.
fn latent_entries(selected: &[Vec<(u32, f32)>], m: usize) -> Vec<Vec<(u32, f32)>> {
    let mut out = vec![Vec::new(); m];
    for (r, row) in selected.iter().enumerate() {
        for &(l, v) in row {
            out[l as usize].push((r as u32, v));
        }
    }
    out
}

/// Σ_(l, v) v·D[l, :] for each row: the k selected rows only.
pub fn sparse_decode(codes: &SparseCodes, dict: &Mat<f32>) -> Mat<f32> {
    let (d, rows) = (dict.ncols(), row_major(dict));
    let mut out = vec![0f32; codes.rows.len() * d];
    for (t, row) in codes.rows.iter().enumerate() {
        for &(l, v) in row {
            axpy(&mut out[t * d..][..d], v, &rows[l as usize * d..][..d]);
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
        Ok(Usae { config, models, steps: 0, workspace: Workspace::default() })
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
    ///
    /// With c = z + u (the selected and the auxiliary codes, a dense T × m matrix: u holds m/2
    /// latents a row) the auxiliary residual is A_j − c D_j, so the dense work is three matrix
    /// products over all decoders at once (c·[D_j], G_aux·[D_j]ᵀ, cᵀ·G_aux for the decoders that
    /// move) plus the encoder's two; the main reconstruction z D_j and its gradients are sparse.
    /// Every T × m buffer is row-major and reused from step to step.
    pub fn loss_and_gradients(&mut self, i: usize, batch: &[Mat<f32>]) -> Result<(f64, Gradients)> {
        let cfg = self.config.clone();
        if batch.len() != self.models.len() || batch.iter().zip(&self.models).any(|(a, s)| a.ncols() != s.d || a.nrows() != batch[i].nrows()) {
            return Err(Error::invalid("a USAE batch needs every model's activations of the same inputs, with each model's width"));
        }
        if batch[i].nrows() == 0 {
            return Err(Error::invalid("a USAE batch needs at least one row"));
        }
        let (t, m, d_i) = (batch[i].nrows(), cfg.m, self.models[i].d);
        let aux = cfg.aux_coef > 0.0;
        let mut ws = std::mem::take(&mut self.workspace);
        for buffer in [&mut ws.x_hat, &mut ws.pre, &mut ws.codes] {
            // Every entry is written before it is read; only the length needs setting.
            buffer.resize(t * m, 0.0);
        }
        let x = row_major(&batch[i]);

        // Encoder: h = x Wᵀ, then BatchNorm; h becomes x̂ for the backward pass.
        let inv_std = {
            let ModelSae { params, running_mean, running_var, .. } = &mut self.models[i];
            matmul(&mut ws.x_hat, m, Strided::rows(&x, d_i), Strided::transposed(&params[W], d_i), t, m, d_i, true);
            let bn = cfg.batch_norm.then(|| BatchNormTrain { gamma: &params[GAMMA], beta: &params[BETA], running_mean, running_var });
            encoder::forward_train(&mut ws.x_hat, &mut ws.pre, &params[B], bn)
        };
        // Selected latents per row, and c = z + u written densely when the auxiliary term is on.
        let n_aux = if aux { m / 2 } else { 0 };
        let selected: Vec<Vec<(u32, f32)>> = ws
            .pre
            .par_chunks(m)
            .zip(ws.codes.par_chunks_mut(m))
            .map(|(pre, c)| {
                let (main, rest) = topk_and_rest(pre, cfg.k, n_aux);
                if aux {
                    c.fill(0.0);
                    for &(l, v) in main.iter().chain(&rest) {
                        c[l as usize] = v;
                    }
                }
                main
            })
            .collect();

        // The decoders in the loss, side by side: D = [D_j] (m × Σd) and A = [A_j] (T × Σd).
        let targets: Vec<usize> = if cfg.universal { (0..self.models.len()).collect() } else { vec![i] };
        let dims: Vec<usize> = targets.iter().map(|&j| self.models[j].d).collect();
        let offsets: Vec<usize> = dims.iter().scan(0, |o, &d| Some(std::mem::replace(o, *o + d))).collect();
        let width: usize = dims.iter().sum();
        let mut dict = vec![0f32; m * width];
        let mut targets_a = vec![0f32; t * width];
        let mut norms = Vec::new();
        for ((&j, &d), &off) in targets.iter().zip(&dims).zip(&offsets) {
            let (dj, nj) = dictionary::normalise_rows(&self.models[j].params[V], d);
            norms.push(nj);
            dict.par_chunks_mut(width).zip(dj.par_chunks(d)).for_each(|(o, r)| o[off..off + d].copy_from_slice(r));
            let a = row_major(&batch[j]);
            targets_a.par_chunks_mut(width).zip(a.par_chunks(d)).for_each(|(o, r)| o[off..off + d].copy_from_slice(r));
        }
        let full = aux.then(|| matmul_new(Strided::rows(&ws.codes, m), Strided::rows(&dict, width), t, width, m, true));

        // L = Σ_j mean err(A_j − z D_j) + c·mean err(A_j − (z + u) D_j); G_res = ∂L/∂(z D) from the
        // first term, G_aux = ∂L/∂((z + u) D) from the second. Rows in parallel; each row's loss is
        // kept and summed in order, so the loss does not depend on the thread count.
        let mut g_res = vec![0f32; t * width];
        let mut g_aux = vec![0f32; t * width];
        let per_row: Vec<(f64, Vec<f32>)> = g_res
            .par_chunks_mut(width)
            .zip(g_aux.par_chunks_mut(width))
            .enumerate()
            .map(|(r, (g_res, g_aux))| {
                let mut recon = vec![0f32; width];
                for &(l, v) in &selected[r] {
                    axpy(&mut recon, v, &dict[l as usize * width..][..width]);
                }
                let a = &targets_a[r * width..][..width];
                let mut loss = 0.0;
                for (&d, &off) in dims.iter().zip(&offsets) {
                    let n = (t * d) as f32;
                    let (mut main, mut second) = (0.0, 0.0);
                    for c in off..off + d {
                        let res = a[c] - recon[c];
                        main += error(cfg.loss, res);
                        g_res[c] = -error_grad(cfg.loss, res, n);
                        if let Some(full) = &full {
                            let e = a[c] - full[r * width + c];
                            second += error(cfg.loss, e);
                            g_aux[c] = -cfg.aux_coef * error_grad(cfg.loss, e, n);
                        }
                    }
                    loss += (main + cfg.aux_coef as f64 * second) / n as f64;
                }
                // The main term's gradient at the selected latents: G_res·D_l.
                let dz = selected[r].iter().map(|&(l, _)| dot(g_res, &dict[l as usize * width..][..width])).collect();
                (loss, dz)
            })
            .collect();
        let loss: f64 = per_row.iter().map(|(l, _)| l).sum();

        // dL/dpre: G_aux·Dᵀ wherever c is nonzero (the selected and auxiliary latents, all
        // positive, so ReLU passes the gradient), plus G_res·D_l at the selected latents.
        let d_pre = &mut ws.pre;
        if aux {
            matmul(d_pre, m, Strided::rows(&g_aux, width), Strided::transposed(&dict, width), t, m, width, true);
        }
        d_pre.par_chunks_mut(m).zip(ws.codes.par_chunks(m)).zip(&selected).zip(&per_row).for_each(|(((g, c), sel), (_, dz))| {
            if aux {
                g.iter_mut().zip(c).for_each(|(g, &c)| *g = if c != 0.0 { *g } else { 0.0 });
            } else {
                g.fill(0.0);
            }
            for (&(l, _), dz) in sel.iter().zip(dz) {
                g[l as usize] += dz;
            }
        });

        // Dictionary gradients of the decoders that move: cᵀ G_aux + zᵀ G_res, through the
        // row normalisation.
        let by_latent = latent_entries(&selected, m);
        let mut decoder_grads = Vec::new();
        for (((&j, &d), &off), norms) in targets.iter().zip(&dims).zip(&offsets).zip(&norms) {
            if j != i && !cfg.update_all_decoders {
                continue;
            }
            let mut d_dict = if aux {
                let g = Strided { data: &g_aux[off..], row_stride: width, col_stride: 1 };
                matmul_new(Strided::transposed(&ws.codes, m), g, m, d, t, true)
            } else {
                vec![0f32; m * d]
            };
            d_dict.par_chunks_mut(d).zip(&by_latent).for_each(|(o, entries)| {
                for &(r, v) in entries {
                    axpy(o, v, &g_res[r as usize * width + off..][..d]);
                }
            });
            decoder_grads.push((j, dictionary::backward_rows(&self.models[j].params[V], norms, &d_dict, d)));
        }

        // Encoder backward: dL/dh in place of dL/dpre, then dW = dhᵀ x.
        let gamma = cfg.batch_norm.then_some(self.models[i].params[GAMMA].as_slice());
        let (db, dg, dbeta) = encoder::backward_train(d_pre, &ws.x_hat, &inv_std, gamma);
        let (dg, dbeta) = if cfg.batch_norm { (dg, dbeta) } else { (vec![0.0; m], vec![0.0; m]) };
        let dw = matmul_new(Strided::transposed(d_pre, m), Strided::rows(&x, d_i), m, d_i, t, true);
        self.workspace = ws;
        Ok((loss, Gradients { encoder: vec![dw, db, dg, dbeta], decoders: decoder_grads }))
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
