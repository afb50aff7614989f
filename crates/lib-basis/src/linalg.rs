//! The f64 linear algebra LIB needs (decompositions always in f64: lower precision is unstable,
//! as the reference code notes).

use crate::{Error, Result};
use faer::{Mat, Side};

/// Eigenpairs of a symmetric matrix with eigenvalues replaced by their absolute values,
/// sorted descending (the reference code's convention).
pub fn eigh_abs_desc(m: &Mat<f64>, what: &str) -> Result<(Vec<f64>, Mat<f64>)> {
    let n = m.nrows();
    if n == 0 {
        return Ok((vec![], Mat::zeros(0, 0)));
    }
    if (0..n).any(|i| (0..n).any(|j| !m[(i, j)].is_finite())) {
        return Err(Error::invalid(format!("{what} contains NaN or Inf")));
    }
    let evd = m.self_adjoint_eigen(Side::Lower).map_err(|e| Error::invalid(format!("eigendecomposition of {what} failed: {e:?}")))?;
    let s = evd.S().column_vector();
    let u = evd.U();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| s[b].abs().total_cmp(&s[a].abs()));
    let values = order.iter().map(|&i| s[i].abs()).collect();
    let vectors = Mat::from_fn(n, n, |r, c| u[(r, order[c])]);
    Ok((values, vectors))
}

/// Columns `keep` of `m`.
pub fn columns(m: &Mat<f64>, keep: &[usize]) -> Mat<f64> {
    Mat::from_fn(m.nrows(), keep.len(), |r, c| m[(r, keep[c])])
}

/// max |a - b| / max |b| over all entries.
pub fn relative_error(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let (mut d, mut m) = (0.0f64, 0.0f64);
    for r in 0..a.nrows() {
        for c in 0..a.ncols() {
            d = d.max((a[(r, c)] - b[(r, c)]).abs());
            m = m.max(b[(r, c)].abs());
        }
    }
    d / m.max(1e-300)
}
