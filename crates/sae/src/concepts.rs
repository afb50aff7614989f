//! Pictures of concepts (the USAE paper's §3.3): per model, the real inputs that drive a latent
//! most, and coordinated activation maximisation — for one latent index, one input per model
//! optimised (independently) to maximise that latent's pre-activation in that model.
//!
//! The paper optimises the phase of a Fourier image with a natural-image spectrum (MACO). For the
//! small grey images glassbox's models read (12×12 glyphs, 28×28 digits) there is no natural
//! spectrum to keep, so the faithful analogue is the classic one: pixels optimised with Adam under
//! random-shift and noise augmentations, a total-variation and an L2 penalty, clamped to the data
//! range.

use crate::analysis::Universality;
use crate::usae::{Usae, B, GAMMA, W};
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::model::InputGradients;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::path::Path;

/// The direction u in model i's raw site activations along which latent l's pre-activation
/// grows: pre_l(a) = u · a + const (the encoder is affine before the ReLU, BN in eval mode).
pub fn concept_direction(usae: &Usae, i: usize, l: usize) -> Vec<f32> {
    let s = &usae.models[i];
    let bn = if usae.config.batch_norm { s.params[GAMMA][l] / (s.running_var[l] + crate::encoder::BN_EPS).sqrt() } else { 1.0 };
    let scale = bn / (s.std + 1e-5);
    s.params[W][l * s.d..][..s.d].iter().map(|w| w * scale).collect()
}

/// Latent l's pre-activation for every row of model i's standardised activations.
pub fn pre_activation(usae: &Usae, i: usize, x: &Mat<f32>, l: usize) -> Vec<f32> {
    let s = &usae.models[i];
    let w = &s.params[W][l * s.d..][..s.d];
    let (gamma, shift) = if usae.config.batch_norm {
        let inv = 1.0 / (s.running_var[l] + crate::encoder::BN_EPS).sqrt();
        (s.params[GAMMA][l] * inv, s.params[crate::usae::BETA][l] - s.params[GAMMA][l] * inv * s.running_mean[l])
    } else {
        (1.0, 0.0)
    };
    (0..x.nrows()).map(|r| gamma * ((0..s.d).map(|c| x[(r, c)] * w[c]).sum::<f32>() + s.params[B][l]) + shift).collect()
}

/// Row indices of the `n` largest values, largest first.
pub fn top_rows(values: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(n);
    idx
}

/// The `n` most universal latents: most co-fires (inputs on which the latent fires in every
/// model), ties broken by energy.
pub fn most_universal(u: &Universality, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..u.cofire.len()).filter(|&l| u.cofire[l] > 0).collect();
    idx.sort_by(|&a, &b| u.cofire[b].cmp(&u.cofire[a]).then(u.energy[b].total_cmp(&u.energy[a])));
    idx.truncate(n);
    idx
}

#[derive(Clone, Debug)]
pub struct MaximiseOptions {
    pub steps: usize,
    pub lr: f64,
    /// Augmented copies per step.
    pub copies: usize,
    /// Random shifts of up to this many pixels in each direction (zero fill).
    pub jitter: usize,
    /// Standard deviation of the Gaussian pixel noise added to each copy.
    pub noise: f32,
    /// Weight of the gradient of Σ (neighbour differences)² against the unit-RMS score gradient.
    pub tv: f32,
    /// Weight of the gradient of Σ x² against the unit-RMS score gradient.
    pub l2: f32,
    pub seed: u64,
}

impl Default for MaximiseOptions {
    fn default() -> Self {
        MaximiseOptions { steps: 200, lr: 0.01, copies: 8, jitter: 1, noise: 0.05, tv: 0.5, l2: 0.5, seed: 0 }
    }
}

