//! Accuracy zoos (ProbeGen's small-scale reproductions of its CIFAR10-GS benchmark, Kahana et
//! al. 2025): many small classifiers trained with sampled hyper-parameters; the property to
//! predict is each model's test accuracy. Presets `digits-mlp-acc` (MLPs on the digits) and
//! `mnist-cnn-acc` (CNNs on MNIST).

use crate::build::{model_seed, random_split, Recipe};
use crate::cnn::Cnn;
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

/// One model's sampled training recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    pub activation: Activation,
    /// Adam learning rate.
    pub lr: f64,
    /// He-normal init times this.
    pub init_scale: f64,
    /// L2 penalty λ·Σw² on the weight matrices (Keras-style, as the Small CNN Zoo).
    pub l2: f64,
    /// Share of the training pool this model sees.
    pub train_fraction: f64,
    /// Adam steps of batch 32.
    pub steps: usize,
    /// Share of its training labels replaced by uniformly random classes.
    pub label_noise: f64,
}

/// Where recipes are drawn from: log10 ranges for the continuous settings, lists for the rest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HyperSpace {
    pub log_lr: (f64, f64),
    pub log_init: (f64, f64),
    pub log_l2: (f64, f64),
    pub fractions: Vec<f64>,
    pub steps: Vec<usize>,
    pub noise: Vec<f64>,
}

impl HyperSpace {
    /// ProbeGen's reproduction R2 (the digits-MLP accuracy zoo): lr 10^U(−3.5, −1), init
    /// 10^U(−1, 0.5), L2 10^U(−6, −2), fraction {0.05, 0.1, 0.25, 0.5, 1}, steps {25, 50, 100,
    /// 200, 400}, label noise {0, 0, 0.1, 0.3}.
    pub fn r2() -> HyperSpace {
        HyperSpace { log_lr: (-3.5, -1.0), log_init: (-1.0, 0.5), log_l2: (-6.0, -2.0), fractions: vec![0.05, 0.1, 0.25, 0.5, 1.0], steps: vec![25, 50, 100, 200, 400], noise: vec![0.0, 0.0, 0.1, 0.3] }
    }

    /// For the MNIST CNNs, which learn more slowly than R2's MLPs: lr 10^U(−3, −1), init
    /// 10^U(−0.5, 0.5), steps {50, 100, 200, 400, 800}, fraction {0.1, 0.25, 0.5, 1}; L2 and
    /// label noise as R2.
    pub fn cnn() -> HyperSpace {
        HyperSpace { log_lr: (-3.0, -1.0), log_init: (-0.5, 0.5), steps: vec![50, 100, 200, 400, 800], fractions: vec![0.1, 0.25, 0.5, 1.0], ..HyperSpace::r2() }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> Hyper {
        let log_uniform = |rng: &mut dyn rand::RngCore, (lo, hi): (f64, f64)| 10f64.powf(rng.random_range(lo..hi));
        Hyper {
            activation: if rng.random_bool(0.5) { Activation::Relu } else { Activation::Tanh },
            lr: log_uniform(rng, self.log_lr),
            init_scale: log_uniform(rng, self.log_init),
            l2: log_uniform(rng, self.log_l2),
            train_fraction: *self.fractions.choose(rng).expect("non-empty"),
            steps: *self.steps.choose(rng).expect("non-empty"),
            label_noise: *self.noise.choose(rng).expect("non-empty"),
        }
    }
}

/// A network family an accuracy zoo trains: one flat parameter vector per model.
pub trait Classifier: Sync {
    type Trace;
    /// The zoo family name ("mlp", "cnn") and how to rebuild the network, for zoo.json.
    fn family(&self) -> &'static str;
    fn describe(&self) -> serde_json::Value;
    fn tensors(&self) -> Vec<(String, Vec<usize>)>;
    fn n_params(&self) -> usize;
    fn input_dim(&self) -> usize;
    fn output_dim(&self) -> usize;
    /// (range, fan-in) of every weight tensor: He init and the L2 penalty (biases get neither).
    fn weights(&self) -> Vec<(std::ops::Range<usize>, usize)>;
    fn forward(&self, p: &[f32], act: Activation, x: &[f32]) -> (Vec<f32>, Self::Trace);
    /// Add the gradient of Σ d_out ⊙ logits with respect to the parameters into `d_params`.
    fn param_grad(&self, p: &[f32], act: Activation, x: &[f32], trace: &Self::Trace, d_out: &[f32], d_params: &mut [f32]);
    /// The gradient of Σ d_out ⊙ logits with respect to the inputs (what a probe reader needs).
    fn input_grad(&self, p: &[f32], act: Activation, x: &[f32], trace: &Self::Trace, d_out: &[f32]) -> Vec<f32>;
}

impl Classifier for Mlp {
    type Trace = crate::mlp::Trace;
    fn family(&self) -> &'static str {
        "mlp"
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "dims": self.dims, "architecture": "MLP with ReLU or tanh between layers (labels' 'activation'), inputs in [-1, 1]" })
    }
    fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        Mlp::tensors(self)
    }
    fn n_params(&self) -> usize {
        Mlp::n_params(self)
    }
    fn input_dim(&self) -> usize {
        Mlp::input_dim(self)
    }
    fn output_dim(&self) -> usize {
        Mlp::output_dim(self)
    }
    fn weights(&self) -> Vec<(std::ops::Range<usize>, usize)> {
        (0..self.dims.len() - 1).map(|l| (self.offsets(l).0..self.offsets(l).1, self.dims[l])).collect()
    }
    fn forward(&self, p: &[f32], act: Activation, x: &[f32]) -> (Vec<f32>, Self::Trace) {
        Mlp::forward(self, p, act, x)
    }
    fn param_grad(&self, p: &[f32], act: Activation, x: &[f32], trace: &Self::Trace, d_out: &[f32], d_params: &mut [f32]) {
        self.backward(p, act, x, trace, d_out, Some(d_params), false);
    }
    fn input_grad(&self, p: &[f32], act: Activation, x: &[f32], trace: &Self::Trace, d_out: &[f32]) -> Vec<f32> {
        self.backward(p, act, x, trace, d_out, None, true).expect("input gradient requested")
    }
}

