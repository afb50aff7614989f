//! Universality metrics of the Universal SAE paper (Thasarathan et al. 2025, §4.2-4.4,
//! Eq. 9-14) and a ridge-regression cross-predictor baseline.
//!
//! Conventions: activations and reconstructions are `Mat<f32>` with one row per sample (token) and
//! one column per channel; codes are dense `Mat<f32>` (T x m) with zeros for inactive latents;
//! dictionaries are `Mat<f32>` (m x d) with one row per latent. Sums are taken in f64.
//!
//! * R² comes in two forms (paper Eq. 10): [`r2_per_dim`] (FVU, per-channel means; the form every
//!   acceptance threshold uses) and [`r2_scalar`] (the paper's, one scalar mean over all entries;
//!   more lenient).
//! * Firing (paper §4.3, Eq. 11-14): F_k^(i) = { x : z_k^(i)(x) > tau },
//!   C_k = { x : min_i z_k^(i)(x) > tau };
//!   [`firing_entropy`], [`cofire_proportion`] = |C_k| / |F_k^(i)|, [`cofire_iou`] = |C_k| / Σ_i |F_k^(i)|.
//! * Energy (Eq. 9): the code's un-squared ||E_x\[z_k] D_k||₂ ([`energy`]) and the paper's square.
//! * Consistency (paper §4.4): [`hungarian_match`] maximises the total cosine similarity of
//!   matched rows.
//!
//! The metrics never panic. Inputs whose shapes disagree (or that are empty where a mean is needed)
//! give NaN, or an empty / `None` result where NaN cannot be expressed, as each function documents;
//! NaN fails every threshold comparison, so a mistake cannot pass a check. [`hungarian_match`] and
//! [`cosine_matrix`] return [`Error::Invalid`] instead.

use crate::{Error, Result};
use faer::prelude::Solve;
use faer::{Mat, Side};
use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;

/// Whether `a` and `b` have the same shape with at least one row (R² needs a mean).
fn same_nonempty_shape(a: &Mat<f32>, b: &Mat<f32>) -> bool {
    a.nrows() == b.nrows() && a.ncols() == b.ncols() && a.nrows() > 0
}

/// Per-dimension (FVU) R² = 1 - SSE / Σ_c Σ_t (A\[t,c] - mean_t A\[:,c])², the form every acceptance test uses.
///
/// A predictor that outputs each channel's mean scores exactly 0. NaN when the shapes differ
/// or there are no rows; a constant target gives -inf (or NaN for a perfect fit).
pub fn r2_per_dim(a: &Mat<f32>, a_hat: &Mat<f32>) -> f64 {
    if !same_nonempty_shape(a, a_hat) {
        return f64::NAN;
    }
    r2_per_dim_by(a.nrows(), a.ncols(), |t, c| a[(t, c)] as f64, |t, c| a_hat[(t, c)] as f64)
}

/// [`r2_per_dim`] over entries given by index functions (shared by the f32 and f64 callers).
fn r2_per_dim_by(rows: usize, cols: usize, a: impl Fn(usize, usize) -> f64, p: impl Fn(usize, usize) -> f64) -> f64 {
    let (mut sse, mut sst) = (0.0f64, 0.0f64);
    for c in 0..cols {
        let mean = (0..rows).map(|t| a(t, c)).sum::<f64>() / rows as f64;
        for t in 0..rows {
            let y = a(t, c);
            sse += (y - p(t, c)).powi(2);
            sst += (y - mean).powi(2);
        }
    }
    1.0 - sse / sst
}

/// The paper's R² = 1 - mean((A - Â)²) / (mean((A - mean(A))²) + 1e-6) with ONE scalar mean over all entries.
///
/// Reported next to [`r2_per_dim`] for comparison with the paper; never use it as a chance level
/// (channels whose mean differs from the global mean give "free" R²). NaN when the
/// shapes differ or there are no rows.
pub fn r2_scalar(a: &Mat<f32>, a_hat: &Mat<f32>) -> f64 {
    if !same_nonempty_shape(a, a_hat) {
        return f64::NAN;
    }
    let n = (a.nrows() * a.ncols()) as f64;
    let entries = || (0..a.ncols()).flat_map(|c| (0..a.nrows()).map(move |t| (t, c)));
    let mean = entries().map(|tc| a[tc] as f64).sum::<f64>() / n;
    let mse = entries().map(|tc| (a[tc] as f64 - a_hat[tc] as f64).powi(2)).sum::<f64>() / n;
    let var = entries().map(|tc| (a[tc] as f64 - mean).powi(2)).sum::<f64>() / n;
    1.0 - mse / (var + 1e-6)
}

