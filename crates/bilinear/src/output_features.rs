//! Output features of a bilinear transformer's MLP read from its weights (Pearce et al., ICLR
//! 2025, section 5.2): for an output direction u (an SAE feature's encoder direction at the
//! MLP's output), u·MLP(x) = xᵀ Q(u) x with Q(u) = sym(Wᵀ diag(Pᵀ u) V). Its top eigenvectors by
//! |λ| give the approximation ŷ_k(x) = Σ_{i≤k} λ_i (v_i·x)², which is exact at k = d_model;
//! how well ŷ_k correlates with the feature's activation where it fires says how low-rank the
//! feature's computation is. [`LowRankMlp`] keeps only the top-k eigenvectors of every output
//! direction of a basis and so replaces the whole MLP by a low-rank one, whose cost to the
//! model's loss says how much of the MLP's work those eigenvectors carry.

use crate::eigen::{eigh, Spectrum};
use crate::layer::BilinearLayer;
use crate::Result;
use faer::Mat;
use rayon::prelude::*;
use serde::Serialize;

/// How one output feature's activation is approximated by its top eigenvectors.
#[derive(Clone, Debug, Serialize)]
pub struct FeatureCorrelation {
    pub feature: usize,
    /// Positions where the feature fires.
    pub fires: usize,
    /// Pearson correlation of ŷ_k with the activation over those positions, one per k asked.
    pub correlation: Vec<f64>,
    /// The largest eigenvalues of Q(u) by |λ|.
    pub top_eigenvalues: Vec<f64>,
}

/// Pearson correlation; 0 when either side is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// For output direction `u`, the activations `y` of its feature at N positions and the MLP's
/// inputs `x` there (row-major N × d_in): the correlation of ŷ_k with y over the positions
/// where y > 0, for each k of `ks`. None when the feature fires at `min_fires` positions or
/// fewer (the paper drops features with ≤ 10 activations).
pub fn feature_correlation(layer: &BilinearLayer, feature: usize, u: &[f64], x: &[f32], y: &[f32], ks: &[usize], min_fires: usize) -> Result<Option<FeatureCorrelation>> {
    let d = layer.d_in();
    let firing: Vec<usize> = (0..y.len()).filter(|&r| y[r] > 0.0).collect();
    if firing.len() <= min_fires {
        return Ok(None);
    }
    let spectrum = eigh(&layer.interaction(u))?;
    let k_max = ks.iter().copied().max().unwrap_or(0).min(spectrum.len());
    // Cumulative ŷ_k per firing position, for k = 1 … k_max.
    let mut approx = vec![vec![0.0; firing.len()]; k_max + 1];
    for (n, &r) in firing.iter().enumerate() {
        let row = &x[r * d..(r + 1) * d];
        let mut total = 0.0;
        for i in 0..k_max {
            let proj: f64 = (0..d).map(|j| spectrum.vectors[(j, i)] * row[j] as f64).sum();
            total += spectrum.values[i] * proj * proj;
            approx[i + 1][n] = total;
        }
    }
    let target: Vec<f64> = firing.iter().map(|&r| y[r] as f64).collect();
    let correlation = ks.iter().map(|&k| pearson(&approx[k.min(k_max)], &target)).collect();
    Ok(Some(FeatureCorrelation { feature, fires: firing.len(), correlation, top_eigenvalues: spectrum.values.iter().take(k_max).copied().collect() }))
}

/// The strongest interactions of output direction u between input features (unit decoder
/// directions `inputs`, each of length d_in): f_iᵀ Q(u) f_j for i ≤ j, the `top` largest by
/// magnitude as (i, j, value).
pub fn input_feature_interactions(layer: &BilinearLayer, u: &[f64], inputs: &[Vec<f64>], top: usize) -> Vec<(usize, usize, f64)> {
    let q = layer.interaction(u);
    let d = layer.d_in();
    let qf: Vec<Vec<f64>> = inputs.iter().map(|f| (0..d).map(|r| (0..d).map(|c| q[(r, c)] * f[c]).sum()).collect()).collect();
    let mut all: Vec<(usize, usize, f64)> = (0..inputs.len())
        .flat_map(|i| (i..inputs.len()).map(move |j| (i, j)))
        .map(|(i, j)| (i, j, inputs[i].iter().zip(&qf[j]).map(|(a, b)| a * b).sum()))
        .collect();
    all.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    all.truncate(top);
    all
}

