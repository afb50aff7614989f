//! The decoder: raw rows V re-parameterised to unit norm on every use, D = V / (‖V_row‖ + 1e-8)
//! (as in the USAE reference code), so gradients flow through the normalisation.

use faer::{Mat, MatRef};
use glassbox_core::matrix::row_major;
use rayon::prelude::*;

const EPS: f32 = 1e-8;

/// D from raw V (m × d), with the row norms of V.
pub fn normalise(raw: &Mat<f32>) -> (Mat<f32>, Vec<f32>) {
    let (d, norms) = normalise_rows(&row_major(raw), raw.ncols());
    (MatRef::from_row_major_slice(&d, raw.nrows(), raw.ncols()).to_owned(), norms)
}

/// dL/dV from dL/dD (see [`backward_rows`]).
pub fn backward(raw: &Mat<f32>, norms: &[f32], d_dict: &Mat<f32>) -> Mat<f32> {
    let dv = backward_rows(&row_major(raw), norms, &row_major(d_dict), raw.ncols());
    MatRef::from_row_major_slice(&dv, raw.nrows(), raw.ncols()).to_owned()
}

/// [`normalise`] on a row-major m × d buffer.
pub fn normalise_rows(raw: &[f32], d: usize) -> (Vec<f32>, Vec<f32>) {
    let norms: Vec<f32> = raw.par_chunks(d.max(1)).map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt()).collect();
    let mut out = raw.to_vec();
    out.par_chunks_mut(d.max(1)).zip(&norms).for_each(|(row, n)| row.iter_mut().for_each(|x| *x /= n + EPS));
    (out, norms)
}

/// dL/dV from dL/dD on row-major m × d buffers: dV = dD/(n+ε) − V (V·dD) / (n (n+ε)²) per row.
pub fn backward_rows(raw: &[f32], norms: &[f32], d_dict: &[f32], d: usize) -> Vec<f32> {
    let mut out = vec![0f32; raw.len()];
    out.par_chunks_mut(d.max(1)).zip(raw.par_chunks(d.max(1))).zip(d_dict.par_chunks(d.max(1))).zip(norms).for_each(|(((o, v), g), &n)| {
        let dot: f32 = v.iter().zip(g).map(|(a, b)| a * b).sum();
        let scale = if n > 0.0 { dot / (n * (n + EPS) * (n + EPS)) } else { 0.0 };
        for ((o, &v), &g) in o.iter_mut().zip(v).zip(g) {
            *o = g / (n + EPS) - v * scale;
        }
    });
    out
}