/// |F_k| per latent k: the number of samples (rows) whose code z_k exceeds `tau` (the paper:
/// tau = 0.1).
pub fn firing_counts(codes: &Mat<f32>, tau: f32) -> Vec<usize> {
    (0..codes.ncols()).map(|k| (0..codes.nrows()).filter(|&t| codes[(t, k)] > tau).count()).collect()
}

/// Count of latent k in every model, or `None` when some model's vector is too short.
fn counts_of(counts: &[Vec<usize>], k: usize) -> Option<Vec<usize>> {
    counts.iter().map(|c| c.get(k).copied()).collect()
}

/// Firing entropy FE_k = -(1/ln M) Σ_i p_i ln p_i, p_i = |F_k^(i)| / Σ_j |F_k^(j)| (0 ln 0 = 0), in [0, 1].
///
/// `counts[i]` is [`firing_counts`] of model i. 0 = fires in one model only, ln 2 / ln 3 = 0.631 = equally
/// in two of three, 1 = equally in all. A latent that never fires in any model gets NaN, so that an
/// average that forgets to exclude dead latents shows up as NaN instead of a plausible number.
/// The result has one entry per latent of model 0; it is NaN where another model has no count, and
/// everywhere when there are fewer than 2 models.
pub fn firing_entropy(counts: &[Vec<usize>]) -> Vec<f64> {
    let m = counts.first().map_or(0, |c| c.len());
    let ln_m = (counts.len() as f64).ln();
    let fe = |k: usize| {
        let Some(ck) = counts_of(counts, k) else { return f64::NAN };
        let total: usize = ck.iter().sum();
        if total == 0 || counts.len() < 2 {
            return f64::NAN;
        }
        ck.iter().filter(|&&c| c > 0).map(|&c| c as f64 / total as f64).map(|p| -p * p.ln()).sum::<f64>() / ln_m
    };
    (0..m).map(fe).collect()
}

/// |C_k| per latent: samples where EVERY model's code k exceeds `tau` (rows are the same inputs in all models).
///
/// Empty when no code matrices are given or their shapes differ.
pub fn cofire_counts(codes_per_model: &[&Mat<f32>], tau: f32) -> Vec<usize> {
    let Some(first) = codes_per_model.first() else { return Vec::new() };
    if codes_per_model.iter().any(|z| z.nrows() != first.nrows() || z.ncols() != first.ncols()) {
        return Vec::new();
    }
    let fires_everywhere = |t: usize, k: usize| codes_per_model.iter().all(|z| z[(t, k)] > tau);
    (0..first.ncols()).map(|k| (0..first.nrows()).filter(|&t| fires_everywhere(t, k)).count()).collect()
}

/// Co-fire proportion CFP_k^(i) = |C_k| / |F_k^(i)|, indexed `[model][latent]`; 0 where model i never fires k.
///
/// One entry per latent of `cofire`; NaN where model i has no count for that latent.
pub fn cofire_proportion(cofire: &[usize], counts: &[Vec<usize>]) -> Vec<Vec<f64>> {
    let ratio = |c: usize, f: Option<&usize>| match f {
        None => f64::NAN,
        Some(&0) => 0.0,
        Some(&f) => c as f64 / f as f64,
    };
    counts.iter().map(|f| cofire.iter().enumerate().map(|(k, &c)| ratio(c, f.get(k))).collect()).collect()
}

/// Co-fire IoU_k = |C_k| / Σ_i |F_k^(i)| (the code's variant, unused in the paper); 0 for dead latents.
///
/// One entry per latent of `cofire`; NaN where some model has no count for that latent.
pub fn cofire_iou(cofire: &[usize], counts: &[Vec<usize>]) -> Vec<f64> {
    let iou = |k: usize, c: usize| match counts_of(counts, k).map(|ck| ck.iter().sum::<usize>()) {
        None => f64::NAN,
        Some(0) => 0.0,
        Some(total) => c as f64 / total as f64,
    };
    cofire.iter().enumerate().map(|(k, &c)| iou(k, c)).collect()
}