/// The MLP with its output along each direction b_o of an orthonormal basis of the output space
/// approximated by the top-k eigenvectors of Q(b_o): MLP_k(x) = Σ_o b_o Σ_{i≤k} λ_{o,i}
/// (v_{o,i}·x)². At k = d_in every eigenvector is kept and MLP_k is the MLP exactly, since the
/// b_o span the output space.
pub struct LowRankMlp {
    /// The output directions, one per row (d_out × d_out).
    basis: Mat<f64>,
    /// Per direction, its interaction matrix's eigenpairs sorted by |λ|.
    spectra: Vec<Spectrum>,
}

impl LowRankMlp {
    /// `basis` holds the output directions as rows; they must be orthonormal (checked to 1e-6),
    /// so that MLP_d is the MLP.
    pub fn new(layer: &BilinearLayer, basis: Mat<f64>) -> Result<Self> {
        if basis.ncols() != layer.d_out() || basis.nrows() != layer.d_out() {
            return Err(crate::Error::invalid(format!(
                "the output basis is {}x{}, the MLP writes {} values",
                basis.nrows(),
                basis.ncols(),
                layer.d_out()
            )));
        }
        let gram = &basis * basis.transpose();
        let off = (0..gram.nrows()).flat_map(|r| (0..gram.ncols()).map(move |c| (r, c))).map(|(r, c)| (gram[(r, c)] - if r == c { 1.0 } else { 0.0 }).abs()).fold(0.0, f64::max);
        if !(off <= 1e-6) {
            return Err(crate::Error::invalid(format!("the output basis is not orthonormal: B Bᵀ differs from the identity by {off:.2e}")));
        }
        let spectra = (0..basis.nrows())
            .into_par_iter()
            .map(|o| eigh(&layer.interaction(&(0..basis.ncols()).map(|c| basis[(o, c)]).collect::<Vec<_>>())))
            .collect::<Result<Vec<_>>>()?;
        Ok(LowRankMlp { basis, spectra })
    }

    /// The residual stream's own axes as the output directions.
    pub fn standard(layer: &BilinearLayer) -> Result<Self> {
        Self::new(layer, Mat::identity(layer.d_out(), layer.d_out()))
    }

    /// MLP_k of the rows of `x` (row-major, d_in values each) for every k of `ks`, each
    /// row-major with d_out values per row.
    pub fn outputs(&self, x: &[f32], ks: &[usize]) -> Result<Vec<Vec<f32>>> {
        let d = self.spectra.first().map_or(0, |s| s.vectors.nrows());
        if d == 0 || x.len() % d != 0 {
            return Err(crate::Error::invalid(format!("{} input values are not whole rows of the MLP's {d} inputs", x.len())));
        }
        let n = x.len() / d;
        let k_max = ks.iter().copied().max().unwrap_or(0).min(d);
        let xm = Mat::from_fn(n, d, |r, c| x[r * d + c] as f64);
        // coefficients[j][(r, o)]: Σ_{i≤ks[j]} λ_{o,i} (v_{o,i}·x_r)², the output along b_o.
        let columns: Vec<Vec<Vec<f64>>> = self
            .spectra
            .par_iter()
            .map(|s| {
                let projections = &xm * s.vectors.subcols(0, k_max);
                let mut cumulative = vec![0.0; n];
                let mut per_k = vec![Vec::new(); ks.len()];
                let mut kept = 0;
                for j in sorted_indices(ks) {
                    let k = ks[j].min(k_max);
                    for i in kept..k {
                        for (r, c) in cumulative.iter_mut().enumerate() {
                            *c += s.values[i] * projections[(r, i)] * projections[(r, i)];
                        }
                    }
                    kept = kept.max(k);
                    per_k[j] = cumulative.clone();
                }
                per_k
            })
            .collect();
        Ok((0..ks.len())
            .map(|j| {
                let coefficients = Mat::from_fn(n, self.basis.nrows(), |r, o| columns[o][j][r]);
                let out = &coefficients * &self.basis;
                (0..n).flat_map(|r| (0..out.ncols()).map(move |c| (r, c))).map(|(r, c)| out[(r, c)] as f32).collect()
            })
            .collect())
    }
}