impl Classifier for Cnn {
    type Trace = crate::cnn::Trace;
    fn family(&self) -> &'static str {
        "cnn"
    }
    fn describe(&self) -> serde_json::Value {
        let mut d = crate::cnn::geometry(self.side());
        d["channels"] = serde_json::json!(self.channels());
        d["classes"] = serde_json::json!(self.classes());
        d["architecture"] = "CNN: 3x3 stride-2 convolutions (padding 1) with ReLU or tanh after each (labels' 'activation'), global average pool, linear head; inputs in [-1, 1]".into();
        d
    }
    fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        Cnn::tensors(self)
    }
    fn n_params(&self) -> usize {
        Cnn::n_params(self)
    }
    fn input_dim(&self) -> usize {
        Cnn::input_dim(self)
    }
    fn output_dim(&self) -> usize {
        self.classes()
    }
    fn weights(&self) -> Vec<(std::ops::Range<usize>, usize)> {
        Cnn::weights(self)
    }
    fn forward(&self, p: &[f32], act: Activation, x: &[f32]) -> (Vec<f32>, Self::Trace) {
        Cnn::forward(self, p, act, x)
    }
    fn param_grad(&self, p: &[f32], act: Activation, x: &[f32], trace: &Self::Trace, d_out: &[f32], d_params: &mut [f32]) {
        self.backward(p, act, x, trace, d_out, Some(d_params), false);
    }
    fn input_grad(&self, p: &[f32], act: Activation, x: &[f32], trace: &Self::Trace, d_out: &[f32]) -> Vec<f32> {
        self.backward(p, act, x, trace, d_out, None, true).expect("input gradient requested")
    }
}

/// A zoo of `count` classifiers trained on `train` and scored on `test` (inputs in [−1, 1]).
pub struct AccuracyZoo<N: Classifier> {
    pub preset: String,
    pub net: N,
    pub space: HyperSpace,
    pub train: (Vec<f32>, Vec<usize>),
    pub test: (Vec<f32>, Vec<usize>),
    pub count: usize,
    pub splits: Splits,
    pub shard_size: usize,
    pub seed: u64,
}

impl<N: Classifier> AccuracyZoo<N> {
    pub fn hyper(&self, m: usize) -> Hyper {
        self.space.sample(&mut ChaCha8Rng::seed_from_u64(model_seed(self.seed, m)))
    }

