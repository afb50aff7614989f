//! The synthetic Model-Tree world of ProbeX's small-scale reproduction (Horwitz et al. 2025): a
//! procedural classification world (20 classes, two latent prototypes each, rendered through a
//! fixed tanh map), T root MLPs 32-128-128-64 pre-trained on different tree-specific tasks, and
//! per root N fine-tunes on a random 10-of-20 class subset with sampled nuisance
//! hyper-parameters. Preset `tree-world`.
//!
//! Labels follow Model-J, ProbeX's model dataset: `dataset_chosen_targets` is the Python repr
//! of the chosen class names, so the same label reader serves this zoo and imported
//! checkpoints.

use crate::build::{model_seed, Recipe};
use crate::dense::{cross_entropy, matrix, mean_squared_error, Mlp};
use crate::store::{Splits, ZooSpec};
use faer::Mat;
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// The sizes of a tree world; [`TreeWorldConfig::spec`] is the full-size reproduction's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeWorldConfig {
    pub trees: usize,
    /// Fine-tuned models per tree, split train / val / test in the ratio 160 / 30 / 50.
    pub per_tree: usize,
    pub classes: usize,
    /// Classes each fine-tune is trained on.
    pub subset: usize,
    /// Width of the two hidden layers (the probed `layers.1.weight` is hidden × hidden).
    pub hidden: usize,
    /// Adam steps of each root's pre-training.
    pub root_steps: usize,
    pub seed: u64,
}

impl TreeWorldConfig {
    /// The full size: 4 trees × 240 models, 20 classes, subsets of 10, 128-wide.
    pub fn spec(seed: u64) -> TreeWorldConfig {
        TreeWorldConfig {
            trees: 4,
            per_tree: 240,
            classes: 20,
            subset: 10,
            hidden: 128,
            root_steps: 1_500,
            seed,
        }
    }

    /// Layer widths of a fine-tuned model: 32 → hidden → hidden → 64 → subset.
    pub fn dims(&self) -> Vec<usize> {
        vec![INPUT, self.hidden, self.hidden, 64, self.subset]
    }
}

const LATENT: usize = 16;
const INPUT: usize = 32;
const ANCHORS: usize = 30;
const TRAIN_PER_CLASS: usize = 300;
const TEST_PER_CLASS: usize = 100;

/// Class c's name; zero-padded so that the alphabetical order (Model-J's label encoding) is
/// the numeric one.
pub fn class_name(c: usize) -> String {
    format!("class_{c:02}")
}

/// The world: renderer, prototypes and the fixed sample pools.
pub struct World {
    /// A (32 × 16) row-major, entries N(0,1)·2/√16.
    renderer: Vec<f32>,
    /// Per class, its two prototypes (16 values each).
    prototypes: Vec<[Vec<f32>; 2]>,
    /// Per class, rendered train and test samples (rows of 32).
    pub train: Vec<Vec<f32>>,
    pub test: Vec<Vec<f32>>,
}

fn normal(rng: &mut impl Rng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

impl World {
    pub fn new(classes: usize, seed: u64) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3071D);
        let scale = 2.0 / (LATENT as f32).sqrt();
        let renderer = (0..INPUT * LATENT).map(|_| normal(&mut rng) * scale).collect();
        let mut proto = || (0..LATENT).map(|_| normal(&mut rng)).collect::<Vec<f32>>();
        let prototypes: Vec<[Vec<f32>; 2]> = (0..classes).map(|_| [proto(), proto()]).collect();
        let mut world = World { renderer, prototypes, train: Vec::new(), test: Vec::new() };
        for c in 0..classes {
            let train = world.samples(c, TRAIN_PER_CLASS, &mut rng);
            let test = world.samples(c, TEST_PER_CLASS, &mut rng);
            world.train.push(train);
            world.test.push(test);
        }
        world
    }

    /// x = tanh(A z) + 0.05 ε, appended to `out`.
    pub fn render(&self, z: &[f32], rng: &mut impl Rng, out: &mut Vec<f32>) {
        for row in self.renderer.chunks(LATENT) {
            let v: f32 = row.iter().zip(z).map(|(a, b)| a * b).sum();
            out.push(v.tanh() + 0.05 * normal(rng));
        }
    }

    /// n samples of class c: a uniformly chosen prototype plus 0.7 ε, rendered.
    fn samples(&self, c: usize, n: usize, rng: &mut impl Rng) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * INPUT);
        for _ in 0..n {
            let mu = &self.prototypes[c][rng.random_range(0..2)];
            let z: Vec<f32> = mu.iter().map(|m| m + 0.7 * normal(rng)).collect();
            self.render(&z, rng, &mut out);
        }
        out
    }

    /// The mean of class c's prototypes (the seed of its synthetic "text" embedding).
    pub fn class_mean(&self, c: usize) -> Vec<f32> {
        let [a, b] = &self.prototypes[c];
        a.iter().zip(b).map(|(x, y)| 0.5 * (x + y)).collect()
    }
}

