//! INR zoos (the MNIST-INR benchmark ProbeGen reads, Kahana et al. 2025, and its digits
//! version): one SIREN per image, label = the image's class. Presets `digits-inr` (the 1,797
//! scikit-learn digits, 8×8) and `mnist-inr` / `fmnist-inr` (28×28 images of MNIST or
//! Fashion-MNIST, all 70,000 or the first N per class).

use crate::build::{model_seed, random_split, Recipe};
use crate::inr::{self, FitOptions};
use crate::store::{Splits, ZooSpec};
use crate::{Error, Result};
use glassbox_core::data::{Dataset, Split, Targets};

/// An INR zoo to build: one model per image.
pub struct InrZoo {
    pub preset: String,
    /// Images, row-major `side × side`, values as the INR should output them.
    pub images: Vec<Vec<f32>>,
    pub side: usize,
    /// One label object per image (at least the `target` key).
    pub labels: Vec<serde_json::Value>,
    pub target: String,
    pub splits: Splits,
    pub fit: FitOptions,
    pub shard_size: usize,
    pub seed: u64,
}

impl Recipe for InrZoo {
    fn spec(&self) -> ZooSpec {
        ZooSpec {
            family: "inr".into(),
            generation: serde_json::json!({
                "preset": self.preset, "seed": self.seed, "side": self.side, "fit_steps": self.fit.steps, "fit_lr": self.fit.lr,
                "architecture": "SIREN 2-32-32-1, sin(30·), output + 0.5; grid linspace(-1,1,side)², x = column, y = row",
            }),
            tensors: inr::tensors(),
            count: self.images.len(),
            shard_size: self.shard_size,
            splits: self.splits.clone(),
            target: self.target.clone(),
            measured: vec!["fit_mse".into()],
        }
    }

    fn labels(&self) -> Vec<serde_json::Value> {
        self.labels.clone()
    }

    fn fit(&self, m: usize) -> (Vec<f32>, Vec<f32>) {
        let (p, mse) = inr::fit(
            &self.images[m],
            &inr::grid(self.side),
            model_seed(self.seed, m),
            &self.fit,
        );
        (p, vec![mse as f32])
    }
}

fn classes(data: &Dataset) -> Result<&[u32]> {
    match &data.targets {
        Targets::Classes { labels, .. } => Ok(labels),
        _ => Err(Error::invalid(format!("{} has no class labels", data.name))),
    }
}

/// ProbeGen's reproduction R1 (digits INRs): one INR per scikit-learn digit (1,797), pixels/16
/// on an 8×8 grid, 100 full-batch Adam steps at lr 1e-3, split 70/10/20.
pub fn digits_inr(digits: &Dataset, seed: u64) -> Result<InrZoo> {
    if digits.input_dim != 64 {
        return Err(Error::invalid(format!(
            "digits-inr needs 8×8 images, {} has {} values per sample",
            digits.name, digits.input_dim
        )));
    }
    let classes = classes(digits)?;
    // glassbox's digits loader scales pixels to [0, 1] already (counts / 16).
    let images: Vec<Vec<f32>> = (0..digits.len())
        .map(|i| digits.input(i).to_vec())
        .collect();
    let labels = classes
        .iter()
        .enumerate()
        .map(|(i, &c)| serde_json::json!({ "class": c, "image": i }))
        .collect();
    Ok(InrZoo {
        preset: "digits-inr".into(),
        splits: random_split(images.len(), 0.1, 0.2, seed),
        images,
        side: 8,
        labels,
        target: "class".into(),
        fit: FitOptions::default(),
        shard_size: 500,
        seed,
    })
}

/// The MNIST-INR benchmark: one INR per 28×28 image of an MNIST-like split (pixels in [0, 1]).
/// `per_class` = Some((train, test)) takes the first that many images of each class from the
/// training and test files; None takes all 70,000. Models of training images are split into
/// train and validation (1 in 12, the 55k / 5k of the benchmark), those of test images are the
/// test split. `fit` sets the Adam steps (28×28 needs more than the digits INRs' 100 for 64
/// pixels).
pub fn image_inr(
    preset: &str,
    data: &Split,
    per_class: Option<(usize, usize)>,
    fit: FitOptions,
    seed: u64,
) -> Result<InrZoo> {
    let side = match data.train.image_shape {
        Some([1, h, w]) if h == w => h,
        other => {
            return Err(Error::invalid(format!(
                "{preset} needs square grey images, {} has shape {other:?}",
                data.train.name
            )))
        }
    };
    let pick = |d: &Dataset, n: Option<usize>| -> Result<Vec<usize>> {
        let classes = classes(d)?;
        let Some(n) = n else {
            return Ok((0..d.len()).collect());
        };
        let mut taken = [0usize; 10];
        let idx: Vec<usize> = (0..d.len())
            .filter(|&i| {
                let c = classes[i] as usize;
                let keep = c < 10 && taken[c] < n;
                if keep {
                    taken[c] += 1;
                }
                keep
            })
            .collect();
        if taken.iter().any(|&t| t < n) {
            return Err(Error::invalid(format!(
                "{} has fewer than {n} images of some class ({taken:?})",
                d.name
            )));
        }
        Ok(idx)
    };
    let (train_idx, test_idx) = (
        pick(&data.train, per_class.map(|p| p.0))?,
        pick(&data.test, per_class.map(|p| p.1))?,
    );
    let mut images = Vec::with_capacity(train_idx.len() + test_idx.len());
    let mut labels = Vec::with_capacity(images.capacity());
    for (file, d, idx) in [
        ("train", &data.train, &train_idx),
        ("test", &data.test, &test_idx),
    ] {
        let classes = classes(d)?;
        for &i in idx.iter() {
            images.push(d.input(i).to_vec());
            labels.push(serde_json::json!({ "class": classes[i], "file": file, "image": i }));
        }
    }
    let within = random_split(train_idx.len(), 1.0 / 12.0, 0.0, seed);
    let splits = Splits {
        train: within.train,
        val: within.val,
        test: (train_idx.len()..train_idx.len() + test_idx.len()).collect(),
    };
    Ok(InrZoo {
        preset: preset.into(),
        images,
        side,
        labels,
        target: "class".into(),
        splits,
        fit,
        shard_size: 500,
        seed,
    })
}

/// Built-in data for the tour: one INR per 12×12 glyph of a single primitive (8 classes,
/// `per_class` each; core's glyph world), 100 Adam steps, split 70/10/20.
pub fn glyph_inr(per_class: usize, seed: u64) -> Result<InrZoo> {
    use glassbox_core::data::glyphs;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for i in 0..per_class * glyphs::N_TYPES {
        let kind = i % glyphs::N_TYPES;
        let pixels = glyphs::primitive_pixels(kind, &mut rng)?;
        images.push(glyphs::render(&[(&pixels, 1.0)])?);
        labels.push(serde_json::json!({ "class": kind, "glyph": glyphs::TYPE_NAMES[kind] }));
    }
    Ok(InrZoo {
        preset: "glyph-inr".into(),
        splits: random_split(images.len(), 0.1, 0.2, seed),
        images,
        side: glyphs::SIZE,
        labels,
        target: "class".into(),
        fit: FitOptions::default(),
        shard_size: 500,
        seed,
    })
}
