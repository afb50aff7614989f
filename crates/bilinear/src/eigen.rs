//! Symmetric eigendecomposition with faer in f64 (bilinear-MLP paper §3.2), ordered by |λ|, and a
//! Lanczos solver for the top-k eigenpairs of a matrix known only through products Q x.

use crate::{Error, Result};
use faer::{Mat, Side};
use rand::{Rng, SeedableRng};

/// Eigenpairs sorted by |λ| descending (ties: larger λ first). Column i of `vectors` is the
/// unit eigenvector of `values[i]`; its sign is arbitrary (compare with |cos|).
#[derive(Clone, Debug)]
pub struct Spectrum {
    pub values: Vec<f64>,
    pub vectors: Mat<f64>,
}

impl Spectrum {
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn vector(&self, i: usize) -> Vec<f64> {
        (0..self.vectors.nrows()).map(|r| self.vectors[(r, i)]).collect()
    }
    /// Indices of the `k` most positive eigenvalues, largest first.
    pub fn top_positive(&self, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len()).filter(|&i| self.values[i] > 0.0).collect();
        idx.sort_by(|&a, &b| self.values[b].total_cmp(&self.values[a]));
        idx.truncate(k);
        idx
    }
    /// Indices of the `k` most negative eigenvalues, most negative first.
    pub fn top_negative(&self, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len()).filter(|&i| self.values[i] < 0.0).collect();
        idx.sort_by(|&a, &b| self.values[a].total_cmp(&self.values[b]));
        idx.truncate(k);
        idx
    }
    /// (L1/L2)² of the eigenvalues (the bilinear-MLP paper's App E).
    pub fn effective_rank(&self) -> f64 {
        effective_count(&self.values)
    }
}

/// The "effective count" (Σ|x|)² / Σx² of a vector: n for a flat vector, 1 for a one-hot one.
pub fn effective_count(x: &[f64]) -> f64 {
    let l1: f64 = x.iter().map(|v| v.abs()).sum();
    let l2: f64 = x.iter().map(|v| v * v).sum();
    if l2 == 0.0 {
        0.0
    } else {
        l1 * l1 / l2
    }
}

fn sorted_by_magnitude(values: Vec<f64>, vectors: Mat<f64>) -> Spectrum {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()).then(values[b].total_cmp(&values[a])));
    Spectrum {
        values: order.iter().map(|&i| values[i]).collect(),
        vectors: Mat::from_fn(vectors.nrows(), order.len(), |r, c| vectors[(r, order[c])]),
    }
}

/// All eigenpairs of a symmetric matrix (only its lower triangle is read).
pub fn eigh(q: &Mat<f64>) -> Result<Spectrum> {
    if q.nrows() != q.ncols() {
        return Err(Error::invalid(format!("eigendecomposition needs a square matrix, got {}x{}", q.nrows(), q.ncols())));
    }
    if q.nrows() == 0 {
        return Ok(Spectrum { values: vec![], vectors: Mat::zeros(0, 0) });
    }
    if (0..q.nrows()).any(|i| (0..q.ncols()).any(|j| !q[(i, j)].is_finite())) {
        return Err(Error::invalid("the interaction matrix contains NaN or Inf"));
    }
    let evd = q
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| Error::invalid(format!("symmetric eigendecomposition failed: {e:?}")))?;
    let s = evd.S().column_vector();
    let values: Vec<f64> = (0..q.nrows()).map(|i| s[i]).collect();
    Ok(sorted_by_magnitude(values, evd.U().to_owned()))
}

/// The `k` eigenpairs of largest |λ| of the symmetric n x n operator `matvec`, by Lanczos with
/// full reorthogonalisation. The Krylov space grows until every wanted Ritz pair has a
/// residual below `tol` times the largest |λ| (at n steps the answer is exact), so the cost is
/// O(m n) memory and m products for m steps instead of O(n²) memory and O(n³) work.
pub fn lanczos_top_k(n: usize, k: usize, matvec: impl Fn(&[f64]) -> Vec<f64>, tol: f64, seed: u64) -> Result<Spectrum> {
    let k = k.min(n);
    if k == 0 {
        return Ok(Spectrum { values: vec![], vectors: Mat::zeros(n, 0) });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let (mut alpha, mut beta) = (Vec::<f64>::new(), Vec::<f64>::new());
    let mut next = random_orthogonal(n, &basis, &mut rng);
    let mut m_target = (2 * k + 20).min(n);
    loop {
        while basis.len() < m_target {
            let q = match next.take() {
                Some(q) => q,
                None => break,
            };
            let mut w = matvec(&q);
            if w.len() != n || w.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid("the operator returned a vector of the wrong length or with NaN/Inf"));
            }
            let a = dot(&q, &w);
            basis.push(q);
            alpha.push(a);
            // Full reorthogonalisation, twice ("twice is enough"), replaces the three-term recurrence.
            for _ in 0..2 {
                for b in &basis {
                    let c = dot(b, &w);
                    axpy(-c, b, &mut w);
                }
            }
            let norm = dot(&w, &w).sqrt();
            let scale = alpha.iter().fold(1e-300f64, |m, a| m.max(a.abs()));
            if norm > 1e-10 * scale && basis.len() < n {
                beta.push(norm);
                next = Some(w.iter().map(|x| x / norm).collect());
            } else {
                // Invariant subspace: continue with a fresh direction (T gets a zero coupling).
                beta.push(0.0);
                next = if basis.len() < n { random_orthogonal(n, &basis, &mut rng) } else { None };
            }
        }
        let m = basis.len();
        let t = Mat::from_fn(m, m, |i, j| {
            if i == j {
                alpha[i]
            } else if i == j + 1 {
                beta[j]
            } else if j == i + 1 {
                beta[i]
            } else {
                0.0
            }
        });
        let ritz = eigh(&t)?;
        let largest = ritz.values.first().map_or(0.0, |v| v.abs());
        let coupling = beta.get(m - 1).copied().unwrap_or(0.0);
        let converged = (0..k.min(m)).all(|i| (coupling * ritz.vectors[(m - 1, i)]).abs() <= tol * largest.max(1e-300));
        if (converged && m >= k) || m >= n || next.is_none() {
            let kk = k.min(m);
            let vectors = Mat::from_fn(n, kk, |r, c| (0..m).map(|j| basis[j][r] * ritz.vectors[(j, c)]).sum());
            return Ok(Spectrum { values: ritz.values[..kk].to_vec(), vectors });
        }
        m_target = (m_target * 2).min(n);
    }
}

fn random_orthogonal(n: usize, basis: &[Vec<f64>], rng: &mut impl Rng) -> Option<Vec<f64>> {
    for _ in 0..8 {
        let mut v: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
        for _ in 0..2 {
            for b in basis {
                let c = dot(b, &v);
                axpy(-c, b, &mut v);
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm > 1e-8 {
            return Some(v.iter().map(|x| x / norm).collect());
        }
    }
    None
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}