/// One fine-tune's sampled nuisance hyper-parameters and class subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FineTune {
    pub tree: usize,
    /// The chosen classes, sorted.
    pub classes: Vec<usize>,
    pub lr: f64,
    pub steps: usize,
    pub weight_decay: f64,
    pub input_noise: f64,
}

impl FineTune {
    fn sample(tree: usize, classes: usize, subset: usize, rng: &mut impl Rng) -> FineTune {
        let mut chosen: Vec<usize> = (0..classes).collect();
        chosen.shuffle(rng);
        chosen.truncate(subset);
        chosen.sort_unstable();
        FineTune {
            tree,
            classes: chosen,
            lr: *[3e-4, 1e-3, 2e-3].choose(rng).expect("non-empty"),
            steps: *[150, 300, 500].choose(rng).expect("non-empty"),
            weight_decay: *[0.0, 1e-4, 1e-3].choose(rng).expect("non-empty"),
            input_noise: *[0.0, 0.1].choose(rng).expect("non-empty"),
        }
    }
}

/// A tree-world zoo: the world, the pre-trained roots, and the recipe of every fine-tune.
/// Model m belongs to tree m / per_tree.
pub struct TreeWorld {
    pub config: TreeWorldConfig,
    pub world: World,
    /// Root t's trunk and pre-training head (32 → h → h → 64 → 30).
    pub roots: Vec<Mlp>,
    /// Pre-training accuracy of each root on fresh samples of its own task.
    pub root_accuracy: Vec<f64>,
}

/// AdamW (decoupled weight decay) over a network's tensors.
pub fn adamw(net: &Mlp, weight_decay: f64) -> Adam {
    Adam::new(OptimConfig { kind: OptimKind::AdamW, weight_decay, ..OptimConfig::default() }, &net.sizes())
}

impl TreeWorld {
    /// Generate the world and pre-train the roots (each root from its own init seed on its own
    /// task: label = nearest of 30 tree-specific anchors of z ~ N(0, 1.3² I)).
    pub fn new(config: TreeWorldConfig) -> TreeWorld {
        use rayon::prelude::*;
        let world = World::new(config.classes, config.seed);
        let (roots, root_accuracy) = (0..config.trees)
            .into_par_iter()
            .map(|t| pretrain_root(&world, &config, t))
            .unzip();
        TreeWorld { config, world, roots, root_accuracy }
    }

    pub fn count(&self) -> usize {
        self.config.trees * self.config.per_tree
    }

