//! The reproductions of spec/usae.md section 5, each with the spec's thresholds as named checks.
//! `glassbox repro usae-planted --check` runs Test A.

pub mod glyph_networks;
pub mod planted_concepts;

use crate::usae::Usae;
use crate::Result;
use faer::Mat;
pub use glassbox_core::experiment::{Check, ExperimentOptions, Outcome};
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

/// Per-dimension R² of decoding model i's codes with model j's dictionary, for every (i, j).
pub fn r2_matrix(usae: &Usae, data: &[Mat<f32>]) -> Vec<Vec<f64>> {
    let codes: Vec<_> = (0..data.len()).map(|i| usae.encode(i, &data[i])).collect();
    (0..data.len()).map(|i| (0..data.len()).map(|j| crate::metrics::r2_per_dim(&data[j], &usae.decode(j, &codes[i]))).collect()).collect()
}
