//! Building zoos: every model is fitted independently and deterministically from (zoo seed,
//! model index), so a zoo can be built in shards on several machines and an interrupted build
//! resumes at the first missing shard. (Bit-identical on CPUs with the same SIMD features: the
//! INR fits use faer's matmul, whose kernel is chosen at run time.) Models of a shard are
//! fitted in parallel, one per core (measured on 256 tiny SIRENs: a per-model loop beats
//! batching).

use crate::store::{create, shard_path, write_shard, Splits, ZooSpec};
use crate::{Error, Result};
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
        let (index, of) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if of == 0 || index >= of {
            return Err(bad());
        }
        Ok(ShardJob { index, of })
    }
}

/// How to make a zoo: its description, the labels known before fitting (the image a model
/// encodes, its sampled hyper-parameters), and the fit of one model from its index alone.
pub trait Recipe: Sync {
    fn spec(&self) -> ZooSpec;
    fn labels(&self) -> Vec<serde_json::Value>;
    /// Model `m`'s flat parameters and one value per `spec().measured` name.
    fn fit(&self, m: usize) -> (Vec<f32>, Vec<f32>);
    /// Files beside the zoo that its recipe defines (e.g. class embeddings); written on every
    /// build, before the shards.
    fn extras(&self, _dir: &Path) -> Result<()> {
        Ok(())
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
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64)
}

/// Fit every missing shard of this job; `progress(done, total)` after each shard.
pub fn build(
    dir: &Path,
    zoo: &dyn Recipe,
    job: ShardJob,
    mut progress: impl FnMut(usize, usize),
) -> Result<BuildReport> {
    let start = Instant::now();
    let spec = zoo.spec();
    create(dir, &spec, &zoo.labels())?;
    zoo.extras(dir)?;
    let mine: Vec<usize> = (0..spec.n_shards())
        .filter(|s| s % job.of == job.index)
        .collect();
    // Temporary files of writes a kill cut short: those of this job's shards (no other job
    // writes them), and of the files every job writes (zoo.json, labels.json), those whose
    // process has ended. Other jobs' shards are theirs to clean.
    let own: Vec<String> = mine.iter().map(|&s| shard_file_name(dir, s)).collect();
    glassbox_core::io::remove_temporaries(dir, |name, pid| {
        own.iter().any(|o| o == name) || (!name.starts_with("models-") && glassbox_core::io::process_ended(pid))
    })?;
    let mut report = BuildReport::default();
    for (done, &s) in mine.iter().enumerate() {
        if shard_path(dir, s).exists() {
            report.shards_skipped += 1;
        } else {
            let (params, measured): (Vec<Vec<f32>>, Vec<Vec<f32>>) = spec
                .shard_range(s)
                .into_par_iter()
                .map(|m| zoo.fit(m))
                .unzip();
            write_shard(dir, &spec, s, &params, &measured)?;
            report.shards_written += 1;
            report.models_fitted += params.len();
        }
        progress(done + 1, mine.len());
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

fn shard_file_name(dir: &Path, s: usize) -> String {
    shard_path(dir, s).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A seeded random split: validation and test get ⌈n·fraction⌉ models (scikit-learn's rounding,
/// which gives the digits-INR zoo's 1,257 / 180 / 360 for 1,797 digits), training the rest.
pub fn random_split(n: usize, val: f64, test: f64, seed: u64) -> Splits {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (n_val, n_test) = (
        ((n as f64 * val).ceil() as usize).min(n),
        ((n as f64 * test).ceil() as usize),
    );
    let a = n.saturating_sub(n_val + n_test);
    let b = (a + n_val).min(n);
    let sorted = |s: &[usize]| {
        let mut v = s.to_vec();
        v.sort_unstable();
        v
    };
    Splits {
        train: sorted(&idx[..a]),
        val: sorted(&idx[a..b]),
        test: sorted(&idx[b..]),
    }
}