/// An image of `height × width` pixels (row-major, what the model reads as its input vector)
/// maximising `direction · site(x)`, started from `start` and kept within `range`. Returns the
/// image and its un-augmented score.
pub fn maximise(model: &InputGradients, site: &str, direction: &[f32], [height, width]: [usize; 2], start: &[f32], range: (f32, f32), opts: &MaximiseOptions) -> Result<(Vec<f32>, f32)> {
    let n = height * width;
    if start.len() != n {
        return Err(Error::invalid(format!("activation maximisation: start image has {} pixels, expected {height}×{width}", start.len())));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut x = start.to_vec();
    let j = opts.jitter as i64;
    for _ in 0..opts.steps {
        let shifts: Vec<(i64, i64)> = (0..opts.copies).map(|_| (rng.random_range(-j..=j), rng.random_range(-j..=j))).collect();
        let mut batch = Vec::with_capacity(opts.copies * n);
        for &(dy, dx) in &shifts {
            let shifted = shift(&x, height, width, dy, dx);
            batch.extend(shifted.iter().map(|v| v + opts.noise * rng.sample::<f32, _>(StandardNormal)));
        }
        let (_, grads) = model.along(batch, opts.copies, site, direction)?;
        // Ascent direction: the sum over copies of the score gradient, shifted back (the adjoint
        // of a zero-fill shift) and scaled to unit RMS so that the penalties weigh the same for
        // every model, minus the penalties' gradients.
        let mut g = vec![0f32; n];
        for (c, &(dy, dx)) in shifts.iter().enumerate() {
            for (acc, v) in g.iter_mut().zip(shift(&grads[c * n..][..n], height, width, -dy, -dx)) {
                *acc += v;
            }
        }
        let rms = (g.iter().map(|v| v * v).sum::<f32>() / n as f32).sqrt();
        let tv = tv_gradient(&x, height, width);
        for p in 0..n {
            let ascent = if rms > 0.0 { g[p] / rms } else { 0.0 } - opts.tv * tv[p] - opts.l2 * 2.0 * x[p];
            x[p] = (x[p] + opts.lr as f32 * ascent).clamp(range.0, range.1);
        }
    }
    let (score, _) = model.along(x.clone(), 1, site, direction)?;
    Ok((x, score[0]))
}

/// The image moved by (dy, dx) pixels, zero fill.
fn shift(x: &[f32], height: usize, width: usize, dy: i64, dx: i64) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for r in 0..height as i64 {
        for c in 0..width as i64 {
            let (sr, sc) = (r - dy, c - dx);
            if (0..height as i64).contains(&sr) && (0..width as i64).contains(&sc) {
                out[(r * width as i64 + c) as usize] = x[(sr * width as i64 + sc) as usize];
            }
        }
    }
    out
}

/// ∂/∂x of Σ (x[r+1, c] − x[r, c])² + (x[r, c+1] − x[r, c])².
fn tv_gradient(x: &[f32], height: usize, width: usize) -> Vec<f32> {
    let mut g = vec![0f32; x.len()];
    for r in 0..height {
        for c in 0..width {
            let p = r * width + c;
            for q in [(r + 1 < height).then(|| p + width), (c + 1 < width).then(|| p + 1)].into_iter().flatten() {
                let d = x[q] - x[p];
                g[q] += 2.0 * d;
                g[p] -= 2.0 * d;
            }
        }
    }
    g
}

/// Where a concept card's images come from: per model, its checkpoint wrapped for input
/// gradients, the site the USAE reads, and its standardised evaluation activations.
pub struct CardModel<'a> {
    pub model: &'a InputGradients,
    pub site: &'a str,
    pub acts: &'a Mat<f32>,
}