    /// Train model m by its recipe: (parameters, test accuracy, last training loss).
    pub fn train_model(&self, m: usize) -> (Vec<f32>, f32, f32) {
        let h = self.hyper(m);
        // A second stream for everything after the recipe, so the recipe stays what labels.json says.
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.seed, m) ^ 0x7EA1);
        let net = &self.net;
        let mut p = vec![0f32; net.n_params()];
        for (range, fan_in) in net.weights() {
            let std = (2.0 / fan_in as f64).sqrt() * h.init_scale;
            for w in &mut p[range] {
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
            net.param_grad(&params[0], h.activation, &x, &trace, &d_logits, &mut grad);
            let mut penalty = 0.0;
            for (range, _) in net.weights() {
                for (g, &w) in grad[range.clone()].iter_mut().zip(&params[0][range]) {
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

impl<N: Classifier> Recipe for AccuracyZoo<N> {
    fn spec(&self) -> ZooSpec {
        let mut generation = serde_json::json!({
            "preset": self.preset, "seed": self.seed,
            "train_images": self.train.1.len(), "test_images": self.test.1.len(),
        });
        if let (Some(g), serde_json::Value::Object(extra)) = (generation.as_object_mut(), self.net.describe()) {
            g.extend(extra);
            // The recipe ranges, so a build never resumes a zoo sampled from other ranges. R2's
            // zoos predate this key and keep their zoo.json as it was.
            if self.space != HyperSpace::r2() {
                g.insert("hyper_space".into(), serde_json::to_value(&self.space).expect("plain numbers"));
            }
        }
        ZooSpec {
            family: self.net.family().into(),
            generation,
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

/// ProbeGen's reproduction R2: 1,200 MLPs 64-16-16-10 on the digits (pixels scaled to [−1, 1];
/// one seeded split of the images into 1,200 train and 597 test); model split 60/10/30.
pub fn digits_mlp_acc(digits: &Dataset, count: usize, seed: u64) -> Result<AccuracyZoo<Mlp>> {
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
    Ok(AccuracyZoo {
        preset: "digits-mlp-acc".into(),
        net: Mlp::digits(),
        space: HyperSpace::r2(),
        train: take(&idx[..1_200]),
        test: take(&idx[1_200..]),
        count,
        splits: random_split(count, 0.1, 0.3, seed),
        shard_size: 400,
        seed,
    })
}

/// The MNIST CNN accuracy zoo `mnist-cnn-acc` (ProbeGen's small-CNN-zoo reproduction made for
/// 28×28 MNIST): `count` CNNs 1→8→8→8 (3×3, stride 2, padding 1), GAP, Linear 8→10, each
/// trained by a recipe from [`HyperSpace::cnn`] on a pool of the first 6,000 MNIST training
/// images and scored on the first 1,000 test images (pixels scaled to [−1, 1]); model split
/// 60/10/30.
pub fn mnist_cnn_acc(mnist: &glassbox_core::data::Split, count: usize, seed: u64) -> Result<AccuracyZoo<Cnn>> {
    let take = |d: &Dataset, n: usize| -> Result<(Vec<f32>, Vec<usize>)> {
        let Targets::Classes { labels, .. } = &d.targets else {
            return Err(Error::invalid(format!("{} has no class labels", d.name)));
        };
        if d.input_dim != 784 || d.len() < n {
            return Err(Error::invalid(format!("mnist-cnn-acc needs {n} 28×28 images, {} has {} of {} values", d.name, d.len(), d.input_dim)));
        }
        Ok(((0..n).flat_map(|i| d.input(i).iter().map(|v| 2.0 * v - 1.0)).collect(), labels[..n].iter().map(|&c| c as usize).collect()))
    };
    Ok(AccuracyZoo {
        preset: "mnist-cnn-acc".into(),
        net: Cnn::mnist(),
        space: HyperSpace::cnn(),
        train: take(&mnist.train, 6_000)?,
        test: take(&mnist.test, 1_000)?,
        count,
        splits: random_split(count, 0.1, 0.3, seed),
        shard_size: 250,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoo<N: Classifier>(preset: &str, net: N, space: HyperSpace) -> AccuracyZoo<N> {
        let d = net.input_dim();
        AccuracyZoo { preset: preset.into(), net, space, train: (vec![0.0; 3 * d], vec![0; 3]), test: (vec![0.0; 2 * d], vec![0; 2]), count: 20, splits: random_split(20, 0.1, 0.3, 0), shard_size: 10, seed: 0 }
    }

    #[test]
    fn digits_mlp_zoos_keep_the_generation_they_were_built_with() {
        // Byte for byte what zoo.json held before the CNN zoos: existing zoos still resume.
        let z = zoo("digits-mlp-acc", Mlp { dims: vec![64, 16, 16, 10] }, HyperSpace::r2());
        let expected = serde_json::json!({
            "architecture": "MLP with ReLU or tanh between layers (labels' 'activation'), inputs in [-1, 1]",
            "dims": [64, 16, 16, 10], "preset": "digits-mlp-acc", "seed": 0, "test_images": 2, "train_images": 3,
        });
        assert_eq!(z.spec().generation, expected);
    }

    #[test]
    fn cnn_zoos_record_their_layout_and_recipe_ranges() {
        let z = zoo("mnist-cnn-acc", Cnn::mnist(), HyperSpace::cnn());
        let g = z.spec().generation;
        assert_eq!((g["side"].as_u64(), g["stride"].as_u64(), g["padding"].as_u64()), (Some(28), Some(2), Some(1)));
        assert_eq!(g["hyper_space"]["steps"], serde_json::json!([50, 100, 200, 400, 800]));
        assert_eq!(g["hyper_space"]["log_lr"], serde_json::json!([-3.0, -1.0]));
    }
}