/// Indices of `ks` in increasing order of their values, so cumulative sums are formed once.
fn sorted_indices(ks: &[usize]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..ks.len()).collect();
    idx.sort_by_key(|&j| ks[j]);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;
    use rand::{Rng, SeedableRng};

    fn random_layer(d: usize, h: usize, out: usize, seed: u64) -> BilinearLayer {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut m = |r: usize, c: usize| Mat::from_fn(r, c, |_, _| rng.random_range(-1.0..1.0));
        BilinearLayer { w: m(h, d), v: m(h, d), p: m(out, h), b1: None, b2: None }
    }

    #[test]
    fn all_eigenvectors_reproduce_the_output_exactly() {
        let (d, n) = (6, 40);
        let layer = random_layer(d, 9, 5, 1);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let u: Vec<f64> = (0..5).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        // The feature's activation: u·MLP(x), shifted up so that it fires almost everywhere.
        let y: Vec<f32> = (0..n).map(|r| {
            let out = layer.forward(&x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect::<Vec<_>>());
            (u.iter().zip(&out).map(|(a, b)| a * b).sum::<f64>() + 100.0) as f32
        }).collect();
        let c = feature_correlation(&layer, 0, &u, &x, &y, &[1, 2, d], 10).unwrap().unwrap();
        assert_eq!(c.fires, n);
        assert!((c.correlation[2] - 1.0).abs() < 1e-6, "k = d gives xᵀQx exactly: {:?}", c.correlation);
        assert!(c.correlation[0] < c.correlation[2]);
        assert!(c.top_eigenvalues.windows(2).all(|w| w[0].abs() >= w[1].abs()));
    }

    /// Every eigenvector kept gives the MLP back, in any orthonormal output basis; fewer give
    /// the sum of the kept rank-one terms, computed here by brute force.
    #[test]
    fn low_rank_mlp_is_exact_at_full_rank_and_sums_kept_terms_below() {
        let (d, out, n) = (5, 4, 7);
        let layer = random_layer(d, 8, out, 5);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let x: Vec<f32> = (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let exact: Vec<f64> = (0..n).flat_map(|r| layer.forward(&x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect::<Vec<_>>())).collect();
        // A random orthonormal basis: the Q factor of a random matrix.
        let a = Mat::from_fn(out, out, |_, _| rng.random_range(-1.0..1.0));
        let q = a.qr().compute_Q();
        for basis in [Mat::identity(out, out), q.transpose().to_owned()] {
            let low = LowRankMlp::new(&layer, basis.clone()).unwrap();
            let ys = low.outputs(&x, &[d, 2]).unwrap();
            let worst = ys[0].iter().zip(&exact).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(worst < 1e-5, "full rank differs from the MLP by {worst}");
            for r in 0..n {
                let row: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
                for c in 0..out {
                    // The two largest |λ| of each direction's Q, from a decomposition of our own.
                    let want: f64 = (0..out)
                        .map(|o| {
                            let b: Vec<f64> = (0..out).map(|k| basis[(o, k)]).collect();
                            let evd = layer.interaction(&b).self_adjoint_eigen(faer::Side::Lower).unwrap();
                            let mut order: Vec<usize> = (0..d).collect();
                            order.sort_by(|&i, &j| evd.S()[j].abs().total_cmp(&evd.S()[i].abs()));
                            let terms: f64 = order[..2].iter().map(|&i| evd.S()[i] * (0..d).map(|j| evd.U()[(j, i)] * row[j]).sum::<f64>().powi(2)).sum();
                            terms * basis[(o, c)]
                        })
                        .sum();
                    assert!((ys[1][r * out + c] as f64 - want).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn rarely_firing_features_are_skipped() {
        let layer = random_layer(3, 4, 2, 3);
        let y = vec![0.0f32, 1.0, 0.0, 2.0];
        assert!(feature_correlation(&layer, 0, &[1.0, 0.0], &[0.0; 12], &y, &[1], 10).unwrap().is_none());
    }

    #[test]
    fn input_interactions_are_bilinear_forms_of_q() {
        let layer = random_layer(4, 6, 3, 4);
        let u = vec![0.3, -1.0, 0.5];
        let inputs: Vec<Vec<f64>> = (0..3).map(|i| (0..4).map(|j| if j == i { 1.0 } else { 0.0 }).collect()).collect();
        let q = layer.interaction(&u);
        let top = input_feature_interactions(&layer, &u, &inputs, 6);
        assert_eq!(top.len(), 6);
        for (i, j, v) in top {
            assert!((v - q[(i, j)]).abs() < 1e-12);
        }
    }
}
