//! Test A's planted ground truth (a synthetic check of the Universal SAE: known shared and
//! private concepts) and the metrics that score a USAE against it.
//!
//! M "models" of widths d_i share S concepts and each has P private ones. Model i gets its own
//! random unit directions G_i^sh (S x d_i) and G_i^pr (P x d_i): the same concept has unrelated
//! coordinates in each model. One sample draws a shared code s ∈ R^S (entry active w.p. p_active,
//! magnitude U(0.5, 1.5)) common to all models, a private code q_i ∈ R^P per model with the same
//! law, and gives A_i = s G_i^sh + q_i G_i^pr + noise · N(0, I).
//!
//! Scoring: [`index_consistent_recovery`] (one latent index matches a shared concept in every
//! model), [`private_latents`] (latents that learned a private concept, for their mean FE) and
//! [`mmcs`] (per-model mean max cosine).

use crate::metrics::cosines;
use crate::{Error, Result};
use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// Generator settings; the defaults are Test A's (3 models of widths 64/48/32, 96 shared and 16
/// private concepts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlantedConfig {
    /// Activation width d_i of each model; M = dims.len() (default 64, 48, 32).
    pub dims: Vec<usize>,
    /// Number S of shared concepts, present in every model (default 96).
    pub shared: usize,
    /// Number P of private concepts per model (default 16).
    pub private: usize,
    /// Probability that a concept is active in a sample (default 0.04: ≈ 3.8 shared, 0.64 private).
    pub p_active: f64,
    /// Standard deviation of the Gaussian noise added to every entry (default 0.05).
    pub noise: f64,
    /// Seed of the direction draw (default 0); samples take their own seed.
    pub seed: u64,
}

impl Default for PlantedConfig {
    fn default() -> Self {
        PlantedConfig { dims: vec![64, 48, 32], shared: 96, private: 16, p_active: 0.04, noise: 0.05, seed: 0 }
    }
}

impl PlantedConfig {
    /// Error naming the first setting outside its valid range (call it where the config comes from a user).
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::invalid(format!("planted config: {msg}")));
        if self.dims.is_empty() || self.dims.contains(&0) {
            return bad(format!("dims must be non-empty and positive, got {:?}", self.dims));
        }
        if self.shared == 0 {
            return bad("shared must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.p_active) {
            return bad(format!("p_active must be in [0, 1], got {}", self.p_active));
        }
        if !self.noise.is_finite() || self.noise < 0.0 {
            return bad(format!("noise must be finite and >= 0, got {}", self.noise));
        }
        Ok(())
    }
}

/// The planted directions of every model.
#[derive(Clone, Debug)]
pub struct Planted {
    /// The settings the directions were drawn with.
    pub config: PlantedConfig,
    /// G_i^sh per model: S x d_i, unit rows; row c is shared concept c.
    pub shared_dirs: Vec<Mat<f32>>,
    /// G_i^pr per model: P x d_i, unit rows.
    pub private_dirs: Vec<Mat<f32>>,
}

/// One draw of n samples: activations of every model and the codes that made them.
#[derive(Clone, Debug)]
pub struct PlantedSample {
    /// A_i per model: n x d_i.
    pub acts: Vec<Mat<f32>>,
    /// Shared codes s: n x S, the same for every model.
    pub shared_codes: Mat<f32>,
    /// Private codes q_i per model: n x P.
    pub private_codes: Vec<Mat<f32>>,
}