/// One PNG per latent in `latents` (figures/concept-RR-latent-L.png): a row per model, first the
/// coordinated maximised input, then the `top` evaluation inputs with the largest
/// pre-activation. Each image is scaled to its own [min, max]. Returns, per latent and model,
/// the score u · site(x) of the maximised input and of the best test input (u from
/// [`concept_direction`]) and the indices of the top inputs.
#[allow(clippy::too_many_arguments)]
pub fn write_concept_cards(dir: &Path, usae: &Usae, models: &[CardModel], inputs: &[Vec<f32>], shape: [usize; 2], latents: &[usize], top: usize, opts: &MaximiseOptions) -> Result<Vec<serde_json::Value>> {
    let figs = dir.join("figures");
    std::fs::create_dir_all(&figs).map_err(|e| Error::io(&figs, e))?;
    // Cards of an earlier run would sit beside the new ones under the same rank prefix.
    for entry in std::fs::read_dir(&figs).map_err(|e| Error::io(&figs, e))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("concept-") {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    let n = shape[0] * shape[1];
    let range = inputs.iter().flatten().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let mean: Vec<f32> = (0..n).map(|p| inputs.iter().map(|x| x[p]).sum::<f32>() / inputs.len().max(1) as f32).collect();
    let mut cards = Vec::new();
    for (rank, &l) in latents.iter().enumerate() {
        let mut images = Vec::new();
        let mut per_model = Vec::new();
        for (i, cm) in models.iter().enumerate() {
            let u = concept_direction(usae, i, l);
            let (image, score) = maximise(cm.model, cm.site, &u, shape, &mean, range, &MaximiseOptions { seed: opts.seed ^ ((l as u64) << 8) ^ i as u64, ..opts.clone() })?;
            let tops = top_rows(&pre_activation(usae, i, cm.acts, l), top);
            // The same score for the strongest real input: the maximised input should beat it.
            let best = match tops.first() {
                Some(&r) => cm.model.along(inputs[r].clone(), 1, cm.site, &u)?.0[0],
                None => f32::NAN,
            };
            images.push(normalise(&image));
            images.extend(tops.iter().map(|&r| normalise(&inputs[r])));
            // Fewer inputs than `top`: black cells keep every model on its own row.
            images.extend(std::iter::repeat_n(vec![f32::NAN; n], top - tops.len()));
            per_model.push(serde_json::json!({ "model": usae.models[i].name, "maximised_score": score, "best_test_input_score": best, "top_inputs": tops }));
        }
        let png = glassbox_report::image_grid_png(&images, shape[0], shape[1], top + 1).map_err(|e| Error::invalid(format!("concept card: {e}")))?;
        let path = figs.join(format!("concept-{:02}-latent-{l}.png", rank + 1));
        std::fs::write(&path, png).map_err(|e| Error::io(&path, e))?;
        cards.push(serde_json::json!({ "rank": rank + 1, "latent": l, "models": per_model }));
    }
    Ok(cards)
}

fn normalise(x: &[f32]) -> Vec<f32> {
    let (lo, hi) = x.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    x.iter().map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_concept_direction_and_pre_activation_agree_with_the_encoder() {
        use crate::usae::{ModelSae, UsaeConfig};
        for batch_norm in [true, false] {
            let mut usae = Usae::new(UsaeConfig { batch_norm, ..UsaeConfig::new(6, 2, 10) }, &[("a", 4)], 3).unwrap();
            let s: &mut ModelSae = &mut usae.models[0];
            (s.mean, s.std) = (0.3, 1.7);
            s.running_mean = (0..6).map(|l| l as f32 * 0.1 - 0.2).collect();
            s.running_var = (0..6).map(|l| 0.5 + l as f32 * 0.3).collect();
            s.params[GAMMA] = (0..6).map(|l| 1.0 - l as f32 * 0.3).collect();
            let raw = Mat::from_fn(5, 4, |r, c| ((r * 3 + c * 5) % 7) as f32 / 3.0 - 1.0);
            let std = usae.models[0].standardise(&raw);
            let full = usae.models[0].pre_eval(&std, batch_norm);
            for l in 0..6 {
                let pre = pre_activation(&usae, 0, &std, l);
                let u = concept_direction(&usae, 0, l);
                for r in 0..5 {
                    assert!((pre[r] - full[(r, l)]).abs() < 1e-5, "pre-activation of latent {l}");
                    // pre(a_r) − pre(a_0) = u · (a_r − a_0) on raw activations.
                    let du: f32 = (0..4).map(|c| u[c] * (raw[(r, c)] - raw[(0, c)])).sum();
                    assert!((du - (pre[r] - pre[0])).abs() < 1e-4, "direction of latent {l}");
                }
            }
        }
    }

    #[test]
    fn the_shift_adjoint_is_the_reverse_shift() {
        let (h, w) = (3, 4);
        let x: Vec<f32> = (0..12).map(|v| v as f32 + 1.0).collect();
        let y: Vec<f32> = (0..12).map(|v| (v * 5 % 7) as f32).collect();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
        for (dy, dx) in [(1, 0), (0, -1), (-1, 2)] {
            assert_eq!(dot(&shift(&x, h, w, dy, dx), &y), dot(&x, &shift(&y, h, w, -dy, -dx)));
        }
    }

    #[test]
    fn the_tv_gradient_matches_finite_differences() {
        let (h, w) = (3, 3);
        let x: Vec<f32> = (0..9).map(|v| ((v * 4 % 9) as f32) / 3.0).collect();
        let tv = |x: &[f32]| -> f64 {
            let mut s = 0.0;
            for r in 0..h {
                for c in 0..w {
                    if r + 1 < h {
                        s += ((x[(r + 1) * w + c] - x[r * w + c]) as f64).powi(2);
                    }
                    if c + 1 < w {
                        s += ((x[r * w + c + 1] - x[r * w + c]) as f64).powi(2);
                    }
                }
            }
            s
        };
        let g = tv_gradient(&x, h, w);
        for p in 0..9 {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[p] += 1e-2;
            down[p] -= 1e-2;
            let fd = (tv(&up) - tv(&down)) / 2e-2;
            assert!((fd - g[p] as f64).abs() < 1e-3, "pixel {p}: {fd} vs {}", g[p]);
        }
    }
}