/// Fraction of latents with no sample above `tau` (pass tau = 0 for the "without tau" form).
///
/// A code matrix without latents gives 0.
pub fn dead_fraction(codes: &Mat<f32>, tau: f32) -> f64 {
    let counts = firing_counts(codes, tau);
    if counts.is_empty() {
        return 0.0;
    }
    counts.iter().filter(|&&c| c == 0).count() as f64 / counts.len() as f64
}

/// Concept energy ||mean_t z_k · D_k||₂ per latent: the reference code's UN-squared form
/// (`energy_of_codes`).
///
/// With unit rows this is |mean z_k|. The code averages this over equal batches; with non-negative
/// (ReLU/TopK) codes that equals the value on the whole set. Sum it over models for `energies_agg`.
/// One entry per latent of `codes`, all NaN when the dictionary's rows do not match the latents or
/// there are no samples.
pub fn energy(codes: &Mat<f32>, dictionary: &Mat<f32>) -> Vec<f64> {
    if codes.ncols() != dictionary.nrows() || codes.nrows() == 0 {
        return vec![f64::NAN; codes.ncols()];
    }
    let t = codes.nrows() as f64;
    let mean = |k: usize| (0..codes.nrows()).map(|r| codes[(r, k)] as f64).sum::<f64>() / t;
    let norm = |k: usize| (0..dictionary.ncols()).map(|c| (dictionary[(k, c)] as f64).powi(2)).sum::<f64>().sqrt();
    (0..codes.ncols()).map(|k| mean(k).abs() * norm(k)).collect()
}

/// The paper's squared energy ||E_x\[z_k] D_k||₂² (Eq. 9): the square of [`energy`].
pub fn energy_squared(codes: &Mat<f32>, dictionary: &Mat<f32>) -> Vec<f64> {
    energy(codes, dictionary).into_iter().map(|e| e * e).collect()
}

/// Co-fire vs importance (Fig. 6c): Pearson r and slope of log10(energy) against log10(co-fire count).
///
/// Only latents with both values > 0 (and finite energy) are kept; `None` when fewer than 3 remain,
/// either axis is constant, or the two slices differ in length.
pub fn cofire_energy_correlation(cofire: &[usize], energy: &[f64]) -> Option<(f64, f64)> {
    if cofire.len() != energy.len() {
        return None;
    }
    let kept = cofire.iter().zip(energy).filter(|(&c, &e)| c > 0 && e > 0.0 && e.is_finite());
    let pts: Vec<(f64, f64)> = kept.map(|(&c, &e)| ((c as f64).log10(), e.log10())).collect();
    if pts.len() < 3 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt(), sxy / sxx))
}

/// Rows of `m` as unit f64 rows; zero rows stay zero.
fn unit_rows(m: &Mat<f32>) -> Mat<f64> {
    let norms: Vec<f64> =
        (0..m.nrows()).map(|r| (0..m.ncols()).map(|c| (m[(r, c)] as f64).powi(2)).sum::<f64>().sqrt()).collect();
    Mat::from_fn(m.nrows(), m.ncols(), |r, c| if norms[r] > 0.0 { m[(r, c)] as f64 / norms[r] } else { 0.0 })
}

/// [`cosine_matrix`] for rows of equal width, without checks (non-finite entries give NaN cosines).
pub(crate) fn cosines(a: &Mat<f32>, b: &Mat<f32>) -> Mat<f64> {
    unit_rows(a) * unit_rows(b).transpose()
}

/// Cosine similarity of every row of `a` (n_a x d) with every row of `b` (n_b x d): n_a x n_b, f64.
///
/// A zero row has cosine 0 with everything. Errors when the widths differ or an entry is not finite.
pub fn cosine_matrix(a: &Mat<f32>, b: &Mat<f32>) -> Result<Mat<f64>> {
    if a.ncols() != b.ncols() {
        return Err(Error::invalid(format!("cosine_matrix: row widths differ, {} vs {}", a.ncols(), b.ncols())));
    }
    for (name, m) in [("first", a), ("second", b)] {
        let mut entries = (0..m.ncols()).flat_map(|c| (0..m.nrows()).map(move |r| (r, c)));
        if let Some((r, c)) = entries.find(|&rc| !m[rc].is_finite()) {
            return Err(Error::invalid(format!("cosine_matrix: entry ({r}, {c}) of the {name} matrix is not finite")));
        }
    }
    Ok(cosines(a, b))
}

