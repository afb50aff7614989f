//! A single-model TopK SAE with the conventions of the tools users know (OpenAI's
//! sparse_autoencoder, sparsify, SAELens): exact-k selection, unit-norm decoder rows
//! (renormalised after each step, parallel gradient removed), AuxK on dead latents, b_dec
//! initialised from the data mean, MSE loss. Files follow SAELens: `cfg.json` (its field
//! names) + safetensors with `W_enc [d_in, d_sae]`, `b_enc`,
//! `W_dec [d_sae, d_in]`, `b_dec`.

use crate::topk::{topk, topk_row, SparseCodes};
use crate::usae::{row_major, sparse_decode};
use crate::{Error, Result};
use faer::{Mat, MatRef};
use glassbox_core::io::{write_f32, write_json, HostTensor, SafetensorsFile};
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

/// The weights file glassbox writes; SAELens's own name is read too.
pub const WEIGHTS: &str = "sae.safetensors";
pub const SAELENS_WEIGHTS: &str = "sae_weights.safetensors";

#[derive(Clone, Debug, PartialEq)]
pub struct TopKSae {
    pub d_in: usize,
    pub d_sae: usize,
    pub k: usize,
    /// Subtract b_dec from the input before encoding (SAELens's `apply_b_dec_to_input`).
    pub apply_b_dec_to_input: bool,
    /// Which activations it reads (SAELens's `hook_name`), e.g. `layers.0.post`.
    pub hook_name: String,
    pub w_enc: Mat<f32>,
    pub b_enc: Vec<f32>,
    pub w_dec: Mat<f32>,
    pub b_dec: Vec<f32>,
}

/// Training settings: Adam, AuxK à la Gao et al. (top k_aux dead latents reconstruct the detached
/// residual, weight `aux_coef`), dead = not fired in the last `dead_after` samples.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub aux_k: usize,
    pub aux_coef: f32,
    pub dead_after: usize,
    pub seed: u64,
}

impl TrainOptions {
    pub fn new(d_in: usize, steps: usize) -> Self {
        TrainOptions { steps, batch: 256, lr: 1e-3, aux_k: (d_in / 2).max(1), aux_coef: 1.0 / 32.0, dead_after: 50_000, seed: 0 }
    }
}

/// What a training run measured on its last batches.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    pub final_mse: f64,
    pub dead_fraction: f64,
}

