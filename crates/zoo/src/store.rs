//! The zoo folder (docs/file-formats.md): `zoo.json` (family, architecture, how it was
//! generated, splits), `labels.json` (per model: the properties to predict and nuisance
//! values), and shards `models-00000.safetensors` holding each tensor stacked over the shard's
//! models `[n, …]` plus one `[n]` tensor per measured value (`fit_mse` of an INR,
//! `test_accuracy` of a trained classifier: values known only once a model is fitted travel
//! with its shard). A shard is written to a temporary name and renamed, so a shard file that
//! exists is complete: an interrupted build resumes at the first missing shard.

use crate::{Error, Result};
use glassbox_core::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZooSpec {
    /// Model family, e.g. "inr".
    pub family: String,
    /// The preset (or "import") that generated the zoo, with its settings.
    pub generation: serde_json::Value,
    /// (tensor name, per-model shape), in the order of the flat parameter vector.
    pub tensors: Vec<(String, Vec<usize>)>,
    pub count: usize,
    pub shard_size: usize,
    pub splits: Splits,
    /// The property a reader predicts by default (a key of every label, or a measured value).
    pub target: String,
    /// Per-model values measured while fitting, stored in the shards beside the weights.
    #[serde(default = "fit_mse_only")]
    pub measured: Vec<String>,
}

fn fit_mse_only() -> Vec<String> {
    vec!["fit_mse".into()]
}

impl ZooSpec {
    pub fn n_shards(&self) -> usize {
        self.count.div_ceil(self.shard_size.max(1))
    }

    /// Each tensor's number of values, in flat-vector order.
    pub fn tensor_sizes(&self) -> Vec<usize> {
        self.tensors.iter().map(|(_, s)| s.iter().product()).collect()
    }

    pub fn n_params(&self) -> usize {
        self.tensors
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// The model indices of shard `s`.
    pub fn shard_range(&self, s: usize) -> std::ops::Range<usize> {
        (s * self.shard_size).min(self.count)..((s + 1) * self.shard_size).min(self.count)
    }
}

pub fn shard_path(dir: &Path, s: usize) -> PathBuf {
    dir.join(format!("models-{s:05}.safetensors"))
}

/// Start (or continue) a zoo folder: writes zoo.json and labels.json, or checks that the ones
/// already there describe the same zoo.
pub fn create(dir: &Path, spec: &ZooSpec, labels: &[serde_json::Value]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join("zoo.json");
    if path.exists() {
        let old: ZooSpec = read_json(&path)?;
        if serde_json::to_value(&old).ok() != serde_json::to_value(spec).ok() {
            return Err(Error::format(&path, "an existing zoo with other settings is in this folder; choose another --out or delete it"));
        }
    } else {
        write_json(&path, spec)?;
    }
    write_json(&dir.join("labels.json"), &labels)
}

/// Write shard `s`: its models' flat parameter vectors and, per model, one value for each of
/// `spec.measured`.
pub fn write_shard(
    dir: &Path,
    spec: &ZooSpec,
    s: usize,
    params: &[Vec<f32>],
    measured: &[Vec<f32>],
) -> Result<()> {
    let n = params.len();
    let mut tensors = Vec::new();
    let mut offset = 0;
    for (name, shape) in &spec.tensors {
        let size: usize = shape.iter().product();
        let data = params
            .iter()
            .flat_map(|p| p[offset..offset + size].iter().copied())
            .collect();
        tensors.push(HostTensor {
            name: name.clone(),
            shape: std::iter::once(n).chain(shape.iter().copied()).collect(),
            data,
        });
        offset += size;
    }
    for (k, name) in spec.measured.iter().enumerate() {
        tensors.push(HostTensor {
            name: name.clone(),
            shape: vec![n],
            data: measured.iter().map(|m| m[k]).collect(),
        });
    }
    write_f32(
        &shard_path(dir, s),
        &tensors,
        HashMap::from([("format".to_string(), "glassbox-zoo-shard".to_string())]),
    )
}

/// Fit errors (or any measured value) of a zoo's models (a NaN counts as not finite, never as
/// small). Quantiles are the nearest order statistic.
#[derive(Clone, Debug)]
pub struct FitSummary {
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub p90: f64,
    pub worst: f64,
    pub all_finite: bool,
}

impl FitSummary {
    pub fn of(mse: &[f32]) -> FitSummary {
        let all_finite = mse.iter().all(|v| v.is_finite());
        let mut sorted: Vec<f64> = mse.iter().map(|&v| v as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round().max(0.0) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        FitSummary {
            min: at(0.0),
            median: at(0.5),
            mean: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
            p90: at(0.9),
            worst: at(1.0),
            all_finite,
        }
    }
}

/// A loaded zoo: every model's flat parameters, in index order. The measured values are also
/// merged into each model's label object.
pub struct Zoo {
    pub dir: PathBuf,
    pub spec: ZooSpec,
    pub params: Vec<Vec<f32>>,
    pub measured: BTreeMap<String, Vec<f32>>,
    pub labels: Vec<serde_json::Value>,
}

impl Zoo {
    /// A measured value of every model, e.g. "fit_mse".
    pub fn measured(&self, name: &str) -> Result<&[f32]> {
        self.measured.get(name).map(Vec::as_slice).ok_or_else(|| {
            Error::format(
                self.dir.join("zoo.json"),
                format!(
                    "the zoo records no measured '{name}' (it has: {:?})",
                    self.spec.measured
                ),
            )
        })
    }