    pub fn fine_tune(&self, m: usize) -> FineTune {
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.config.seed, m));
        FineTune::sample(m / self.config.per_tree, self.config.classes, self.config.subset, &mut rng)
    }

    /// Per tree a seeded split of its models in the ratio 160 / 30 / 50.
    pub fn splits(&self) -> Splits {
        per_tree_splits(self.config.trees, self.config.per_tree, self.config.seed ^ 0x5917)
    }

    /// Fine-tune model m: the root's trunk, a fresh 64 → subset head, AdamW with batch 32 from
    /// the chosen classes' train pools, Gaussian input noise. Returns the model and its
    /// accuracy on the chosen classes' test pools.
    pub fn train_model(&self, m: usize) -> (Mlp, f64) {
        let ft = self.fine_tune(m);
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.config.seed, m) ^ 0xF1E7);
        let root = &self.roots[ft.tree];
        let mut net = Mlp::new(&self.config.dims(), rng.random());
        let trunk = root.params.len() - 2;
        net.params[..trunk].clone_from_slice(&root.params[..trunk]);
        let mut adam = adamw(&net, ft.weight_decay);
        let k = ft.classes.len();
        for _ in 0..ft.steps {
            let mut x = Vec::with_capacity(32 * INPUT);
            let mut y = Vec::with_capacity(32);
            for _ in 0..32 {
                let label = rng.random_range(0..k);
                let pool = &self.world.train[ft.classes[label]];
                let i = rng.random_range(0..pool.len() / INPUT);
                x.extend(pool[i * INPUT..][..INPUT].iter().map(|&v| v + ft.input_noise as f32 * normal(&mut rng)));
                y.push(label);
            }
            net.step(&mut adam, ft.lr, &matrix(&x, INPUT), |out| {
                let (loss, d_out, _) = cross_entropy(out, &y);
                (loss, d_out)
            });
        }
        let (x, y): (Vec<f32>, Vec<usize>) = {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for (label, &c) in ft.classes.iter().enumerate() {
                x.extend(&self.world.test[c]);
                y.extend(std::iter::repeat_n(label, self.world.test[c].len() / INPUT));
            }
            (x, y)
        };
        let (_, _, acc) = cross_entropy(&net.forward(&matrix(&x, INPUT)).0, &y);
        (net, acc)
    }

    /// The labels of model m, Model-J style.
    pub fn label(&self, m: usize) -> serde_json::Value {
        let ft = self.fine_tune(m);
        let names: Vec<String> = ft.classes.iter().map(|&c| class_name(c)).collect();
        serde_json::json!({
            "tree": ft.tree, "activation": "relu",
            "dataset_chosen_targets": python_list(&names),
            "lr": ft.lr, "steps": ft.steps, "weight_decay": ft.weight_decay,
            "input_noise": ft.input_noise, "seed": model_seed(self.config.seed, m),
        })
    }
}

/// Models t·n .. (t+1)·n form tree t; each tree's models split in the ratio 160 / 30 / 50,
/// shuffled by `seed + t`.
pub fn per_tree_splits(trees: usize, n: usize, seed: u64) -> Splits {
    let (n_val, n_test) = ((n * 30).div_ceil(240), (n * 50).div_ceil(240));
    let mut splits = Splits { train: Vec::new(), val: Vec::new(), test: Vec::new() };
    for t in 0..trees {
        let mut idx: Vec<usize> = (t * n..(t + 1) * n).collect();
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_add(t as u64)));
        let a = n - n_val - n_test;
        splits.train.extend(&idx[..a]);
        splits.val.extend(&idx[a..a + n_val]);
        splits.test.extend(&idx[a + n_val..]);
    }
    for s in [&mut splits.train, &mut splits.val, &mut splits.test] {
        s.sort_unstable();
    }
    splits
}

/// `['a', "b's"]`: Python's repr of a list of strings (Model-J stores labels this way): single
/// quotes unless the string holds one and no double quote, backslashes and the chosen quote
/// escaped.
pub fn python_list(items: &[String]) -> String {
    let repr = |s: &String| {
        let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
        let body = s.replace('\\', "\\\\").replace(quote, &format!("\\{quote}"));
        format!("{quote}{body}{quote}")
    };
    format!("[{}]", items.iter().map(repr).collect::<Vec<_>>().join(", "))
}

