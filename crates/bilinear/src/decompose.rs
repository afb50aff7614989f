//! Per-class decomposition of a bilinear model (Pearce et al. 2024, §3.2) and the low-rank
//! truncated model (its Fig 5B).

use crate::eigen::{eigh, lanczos_top_k, Spectrum};
use crate::interaction::unit;
use crate::layer::BilinearModel;
use crate::Result;
use faer::Mat;
use rayon::prelude::*;

/// Eigendecomposition of B_c for every class c, in the layer's input (embedding) space, with
/// the eigenvectors pulled back to raw-input (pixel) space as E^T v.
#[derive(Clone, Debug)]
pub struct Decomposition {
    /// Spectra per class, sorted by |λ|.
    pub classes: Vec<Spectrum>,
    /// Per class, `[d_raw (+1 when bias_folded), n_vectors]`: column i is E^T v_i. Not unit-norm.
    pub pixel_vectors: Vec<Mat<f64>>,
    /// True when the model had biases and was decomposed on x' = [x; 1] (the paper's App L).
    pub bias_folded: bool,
}

/// Decompose every output class. Biases are folded in with the appended constant, so the
/// decomposition always reproduces the model's logits exactly at full rank.
pub fn decompose(model: &BilinearModel) -> Result<Decomposition> {
    let bias_folded = model.layer.has_bias();
    let model = if bias_folded { model.with_bias_folded() } else { model.clone() };
    let layer = &model.layer;
    let classes: Vec<Spectrum> = (0..layer.d_out())
        .into_par_iter()
        .map(|c| eigh(&layer.interaction(&unit(layer.d_out(), c))))
        .collect::<Result<_>>()?;
    let pixel_vectors = classes
        .iter()
        .map(|s| match &model.embed {
            Some(e) => e.transpose() * &s.vectors,
            None => s.vectors.clone(),
        })
        .collect();
    Ok(Decomposition { classes, pixel_vectors, bias_folded })
}

/// Like [`decompose`], but only the `k` largest-|λ| eigenpairs per class, found by Lanczos on
/// the matrix-free product Q_c x (no d_in x d_in matrix is formed): for wide layers where only
/// the top of each spectrum is wanted.
pub fn decompose_top_k(model: &BilinearModel, k: usize) -> Result<Decomposition> {
    let bias_folded = model.layer.has_bias();
    let model = if bias_folded { model.with_bias_folded() } else { model.clone() };
    let layer = &model.layer;
    let classes: Vec<Spectrum> = (0..layer.d_out())
        .into_par_iter()
        .map(|c| {
            let weights = layer.hidden_weights(&unit(layer.d_out(), c));
            lanczos_top_k(layer.d_in(), k, |x| layer.interaction_matvec(&weights, x), 1e-10, c as u64)
        })
        .collect::<Result<_>>()?;
    let pixel_vectors = classes
        .iter()
        .map(|s| match &model.embed {
            Some(e) => e.transpose() * &s.vectors,
            None => s.vectors.clone(),
        })
        .collect();
    Ok(Decomposition { classes, pixel_vectors, bias_folded })
}

impl Decomposition {
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// Rows of `x` (raw inputs, `[n, d_raw]`) as the decomposition's input: [x; 1] when folded.
    fn inputs(&self, x: &Mat<f64>) -> Mat<f64> {
        if self.bias_folded {
            Mat::from_fn(x.nrows(), x.ncols() + 1, |i, j| if j < x.ncols() { x[(i, j)] } else { 1.0 })
        } else {
            x.clone()
        }
    }

    /// ŷ_c(x) = Σ_{i < k} λ_{c,i} ((E^T v_{c,i})·x)² with the k largest-|λ| eigenpairs of each
    /// class (the paper's truncation): no retraining, no renormalisation. k = 0 gives zeros;
    /// k = full rank gives the model's logits.
    pub fn truncated_logits(&self, x: &Mat<f64>, k: usize) -> Mat<f64> {
        let xin = self.inputs(x);
        let mut out = Mat::<f64>::zeros(x.nrows(), self.n_classes());
        for (c, (spectrum, px)) in self.classes.iter().zip(&self.pixel_vectors).enumerate() {
            let kk = k.min(spectrum.len());
            if kk == 0 {
                continue;
            }
            let proj = &xin * px.subcols(0, kk);
            for r in 0..x.nrows() {
                out[(r, c)] = (0..kk).map(|i| spectrum.values[i] * proj[(r, i)] * proj[(r, i)]).sum();
            }
        }
        out
    }

