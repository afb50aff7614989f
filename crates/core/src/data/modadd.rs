//! Modular addition a + b mod p, the grokking task: inputs are one-hot(a) ++ one-hot(b).

use super::{Dataset, Split, Targets};
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Largest modulus accepted: 2p³ f32 inputs stay under 2 GiB.
pub const MAX_P: usize = 645;

/// The task a + b mod p over all p² pairs, split once into train and test by `seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModularAddition {
    pub p: usize,
    pub train_fraction: f64,
    pub seed: u64,
}

impl Default for ModularAddition {
    fn default() -> Self {
        ModularAddition { p: 113, train_fraction: 0.3, seed: 0 }
    }
}

impl ModularAddition {
    /// All p² pairs, shuffled by the seed; the first round(train_fraction·p²) of them train.
    /// Sample i is [one-hot(a), one-hot(b)] with label (a + b) mod p.
    pub fn generate(&self) -> Result<Split> {
        let p = self.p;
        if p < 2 {
            return Err(Error::invalid(format!("modular addition needs p >= 2, got {p}")));
        }
        // The one-hot inputs hold 2p³ floats; refuse rather than abort on an allocation failure.
        if p > MAX_P {
            return Err(Error::invalid(format!(
                "modular addition with p = {p} needs {:.1} GiB of one-hot inputs; use p <= {MAX_P}",
                2.0 * (p as f64).powi(3) * 4.0 / (1u64 << 30) as f64
            )));
        }
        let n_train = (self.train_fraction * (p * p) as f64).round() as usize;
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) || n_train == 0 || n_train == p * p {
            return Err(Error::invalid(format!(
                "train fraction {} leaves an empty train or test split for p = {p}", self.train_fraction
            )));
        }
        let mut pairs: Vec<(usize, usize)> = (0..p).flat_map(|a| (0..p).map(move |b| (a, b))).collect();
        pairs.shuffle(&mut ChaCha8Rng::seed_from_u64(self.seed));
        let make = |pairs: &[(usize, usize)]| {
            let mut inputs = vec![0f32; pairs.len() * 2 * p];
            for (r, &(a, b)) in pairs.iter().enumerate() {
                inputs[r * 2 * p + a] = 1.0;
                inputs[r * 2 * p + p + b] = 1.0;
            }
            Dataset {
                name: format!("modadd-p{p}"),
                inputs,
                input_dim: 2 * p,
                image_shape: None,
                targets: Targets::Classes { labels: pairs.iter().map(|&(a, b)| ((a + b) % p) as u32).collect(), n_classes: p },
            }
        };
        Ok(Split { train: make(&pairs[..n_train]), test: make(&pairs[n_train..]) })
    }
}
