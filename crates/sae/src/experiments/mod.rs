//! Small-scale reproductions of the Universal SAE paper (Thasarathan et al. 2025), each with its
//! thresholds as named checks: Test A (planted concepts), Test B (three networks on the glyph
//! world) and three MNIST models. `glassbox repro usae-planted --check` runs Test A.

pub mod glyph_networks;
pub mod mnist_models;
pub mod planted_concepts;

use crate::usae::{Usae, UsaeConfig};
use crate::Result;
use faer::Mat;
pub use glassbox_core::experiment::{Check, ExperimentOptions, Outcome};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `steps` USAE steps, each on a uniformly sampled model (seeded), with `batch(step)` giving
/// every model's standardised activations of the same inputs.
pub fn train(usae: &mut Usae, steps: usize, seed: u64, mut batch: impl FnMut(usize) -> Vec<Mat<f32>>) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for step in 0..steps {
        let i = rng.random_range(0..usae.models.len());
        usae.train_step(i, &batch(step))?;
    }
    Ok(())
}

/// A USAE (or, with `config.universal` off, independent SAEs) over raw activations of the same
/// inputs: scalar standardisation from the first 1000 rows, then `steps` steps on random batches
/// of `batch` rows. With `shuffle`, every model but the first sees its rows in a fixed random
/// order, which breaks the pairing of inputs across models (Test B's shuffled-pairing control).
pub fn fit_usae(acts: &[Mat<f32>], names: &[&str], config: UsaeConfig, batch: usize, shuffle: bool, seed: u64) -> Result<Usae> {
    let shapes: Vec<(&str, usize)> = names.iter().zip(acts).map(|(n, a)| (*n, a.ncols())).collect();
    let steps = config.total_ticks;
    let mut usae = Usae::new(config, &shapes, seed)?;
    for (s, a) in usae.models.iter_mut().zip(acts) {
        s.fit_standardisation(&a.subrows(0, a.nrows().min(1000)).to_owned());
    }
    let data: Vec<Mat<f32>> = acts.iter().zip(&usae.models).map(|(a, s)| s.standardise(a)).collect();
    let mut batches = PairedBatches::new(&data, batch, shuffle, ChaCha8Rng::seed_from_u64(seed ^ 0xB));
    train(&mut usae, steps, seed, |_| batches.draw())?;
    Ok(usae)
}

/// Random batches of paired rows (row r of every model's matrix comes from the same input).
/// With `shuffle`, every model but the first sees its rows in a fixed random order drawn first
/// from `rng`, which breaks the pairing: the shuffled-pairing control.
pub struct PairedBatches<'a> {
    data: &'a [Mat<f32>],
    perms: Vec<Vec<usize>>,
    batch: usize,
    rng: ChaCha8Rng,
}

impl<'a> PairedBatches<'a> {
    pub fn new(data: &'a [Mat<f32>], batch: usize, shuffle: bool, mut rng: ChaCha8Rng) -> Self {
        let n = data[0].nrows();
        let perms = (0..data.len())
            .map(|i| {
                let mut p: Vec<usize> = (0..n).collect();
                if shuffle && i > 0 {
                    p.shuffle(&mut rng);
                }
                p
            })
            .collect();
        PairedBatches { data, perms, batch, rng }
    }

    /// `batch` rows drawn uniformly with replacement, from every model.
    pub fn draw(&mut self) -> Vec<Mat<f32>> {
        let n = self.data[0].nrows();
        let rows: Vec<usize> = (0..self.batch).map(|_| self.rng.random_range(0..n)).collect();
        self.data.iter().zip(&self.perms).map(|(d, p)| Mat::from_fn(self.batch, d.ncols(), |r, c| d[(p[rows[r]], c)])).collect()
    }
}

/// The USAE paper's consistency measure: the share of a USAE dictionary's atoms whose Hungarian
/// match in an independently trained dictionary of the same model has cosine > 0.5.
pub fn matched_share(usae_dict: &Mat<f32>, independent: &Mat<f32>) -> Result<f64> {
    let pairs = crate::metrics::hungarian_match(usae_dict, independent)?;
    Ok(pairs.iter().filter(|p| p.2 > 0.5).count() as f64 / usae_dict.nrows().max(1) as f64)
}

/// Every model's activations standardised with that model's USAE statistics.
pub fn standardised(usae: &Usae, acts: &[Mat<f32>]) -> Vec<Mat<f32>> {
    acts.iter().zip(&usae.models).map(|(a, s)| s.standardise(a)).collect()
}

/// The off-diagonal entries (i, j, value) of a square matrix.
pub fn off_diagonal(m: &[Vec<f64>]) -> Vec<(usize, usize, f64)> {
    (0..m.len()).flat_map(|i| (0..m.len()).filter(move |&j| j != i).map(move |j| (i, j, m[i][j]))).collect()
}

/// Per-dimension R² of decoding model i's codes with model j's dictionary, for every (i, j).
pub fn r2_matrix(usae: &Usae, data: &[Mat<f32>]) -> Vec<Vec<f64>> {
    let codes: Vec<_> = (0..data.len()).map(|i| usae.encode(i, &data[i])).collect();
    (0..data.len()).map(|i| (0..data.len()).map(|j| crate::metrics::r2_per_dim(&data[j], &usae.decode(j, &codes[i]))).collect()).collect()
}
