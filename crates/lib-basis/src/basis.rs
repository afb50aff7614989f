//! The per-layer bases of the LIB paper (Bushnaq et al. 2024): LIB (the paper's `jacobian`
//! formula), PCA (`svd` with centering) and the neuron basis, built backwards from the logits.
//!
//! Row form throughout: f̂ = f · C, f ≈ f̂ · C⁺, with C (D × k) and C⁺ (k × D).

use crate::linalg::{columns, eigh_abs_desc};
use crate::network::{Integration, Module, Network};
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Whitened PCA rotated by the eigenvectors of E\[JᵀJ] and scaled by √Λ (the paper's LIB).
    Lib,
    /// C = Y U: centred, unwhitened PCA, constant first (the paper's baseline).
    Pca,
    /// C = I: the neurons themselves.
    Neuron,
}

impl std::str::FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lib" => Ok(Variant::Lib),
            "pca" => Ok(Variant::Pca),
            "neuron" => Ok(Variant::Neuron),
            _ => Err(Error::invalid(format!("unknown basis '{s}' (lib, pca, neuron)"))),
        }
    }
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Lib => "lib",
            Variant::Pca => "pca",
            Variant::Neuron => "neuron",
        }
    }
}

/// Which eigenvalues count as zero (an absolute threshold lets whitening by D^{-1/2} amplify
/// directions barely above it).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum Threshold {
    /// Drop eigenvalues below value · the largest (1e-10 recommended: exact null
    /// directions come out near 1e-16 · max).
    Relative(f64),
    /// Drop eigenvalues below value (the reference code's 1e-15, for bit-for-bit comparisons).
    Absolute(f64),
}

