//! Accuracy zoos (spec/probegen.md 6 R2, mirrors CIFAR10-GS): many small MLPs trained on the
//! scikit-learn digits with sampled hyper-parameters; the property to predict is each model's
//! test accuracy. Preset `digits-mlp-acc`.

use crate::build::{model_seed, random_split, Recipe};
use crate::mlp::{softmax_cross_entropy, Activation, Mlp};
use crate::store::{Splits, ZooSpec};
use crate::{Error, Result};
use glassbox_core::data::{Dataset, Targets};
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// One model's sampled training recipe (spec 6 R2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub activation: Activation,
    /// Adam learning rate, 10^U(−3.5, −1).
    pub lr: f64,
    /// He-normal init times this, 10^U(−1, 0.5).
    pub init_scale: f64,
    /// L2 penalty λ·Σw² on the weight matrices (Keras-style, as the Small CNN Zoo), 10^U(−6, −2).
    pub l2: f64,
    /// Share of the 1,200 training images this model sees, from {0.05, 0.1, 0.25, 0.5, 1}.
    pub train_fraction: f64,
    /// Adam steps of batch 32, from {25, 50, 100, 200, 400}.
    pub steps: usize,
    /// Share of its training labels replaced by uniformly random classes, from {0, 0, 0.1, 0.3}.
    pub label_noise: f64,
}

impl Hyper {
    pub fn sample(rng: &mut impl Rng) -> Hyper {
        let log_uniform =
            |rng: &mut dyn rand::RngCore, lo: f64, hi: f64| 10f64.powf(rng.random_range(lo..hi));
        Hyper {
            activation: if rng.random_bool(0.5) {
                Activation::Relu
            } else {
                Activation::Tanh
            },
            lr: log_uniform(rng, -3.5, -1.0),
            init_scale: log_uniform(rng, -1.0, 0.5),
            l2: log_uniform(rng, -6.0, -2.0),
            train_fraction: *[0.05, 0.1, 0.25, 0.5, 1.0].choose(rng).expect("non-empty"),
            steps: *[25, 50, 100, 200, 400].choose(rng).expect("non-empty"),
            label_noise: *[0.0, 0.0, 0.1, 0.3].choose(rng).expect("non-empty"),
        }
    }
}

/// A zoo of `count` MLPs trained on `train` and scored on `test` (inputs in [−1, 1]).
pub struct MlpZoo {
    pub preset: String,
    pub net: Mlp,
    pub train: (Vec<f32>, Vec<usize>),
    pub test: (Vec<f32>, Vec<usize>),
    pub count: usize,
    pub splits: Splits,
    pub shard_size: usize,
    pub seed: u64,
}

impl MlpZoo {
    pub fn hyper(&self, m: usize) -> Hyper {
        Hyper::sample(&mut ChaCha8Rng::seed_from_u64(model_seed(self.seed, m)))
    }

