//! Adversarial masks built from the weights alone, the attack of the bilinear-MLP paper
//! (Pearce et al. 2024, §4.4): keys are the pseudoinverse of the top positive embedding-space
//! eigenvectors, mapped to pixels by E^T.

use crate::decompose::{accuracy, argmax_row, embed_rows, layer_logits, Decomposition};
use crate::layer::BilinearModel;
use crate::{Error, Result};
use faer::Mat;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// One mask: the key of eigenvector `rank` (0 = top) of class `class`, in pixel space.
#[derive(Clone, Debug)]
pub struct Mask {
    pub class: usize,
    pub rank: usize,
    pub pixels: Vec<f64>,
}

/// Masks for the top `per_class` positive eigenvectors (the paper: 10) of every class; returns
/// the first `keep` of each class (the paper: 3). D stacks the unit eigenvectors as rows,
/// K = pinv(D) satisfies D K = I, and mask j is E^T K[:, j] (a key excites only its own
/// eigenvector, and E^T maps it to pixels).
pub fn pinv_masks(model: &BilinearModel, dec: &Decomposition, per_class: usize, keep: usize) -> Result<Vec<Mask>> {
    if dec.bias_folded {
        return Err(Error::invalid("adversarial masks are defined for bias-free models"));
    }
    let mut rows = Vec::new();
    for (c, s) in dec.classes.iter().enumerate() {
        let idx = s.top_positive(per_class);
        if idx.len() < per_class {
            return Err(Error::invalid(format!("class {c} has only {} positive eigenvalues, {per_class} are needed", idx.len())));
        }
        rows.extend(idx.into_iter().enumerate().map(|(r, i)| (c, r, s.vector(i))));
    }
    let d = rows[0].2.len();
    let dmat = Mat::from_fn(rows.len(), d, |i, j| rows[i].2[j]);
    let keys = dmat.thin_svd().map_err(|e| Error::invalid(format!("SVD of the eigenvector matrix failed: {e:?}")))?.pseudoinverse();
    let pixel_keys = match &model.embed {
        Some(e) => e.transpose() * &keys,
        None => keys,
    };
    Ok(rows
        .iter()
        .enumerate()
        .filter(|(_, (_, r, _))| *r < keep)
        .map(|(j, (c, r, _))| Mask { class: *c, rank: *r, pixels: (0..pixel_keys.nrows()).map(|i| pixel_keys[(i, j)]).collect() })
        .collect())
}

/// Sign fix (step 4): flip so that the summed overlap with images of the other classes is positive.
pub fn fix_sign(mask: &mut Mask, x: &Mat<f64>, labels: &[usize]) {
    let overlap: f64 = (0..x.nrows()).filter(|&r| labels[r] != mask.class).map(|r| (0..x.ncols()).map(|j| x[(r, j)] * mask.pixels[j]).sum::<f64>()).sum();
    if overlap < 0.0 {
        mask.pixels.iter_mut().for_each(|v| *v = -*v);
    }
}

/// m ← strength · m / std(m), the std taken over `support` (all pixels when None); pixels off
/// the support are zero.
pub fn normalise(pixels: &[f64], strength: f64, support: Option<&[bool]>) -> Vec<f64> {
    let on = |j: usize| support.is_none_or(|s| s[j]);
    let vals: Vec<f64> = (0..pixels.len()).filter(|&j| on(j)).map(|j| pixels[j]).collect();
    let n = vals.len().max(1) as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (0..pixels.len()).map(|j| if on(j) && std > 0.0 { strength * pixels[j] / std } else { 0.0 }).collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct AttackResult {
    pub strength: f64,
    pub clean_accuracy: f64,
    pub accuracy: f64,
    pub random_accuracy: f64,
    /// Fraction of samples of other classes predicted as the mask's class.
    pub misclassified_to_target: f64,
    pub random_misclassified_to_target: f64,
}

/// The baseline a mask is compared with (the paper's: permuted mask pixels, or Gaussian values
/// on the same support).
#[derive(Clone, Copy, Debug)]
pub enum Baseline {
    /// The mask's pixels randomly permuted (same values, same norm).
    Permuted,
    /// Gaussian values of std `strength` on the mask's support.
    Gaussian,
}

/// Attack every row of `x` with every mask at `strength` (x' = x + m, no clipping) and average
/// accuracy and target misclassification over the masks, against the baseline.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_masks(
    model: &BilinearModel,
    masks: &[Mask],
    x: &Mat<f64>,
    labels: &[usize],
    strength: f64,
    support: Option<&[bool]>,
    baseline: Baseline,
    seed: u64,
) -> AttackResult {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // E(x + m) = E x + E m: embed the inputs once, then shift by each mask's embedding.
    let h0 = embed_rows(model, x);
    let clean_accuracy = accuracy(&layer_logits(model, &h0), labels);
    let (mut acc, mut mis, mut racc, mut rmis) = (0.0, 0.0, 0.0, 0.0);
    for mask in masks {
        let mut m = mask.clone();
        fix_sign(&mut m, x, labels);
        let adv = normalise(&m.pixels, strength, support);
        let random = match baseline {
            Baseline::Permuted => {
                let mut p = adv.clone();
                p.shuffle(&mut rng);
                p
            }
            Baseline::Gaussian => {
                let normal = Normal::new(0.0, strength).expect("finite strength");
                (0..adv.len()).map(|j| if support.is_none_or(|s| s[j]) { normal.sample(&mut rng) } else { 0.0 }).collect()
            }
        };
        for (delta, (a, t)) in [(&adv, (&mut acc, &mut mis)), (&random, (&mut racc, &mut rmis))] {
            let shift = embed_rows(model, &Mat::from_fn(1, delta.len(), |_, j| delta[j]));
            let shifted = Mat::from_fn(h0.nrows(), h0.ncols(), |r, j| h0[(r, j)] + shift[(0, j)]);
            let logits = layer_logits(model, &shifted);
            *a += accuracy(&logits, labels);
            *t += target_rate(&logits, labels, mask.class);
        }
    }
    let n = masks.len().max(1) as f64;
    AttackResult {
        strength,
        clean_accuracy,
        accuracy: acc / n,
        random_accuracy: racc / n,
        misclassified_to_target: mis / n,
        random_misclassified_to_target: rmis / n,
    }
}

fn target_rate(logits: &Mat<f64>, labels: &[usize], target: usize) -> f64 {
    let others: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] != target).collect();
    if others.is_empty() {
        return 0.0;
    }
    others.iter().filter(|&&r| argmax_row(logits, r) == target).count() as f64 / others.len() as f64
}

/// Pixels whose mean over `x` is below `threshold` (the paper: 0.01): the rarely active border.
pub fn rare_pixels(x: &Mat<f64>, threshold: f64) -> Vec<bool> {
    let n = x.nrows().max(1) as f64;
    (0..x.ncols()).map(|j| (0..x.nrows()).map(|r| x[(r, j)]).sum::<f64>() / n < threshold).collect()
}
