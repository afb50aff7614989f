//! Interaction matrices Q(u) = sym(W^T diag(P^T u) V), materialised and matrix-free, the output
//! tensor B, the bias parts, the residual fold and two-layer chaining (after Pearce et al. 2024).

use crate::eigen::{eigh, Spectrum};
use crate::layer::BilinearLayer;
use crate::Result;
use faer::Mat;

/// (M + M^T) / 2: only the symmetric part of an interaction matrix reaches the output.
pub fn symmetrise(m: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| 0.5 * (m[(i, j)] + m[(j, i)]))
}

impl BilinearLayer {
    /// c = P^T u: the weight of each hidden unit along output direction u.
    pub fn hidden_weights(&self, u: &[f64]) -> Vec<f64> {
        assert_eq!(u.len(), self.d_out(), "direction has the wrong length");
        (0..self.d_hidden()).map(|h| (0..self.d_out()).map(|c| self.p[(c, h)] * u[c]).sum()).collect()
    }

    /// W^T diag(c) V before symmetrisation, for hidden weights c.
    pub fn raw_interaction_of_weights(&self, c: &[f64]) -> Mat<f64> {
        let cv = Mat::from_fn(self.d_hidden(), self.d_in(), |h, j| c[h] * self.v[(h, j)]);
        self.w.transpose() * &cv
    }

    /// Q(u) = sym(W^T diag(P^T u) V), so that u·y(x) = x^T Q(u) x for a bias-free layer.
    /// Costs O(d_hidden d_in²); the d_out x d_in x d_in tensor is never formed.
    pub fn interaction(&self, u: &[f64]) -> Mat<f64> {
        symmetrise(&self.raw_interaction_of_weights(&self.hidden_weights(u)))
    }

    /// Q(u) x without forming Q: ½(W^T(c ⊙ V x) + V^T(c ⊙ W x)), O(d_hidden d_in).
    pub fn interaction_matvec(&self, c: &[f64], x: &[f64]) -> Vec<f64> {
        let (h, d) = (self.d_hidden(), self.d_in());
        let wx: Vec<f64> = (0..h).map(|k| crate::layer::dot_row(&self.w, k, x)).collect();
        let vx: Vec<f64> = (0..h).map(|k| crate::layer::dot_row(&self.v, k, x)).collect();
        (0..d)
            .map(|j| 0.5 * (0..h).map(|k| c[k] * (self.w[(k, j)] * vx[k] + self.v[(k, j)] * wx[k])).sum::<f64>())
            .collect()
    }

    /// The symmetrised output tensor: B_c = Q(e_c) for every output c.
    pub fn output_tensor(&self) -> Vec<Mat<f64>> {
        (0..self.d_out()).map(|c| self.interaction(&unit(self.d_out(), c))).collect()
    }
}

pub fn unit(n: usize, i: usize) -> Vec<f64> {
    let mut e = vec![0.0; n];
    e[i] = 1.0;
    e
}

/// The parts of a bias-augmented interaction matrix Q'(u) (size d+1, paper App L):
/// u·y(x) = x^T quadratic x + linear·x + constant.
#[derive(Clone, Debug)]
pub struct BiasParts {
    pub quadratic: Mat<f64>,
    pub linear: Vec<f64>,
    pub constant: f64,
}

pub fn bias_parts(q_folded: &Mat<f64>) -> BiasParts {
    let d = q_folded.nrows() - 1;
    BiasParts {
        quadratic: Mat::from_fn(d, d, |i, j| q_folded[(i, j)]),
        linear: (0..d).map(|i| 2.0 * q_folded[(i, d)]).collect(),
        constant: q_folded[(d, d)],
    }
}

/// Residual fold: U_c·z + z^T Q_c z = z'^T Q'_c z' with z' = [z; 1] and
/// Q'_c = [[Q_c, ½U_c^T], [½U_c, 0]].
pub fn residual_fold(q: &Mat<f64>, linear: &[f64]) -> Mat<f64> {
    let d = q.nrows();
    Mat::from_fn(d + 1, d + 1, |i, j| match (i < d, j < d) {
        (true, true) => q[(i, j)],
        (true, false) => 0.5 * linear[i],
        (false, true) => 0.5 * linear[j],
        (false, false) => 0.0,
    })
}

/// One eigen-path of a two-layer non-residual stack x -> g1(x) -> P2 g2(g1(x)):
/// y·u = Σ_i λ_i (x^T Q_1(v_i) x)², where (λ_i, v_i) are the eigenpairs of the upper
/// layer's Q_2(u) and Q_1(v) = sym(W_1^T diag(v) V_1).
pub struct ChainTerm {
    pub eigenvalue: f64,
    pub direction: Vec<f64>,
    pub lower: Mat<f64>,
}

/// The `k` largest-|λ| eigen-paths (all of them when k >= d_hidden of the lower layer).
/// `lower` is read as g1 only (its P is ignored), since its hidden units feed `upper` directly.
pub fn chain_two(lower: &BilinearLayer, upper: &BilinearLayer, u: &[f64], k: usize) -> Result<Vec<ChainTerm>> {
    assert_eq!(upper.d_in(), lower.d_hidden(), "the upper layer reads the lower layer's hidden units");
    let spectrum: Spectrum = eigh(&upper.interaction(u))?;
    Ok((0..k.min(spectrum.len()))
        .map(|i| {
            let v = spectrum.vector(i);
            ChainTerm { eigenvalue: spectrum.values[i], lower: symmetrise(&lower.raw_interaction_of_weights(&v)), direction: v }
        })
        .collect())
}
