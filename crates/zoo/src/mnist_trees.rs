//! A real-data model-tree zoo (after the synthetic tree world of ProbeX's reproduction): four
//! roots, MLPs 784-128-128-64 pre-trained on different tasks, each fine-tuned `per_tree` times
//! on a random 5-of-10 MNIST digit subset with sampled nuisance hyper-parameters. Preset
//! `mnist-trees`.
//!
//! Roots: (0) Fashion-MNIST classification, (1) MNIST digits rotated by 90°, (2) MNIST
//! autoencoding (64 → 784 output, mean squared error), (3) Fashion-MNIST classification from
//! another init seed. Labels are Model-J's: `dataset_chosen_targets` = the Python list of the
//! chosen digits' names (classes sorted as strings, as Model-J's LabelEncoder sorts them).

use crate::build::{model_seed, Recipe};
use crate::dense::{cross_entropy, matrix, mean_squared_error, Mlp};
use crate::store::{Splits, ZooSpec};
use crate::tree_world::{adamw, per_tree_splits, python_list};
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::data::{Split, Targets};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

pub const DIGITS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
pub const ROOT_TASKS: [&str; 4] = ["fashion-mnist classes", "mnist rotated 90°", "mnist autoencoder", "fashion-mnist classes (other seed)"];
const SIDE: usize = 28;
const INPUT: usize = SIDE * SIDE;
/// Test images per chosen digit used to score a fine-tune.
const TEST_PER_DIGIT: usize = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MnistTreesConfig {
    pub per_tree: usize,
    pub hidden: usize,
    pub root_steps: usize,
    pub seed: u64,
}

impl MnistTreesConfig {
    /// 4 roots × 240 fine-tunes, 128-wide, 1,500 root steps.
    pub fn full(seed: u64) -> MnistTreesConfig {
        MnistTreesConfig { per_tree: 240, hidden: 128, root_steps: 1_500, seed }
    }
}

/// One fine-tune's digits and nuisance hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigitFineTune {
    pub tree: usize,
    pub digits: Vec<usize>,
    pub lr: f64,
    pub steps: usize,
    pub weight_decay: f64,
    pub input_noise: f64,
}

pub struct MnistTrees {
    pub config: MnistTreesConfig,
    /// MNIST train images by digit (rows of 784 in [0, 1]) and the test images.
    train_by_digit: Vec<Vec<f32>>,
    test_by_digit: Vec<Vec<f32>>,
    pub roots: Vec<Mlp>,
    /// Root pre-training score: accuracy (classification) or mean squared error (autoencoder).
    pub root_scores: Vec<f64>,
}

fn by_class(d: &glassbox_core::data::Dataset) -> Result<Vec<Vec<f32>>> {
    let Targets::Classes { labels, .. } = &d.targets else {
        return Err(Error::invalid(format!("{} has no class labels", d.name)));
    };
    if d.input_dim != INPUT {
        return Err(Error::invalid(format!("{} has {} values per image, expected 28 × 28", d.name, d.input_dim)));
    }
    let mut out = vec![Vec::new(); 10];
    for (i, &l) in labels.iter().enumerate() {
        out.get_mut(l as usize).ok_or_else(|| Error::invalid(format!("{}: label {l} is not a digit", d.name)))?.extend_from_slice(d.input(i));
    }
    Ok(out)
}

/// An image turned by 90°: out[r][c] = in[27 − c][r].
fn rotate(img: &[f32]) -> Vec<f32> {
    (0..INPUT).map(|k| img[(SIDE - 1 - k % SIDE) * SIDE + k / SIDE]).collect()
}

