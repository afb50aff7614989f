//! The USAE encoder of one model (as in the reference code): pre = BN(x Wᵀ + b),
//! codes = TopK(ReLU(pre)). BatchNorm uses batch statistics in training and running statistics in
//! evaluation. Training works on row-major T × m buffers (a row per token), which the top-k
//! selection reads row by row and the GEMMs read and write directly.

use faer::{Mat, MatRef};
use rayon::prelude::*;

pub const BN_EPS: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;

/// x Wᵀ + b for x (T × d), W (m × d) given row-major.
pub fn linear(x: &Mat<f32>, w: &[f32], b: &[f32]) -> Mat<f32> {
    let m = b.len();
    let w = MatRef::from_row_major_slice(w, m, x.ncols());
    let mut h = x * w.transpose();
    for (l, &b) in b.iter().enumerate() {
        h.col_as_slice_mut(l).iter_mut().for_each(|v| *v += b);
    }
    h
}

/// Rows per parallel task in the passes over T × m buffers.
const CHUNK_ROWS: usize = 64;

/// BatchNorm's learnable scale and shift and its running statistics, updated in training.
pub struct BatchNormTrain<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub running_mean: &'a mut [f32],
    pub running_var: &'a mut [f32],
}

/// Training forward pass from h = x Wᵀ (row-major T × m, without the bias): writes pre into
/// `pre`. With BatchNorm, h becomes x̂ = (h − μ)/√(σ² + ε) in place (the backward pass needs
/// it), the bias is left out (the batch mean removes it) except from the running mean, and the
/// running statistics are updated (PyTorch: the running variance is the unbiased one). Returns
/// 1/√(σ² + ε) per latent (ones without BatchNorm).
pub fn forward_train(h: &mut [f32], pre: &mut [f32], bias: &[f32], batch_norm: Option<BatchNormTrain>) -> Vec<f32> {
    let m = bias.len();
    let t = h.len() / m.max(1);
    let Some(bn) = batch_norm else {
        pre.par_chunks_mut(m).zip(h.par_chunks(m)).for_each(|(p, h)| {
            for ((p, &h), &b) in p.iter_mut().zip(h).zip(bias) {
                *p = h + b;
            }
        });
        return vec![1.0; m];
    };
    // Per-latent sums of h and h² in f64, shifted by the first row so that E[h²] − E[h]² does
    // not cancel catastrophically.
    let shift: Vec<f64> = h[..m].iter().map(|&v| v as f64).collect();
    let (s1, s2) = column_sums(h, m, |row, s1, s2| {
        for ((&v, &c), (a, b)) in row.iter().zip(&shift).zip(s1.iter_mut().zip(s2.iter_mut())) {
            let v = v as f64 - c;
            *a += v;
            *b += v * v;
        }
    });
    let n = t as f64;
    let mut mean = vec![0f32; m];
    let mut inv_std = vec![0f32; m];
    for l in 0..m {
        let mu = s1[l] / n;
        let var = (s2[l] / n - mu * mu).max(0.0);
        mean[l] = (mu + shift[l]) as f32;
        inv_std[l] = 1.0 / (var as f32 + BN_EPS).sqrt();
        bn.running_mean[l] = (1.0 - BN_MOMENTUM) * bn.running_mean[l] + BN_MOMENTUM * (mean[l] + bias[l]);
        let unbiased = if t > 1 { (var * n / (n - 1.0)) as f32 } else { var as f32 };
        bn.running_var[l] = (1.0 - BN_MOMENTUM) * bn.running_var[l] + BN_MOMENTUM * unbiased;
    }
    pre.par_chunks_mut(m).zip(h.par_chunks_mut(m)).for_each(|(p, h)| {
        for l in 0..m {
            let x_hat = (h[l] - mean[l]) * inv_std[l];
            h[l] = x_hat;
            p[l] = bn.gamma[l] * x_hat + bn.beta[l];
        }
    });
    inv_std
}

