//! Building INR zoos: one SIREN per image, each fitted independently and deterministically
//! from (zoo seed, model index), so a zoo can be built in shards on several machines and an
//! interrupted build resumes at the first missing shard. Models of a shard are fitted in
//! parallel, one per core (spec/foundation-benchmarks.md W5: a per-model loop beats batching).

use crate::inr::{self, FitOptions};
use crate::store::{create, shard_path, write_shard, Splits, ZooSpec};
use crate::{Error, Result};
use glassbox_core::data::Dataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

/// Which shards this build job writes: shard s belongs to job `index` of `of` when s % of == index.
#[derive(Clone, Copy, Debug)]
pub struct ShardJob {
    pub index: usize,
    pub of: usize,
}

impl ShardJob {
    pub const ALL: ShardJob = ShardJob { index: 0, of: 1 };

    /// "i/n" as the command line gives it.
    pub fn parse(s: &str) -> Result<ShardJob> {
        let bad = || Error::invalid(format!("--shard takes i/n with 0 <= i < n, got '{s}'"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, of) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if of == 0 || index >= of {
            return Err(bad());
        }
        Ok(ShardJob { index, of })
    }
}

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

impl InrZoo {
    pub fn spec(&self) -> ZooSpec {
        ZooSpec {
            family: "inr".into(),
            generation: serde_json::json!({
                "preset": self.preset, "seed": self.seed, "side": self.side, "fit_steps": self.fit.steps, "fit_lr": self.fit.lr,
                "architecture": "SIREN 2-32-32-1, sin(30·), output + 0.5 (spec/probegen.md 2.7); grid linspace(-1,1,side)², x = column, y = row",
            }),
            tensors: inr::TENSORS.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect(),
            count: self.images.len(),
            shard_size: self.shard_size,
            splits: self.splits.clone(),
            target: self.target.clone(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct BuildReport {
    pub shards_written: usize,
    pub shards_skipped: usize,
    pub models_fitted: usize,
    pub seconds: f64,
}

/// The seed of model `index` of a zoo seeded `seed`.
pub fn model_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(index as u64)
}

/// Fit every missing shard of this job; `progress(done, total)` after each shard.
pub fn build(dir: &Path, zoo: &InrZoo, job: ShardJob, mut progress: impl FnMut(usize, usize)) -> Result<BuildReport> {
    let start = Instant::now();
    let spec = zoo.spec();
    create(dir, &spec, &zoo.labels)?;
    let points = inr::grid(zoo.side);
    let mine: Vec<usize> = (0..spec.n_shards()).filter(|s| s % job.of == job.index).collect();
    let mut report = BuildReport::default();
    for (done, &s) in mine.iter().enumerate() {
        if shard_path(dir, s).exists() {
            report.shards_skipped += 1;
        } else {
            let fitted: Vec<(Vec<f32>, f64)> = spec.shard_range(s).into_par_iter().map(|m| inr::fit(&zoo.images[m], &points, model_seed(zoo.seed, m), &zoo.fit)).collect();
            let (params, mse): (Vec<Vec<f32>>, Vec<f32>) = fitted.into_iter().map(|(p, e)| (p, e as f32)).unzip();
            write_shard(dir, &spec, s, &params, &mse)?;
            report.shards_written += 1;
            report.models_fitted += params.len();
        }
        progress(done + 1, mine.len());
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A seeded random split: validation and test get ⌈n·fraction⌉ models (scikit-learn's rounding,
/// which gives spec R1's 1,257 / 180 / 360 for 1,797 digits), training the rest.
pub fn random_split(n: usize, val: f64, test: f64, seed: u64) -> Splits {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (n_val, n_test) = (((n as f64 * val).ceil() as usize).min(n), ((n as f64 * test).ceil() as usize));
    let a = n.saturating_sub(n_val + n_test);
    let b = (a + n_val).min(n);
    let sorted = |s: &[usize]| {
        let mut v = s.to_vec();
        v.sort_unstable();
        v
    };
    Splits { train: sorted(&idx[..a]), val: sorted(&idx[a..b]), test: sorted(&idx[b..]) }
}

/// spec/probegen.md 6 R1: one INR per scikit-learn digit (1,797), pixels/16 on an 8×8 grid,
/// 100 full-batch Adam steps at lr 1e-3, split 70/10/20.
pub fn digits_inr(digits: &Dataset, seed: u64) -> Result<InrZoo> {
    if digits.input_dim != 64 {
        return Err(Error::invalid(format!("digits-inr needs 8×8 images, {} has {} values per sample", digits.name, digits.input_dim)));
    }
    let glassbox_core::data::Targets::Classes { labels: classes, .. } = &digits.targets else {
        return Err(Error::invalid(format!("{} has no class labels", digits.name)));
    };
    // glassbox's digits loader scales pixels to [0, 1] already (counts / 16).
    let images: Vec<Vec<f32>> = (0..digits.len()).map(|i| digits.input(i).to_vec()).collect();
    let labels = classes.iter().enumerate().map(|(i, &c)| serde_json::json!({ "class": c, "image": i })).collect();
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
