//! The interaction graph of the LIB paper: squared gradient-times-activation edges between the
//! features of adjacent node layers, in closed form.

use crate::basis::Basis;
use crate::network::{Integration, Module, Network};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rayon::prelude::*;

/// E^l (k_{l+1} × k_l): E_ij = mean over samples of (Σ_α w_α ∂f̂^{l+1}_i/∂f̂^l_j (α f̂^l) · f̂^l_j)².
///
/// The section runs on the reconstruction f̂ C⁺ (the module in feature coordinates), so its
/// Jacobian is K_outᵀ diag(s) K_in with K_out = T C_{l+1} and K_in = (C⁺ W)ᵀ; each output feature
/// i is one N × P × k_in product, and the outputs are spread over the rayon threads.
pub fn edges(net: &Network, basis: &Basis, l: usize, f: &Mat<f64>, rule: &Integration) -> Mat<f64> {
    let (b_in, b_out) = (&basis.layers[l], &basis.layers[l + 1]);
    let f_hat = b_in.features(f);
    let section = match &net.sections[l] {
        Module::Dense(s) => s,
        // Transformer sections: per-sample Jacobians (the plain gradient; `build` refuses others).
        other => return crate::transformer::sample_edges(other, &b_in.c_plus, &b_out.c, &f_hat),
    };
    let k_in = &b_in.c_plus * &section.weight; // k_in × P
    let gates = section.gates(&(&f_hat * &k_in), rule); // N × P
    let k_out = section.expand(&b_out.c); // P × k_out
    let (n, p, kin) = (f.nrows(), gates.ncols(), k_in.nrows());
    let rows: Vec<Vec<f64>> = (0..k_out.ncols())
        .into_par_iter()
        .map(|i| {
            let scaled = Mat::from_fn(n, p, |r, s| gates[(r, s)] * k_out[(s, i)]);
            let mut a = Mat::<f64>::zeros(n, kin);
            matmul(a.as_mut(), Accum::Replace, scaled.as_ref(), k_in.transpose(), 1.0, Par::Seq);
            (0..kin).map(|j| (0..n).map(|r| (a[(r, j)] * f_hat[(r, j)]).powi(2)).sum::<f64>() / n as f64).collect()
        })
        .collect();
    Mat::from_fn(rows.len(), kin, |i, j| rows[i][j])
}