impl MnistTrees {
    /// Pre-train the four roots (in parallel) from MNIST and Fashion-MNIST.
    pub fn new(config: MnistTreesConfig, mnist: &Split, fashion: &Split) -> Result<MnistTrees> {
        use rayon::prelude::*;
        let train_by_digit = by_class(&mnist.train)?;
        let test_by_digit = by_class(&mnist.test)?;
        let fashion_train = &fashion.train;
        let Targets::Classes { labels: fashion_labels, .. } = &fashion_train.targets else {
            return Err(Error::invalid("fashion-mnist has no class labels"));
        };
        let Targets::Classes { labels: mnist_labels, .. } = &mnist.train.targets else {
            return Err(Error::invalid("mnist has no class labels"));
        };
        let (roots, root_scores): (Vec<Mlp>, Vec<f64>) = (0..4)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ (0x7007 + 104_729 * t as u64));
                let out = if t == 2 { INPUT } else { 10 };
                let mut net = Mlp::new(&[INPUT, config.hidden, config.hidden, 64, out], rng.random());
                let mut adam = adamw(&net, 1e-4);
                let sample = |rng: &mut ChaCha8Rng, n: usize| -> (Vec<f32>, Vec<usize>) {
                    let mut x = Vec::with_capacity(n * INPUT);
                    let mut y = Vec::with_capacity(n);
                    for _ in 0..n {
                        if t == 0 || t == 3 {
                            let i = rng.random_range(0..fashion_train.len());
                            x.extend_from_slice(fashion_train.input(i));
                            y.push(fashion_labels[i] as usize);
                        } else {
                            let i = rng.random_range(0..mnist.train.len());
                            let img = mnist.train.input(i);
                            if t == 1 {
                                x.extend(rotate(img));
                            } else {
                                x.extend_from_slice(img);
                            }
                            y.push(mnist_labels[i] as usize);
                        }
                    }
                    (x, y)
                };
                // Root 2 reconstructs its input; the others classify.
                let loss = |out: &Mat<f32>, x: &Mat<f32>, y: &[usize]| -> (f64, Mat<f32>, f64) {
                    if t == 2 {
                        let (mse, d) = mean_squared_error(out, x);
                        (mse, d, mse)
                    } else {
                        cross_entropy(out, y)
                    }
                };
                for _ in 0..config.root_steps {
                    let (x, y) = sample(&mut rng, 128);
                    let x = matrix(&x, INPUT);
                    net.step(&mut adam, 1e-3, &x, |out| {
                        let (value, d, _) = loss(out, &x, &y);
                        (value, d)
                    });
                }
                let (x, y) = sample(&mut rng, 1_000);
                let x = matrix(&x, INPUT);
                let (_, _, score) = loss(&net.forward(&x).0, &x, &y);
                (net, score)
            })
            .unzip();
        Ok(MnistTrees { config, train_by_digit, test_by_digit, roots, root_scores })
    }

    pub fn count(&self) -> usize {
        4 * self.config.per_tree
    }

    pub fn fine_tune(&self, m: usize) -> DigitFineTune {
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.config.seed, m));
        let mut digits: Vec<usize> = (0..10).collect();
        digits.shuffle(&mut rng);
        digits.truncate(5);
        digits.sort_unstable();
        DigitFineTune {
            tree: m / self.config.per_tree,
            digits,
            lr: *[3e-4, 1e-3, 2e-3].choose(&mut rng).expect("non-empty"),
            steps: *[100, 200, 400].choose(&mut rng).expect("non-empty"),
            weight_decay: *[0.0, 1e-4, 1e-3].choose(&mut rng).expect("non-empty"),
            input_noise: *[0.0, 0.1].choose(&mut rng).expect("non-empty"),
        }
    }

    /// Per tree a seeded split in the ratio 160 / 30 / 50.
    pub fn splits(&self) -> Splits {
        per_tree_splits(4, self.config.per_tree, self.config.seed ^ 0x3917)
    }

    /// Fine-tune model m: the root's trunk, a fresh 64 → 5 head, AdamW, batch 32 of the chosen
    /// digits' training images (plus Gaussian noise). Returns the model and its accuracy on
    /// the first 100 test images of each chosen digit.
    pub fn train_model(&self, m: usize) -> (Mlp, f64) {
        let ft = self.fine_tune(m);
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.config.seed, m) ^ 0xF1E7);
        let root = &self.roots[ft.tree];
        let mut net = Mlp::new(&[INPUT, self.config.hidden, self.config.hidden, 64, 5], rng.random());
        let trunk = root.params.len() - 2;
        net.params[..trunk].clone_from_slice(&root.params[..trunk]);
        let mut adam = adamw(&net, ft.weight_decay);
        for _ in 0..ft.steps {
            let mut x = Vec::with_capacity(32 * INPUT);
            let mut y = Vec::with_capacity(32);
            for _ in 0..32 {
                let label = rng.random_range(0..5);
                let pool = &self.train_by_digit[ft.digits[label]];
                let i = rng.random_range(0..pool.len() / INPUT);
                x.extend(pool[i * INPUT..][..INPUT].iter().map(|&v| v + ft.input_noise as f32 * rng.sample::<f32, _>(StandardNormal)));
                y.push(label);
            }
            net.step(&mut adam, ft.lr, &matrix(&x, INPUT), |out| {
                let (loss, d, _) = cross_entropy(out, &y);
                (loss, d)
            });
        }
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (label, &d) in ft.digits.iter().enumerate() {
            let pool = &self.test_by_digit[d];
            let n = (pool.len() / INPUT).min(TEST_PER_DIGIT);
            x.extend_from_slice(&pool[..n * INPUT]);
            y.extend(std::iter::repeat_n(label, n));
        }
        let (_, _, acc) = cross_entropy(&net.forward(&matrix(&x, INPUT)).0, &y);
        (net, acc)
    }
}