/// `rows` i.i.d. Gaussian directions in R^d, normalised to unit length.
fn unit_gaussian_rows(rows: usize, d: usize, rng: &mut ChaCha8Rng) -> Mat<f32> {
    let g = Mat::from_fn(rows, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let norms: Vec<f64> = (0..rows).map(|r| (0..d).map(|c| g[(r, c)].powi(2)).sum::<f64>().sqrt()).collect();
    Mat::from_fn(rows, d, |r, c| (g[(r, c)] / norms[r]) as f32)
}

impl Planted {
    /// Draw every model's shared and private directions from `cfg.seed` (model 0 first, shared then private).
    ///
    /// Never fails: outside [`PlantedConfig::validate`]'s ranges the generator still runs (p_active is
    /// then effectively clamped to [0, 1], a width of 0 gives empty rows).
    pub fn new(cfg: &PlantedConfig) -> Planted {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let (mut shared_dirs, mut private_dirs) = (Vec::new(), Vec::new());
        for &d in &cfg.dims {
            shared_dirs.push(unit_gaussian_rows(cfg.shared, d, &mut rng));
            private_dirs.push(unit_gaussian_rows(cfg.private, d, &mut rng));
        }
        Planted { config: cfg.clone(), shared_dirs, private_dirs }
    }

    /// Number of models M.
    pub fn n_models(&self) -> usize {
        self.config.dims.len()
    }

    /// `n` samples for every model (A_i, n x d_i), all from the same shared codes; see [`Self::sample_with_codes`].
    pub fn sample(&self, n: usize, rng_seed: u64) -> Vec<Mat<f32>> {
        self.sample_with_codes(n, rng_seed).acts
    }

    /// `n` samples with their codes: A_i = s G_i^sh + q_i G_i^pr + noise · N(0, I), seeded by `rng_seed`.
    pub fn sample_with_codes(&self, n: usize, rng_seed: u64) -> PlantedSample {
        let cfg = &self.config;
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let mut codes = |cols: usize| {
            Mat::from_fn(n, cols, |_, _| {
                if rng.random::<f64>() < cfg.p_active {
                    rng.random_range(0.5f32..1.5)
                } else {
                    0.0
                }
            })
        };
        let shared_codes = codes(cfg.shared);
        let private_codes: Vec<Mat<f32>> = (0..self.n_models()).map(|_| codes(cfg.private)).collect();
        let noise = cfg.noise as f32;
        let acts = (0..self.n_models())
            .map(|i| {
                let clean = &shared_codes * &self.shared_dirs[i] + &private_codes[i] * &self.private_dirs[i];
                Mat::from_fn(n, cfg.dims[i], |t, c| clean[(t, c)] + noise * rng.sample::<f32, _>(StandardNormal))
            })
            .collect();
        PlantedSample { acts, shared_codes, private_codes }
    }
}

/// Number of latents m when there is one dictionary per model, of width d_i, all with the same m >= 1.
fn dictionary_latents(planted: &Planted, dictionaries: &[&Mat<f32>]) -> Option<usize> {
    let m = dictionaries.first()?.nrows();
    let fits = dictionaries.len() == planted.n_models()
        && m > 0
        && dictionaries.iter().zip(&planted.config.dims).all(|(d, &w)| d.nrows() == m && d.ncols() == w);
    fits.then_some(m)
}

/// Index-consistent recovery: fraction of shared concepts c with one latent l such that
/// cos(G_i^sh\[c], D_i\[l]) > `threshold` in EVERY model i, and that latent per concept.
///
/// The latent reported for c is argmax_l min_i cos(G_i^sh\[c], D_i\[l]); `None` when that score is not
/// above the threshold. `dictionaries[i]` is model i's (m x d_i); when they do not fit the planted
/// models (count, widths, or different m) the fraction is NaN and no concept is matched.
pub fn index_consistent_recovery(
    planted: &Planted,
    dictionaries: &[&Mat<f32>],
    threshold: f64,
) -> (f64, Vec<Option<usize>>) {
    let s = planted.config.shared;
    let Some(m) = dictionary_latents(planted, dictionaries) else { return (f64::NAN, vec![None; s]) };
    let cos: Vec<Mat<f64>> = dictionaries.iter().zip(&planted.shared_dirs).map(|(d, g)| cosines(g, d)).collect();
    let score = |c: usize, l: usize| cos.iter().map(|x| x[(c, l)]).fold(f64::INFINITY, f64::min);
    let best = |c: usize| (0..m).map(|l| (l, score(c, l))).max_by(|a, b| a.1.total_cmp(&b.1));
    let matched: Vec<Option<usize>> = (0..s).map(|c| best(c).filter(|&(_, x)| x > threshold).map(|(l, _)| l)).collect();
    (matched.iter().flatten().count() as f64 / s as f64, matched)
}

/// Largest entry of column `l` (best-matching concept of latent l); -inf for no rows.
fn col_max(x: &Mat<f64>, l: usize) -> f64 {
    (0..x.nrows()).map(|c| x[(c, l)]).fold(f64::NEG_INFINITY, f64::max)
}

/// Per model, the latents whose best-matching concept of that model is a PRIVATE one, with cos > `threshold`.
///
/// "Best" is over all S + P concepts of the model; used for the mean FE of private-concept latents.
/// Every list is empty when the dictionaries do not fit the planted models.
pub fn private_latents(planted: &Planted, dictionaries: &[&Mat<f32>], threshold: f64) -> Vec<Vec<usize>> {
    let Some(m) = dictionary_latents(planted, dictionaries) else { return vec![Vec::new(); planted.n_models()] };
    let of_model = |i: usize| {
        let sh = cosines(&planted.shared_dirs[i], dictionaries[i]);
        let pr = cosines(&planted.private_dirs[i], dictionaries[i]);
        (0..m).filter(|&l| col_max(&pr, l) > threshold && col_max(&pr, l) > col_max(&sh, l)).collect()
    };
    (0..planted.n_models()).map(of_model).collect()
}

/// Mean max cosine per model: over all S + P planted concepts c of model i, the mean of max_l cos(G_i\[c], D_i\[l]).
///
/// NaN for every model when the dictionaries do not fit the planted models.
pub fn mmcs(planted: &Planted, dictionaries: &[&Mat<f32>]) -> Vec<f64> {
    if dictionary_latents(planted, dictionaries).is_none() {
        return vec![f64::NAN; planted.n_models()];
    }
    let row_max_sum = |x: Mat<f64>| {
        (0..x.nrows()).map(|c| (0..x.ncols()).map(|l| x[(c, l)]).fold(f64::NEG_INFINITY, f64::max)).sum::<f64>()
    };
    let of_model = |i: usize| {
        let concepts = planted.config.shared + planted.config.private;
        let sh = row_max_sum(cosines(&planted.shared_dirs[i], dictionaries[i]));
        let pr = row_max_sum(cosines(&planted.private_dirs[i], dictionaries[i]));
        (sh + pr) / concepts as f64
    };
    (0..planted.n_models()).map(of_model).collect()
}
