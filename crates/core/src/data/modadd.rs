//! Modular addition a + b mod p, the grokking task. Inputs are one-hot(a) ++ one-hot(b) for
//! MLPs, or the token ids "a b =" (with "=" the token p) for transformers.

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
    /// Token ids [a, b, p] instead of one-hot vectors; the labels then range over the p + 1
    /// tokens of the vocabulary (the answer is never p, the "=" token).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tokens: bool,
}

impl Default for ModularAddition {
    fn default() -> Self {
        ModularAddition { p: 113, train_fraction: 0.3, seed: 0, tokens: false }
    }
}

impl ModularAddition {
    /// All p² pairs, shuffled by the seed; the first round(train_fraction·p²) of them train.
    /// Sample i is [one-hot(a), one-hot(b)] (or [a, b, p] with `tokens`), label (a + b) mod p.
    /// The split does not depend on the input form.
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
            let (inputs, input_dim, n_classes) = if self.tokens {
                (pairs.iter().flat_map(|&(a, b)| [a as f32, b as f32, p as f32]).collect(), 3, p + 1)
            } else {
                let mut inputs = vec![0f32; pairs.len() * 2 * p];
                for (r, &(a, b)) in pairs.iter().enumerate() {
                    inputs[r * 2 * p + a] = 1.0;
                    inputs[r * 2 * p + p + b] = 1.0;
                }
                (inputs, 2 * p, p)
            };
            Dataset {
                name: format!("modadd-p{p}"),
                inputs,
                input_dim,
                image_shape: None,
                targets: Targets::Classes { labels: pairs.iter().map(|&(a, b)| ((a + b) % p) as u32).collect(), n_classes },
            }
        };
        Ok(Split { train: make(&pairs[..n_train]), test: make(&pairs[n_train..]) })
    }
}