/// Hungarian matching of the rows of two dictionaries maximising the total cosine
/// (cost = 1 - cos).
///
/// Returns min(m_a, m_b) pairs (row of `a`, row of `b`, cosine) sorted by the row of `a`; either
/// dictionary may be the larger. Cosines are scaled by 1e9 and rounded for the integer Kuhn-Munkres
/// solver, so ties closer than 1e-9 are broken arbitrarily. O(m³): fine for m in the hundreds.
pub fn hungarian_match(a: &Mat<f32>, b: &Mat<f32>) -> Result<Vec<(usize, usize, f64)>> {
    let cos = cosine_matrix(a, b)?;
    let (na, nb) = (cos.nrows(), cos.ncols());
    if na == 0 || nb == 0 {
        return Ok(Vec::new());
    }
    let scaled = |x: f64| (x * 1e9).round() as i64;
    let pairs: Vec<(usize, usize)> = if na <= nb {
        let w = Matrix::from_fn(na, nb, |(r, c)| scaled(cos[(r, c)]));
        kuhn_munkres(&w).1.into_iter().enumerate().collect()
    } else {
        let w = Matrix::from_fn(nb, na, |(r, c)| scaled(cos[(c, r)]));
        let mut p: Vec<(usize, usize)> = kuhn_munkres(&w).1.into_iter().enumerate().map(|(j, i)| (i, j)).collect();
        p.sort_unstable();
        p
    };
    Ok(pairs.into_iter().map(|(i, j)| (i, j, cos[(i, j)])).collect())
}

/// Ridge cross-predictor A_i -> A_j (a dense linear baseline): per-dim R² on the test set of
/// the ridge fit.
///
/// Closed form in f64 with an unpenalised intercept: centre X and Y on the training means, solve
/// (XᵀX + λI) W = XᵀY by Cholesky, predict Ŷ = (X_test - x̄) W + ȳ. λ = 0 is allowed when XᵀX is
/// positive definite. NaN when the shapes disagree, a set is empty, λ < 0, or XᵀX + λI is singular.
pub fn ridge_cross_predictor(
    a_i_train: &Mat<f32>,
    a_j_train: &Mat<f32>,
    a_i_test: &Mat<f32>,
    a_j_test: &Mat<f32>,
    lambda: f64,
) -> f64 {
    let rows_match = a_i_train.nrows() == a_j_train.nrows() && a_i_test.nrows() == a_j_test.nrows();
    let widths_match = a_i_train.ncols() == a_i_test.ncols() && a_j_train.ncols() == a_j_test.ncols();
    let nonempty = a_i_train.nrows() > 0 && a_i_test.nrows() > 0;
    if !rows_match || !widths_match || !nonempty || lambda.is_nan() || lambda < 0.0 {
        return f64::NAN;
    }
    let col_means = |m: &Mat<f32>| -> Vec<f64> {
        (0..m.ncols()).map(|c| (0..m.nrows()).map(|t| m[(t, c)] as f64).sum::<f64>() / m.nrows() as f64).collect()
    };
    let (mx, my) = (col_means(a_i_train), col_means(a_j_train));
    let x = Mat::from_fn(a_i_train.nrows(), a_i_train.ncols(), |t, c| a_i_train[(t, c)] as f64 - mx[c]);
    let y = Mat::from_fn(a_j_train.nrows(), a_j_train.ncols(), |t, c| a_j_train[(t, c)] as f64 - my[c]);
    let mut gram = x.transpose() * &x;
    (0..gram.nrows()).for_each(|c| gram[(c, c)] += lambda);
    let Ok(llt) = gram.llt(Side::Lower) else { return f64::NAN };
    let w = llt.solve(x.transpose() * &y);
    let xt = Mat::from_fn(a_i_test.nrows(), a_i_test.ncols(), |t, c| a_i_test[(t, c)] as f64 - mx[c]);
    let pred = xt * &w;
    r2_per_dim_by(a_j_test.nrows(), a_j_test.ncols(), |t, c| a_j_test[(t, c)] as f64, |t, c| pred[(t, c)] + my[c])
}