fn pretrain_root(world: &World, config: &TreeWorldConfig, t: usize) -> (Mlp, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ (0x2007 + 7919 * t as u64));
    let mut dims = config.dims();
    *dims.last_mut().expect("dims") = ANCHORS;
    let mut net = Mlp::new(&dims, rng.random());
    let anchors: Vec<Vec<f32>> = (0..ANCHORS)
        .map(|_| (0..LATENT).map(|_| 1.3 * normal(&mut rng)).collect())
        .collect();
    let batch = |rng: &mut ChaCha8Rng, n: usize| {
        let mut x = Vec::with_capacity(n * INPUT);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let z: Vec<f32> = (0..LATENT).map(|_| 1.3 * normal(rng)).collect();
            let nearest = (0..ANCHORS)
                .map(|a| (a, anchors[a].iter().zip(&z).map(|(p, q)| (p - q) * (p - q)).sum::<f32>()))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(a, _)| a)
                .expect("anchors");
            world.render(&z, rng, &mut x);
            y.push(nearest);
        }
        (matrix(&x, INPUT), y)
    };
    let mut adam = adamw(&net, 1e-4);
    for _ in 0..config.root_steps {
        let (x, y) = batch(&mut rng, 128);
        net.step(&mut adam, 1e-3, &x, |out| {
            let (loss, d_out, _) = cross_entropy(out, &y);
            (loss, d_out)
        });
    }
    let (x, y) = batch(&mut rng, 2_000);
    let (_, _, acc) = cross_entropy(&net.forward(&x).0, &y);
    (net, acc)
}

impl Recipe for TreeWorld {
    fn spec(&self) -> ZooSpec {
        ZooSpec {
            family: "mlp".into(),
            generation: serde_json::json!({
                "preset": "tree-world", "config": self.config,
                "architecture": "MLP with ReLU, PyTorch layout",
                "classes": (0..self.config.classes).map(class_name).collect::<Vec<_>>(),
                "root_accuracy": self.root_accuracy,
            }),
            tensors: crate::mlp::Mlp { dims: self.config.dims() }.tensors(),
            count: self.count(),
            shard_size: self.config.per_tree,
            splits: self.splits(),
            target: "dataset_chosen_targets".into(),
            measured: vec!["test_accuracy".into()],
        }
    }

    fn labels(&self) -> Vec<serde_json::Value> {
        (0..self.count()).map(|m| self.label(m)).collect()
    }

    fn fit(&self, m: usize) -> (Vec<f32>, Vec<f32>) {
        let (net, acc) = self.train_model(m);
        (net.params.concat(), vec![acc as f32])
    }
}

/// Dimension of the synthetic class "text" embeddings (t_c = G · mean_k μ_{c,k},
/// G ∈ R^{24×16}).
pub const TEXT_DIM: usize = 24;

/// The zero-shot zoo of ProbeX's reproduction (an analogue of its SD-LoRA split): one tree
/// whose root (tree 0's pre-trained trunk 32-h-h-64 plus a 64 → 32 output) is trained as a
/// denoising autoencoder (x + 0.3 ε → x, 800 steps on all classes), fine-tuned per model on ONE
/// class, 12 models per class. 15 seen classes (8 train / 2 val / 2 test models each) and 5
/// held-out classes (6 validation and 6 test models each, labelled `held_out`). Preset
/// `tree-world-zeroshot`; the class embeddings go to `class-embeddings.safetensors`.
pub struct ZeroShotWorld {
    pub config: TreeWorldConfig,
    pub world: World,
    pub root: Mlp,
    /// The held-out classes, sorted.
    pub held_out: Vec<usize>,
    /// Per class its text embedding (TEXT_DIM values).
    pub embeddings: Vec<Vec<f32>>,
}

pub const PER_CLASS: usize = 12;
pub const HELD_OUT: usize = 5;

/// One DAE step's batch: rows of x (clean) from `pools`, and the noisy inputs.
fn dae_batch(pools: &[&Vec<f32>], n: usize, rng: &mut ChaCha8Rng) -> (Mat<f32>, Mat<f32>) {
    let mut clean = Vec::with_capacity(n * INPUT);
    for _ in 0..n {
        let pool = pools[rng.random_range(0..pools.len())];
        let i = rng.random_range(0..pool.len() / INPUT);
        clean.extend_from_slice(&pool[i * INPUT..][..INPUT]);
    }
    let x = matrix(&clean, INPUT);
    let noisy = Mat::from_fn(n, INPUT, |r, c| x[(r, c)] + 0.3 * normal(rng));
    (x, noisy)
}