    /// Accuracy of the truncated model for each k in `ks` on inputs `x` with class `labels`.
    /// Projects onto the largest k once per class and accumulates, so a whole curve costs
    /// about one truncated evaluation.
    pub fn truncation_curve(&self, x: &Mat<f64>, labels: &[usize], ks: &[usize]) -> Vec<(usize, f64)> {
        let xin = self.inputs(x);
        let kmax = ks.iter().copied().max().unwrap_or(0);
        // terms[c][(r, i)] = λ_{c,i} ((E^T v_{c,i})·x_r)² for i < min(kmax, rank).
        let terms: Vec<Mat<f64>> = self
            .classes
            .par_iter()
            .zip(&self.pixel_vectors)
            .map(|(spectrum, px)| {
                let kk = kmax.min(spectrum.len());
                let proj = &xin * px.subcols(0, kk);
                Mat::from_fn(x.nrows(), kk, |r, i| spectrum.values[i] * proj[(r, i)] * proj[(r, i)])
            })
            .collect();
        let mut sorted: Vec<usize> = ks.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut logits = Mat::<f64>::zeros(x.nrows(), self.n_classes());
        let mut done = 0;
        let mut results = std::collections::HashMap::new();
        for &k in &sorted {
            for (c, t) in terms.iter().enumerate() {
                for i in done.min(t.ncols())..k.min(t.ncols()) {
                    for r in 0..x.nrows() {
                        logits[(r, c)] += t[(r, i)];
                    }
                }
            }
            done = k;
            results.insert(k, accuracy(&logits, labels));
        }
        ks.iter().map(|k| (*k, results[k])).collect()
    }

    /// Effective rank (L1/L2)² of each class's eigenvalues.
    pub fn effective_ranks(&self) -> Vec<f64> {
        self.classes.iter().map(Spectrum::effective_rank).collect()
    }
}

/// Fraction of rows whose argmax equals the label (first maximum wins ties, so all-zero
/// logits predict class 0: chance level on balanced data).
pub fn accuracy(logits: &Mat<f64>, labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let correct = (0..logits.nrows()).filter(|&r| argmax_row(logits, r) == labels[r]).count();
    correct as f64 / labels.len() as f64
}

pub fn argmax_row(m: &Mat<f64>, r: usize) -> usize {
    let mut best = 0;
    for c in 1..m.ncols() {
        if m[(r, c)] > m[(r, best)] {
            best = c;
        }
    }
    best
}

/// The model's logits for every row of `x` (`[n, d_raw]`), in f64, as matrix products.
pub fn model_logits(model: &BilinearModel, x: &Mat<f64>) -> Mat<f64> {
    layer_logits(model, &embed_rows(model, x))
}

/// Rows of `x` through the embedding: X E^T (or X itself).
pub fn embed_rows(model: &BilinearModel, x: &Mat<f64>) -> Mat<f64> {
    match &model.embed {
        Some(e) => x * e.transpose(),
        None => x.clone(),
    }
}

/// Logits for layer inputs `h` (`[n, d_in]`, already embedded).
pub fn layer_logits(model: &BilinearModel, h: &Mat<f64>) -> Mat<f64> {
    let l = &model.layer;
    let mut a = h * l.w.transpose();
    let mut b = h * l.v.transpose();
    for k in 0..l.d_hidden() {
        let (b1, b2) = (l.b1.as_ref().map_or(0.0, |v| v[k]), l.b2.as_ref().map_or(0.0, |v| v[k]));
        for r in 0..h.nrows() {
            a[(r, k)] = (a[(r, k)] + b1) * (b[(r, k)] + b2);
        }
    }
    b = a;
    &b * l.p.transpose()
}