impl TopKSae {
    /// Random unit decoder rows, encoder = decoderᵀ, zero b_enc, b_dec = the data mean.
    pub fn init(data: &Mat<f32>, d_sae: usize, k: usize, seed: u64) -> Result<TopKSae> {
        let d_in = data.ncols();
        if k == 0 || k > d_sae || data.nrows() == 0 {
            return Err(Error::invalid(format!("a TopK SAE needs 1 <= k <= d_sae and data (k {k}, d_sae {d_sae}, {} rows)", data.nrows())));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w_dec = Mat::from_fn(d_sae, d_in, |_, _| rng.sample::<f32, _>(StandardNormal));
        normalise_rows(&mut w_dec);
        let b_dec = (0..d_in).map(|c| (0..data.nrows()).map(|r| data[(r, c)] as f64).sum::<f64>() as f32 / data.nrows() as f32).collect();
        Ok(TopKSae { d_in, d_sae, k, apply_b_dec_to_input: true, hook_name: String::new(), w_enc: w_dec.transpose().to_owned(), b_enc: vec![0.0; d_sae], w_dec, b_dec })
    }

    pub fn pre_activations(&self, x: &Mat<f32>) -> Mat<f32> {
        let shift = if self.apply_b_dec_to_input { self.b_dec.as_slice() } else { &[] };
        let xc = Mat::from_fn(x.nrows(), self.d_in, |r, c| x[(r, c)] - shift.get(c).copied().unwrap_or(0.0));
        let pre = &xc * &self.w_enc;
        Mat::from_fn(pre.nrows(), self.d_sae, |r, l| pre[(r, l)] + self.b_enc[l])
    }

    pub fn encode(&self, x: &Mat<f32>) -> SparseCodes {
        topk(&self.pre_activations(x), self.k)
    }

    pub fn decode(&self, codes: &SparseCodes) -> Mat<f32> {
        let out = sparse_decode(codes, &self.w_dec);
        Mat::from_fn(out.nrows(), self.d_in, |r, c| out[(r, c)] + self.b_dec[c])
    }

    /// MSE of one batch and the gradients [W_enc, b_enc, W_dec, b_dec] (row-major), with the
    /// AuxK term over the latents marked `dead`.
    pub fn loss_and_gradients(&self, x: &Mat<f32>, dead: &[bool], opts: &TrainOptions) -> (f64, Vec<Vec<f32>>) {
        let (t, d, m) = (x.nrows(), self.d_in, self.d_sae);
        let pre = self.pre_activations(x);
        let codes = topk(&pre, self.k);
        let recon = self.decode(&codes);
        let n = (t * d) as f32;
        let err = Mat::from_fn(t, d, |r, c| recon[(r, c)] - x[(r, c)]);
        let mut loss = (0..t).flat_map(|r| (0..d).map(move |c| (r, c))).map(|rc| (err[rc] as f64).powi(2)).sum::<f64>() / n as f64;
        let g_recon = Mat::from_fn(t, d, |r, c| 2.0 * err[(r, c)] / n);
        // AuxK: the dead latents' own top k_aux predict the residual x − x̂ (detached).
        let mut aux_codes = SparseCodes { m, rows: vec![vec![]; t] };
        let mut g_aux = Mat::<f32>::zeros(t, d);
        let alive: Vec<(u32, f32)> = (0..m).filter(|&l| !dead[l]).map(|l| (l as u32, 0.0)).collect();
        if opts.aux_coef > 0.0 && alive.len() < m {
            aux_codes.rows = (0..t).map(|r| topk_row((0..m).map(|l| pre[(r, l)]), opts.aux_k, &alive)).collect();
            let aux = sparse_decode(&aux_codes, &self.w_dec);
            let residual = Mat::from_fn(t, d, |r, c| -err[(r, c)]);
            let mean: Vec<f32> = (0..d).map(|c| (0..t).map(|r| residual[(r, c)]).sum::<f32>() / t as f32).collect();
            let var = (0..t).flat_map(|r| (0..d).map(move |c| (r, c))).map(|(r, c)| (residual[(r, c)] - mean[c]).powi(2)).sum::<f32>().max(1e-12);
            // Normalised by the residual's variance, as sparsify's FVU form of AuxK.
            loss += (opts.aux_coef * (0..t).flat_map(|r| (0..d).map(move |c| (r, c))).map(|rc| (aux[rc] - residual[rc]).powi(2)).sum::<f32>() / var) as f64;
            g_aux = Mat::from_fn(t, d, |r, c| opts.aux_coef * 2.0 * (aux[(r, c)] - residual[(r, c)]) / var);
        }
        let dec = row_major(&self.w_dec);
        let mut d_pre = Mat::<f32>::zeros(t, m);
        let mut d_dec = vec![0f32; m * d];
        for (rows, g) in [(&codes.rows, &g_recon), (&aux_codes.rows, &g_aux)] {
            for r in 0..t {
                let g_row: Vec<f32> = (0..d).map(|c| g[(r, c)]).collect();
                for &(l, v) in &rows[r] {
                    let l = l as usize;
                    d_pre[(r, l)] += g_row.iter().zip(&dec[l * d..][..d]).map(|(a, b)| a * b).sum::<f32>();
                    for (o, gv) in d_dec[l * d..][..d].iter_mut().zip(&g_row) {
                        *o += v * gv;
                    }
                }
            }
        }
        let shift = if self.apply_b_dec_to_input { 1.0 } else { 0.0 };
        let xc = Mat::from_fn(t, d, |r, c| x[(r, c)] - shift * self.b_dec[c]);
        let d_enc = xc.transpose() * &d_pre; // d × m
        let b_enc: Vec<f32> = (0..m).map(|l| (0..t).map(|r| d_pre[(r, l)]).sum()).collect();
        // b_dec is added to the reconstruction and (optionally) subtracted from the input.
        let through_input = &d_pre * self.w_enc.transpose(); // t × d
        let b_dec: Vec<f32> = (0..d).map(|c| (0..t).map(|r| g_recon[(r, c)] - shift * through_input[(r, c)]).sum()).collect();
        (loss, vec![row_major(&d_enc), b_enc, d_dec, b_dec])
    }

    /// Adam on random batches of `data`; decoder rows stay unit-norm (the gradient's component
    /// along each row is removed before the step and rows are renormalised after it).
    pub fn train(&mut self, data: &Mat<f32>, opts: &TrainOptions) -> TrainReport {
        let (d, m) = (self.d_in, self.d_sae);
        let mut adam = Adam::new(OptimConfig { kind: OptimKind::Adam, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }, &[d * m, m, m * d, d]);
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut since_fired = vec![0usize; m];
        let mut last = 0.0;
        for _ in 0..opts.steps {
            let rows: Vec<usize> = (0..opts.batch).map(|_| rng.random_range(0..data.nrows())).collect();
            let x = Mat::from_fn(rows.len(), d, |r, c| data[(rows[r], c)]);
            let dead: Vec<bool> = since_fired.iter().map(|&s| s >= opts.dead_after).collect();
            let (loss, mut grads) = self.loss_and_gradients(&x, &dead, opts);
            last = loss;
            for s in since_fired.iter_mut() {
                *s += rows.len();
            }
            for row in self.encode(&x).rows {
                for (l, _) in row {
                    since_fired[l as usize] = 0;
                }
            }
            let dec = row_major(&self.w_dec);
            for l in 0..m {
                let g = &mut grads[2][l * d..][..d];
                let along: f32 = g.iter().zip(&dec[l * d..][..d]).map(|(a, b)| a * b).sum();
                g.iter_mut().zip(&dec[l * d..][..d]).for_each(|(gv, w)| *gv -= along * w);
            }
            let mut params = vec![row_major(&self.w_enc), self.b_enc.clone(), dec, self.b_dec.clone()];
            adam.update(&mut params, &grads, opts.lr);
            self.w_enc = MatRef::from_row_major_slice(&params[0], d, m).to_owned();
            self.b_enc = params[1].clone();
            self.w_dec = MatRef::from_row_major_slice(&params[2], m, d).to_owned();
            normalise_rows(&mut self.w_dec);
            self.b_dec = params[3].clone();
        }
        let dead = since_fired.iter().filter(|&&s| s >= opts.dead_after).count() as f64 / m as f64;
        TrainReport { final_mse: last, dead_fraction: dead }
    }

    /// `cfg.json` with SAELens's field names and `sae.safetensors`, each written atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let cfg = json!({
            "architecture": "topk", "d_in": self.d_in, "d_sae": self.d_sae, "k": self.k,
            "activation_fn_str": "topk", "activation_fn_kwargs": { "k": self.k },
            "apply_b_dec_to_input": self.apply_b_dec_to_input, "normalize_activations": "none",
            "dtype": "float32", "device": "cpu", "hook_name": self.hook_name, "hook_layer": 0, "hook_head_index": null,
            "model_name": "", "context_size": 1, "dataset_path": "", "prepend_bos": false, "finetuning_scaling_factor": false,
            "sae_lens_training_version": null, "producer": "glassbox",
        });
        write_json(&dir.join("cfg.json"), &cfg)?;
        let t = |name: &str, shape: Vec<usize>, data: Vec<f32>| HostTensor { name: name.into(), shape, data };
        let tensors = vec![
            t("W_enc", vec![self.d_in, self.d_sae], row_major(&self.w_enc)),
            t("b_enc", vec![self.d_sae], self.b_enc.clone()),
            t("W_dec", vec![self.d_sae, self.d_in], row_major(&self.w_dec)),
            t("b_dec", vec![self.d_in], self.b_dec.clone()),
        ];
        write_f32(&dir.join(WEIGHTS), &tensors, HashMap::new())
    }

    /// A folder written by glassbox or SAELens (`sae_weights.safetensors`): TopK only; every
    /// tensor's name and shape is checked against cfg.json.
    pub fn load(dir: &Path) -> Result<TopKSae> {
        let cfg_path = dir.join("cfg.json");
        let cfg: Value = glassbox_core::io::read_json(&cfg_path)?;
        let field = |name: &str| cfg.get(name).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| Error::format(&cfg_path, format!("missing or non-integer field '{name}'")));
        let (d_in, d_sae) = (field("d_in")?, field("d_sae")?);
        let topk_arch = cfg.get("architecture").and_then(Value::as_str) == Some("topk") || cfg.get("activation_fn_str").and_then(Value::as_str) == Some("topk");
        if !topk_arch {
            return Err(Error::format(&cfg_path, "not a TopK SAE (architecture / activation_fn_str is not 'topk')"));
        }
        let k = field("k").or_else(|_| cfg.pointer("/activation_fn_kwargs/k").and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| Error::format(&cfg_path, "no k (neither 'k' nor 'activation_fn_kwargs.k')")))?;
        if k == 0 || k > d_sae {
            return Err(Error::format(&cfg_path, format!("k = {k} must be in 1..=d_sae ({d_sae})")));
        }
        let weights = [WEIGHTS, SAELENS_WEIGHTS].iter().map(|f| dir.join(f)).find(|p| p.is_file()).ok_or_else(|| Error::format(dir, format!("no {WEIGHTS} or {SAELENS_WEIGHTS}")))?;
        let file = SafetensorsFile::open(&weights)?;
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = file.tensor_f32(name)?;
            if t.shape != shape {
                return Err(Error::format(&weights, format!("tensor '{name}' has shape {:?}, expected {shape:?} from cfg.json", t.shape)));
            }
            if t.data.iter().any(|v| !v.is_finite()) {
                return Err(Error::format(&weights, format!("tensor '{name}' contains NaN or Inf")));
            }
            Ok(t.data)
        };
        let w_enc = get("W_enc", &[d_in, d_sae])?;
        let w_dec = get("W_dec", &[d_sae, d_in])?;
        Ok(TopKSae {
            d_in,
            d_sae,
            k,
            apply_b_dec_to_input: cfg.get("apply_b_dec_to_input").and_then(Value::as_bool).unwrap_or(true),
            hook_name: cfg.get("hook_name").and_then(Value::as_str).unwrap_or_default().to_string(),
            w_enc: MatRef::from_row_major_slice(&w_enc, d_in, d_sae).to_owned(),
            b_enc: get("b_enc", &[d_sae])?,
            w_dec: MatRef::from_row_major_slice(&w_dec, d_sae, d_in).to_owned(),
            b_dec: get("b_dec", &[d_in])?,
        })
    }
}

fn normalise_rows(w: &mut Mat<f32>) {
    for l in 0..w.nrows() {
        let n = (0..w.ncols()).map(|c| w[(l, c)] * w[(l, c)]).sum::<f32>().sqrt().max(1e-12);
        for c in 0..w.ncols() {
            w[(l, c)] /= n;
        }
    }
}