/// `steps` Adam steps of denoising (mean squared error) on samples of `pools`.
fn train_dae(net: &mut Mlp, pools: &[&Vec<f32>], steps: usize, batch: usize, lr: f64, weight_decay: f64, rng: &mut ChaCha8Rng) {
    let mut adam = adamw(net, weight_decay);
    for _ in 0..steps {
        let (x, noisy) = dae_batch(pools, batch, rng);
        net.step(&mut adam, lr, &noisy, |out| mean_squared_error(out, &x));
    }
}

impl ZeroShotWorld {
    pub fn new(config: TreeWorldConfig) -> ZeroShotWorld {
        let world = World::new(config.classes, config.seed);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0xDAE0);
        // The root trunk of one tree (pre-trained on its anchor task) plus a 64 → 32
        // output layer, then the whole root trained as a denoising autoencoder.
        let (tree_root, _) = pretrain_root(&world, &config, 0);
        let mut dims = config.dims();
        *dims.last_mut().expect("dims") = INPUT;
        let mut root = Mlp::new(&dims, rng.random());
        let trunk = tree_root.params.len() - 2;
        root.params[..trunk].clone_from_slice(&tree_root.params[..trunk]);
        let pools: Vec<&Vec<f32>> = world.train.iter().collect();
        train_dae(&mut root, &pools, 800, 128, 1e-3, 1e-4, &mut rng);
        let mut classes: Vec<usize> = (0..config.classes).collect();
        classes.shuffle(&mut rng);
        let mut held_out = classes[..HELD_OUT.min(config.classes)].to_vec();
        held_out.sort_unstable();
        let g: Vec<f32> = (0..TEXT_DIM * LATENT).map(|_| normal(&mut rng)).collect();
        let embeddings = (0..config.classes)
            .map(|c| {
                let mean = world.class_mean(c);
                g.chunks(LATENT).map(|row| row.iter().zip(&mean).map(|(a, b)| a * b).sum()).collect()
            })
            .collect();
        ZeroShotWorld { config, world, root, held_out, embeddings }
    }

    pub fn count(&self) -> usize {
        self.config.classes * PER_CLASS
    }

    /// Model m's class (models are grouped by class, 12 each).
    pub fn class_of(&self, m: usize) -> usize {
        m / PER_CLASS
    }

    /// Seen classes: 8 / 2 / 2 of their 12 models; held-out classes: 6 val / 6 test.
    pub fn splits(&self) -> Splits {
        let mut s = Splits { train: Vec::new(), val: Vec::new(), test: Vec::new() };
        for c in 0..self.config.classes {
            let models: Vec<usize> = (c * PER_CLASS..(c + 1) * PER_CLASS).collect();
            if self.held_out.contains(&c) {
                s.val.extend(&models[..6]);
                s.test.extend(&models[6..]);
            } else {
                s.train.extend(&models[..8]);
                s.val.extend(&models[8..10]);
                s.test.extend(&models[10..]);
            }
        }
        s
    }

    /// (lr, steps) of model m: lr from {3e-4, 1e-3, 2e-3}, steps from {100, 200, 300}.
    fn recipe(&self, m: usize) -> (f64, usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.config.seed, m));
        (*[3e-4, 1e-3, 2e-3].choose(&mut rng).expect("non-empty"), *[100, 200, 300].choose(&mut rng).expect("non-empty"))
    }
}

impl Recipe for ZeroShotWorld {
    fn spec(&self) -> ZooSpec {
        let mut dims = self.config.dims();
        *dims.last_mut().expect("dims") = INPUT;
        ZooSpec {
            family: "mlp".into(),
            generation: serde_json::json!({
                "preset": "tree-world-zeroshot", "config": self.config,
                "architecture": "denoising-autoencoder MLP with ReLU, PyTorch layout (zero-shot tree)",
                "classes": (0..self.config.classes).map(class_name).collect::<Vec<_>>(),
                "held_out": self.held_out.iter().map(|&c| class_name(c)).collect::<Vec<_>>(),
            }),
            tensors: crate::mlp::Mlp { dims }.tensors(),
            count: self.count(),
            shard_size: self.count(),
            splits: self.splits(),
            target: "dataset_chosen_targets".into(),
            measured: vec!["denoising_mse".into()],
        }
    }