impl Recipe for MnistTrees {
    fn spec(&self) -> ZooSpec {
        ZooSpec {
            family: "mlp".into(),
            generation: serde_json::json!({
                "preset": "mnist-trees", "config": self.config, "root_tasks": ROOT_TASKS,
                "root_scores": self.root_scores,
                "architecture": "MLP 784-h-h-64-5 with ReLU, PyTorch layout; fine-tuned on 5 of the 10 MNIST digits",
                "classes": DIGITS,
            }),
            tensors: crate::mlp::Mlp { dims: vec![INPUT, self.config.hidden, self.config.hidden, 64, 5] }.tensors(),
            count: self.count(),
            shard_size: self.config.per_tree,
            splits: self.splits(),
            target: "dataset_chosen_targets".into(),
            measured: vec!["test_accuracy".into()],
        }
    }

    fn labels(&self) -> Vec<serde_json::Value> {
        (0..self.count())
            .map(|m| {
                let ft = self.fine_tune(m);
                let names: Vec<String> = ft.digits.iter().map(|&d| DIGITS[d].to_string()).collect();
                serde_json::json!({
                    "name": format!("tree{}_{:03}", ft.tree, m % self.config.per_tree),
                    "tree": ft.tree, "root_task": ROOT_TASKS[ft.tree], "activation": "relu",
                    "dataset_chosen_targets": python_list(&names),
                    "lr": ft.lr, "steps": ft.steps, "weight_decay": ft.weight_decay, "input_noise": ft.input_noise,
                })
            })
            .collect()
    }

    fn fit(&self, m: usize) -> (Vec<f32>, Vec<f32>) {
        let (net, acc) = self.train_model(m);
        (net.params.concat(), vec![acc as f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_turns_the_image_by_a_quarter() {
        let mut img = vec![0f32; INPUT];
        img[0] = 1.0; // top-left
        img[SIDE - 1] = 2.0; // top-right
        let r = rotate(&img);
        // A quarter turn clockwise: top-left → top-right, top-right → bottom-right.
        assert_eq!(r[SIDE - 1], 1.0);
        assert_eq!(r[INPUT - 1], 2.0);
        assert_eq!(r.iter().filter(|&&v| v != 0.0).count(), 2);
    }
}