impl Threshold {
    fn cutoff(self, values: &[f64]) -> f64 {
        match self {
            Threshold::Relative(r) => r * values.iter().cloned().fold(0.0, f64::max),
            Threshold::Absolute(a) => a,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BasisOptions {
    pub variant: Variant,
    /// Subtract the mean from every coordinate but the constant (all paper configs).
    pub center: bool,
    pub threshold: Threshold,
    pub integration: Integration,
    /// Rotate the logits into their (uncentred) PCA basis instead of keeping them as they are.
    pub rotate_final: bool,
}

impl BasisOptions {
    pub fn new(variant: Variant) -> Self {
        BasisOptions { variant, center: variant != Variant::Neuron, threshold: Threshold::Relative(1e-10), integration: Integration::Gradient, rotate_final: false }
    }
}

/// One node layer's basis.
#[derive(Clone, Debug)]
pub struct LayerBasis {
    pub name: String,
    /// D × k: neuron coordinates to features.
    pub c: Mat<f64>,
    /// k × D: features back to neuron coordinates; C⁺ C = I.
    pub c_plus: Mat<f64>,
    /// Per feature: Λ for LIB (its E[f̂²], the squared downstream Jacobian norm), the variance
    /// for PCA, the second moment for neurons. Empty for the unrotated logits.
    pub lambda: Vec<f64>,
    /// The kept Gram eigenvalues, constant first when centred.
    pub gram_eigenvalues: Vec<f64>,
    /// Feature 0 is the constant direction.
    pub const_first: bool,
}

impl LayerBasis {
    pub fn width(&self) -> usize {
        self.c.ncols()
    }

    pub fn identity(name: &str, d: usize) -> LayerBasis {
        LayerBasis { name: name.into(), c: Mat::identity(d, d), c_plus: Mat::identity(d, d), lambda: vec![], gram_eigenvalues: vec![], const_first: false }
    }

    /// Feature coordinates f̂ = f · C.
    pub fn features(&self, f: &Mat<f64>) -> Mat<f64> {
        f * &self.c
    }
}

#[derive(Clone, Debug)]
pub struct Basis {
    pub options: BasisOptions,
    /// One per node layer, the logits last.
    pub layers: Vec<LayerBasis>,
}

/// The whitened PCA of one node layer (centred Gram matrix, its eigendecomposition, whitening).
struct Pca {
    /// Kept Gram eigenvalues (constant first when centred).
    values: Vec<f64>,
    /// W = Y U (D × d) and W⁺ = Uᵀ Y⁻¹ (d × D).
    w: Mat<f64>,
    w_plus: Mat<f64>,
}

fn pca(f: &Mat<f64>, center: bool, threshold: Threshold, what: &str) -> Result<Pca> {
    let (n, d) = (f.nrows(), f.ncols());
    if n == 0 {
        return Err(Error::invalid(format!("{what}: no samples to build a basis from")));
    }
    let mean: Vec<f64> = (0..d).map(|j| (0..n).map(|r| f[(r, j)]).sum::<f64>() / n as f64).collect();
    let (values, u) = if center {
        // G = [[Cov, 0], [0, 1]] exactly, so e_{D-1} with eigenvalue 1 is the constant direction.
        // Decomposing the covariance block alone keeps it exact even when Cov has an eigenvalue
        // near 1, where a full eigh could mix the two (the reference asserts it finds one).
        let g = Mat::from_fn(n, d - 1, |r, j| f[(r, j)] - mean[j]);
        let cov = (g.transpose() * &g) * faer::Scale(1.0 / n as f64);
        let (vals, vecs) = eigh_abs_desc(&cov, what)?;
        let mut values = vec![1.0];
        values.extend(vals);
        let u = Mat::from_fn(d, d, |r, c| match (r + 1 == d, c) {
            (true, 0) => 1.0,
            (_, 0) | (true, _) => 0.0,
            _ => vecs[(r, c - 1)],
        });
        (values, u)
    } else {
        let g = (f.transpose() * f) * faer::Scale(1.0 / n as f64);
        eigh_abs_desc(&g, what)?
    };
    let cut = threshold.cutoff(&values);
    let keep: Vec<usize> = (0..values.len()).filter(|&i| values[i] > cut).collect();
    let u = columns(&u, &keep);
    let values: Vec<f64> = keep.iter().map(|&i| values[i]).collect();
    // Y: identity with the last row (-μ_0, …, -μ_{D-2}, 1), so f·Y = (f - μ, 1); Y⁻¹ has +μ.
    let y = |sign: f64| Mat::from_fn(d, d, |r, c| if r + 1 == d && center && c + 1 < d { sign * mean[c] } else { (r == c) as u8 as f64 });
    let w = &y(-1.0) * &u;
    let w_plus = u.transpose() * &y(1.0);
    Ok(Pca { values, w, w_plus })
}

/// E\[JᵀJ] (D × D) of f ↦ section(f) · C_out over the samples, in closed form:
/// J(x) = Kᵀ diag(s(x)) Wᵀ with K = T C_out, so E\[JᵀJ] = W ((K Kᵀ) ⊙ E[s sᵀ]) Wᵀ.
pub fn jacobian_moment(net: &Network, l: usize, f: &Mat<f64>, c_out: &Mat<f64>, rule: &Integration) -> Mat<f64> {
    let s = match &net.sections[l] {
        Module::Dense(s) => s,
        other => return crate::transformer::sample_moment(other, f, c_out),
    };
    let gates = s.gates(&s.pre(f), rule);
    let k = s.expand(c_out);
    let kk = &k * k.transpose();
    let ss = (gates.transpose() * &gates) * faer::Scale(1.0 / f.nrows() as f64);
    let inner = Mat::from_fn(kk.nrows(), kk.ncols(), |i, j| kk[(i, j)] * ss[(i, j)]);
    &s.weight * &inner * s.weight.transpose()
}

/// The bases of every node layer for activations `acts` (f_0 … f_L from
/// [`Network::node_activations`] on the basis data set).
pub fn build(net: &Network, acts: &[Mat<f64>], options: &BasisOptions) -> Result<Basis> {
    let n_layers = net.len();
    if acts.len() != n_layers {
        return Err(Error::invalid(format!("expected activations of {n_layers} node layers, got {}", acts.len())));
    }
    if options.integration != Integration::Gradient && net.sections.iter().any(|s| !matches!(s, Module::Dense(_))) {
        return Err(Error::invalid("a transformer's LIB uses the plain gradient (integration rule 'gradient'); integrated gradients exist only for MLP-like models"));
    }
    let last = n_layers - 1;
    let final_name = &net.node_names[last];
    let final_basis = if options.rotate_final {
        let p = pca(&acts[last], false, options.threshold, final_name)?;
        LayerBasis { name: final_name.clone(), c: p.w, c_plus: p.w_plus, lambda: p.values.clone(), gram_eigenvalues: p.values, const_first: false }
    } else {
        LayerBasis::identity(final_name, acts[last].ncols())
    };
    let mut layers = vec![final_basis];
    for l in (0..last).rev() {
        let name = &net.node_names[l];
        let f = &acts[l];
        let basis = match options.variant {
            Variant::Neuron => {
                let d = f.ncols();
                let second: Vec<f64> = (0..d).map(|j| (0..f.nrows()).map(|r| f[(r, j)].powi(2)).sum::<f64>() / f.nrows() as f64).collect();
                LayerBasis { lambda: second, ..LayerBasis::identity(name, d) }
            }
            Variant::Pca => {
                let p = pca(f, options.center, options.threshold, name)?;
                LayerBasis { name: name.clone(), c: p.w, c_plus: p.w_plus, lambda: p.values.clone(), gram_eigenvalues: p.values, const_first: options.center }
            }
            Variant::Lib => lib_layer(net, l, f, &layers.last().unwrap().c, options)?,
        };
        layers.push(basis);
    }
    layers.reverse();
    Ok(Basis { options: options.clone(), layers })
}

/// The LIB basis of node layer l, given the next layer's C: Gram eigendecomposition, whitening,
/// eigendecomposition of the whitened Jacobian moment, Λ scaling and truncation.
fn lib_layer(net: &Network, l: usize, f: &Mat<f64>, c_next: &Mat<f64>, options: &BasisOptions) -> Result<LayerBasis> {
    let name = &net.node_names[l];
    let p = pca(f, options.center, options.threshold, name)?;
    let d = p.values.len();
    // R = W D^{-1/2}, R⁺ = D^{1/2} W⁺: whitened PCA coordinates f̃ = f R with E[f̃ᵀf̃] = I.
    let r = Mat::from_fn(p.w.nrows(), d, |i, j| p.w[(i, j)] / p.values[j].sqrt());
    let r_plus = Mat::from_fn(d, p.w_plus.ncols(), |i, j| p.w_plus[(i, j)] * p.values[i].sqrt());
    let m_prime = jacobian_moment(net, l, f, c_next, &options.integration);
    let m = &r_plus * &m_prime * r_plus.transpose();
    // Masked eigendecomposition: the constant direction (index 0 when centred) is not rotated.
    let masked = options.center as usize;
    let block = Mat::from_fn(d - masked, d - masked, |i, j| m[(i + masked, j + masked)]);
    let (vals, vecs) = eigh_abs_desc(&block, &format!("{name}: the whitened Jacobian moment M"))?;
    let mut lambda: Vec<f64> = (0..masked).map(|i| m[(i, i)].abs()).collect();
    lambda.extend(vals);
    let v = Mat::from_fn(d, d, |i, j| match (i < masked, j < masked) {
        (true, true) => (i == j) as u8 as f64,
        (false, false) => vecs[(i - masked, j - masked)],
        _ => 0.0,
    });
    let cut = options.threshold.cutoff(&lambda);
    let keep: Vec<usize> = (0..d).filter(|&i| lambda[i] > cut).collect();
    let lambda: Vec<f64> = keep.iter().map(|&i| lambda[i]).collect();
    let v = columns(&v, &keep);
    let rv = &r * &v;
    let c = Mat::from_fn(rv.nrows(), keep.len(), |i, j| rv[(i, j)] * lambda[j].sqrt());
    let vr = v.transpose() * &r_plus;
    let c_plus = Mat::from_fn(keep.len(), vr.ncols(), |i, j| vr[(i, j)] / lambda[i].sqrt());
    let const_first = masked == 1 && keep.first() == Some(&0);
    Ok(LayerBasis { name: name.clone(), c, c_plus, lambda, gram_eigenvalues: p.values, const_first })
}