    fn labels(&self) -> Vec<serde_json::Value> {
        (0..self.count())
            .map(|m| {
                let (lr, steps) = self.recipe(m);
                let c = self.class_of(m);
                serde_json::json!({ "class": class_name(c), "dataset_chosen_targets": python_list(&[class_name(c)]), "held_out": self.held_out.contains(&c), "lr": lr, "steps": steps, "activation": "relu" })
            })
            .collect()
    }

    fn fit(&self, m: usize) -> (Vec<f32>, Vec<f32>) {
        let (lr, steps) = self.recipe(m);
        let mut rng = ChaCha8Rng::seed_from_u64(model_seed(self.config.seed, m) ^ 0xF1E7);
        let mut net = self.root.clone();
        let pool = [&self.world.train[self.class_of(m)]];
        train_dae(&mut net, &pool, steps, 32, lr, 0.0, &mut rng);
        let (x, noisy) = dae_batch(&[&self.world.test[self.class_of(m)]], 256, &mut rng);
        let (mse, _) = mean_squared_error(&net.forward(&noisy).0, &x);
        (net.params.concat(), vec![mse as f32])
    }

    fn extras(&self, dir: &std::path::Path) -> crate::Result<()> {
        let tensors: Vec<glassbox_core::io::HostTensor> = self
            .embeddings
            .iter()
            .enumerate()
            .map(|(c, e)| glassbox_core::io::HostTensor { name: class_name(c), shape: vec![TEXT_DIM], data: e.clone() })
            .collect();
        let meta = std::collections::HashMap::from([("format".to_string(), "glassbox-class-embeddings".to_string())]);
        glassbox_core::io::write_f32(&dir.join("class-embeddings.safetensors"), &tensors, meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> TreeWorldConfig {
        TreeWorldConfig { trees: 2, per_tree: 24, hidden: 16, root_steps: 200, ..TreeWorldConfig::spec(3) }
    }

    #[test]
    fn splits_are_per_tree_in_the_spec_ratio() {
        let tw = TreeWorld::new(TreeWorldConfig::spec(0));
        let s = tw.splits();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (640, 120, 200));
        for t in 0..4 {
            let in_tree = |v: &[usize]| v.iter().filter(|&&m| m / 240 == t).count();
            assert_eq!((in_tree(&s.train), in_tree(&s.val), in_tree(&s.test)), (160, 30, 50));
        }
    }

    #[test]
    fn fine_tunes_share_the_roots_trunk_layout_and_learn_their_classes() {
        let tw = TreeWorld::new(small());
        let ft = tw.fine_tune(5);
        assert_eq!(ft.classes.len(), 10);
        assert!(ft.classes.windows(2).all(|w| w[0] < w[1]));
        let (net, acc) = tw.train_model(5);
        assert_eq!(net.dims, vec![32, 16, 16, 64, 10]);
        assert!(acc > 0.3, "a fine-tune should beat chance (0.1) clearly: {acc}");
        assert_eq!(tw.train_model(5).0.params, net.params, "fits are deterministic");
        let label = tw.label(5);
        assert!(label["dataset_chosen_targets"].as_str().unwrap().starts_with("['class_"));
    }

    #[test]
    fn python_list_matches_pythons_repr() {
        assert_eq!(python_list(&["a".into(), "b c".into()]), "['a', 'b c']");
        // What Python's repr(["baby's", 'say "hi"', 'it\'s "x"', 'a\\b']) prints.
        assert_eq!(python_list(&["baby's".into(), "say \"hi\"".into(), "it's \"x\"".into(), "a\\b".into()]), r#"["baby's", 'say "hi"', 'it\'s "x"', 'a\\b']"#);
    }
}
