//! Summaries of safetensors files: names, dtypes, shapes, metadata and value statistics.

use crate::io::{to_f32, SafetensorsFile};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TensorSummary {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub numel: usize,
    /// Statistics over the finite values (None for dtypes we cannot read or no finite values).
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub nan: usize,
    pub inf: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    pub path: String,
    pub metadata: BTreeMap<String, String>,
    pub tensors: Vec<TensorSummary>,
}

/// Summarise a safetensors file, or the `model.safetensors` of a checkpoint folder.
pub fn summarize(path: &Path) -> Result<FileSummary> {
    let file_path = if path.is_dir() { path.join(crate::checkpoint::WEIGHTS_FILE) } else { path.to_path_buf() };
    if !file_path.exists() {
        return Err(Error::format(&file_path, "no such file"));
    }
    let file = SafetensorsFile::open(&file_path)?;
    let st = file.parse()?;
    let mut tensors = Vec::new();
    for (name, dtype, shape) in file.entries()? {
        let view = st.tensor(&name).map_err(|e| Error::format(&file_path, e.to_string()))?;
        let values = to_f32(dtype, view.data());
        tensors.push(summarize_values(&name, &format!("{dtype:?}"), &shape, values.as_deref()));
    }
    Ok(FileSummary {
        path: file_path.display().to_string(),
        metadata: file.metadata()?.into_iter().collect(),
        tensors,
    })
}

pub fn summarize_values(name: &str, dtype: &str, shape: &[usize], values: Option<&[f32]>) -> TensorSummary {
    let mut s = TensorSummary {
        name: name.to_string(),
        dtype: dtype.to_string(),
        shape: shape.to_vec(),
        numel: shape.iter().product(),
        min: None,
        max: None,
        mean: None,
        std: None,
        nan: 0,
        inf: 0,
    };
    let Some(values) = values else { return s };
    let (mut n, mut sum, mut sq) = (0usize, 0f64, 0f64);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v.is_nan() {
            s.nan += 1;
        } else if v.is_infinite() {
            s.inf += 1;
        } else {
            let v = v as f64;
            n += 1;
            sum += v;
            sq += v * v;
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if n > 0 {
        let mean = sum / n as f64;
        s.min = Some(lo);
        s.max = Some(hi);
        s.mean = Some(mean);
        s.std = Some((sq / n as f64 - mean * mean).max(0.0).sqrt());
    }
    s
}
