//! The USAE encoder of one model (spec 1.2): pre = BN(x Wᵀ + b), codes = TopK(ReLU(pre)).
//! BatchNorm uses batch statistics in training and running statistics in evaluation.

use faer::{Mat, MatRef};

pub const BN_EPS: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;

/// What the backward pass needs from a training forward pass.
pub struct Cache {
    /// x̂ = (h − μ)/√(σ² + ε), T × m (or h itself without BN).
    x_hat: Mat<f32>,
    inv_std: Vec<f32>,
}

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

/// Training-mode BatchNorm over the rows of h; updates the running statistics (PyTorch: the
/// running variance is the unbiased one).
pub fn batch_norm_train(h: &Mat<f32>, gamma: &[f32], beta: &[f32], running_mean: &mut [f32], running_var: &mut [f32]) -> (Mat<f32>, Cache) {
    let (t, m) = (h.nrows(), h.ncols());
    let mut mean = vec![0f32; m];
    let mut var = vec![0f32; m];
    for l in 0..m {
        let col = h.col_as_slice(l);
        let mu = col.iter().map(|&x| x as f64).sum::<f64>() / t as f64;
        let v = col.iter().map(|&x| (x as f64 - mu).powi(2)).sum::<f64>() / t as f64;
        mean[l] = mu as f32;
        var[l] = v as f32;
        running_mean[l] = (1.0 - BN_MOMENTUM) * running_mean[l] + BN_MOMENTUM * mean[l];
        let unbiased = if t > 1 { (v * t as f64 / (t - 1) as f64) as f32 } else { var[l] };
        running_var[l] = (1.0 - BN_MOMENTUM) * running_var[l] + BN_MOMENTUM * unbiased;
    }
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + BN_EPS).sqrt()).collect();
    let (mut x_hat, mut out) = (Mat::<f32>::zeros(t, m), Mat::<f32>::zeros(t, m));
    for l in 0..m {
        for (xh, &v) in x_hat.col_as_slice_mut(l).iter_mut().zip(h.col_as_slice(l)) {
            *xh = (v - mean[l]) * inv_std[l];
        }
        for (o, &xh) in out.col_as_slice_mut(l).iter_mut().zip(x_hat.col_as_slice(l)) {
            *o = gamma[l] * xh + beta[l];
        }
    }
    (out, Cache { x_hat, inv_std })
}

pub fn batch_norm_eval(h: &Mat<f32>, gamma: &[f32], beta: &[f32], running_mean: &[f32], running_var: &[f32]) -> Mat<f32> {
    Mat::from_fn(h.nrows(), h.ncols(), |r, l| gamma[l] * (h[(r, l)] - running_mean[l]) / (running_var[l] + BN_EPS).sqrt() + beta[l])
}

/// Without BN the cache holds h itself and unit scales, so one backward serves both.
pub fn identity_cache(h: Mat<f32>) -> Cache {
    let m = h.ncols();
    Cache { x_hat: h, inv_std: vec![1.0; m] }
}

/// Gradients of the encoder parameters from dL/dpre (no input gradient: activations are data).
/// Returns (dW row-major m × d, db, dγ, dβ); dγ and dβ are empty without BN.
pub fn backward(x: &Mat<f32>, cache: &Cache, gamma: Option<&[f32]>, d_pre: &Mat<f32>) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (t, m) = (d_pre.nrows(), d_pre.ncols());
    let (dh, d_gamma, d_beta) = match gamma {
        Some(gamma) => {
            let mut d_gamma = vec![0f32; m];
            let mut d_beta = vec![0f32; m];
            let mut dh = Mat::<f32>::zeros(t, m);
            for l in 0..m {
                let (g, x_hat) = (d_pre.col_as_slice(l), cache.x_hat.col_as_slice(l));
                let (mut sum_dxh, mut sum_dxh_xh) = (0f64, 0f64);
                for (&g, &xh) in g.iter().zip(x_hat) {
                    d_gamma[l] += g * xh;
                    d_beta[l] += g;
                    let dxh = (g * gamma[l]) as f64;
                    sum_dxh += dxh;
                    sum_dxh_xh += dxh * xh as f64;
                }
                // dh = (1/T)·inv_std·(T dx̂ − Σ dx̂ − x̂ Σ dx̂ x̂)
                let scale = cache.inv_std[l] as f64 / t as f64;
                for ((o, &g), &xh) in dh.col_as_slice_mut(l).iter_mut().zip(g).zip(x_hat) {
                    let dxh = (g * gamma[l]) as f64;
                    *o = (scale * (t as f64 * dxh - sum_dxh - xh as f64 * sum_dxh_xh)) as f32;
                }
            }
            (dh, d_gamma, d_beta)
        }
        None => (d_pre.clone(), vec![], vec![]),
    };
    let dw = crate::usae::row_major(&(dh.transpose() * x)); // m × d
    let db = (0..m).map(|l| dh.col_as_slice(l).iter().sum()).collect();
    (dw, db, d_gamma, d_beta)
}