    /// Train model m by its recipe: (parameters, test accuracy, last training loss).
    pub fn train_model(&self, m: usize) -> (Vec<f32>, f32, f32) {
        let h = self.hyper(m);
        // A second stream for everything after the recipe, so the recipe stays what labels.json says.
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.seed, m) ^ 0x7EA1);
        let net = &self.net;
        let mut p = vec![0f32; net.n_params()];
        for l in 0..net.dims.len() - 1 {
            let (wo, bo) = net.offsets(l);
            let std = (2.0 / net.dims[l] as f64).sqrt() * h.init_scale;
            for w in &mut p[wo..bo] {
                *w = (rng.sample::<f64, _>(StandardNormal) * std) as f32;
            }
        }
        let (xs, ys) = &self.train;
        let d = net.input_dim();
        let mut pool: Vec<usize> = (0..ys.len()).collect();
        pool.shuffle(&mut rng);
        pool.truncate(((ys.len() as f64 * h.train_fraction).round() as usize).max(1));
        let mut labels: Vec<usize> = pool.iter().map(|&i| ys[i]).collect();
        let k = net.output_dim();
        for y in labels.iter_mut() {
            if rng.random_bool(h.label_noise) {
                *y = rng.random_range(0..k);
            }
        }
        let mut adam = Adam::new(
            OptimConfig {
                kind: OptimKind::Adam,
                ..OptimConfig::default()
            },
            &[p.len()],
        );
        let mut params = vec![p];
        let mut order: Vec<usize> = (0..pool.len()).collect();
        let (mut cursor, mut last_loss) = (order.len(), f64::NAN);
        for _ in 0..h.steps {
            // Batches of 32 walk through a reshuffled pass of the pool; the last one of a pass may be short.
            if cursor >= order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            let batch = &order[cursor..(cursor + 32).min(order.len())];
            cursor += batch.len();
            let x: Vec<f32> = batch
                .iter()
                .flat_map(|&j| xs[pool[j] * d..][..d].iter().copied())
                .collect();
            let y: Vec<usize> = batch.iter().map(|&j| labels[j]).collect();
            let (logits, trace) = net.forward(&params[0], h.activation, &x);
            let (loss, d_logits, _) = softmax_cross_entropy(&logits, k, &y);
            let mut grad = vec![0f32; params[0].len()];
            net.backward(
                &params[0],
                h.activation,
                &x,
                &trace,
                &d_logits,
                Some(&mut grad),
                false,
            );
            let mut penalty = 0.0;
            for l in 0..net.dims.len() - 1 {
                let (wo, bo) = net.offsets(l);
                for (g, &w) in grad[wo..bo].iter_mut().zip(&params[0][wo..bo]) {
                    *g += (2.0 * h.l2) as f32 * w;
                    penalty += h.l2 * (w as f64).powi(2);
                }
            }
            last_loss = loss + penalty;
            adam.update(&mut params, &[grad], h.lr);
        }
        let p = params.pop().expect("one parameter vector");
        let (logits, _) = net.forward(&p, h.activation, &self.test.0);
        let (_, _, correct) = softmax_cross_entropy(&logits, k, &self.test.1);
        (
            p,
            correct as f32 / self.test.1.len().max(1) as f32,
            last_loss as f32,
        )
    }
}

impl Recipe for MlpZoo {
    fn spec(&self) -> ZooSpec {
        ZooSpec {
            family: "mlp".into(),
            generation: serde_json::json!({
                "preset": self.preset, "seed": self.seed, "dims": self.net.dims,
                "architecture": "MLP with ReLU or tanh between layers (labels' 'activation'), inputs in [-1, 1]; spec/probegen.md 6 R2",
                "train_images": self.train.1.len(), "test_images": self.test.1.len(),
            }),
            tensors: self.net.tensors(),
            count: self.count,
            shard_size: self.shard_size,
            splits: self.splits.clone(),
            target: "test_accuracy".into(),
            measured: vec!["test_accuracy".into(), "train_loss".into()],
        }
    }

    fn labels(&self) -> Vec<serde_json::Value> {
        (0..self.count)
            .map(|m| serde_json::to_value(self.hyper(m)).expect("plain numbers"))
            .collect()
    }

    fn fit(&self, m: usize) -> (Vec<f32>, Vec<f32>) {
        let (p, acc, loss) = self.train_model(m);
        (p, vec![acc, loss])
    }
}

/// spec 6 R2: 1,200 MLPs 64-16-16-10 on the digits (pixels scaled to [−1, 1]; one seeded split
/// of the images into 1,200 train and 597 test); model split 60/10/30.
pub fn digits_mlp_acc(digits: &Dataset, count: usize, seed: u64) -> Result<MlpZoo> {
    if digits.input_dim != 64 || digits.len() < 1_201 {
        return Err(Error::invalid(format!(
            "digits-mlp-acc needs the 1,797 8×8 digits, {} has {} samples of {} values",
            digits.name,
            digits.len(),
            digits.input_dim
        )));
    }
    let Targets::Classes { labels, .. } = &digits.targets else {
        return Err(Error::invalid(format!(
            "{} has no class labels",
            digits.name
        )));
    };
    let mut idx: Vec<usize> = (0..digits.len()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xD161));
    let take = |ids: &[usize]| -> (Vec<f32>, Vec<usize>) {
        (
            ids.iter()
                .flat_map(|&i| digits.input(i).iter().map(|v| 2.0 * v - 1.0))
                .collect(),
            ids.iter().map(|&i| labels[i] as usize).collect(),
        )
    };
    Ok(MlpZoo {
        preset: "digits-mlp-acc".into(),
        net: Mlp::digits(),
        train: take(&idx[..1_200]),
        test: take(&idx[1_200..]),
        count,
        splits: random_split(count, 0.1, 0.3, seed),
        shard_size: 400,
        seed,
    })
}
