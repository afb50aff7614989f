//! Higher-order SVD of the output tensor (bilinear-MLP paper §3.3, App D):
//! B = Σ_s σ_s u_s ⊗ R_s, with the d_out x d_out Gram matrix G_cc' = tr(B_c B_c') computed from
//! W, V, P without forming B.

use crate::eigen::eigh;
use crate::layer::BilinearLayer;
use crate::Result;
use faer::Mat;

pub struct Hosvd {
    /// Singular values, descending.
    pub singular_values: Vec<f64>,
    /// Column s is the output pattern u_s (unit, length d_out).
    pub output_vectors: Mat<f64>,
    /// R_s = Q(u_s) / σ_s: unit-Frobenius-norm symmetric interaction matrices.
    pub interactions: Vec<Mat<f64>>,
}

/// G = ½ P [(M ∘ M^T) + (V V^T) ∘ (W W^T)] P^T with M = V W^T, which equals tr(B_c B_c') for
/// the symmetrised B (the Gram trick: tr(sym(X) sym(X')) = (tr(X X') + tr(X X'^T)) / 2).
pub fn gram(layer: &BilinearLayer) -> Mat<f64> {
    let m = &layer.v * layer.w.transpose();
    let ww = &layer.w * layer.w.transpose();
    let vv = &layer.v * layer.v.transpose();
    let h = layer.d_hidden();
    let k = Mat::from_fn(h, h, |a, b| 0.5 * (m[(a, b)] * m[(b, a)] + vv[(a, b)] * ww[(b, a)]));
    &layer.p * &k * layer.p.transpose()
}

/// The HOSVD with `rank` components (all non-zero ones when `rank` exceeds d_out).
pub fn hosvd(layer: &BilinearLayer, rank: usize) -> Result<Hosvd> {
    let g = gram(layer);
    let spectrum = eigh(&g)?;
    // G is positive semi-definite, so |λ| order is singular-value order.
    let n = rank.min(spectrum.len());
    let singular_values: Vec<f64> = spectrum.values[..n].iter().map(|l| l.max(0.0).sqrt()).collect();
    let output_vectors = Mat::from_fn(layer.d_out(), n, |r, c| spectrum.vectors[(r, c)]);
    let interactions = (0..n)
        .map(|s| {
            let q = layer.interaction(&spectrum.vector(s));
            let sigma = singular_values[s];
            if sigma > 0.0 {
                Mat::from_fn(q.nrows(), q.ncols(), |i, j| q[(i, j)] / sigma)
            } else {
                q
            }
        })
        .collect();
    Ok(Hosvd { singular_values, output_vectors, interactions })
}