/// Backward pass from dL/dpre (row-major T × m, turned into dL/dh in place): returns (db, dγ, dβ);
/// dγ and dβ are empty without BatchNorm. `x_hat` and `inv_std` come from [`forward_train`].
/// The weight gradient is then dhᵀ x. No input gradient: activations are data.
pub fn backward_train(d_pre: &mut [f32], x_hat: &[f32], inv_std: &[f32], gamma: Option<&[f32]>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = inv_std.len();
    let t = d_pre.len() / m.max(1);
    let Some(gamma) = gamma else {
        let (db, _) = column_sums(d_pre, m, |row, s, _| s.iter_mut().zip(row).for_each(|(s, &g)| *s += g as f64));
        return (db.iter().map(|&v| v as f32).collect(), vec![], vec![]);
    };
    // dβ = Σ_t g, dγ = Σ_t g·x̂.
    let (sum_g, sum_g_xh) = column_sums_pair(d_pre, x_hat, m);
    // dh = γ·inv_std·(g − Σg/T − x̂·Σg x̂/T)
    let n = t as f64;
    let mean_g: Vec<f32> = sum_g.iter().map(|&s| (s / n) as f32).collect();
    let mean_g_xh: Vec<f32> = sum_g_xh.iter().map(|&s| (s / n) as f32).collect();
    let scale: Vec<f32> = gamma.iter().zip(inv_std).map(|(g, s)| g * s).collect();
    let db = d_pre
        .par_chunks_mut(CHUNK_ROWS * m)
        .zip(x_hat.par_chunks(CHUNK_ROWS * m))
        .map(|(g, xh)| {
            let mut db = vec![0f64; m];
            for (g, xh) in g.chunks_mut(m).zip(xh.chunks(m)) {
                for l in 0..m {
                    let dh = scale[l] * (g[l] - mean_g[l] - xh[l] * mean_g_xh[l]);
                    g[l] = dh;
                    db[l] += dh as f64;
                }
            }
            db
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![0f64; m], add);
    let f32s = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
    (f32s(db), f32s(sum_g_xh), f32s(sum_g))
}

fn add(mut a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
    a
}

/// Two per-column accumulations over the rows of a row-major buffer, in parallel row blocks
/// (summed in f64; the blocks' sums are added in block order, so that the result does not
/// depend on the thread count).
fn column_sums(data: &[f32], m: usize, f: impl Fn(&[f32], &mut [f64], &mut [f64]) + Sync) -> (Vec<f64>, Vec<f64>) {
    data.par_chunks(CHUNK_ROWS * m)
        .map(|block| {
            let (mut a, mut b) = (vec![0f64; m], vec![0f64; m]);
            block.chunks(m).for_each(|row| f(row, &mut a, &mut b));
            (a, b)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold((vec![0f64; m], vec![0f64; m]), |x, y| (add(x.0, y.0), add(x.1, y.1)))
}

/// (Σ_t g, Σ_t g·x̂) per column.
fn column_sums_pair(g: &[f32], x_hat: &[f32], m: usize) -> (Vec<f64>, Vec<f64>) {
    g.par_chunks(CHUNK_ROWS * m)
        .zip(x_hat.par_chunks(CHUNK_ROWS * m))
        .map(|(g, xh)| {
            let (mut a, mut b) = (vec![0f64; m], vec![0f64; m]);
            for (g, xh) in g.chunks(m).zip(xh.chunks(m)) {
                for l in 0..m {
                    a[l] += g[l] as f64;
                    b[l] += (g[l] * xh[l]) as f64;
                }
            }
            (a, b)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold((vec![0f64; m], vec![0f64; m]), |x, y| (add(x.0, y.0), add(x.1, y.1)))
}

pub fn batch_norm_eval(h: &Mat<f32>, gamma: &[f32], beta: &[f32], running_mean: &[f32], running_var: &[f32]) -> Mat<f32> {
    Mat::from_fn(h.nrows(), h.ncols(), |r, l| gamma[l] * (h[(r, l)] - running_mean[l]) / (running_var[l] + BN_EPS).sqrt() + beta[l])
}
