//! Token-grid alignment (as in the USAE reference code): resample a row-major grid of token
//! vectors to another grid size with separable antialiased bilinear interpolation, per channel.
//!
//! This is PyTorch's `interpolate(mode='bilinear', antialias=True, align_corners=False)` (and PIL's
//! triangle filter). Along one axis with n_in inputs and n_out outputs, scale s = n_in / n_out:
//! output o has centre c = s (o + 0.5); input taps j in [floor(c - σ + 0.5), floor(c + σ + 0.5))
//! clipped to the grid; weight w_j = max(0, 1 - |(j + 0.5 - c) / σ|), normalised to sum 1. Here
//! σ = max(s, 1): when downsampling (s >= 1) the triangle is stretched to the input spacing, which
//! is the antialiasing; when upsampling (s < 1) PyTorch clamps the support and the weight scale to
//! 1, which gives ordinary bilinear interpolation (with normalised weights at the borders).
//! The grid is resampled along rows (height) first, then along columns (width).

use crate::{Error, Result};
use faer::Mat;

/// Taps (input index, weight) of each of the `n_out` outputs when resampling `n_in` inputs; weights sum to 1.
///
/// Taps with zero weight are left out. With `n_in == 0` every output has no taps.
pub fn resample_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    if n_in == 0 {
        return vec![Vec::new(); n_out];
    }
    let s = n_in as f64 / n_out as f64;
    let support = s.max(1.0);
    let row = |o: usize| {
        let c = s * (o as f64 + 0.5);
        let lo = (c - support + 0.5).floor().max(0.0) as usize;
        let hi = ((c + support + 0.5).floor() as usize).min(n_in);
        let taps: Vec<(usize, f64)> = (lo..hi)
            .map(|j| (j, (1.0 - ((j as f64 + 0.5 - c) / support).abs()).max(0.0)))
            .filter(|&(_, w)| w > 0.0)
            .collect();
        let total: f64 = taps.iter().map(|t| t.1).sum();
        taps.into_iter().map(|(j, w)| (j, (w / total) as f32)).collect()
    };
    (0..n_out).map(row).collect()
}

/// Resample `tokens` (from.0·from.1 rows in row-major grid order x channels) to a `to.0` x `to.1` grid.
///
/// The result has to.0·to.1 rows in row-major order, same channels; token t of the result covers the
/// same image cell as in every other model brought to this grid.
pub fn resample_grid(tokens: &Mat<f32>, from: (usize, usize), to: (usize, usize)) -> Result<Mat<f32>> {
    let ((h_in, w_in), (h_out, w_out)) = (from, to);
    if h_in == 0 || w_in == 0 || h_out == 0 || w_out == 0 {
        return Err(Error::invalid(format!("resample_grid: empty grid, from {h_in}x{w_in} to {h_out}x{w_out}")));
    }
    if tokens.nrows() != h_in * w_in {
        return Err(Error::invalid(format!(
            "resample_grid: {} tokens do not form a {h_in}x{w_in} grid ({} expected)",
            tokens.nrows(),
            h_in * w_in
        )));
    }
    let (wr, wc) = (resample_weights(h_in, h_out), resample_weights(w_in, w_out));
    let apply = |taps: &[(usize, f32)], value: &dyn Fn(usize) -> f32| {
        taps.iter().map(|&(j, w)| w * value(j)).sum::<f32>()
    };
    // Rows first: (h_out · w_in) x channels.
    let mid = Mat::from_fn(h_out * w_in, tokens.ncols(), |r, k| {
        let (y, x) = (r / w_in, r % w_in);
        apply(&wr[y], &|j| tokens[(j * w_in + x, k)])
    });
    Ok(Mat::from_fn(h_out * w_out, tokens.ncols(), |r, k| {
        let (y, x) = (r / w_out, r % w_out);
        apply(&wc[x], &|j| mid[(y * w_in + j, k)])
    }))
}