    /// A string label of every model (e.g. a per-model activation).
    pub fn label_strings(&self, key: &str) -> Result<Vec<String>> {
        self.labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.get(key)
                    .and_then(|v| v.as_str())
                    .map(String::from)
                    .ok_or_else(|| {
                        Error::format(
                            self.dir.join("labels.json"),
                            format!("model {i} has no string '{key}'"),
                        )
                    })
            })
            .collect()
    }

    /// The default target of every model as a number (a class index or a value).
    pub fn targets(&self) -> Result<Vec<f64>> {
        self.values(&self.spec.target)
    }

    /// A numeric label (or measured value) of every model.
    pub fn values(&self, key: &str) -> Result<Vec<f64>> {
        self.labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.get(key).and_then(|v| v.as_f64()).ok_or_else(|| {
                    Error::format(
                        self.dir.join("labels.json"),
                        format!("model {i} has no numeric '{key}'"),
                    )
                })
            })
            .collect()
    }
}

pub fn load(dir: &Path) -> Result<Zoo> {
    let spec_path = dir.join("zoo.json");
    let spec: ZooSpec = read_json(&spec_path)?;
    if spec.shard_size == 0 || spec.count == 0 {
        return Err(Error::format(
            &spec_path,
            "count and shard_size must be at least 1",
        ));
    }
    // Checked against the labels before anything is sized by the count zoo.json claims.
    let mut labels: Vec<serde_json::Value> = read_json(&dir.join("labels.json"))?;
    if labels.len() != spec.count {
        return Err(Error::format(
            dir.join("labels.json"),
            format!("{} labels for a zoo of {} models", labels.len(), spec.count),
        ));
    }
    let mut seen = vec![false; spec.count];
    for (name, split) in [
        ("train", &spec.splits.train),
        ("val", &spec.splits.val),
        ("test", &spec.splits.test),
    ] {
        for &i in split.iter() {
            if i >= spec.count || seen[i] {
                return Err(Error::format(&spec_path, format!("split '{name}' lists model {i}, which is out of range (count {}) or already in another split", spec.count)));
            }
            seen[i] = true;
        }
    }
    let mut params = Vec::with_capacity(spec.count);
    let mut measured: BTreeMap<String, Vec<f32>> = spec
        .measured
        .iter()
        .map(|m| (m.clone(), Vec::with_capacity(spec.count)))
        .collect();
    for s in 0..spec.n_shards() {
        let path = shard_path(dir, s);
        if !path.exists() {
            return Err(Error::format(&path, format!("missing: the zoo has {} shards of {} models; finish it with the same `glassbox zoo build` command (it resumes)", spec.n_shards(), spec.shard_size)));
        }
        let file = SafetensorsFile::open(&path)?;
        let n = spec.shard_range(s).len();
        let mut columns = Vec::new();
        for (name, shape) in &spec.tensors {
            let t = file.tensor_f32(name)?;
            let expected: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
            if t.shape != expected {
                return Err(Error::format(
                    &path,
                    format!(
                        "tensor '{name}' has shape {:?}, expected {expected:?}",
                        t.shape
                    ),
                ));
            }
            columns.push(t.data);
        }
        for m in 0..n {
            let mut p = Vec::with_capacity(spec.n_params());
            for ((_, shape), data) in spec.tensors.iter().zip(&columns) {
                let size: usize = shape.iter().product();
                p.extend_from_slice(&data[m * size..][..size]);
            }
            params.push(p);
        }
        for (name, values) in measured.iter_mut() {
            let t = file.tensor_f32(name)?;
            if t.shape != [n] {
                return Err(Error::format(
                    &path,
                    format!("tensor '{name}' has shape {:?}, expected [{n}]", t.shape),
                ));
            }
            values.extend(t.data);
        }
    }
    for (name, values) in &measured {
        for (label, &v) in labels.iter_mut().zip(values) {
            if let Some(obj) = label.as_object_mut() {
                obj.insert(name.clone(), serde_json::json!(v));
            }
        }
    }
    Ok(Zoo {
        dir: dir.to_path_buf(),
        spec,
        params,
        measured,
        labels,
    })
}
