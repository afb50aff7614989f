//! Data sets: real ones read from a data folder, synthetic ones generated in code.

pub mod digits;
pub mod glyphs;
pub mod idx;
pub mod modadd;
pub mod text;

use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// A labelled data set held in memory; inputs are row-major `[len, input_dim]`.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub inputs: Vec<f32>,
    pub input_dim: usize,
    /// (channels, height, width) when the inputs are images, for CNNs and image grids.
    pub image_shape: Option<[usize; 3]>,
    pub targets: Targets,
}

#[derive(Clone, Debug)]
pub enum Targets {
    /// One class per sample.
    Classes { labels: Vec<u32>, n_classes: usize },
    /// Several 0/1 labels per sample, row-major `[len, n_labels]`.
    MultiLabel { values: Vec<f32>, n_labels: usize },
}

#[derive(Clone, Debug)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

impl Dataset {
    /// Counted from the targets, so a zero-width input (e.g. a context of 0) still has rows.
    pub fn len(&self) -> usize {
        match &self.targets {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::MultiLabel { values, n_labels } => values.len() / (*n_labels).max(1),
        }
    }
    pub fn is_multilabel(&self) -> bool {
        matches!(self.targets, Targets::MultiLabel { .. })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn n_outputs(&self) -> usize {
        match &self.targets {
            Targets::Classes { n_classes, .. } => *n_classes,
            Targets::MultiLabel { n_labels, .. } => *n_labels,
        }
    }
    /// Row `i`; panics if `i >= len()`, like slice indexing.
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.input_dim..(i + 1) * self.input_dim]
    }

    /// The rows `idx`, in that order (mini-batches, splits); panics on an index out of range.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let inputs = idx.iter().flat_map(|&i| self.input(i).iter().copied()).collect();
        let targets = match &self.targets {
            Targets::Classes { labels, n_classes } => {
                Targets::Classes { labels: idx.iter().map(|&i| labels[i]).collect(), n_classes: *n_classes }
            }
            Targets::MultiLabel { values, n_labels } => Targets::MultiLabel {
                values: idx.iter().flat_map(|&i| values[i * n_labels..(i + 1) * n_labels].iter().copied()).collect(),
                n_labels: *n_labels,
            },
        };
        Dataset { name: self.name.clone(), inputs, input_dim: self.input_dim, image_shape: self.image_shape, targets }
    }

    /// Deterministic shuffled split: `fraction` (clamped to [0, 1]) of the samples go to the
    /// first part, so the same seed always gives the same train/test partition.
    pub fn split(&self, fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        let cut = ((fraction * self.len() as f64).round() as usize).min(self.len());
        (self.subset(&order[..cut]), self.subset(&order[cut..]))
    }
}

/// The per-user folder `glassbox data fetch` downloads data sets into when not told otherwise
/// (`~/.cache/glassbox/data` on Linux, `~/Library/Caches/glassbox/data` on macOS).
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("glassbox").join("data"))
}

/// The data folder: `explicit` (from --data) if given, else `$GLASSBOX_DATA`, else
/// [`default_data_dir`]; an error that says how to fill it when it does not exist.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let dir = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("GLASSBOX_DATA").map(PathBuf::from))
        .or_else(default_data_dir)
        .ok_or_else(|| Error::invalid("no data folder: pass --data DIR or set GLASSBOX_DATA"))?;
    if !dir.is_dir() {
        return Err(Error::format(
            &dir,
            "data folder does not exist: download a data set into it with `glassbox data fetch NAME` \
             (mnist, fashion-mnist, digits), or pass --data DIR / set GLASSBOX_DATA",
        ));
    }
    Ok(dir)
}

/// Where the real data set `name` lives inside the data folder (a folder for mnist and
/// fashion-mnist, the CSV for digits), with the command that fetches it when it is missing.
pub fn real_set_path(name: &str, explicit_dir: Option<&Path>) -> Result<PathBuf> {
    let inside = match name {
        "mnist" | "fashion-mnist" => name,
        "digits" => "sklearn-digits/digits.csv.gz",
        _ => return Err(Error::invalid(format!("'{name}' is not a data set read from disk"))),
    };
    let path = data_dir(explicit_dir)?.join(inside);
    if !path.exists() {
        return Err(Error::format(&path, format!("not found: download it with `glassbox data fetch {name}`")));
    }
    Ok(path)
}

/// All 1,797 scikit-learn digits from the data folder, unsplit.
pub fn load_all_digits(explicit_dir: Option<&Path>) -> Result<Dataset> {
    digits::load_digits(&real_set_path("digits", explicit_dir)?)
}

/// Names accepted by [`load_named`].
pub const DATASET_NAMES: &[&str] = &["mnist", "fashion-mnist", "digits", "modadd", "glyphs"];

/// Load a named data set: on-disk sets from [`data_dir`], generated ones with their defaults.
pub fn load_named(name: &str, explicit_dir: Option<&Path>, seed: u64) -> Result<Split> {
    match name {
        "mnist" | "fashion-mnist" => idx::load_mnist_like(&real_set_path(name, explicit_dir)?, name),
        "digits" => {
            let all = load_all_digits(explicit_dir)?;
            let (mut train, mut test) = all.split(0.8, seed);
            train.name = "digits".into();
            test.name = "digits".into();
            Ok(Split { train, test })
        }
        "modadd" => modadd::ModularAddition { seed, ..Default::default() }.generate(),
        "glyphs" => Ok(glyphs::GlyphWorld { seed, ..Default::default() }.generate()),
        _ => Err(Error::invalid(format!("unknown data set '{name}'; choose one of {}", DATASET_NAMES.join(", ")))),
    }
}

/// Read a whole file, transparently gunzipping it when it starts with the gzip magic (detected by
/// content, not by name, because downloads are often renamed). Memory is bounded by the real
/// content, never by a size some header claims.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut out)
            .map_err(|e| Error::format(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
