//! A trained reader on disk: `reader.safetensors` (the probe inputs `probes [P, d_in]` and the
//! head's `head.{l}.weight [out, in]` / `head.{l}.bias`) beside `reader.json` (what it reads and
//! predicts: the zoo layout it was trained on, the task, the method). Written to temporary names
//! and renamed, like every glassbox file.

use glassbox_zoo::dense::Mlp;
use crate::reader::Reader;
use crate::{Error, Result};
use glassbox_core::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TaskInfo {
    Classes { n_classes: usize },
    Regression,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReaderInfo {
    /// Probe method (probegen, vanilla, …).
    pub method: String,
    pub task: TaskInfo,
    /// The label key it predicts, and the metric it was selected by.
    pub target: String,
    pub metric: String,
    /// The model layout it reads: zoo family and (tensor, shape) list.
    pub family: String,
    pub tensors: Vec<(String, Vec<usize>)>,
    pub n_probes: usize,
    pub input_dim: usize,
    pub head_dims: Vec<usize>,
    pub best_epoch: usize,
    pub test_at_best_val: f64,
    /// The zoo it was trained on.
    pub trained_on: String,
}

pub fn save(dir: &Path, reader: &Reader, info: &ReaderInfo) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors = vec![HostTensor {
        name: "probes".into(),
        shape: vec![reader.n_probes, info.input_dim],
        data: reader.probes.clone(),
    }];
    for (l, w) in reader.head.dims.windows(2).enumerate() {
        tensors.push(HostTensor {
            name: format!("head.{l}.weight"),
            shape: vec![w[1], w[0]],
            data: reader.head.params[2 * l].clone(),
        });
        tensors.push(HostTensor {
            name: format!("head.{l}.bias"),
            shape: vec![w[1]],
            data: reader.head.params[2 * l + 1].clone(),
        });
    }
    write_f32(
        &dir.join("reader.safetensors"),
        &tensors,
        HashMap::from([("format".to_string(), "glassbox-reader".to_string())]),
    )?;
    write_json(&dir.join("reader.json"), info)
}

pub fn load(dir: &Path) -> Result<(Reader, ReaderInfo)> {
    let info: ReaderInfo = read_json(&dir.join("reader.json"))?;
    let path = dir.join("reader.safetensors");
    let file = SafetensorsFile::open(&path)?;
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = file.tensor_f32(name)?;
        if t.shape != shape {
            return Err(Error::format(
                &path,
                format!(
                    "tensor '{name}' has shape {:?}, reader.json implies {shape:?}",
                    t.shape
                ),
            ));
        }
        Ok(t.data)
    };
    let probes = get("probes", &[info.n_probes, info.input_dim])?;
    let outputs = match info.task {
        TaskInfo::Classes { n_classes } => n_classes,
        TaskInfo::Regression => 1,
    };
    if info.head_dims.len() < 2 || info.head_dims.contains(&0) || info.head_dims.last() != Some(&outputs) {
        return Err(Error::format(dir.join("reader.json"), format!("head_dims {:?} must be non-zero widths ending in the task's {outputs} outputs", info.head_dims)));
    }
    let mut head = Mlp {
        dims: info.head_dims.clone(),
        relu: true,
        params: Vec::new(),
    };
    for (l, w) in info.head_dims.windows(2).enumerate() {
        head.params
            .push(get(&format!("head.{l}.weight"), &[w[1], w[0]])?);
        head.params.push(get(&format!("head.{l}.bias"), &[w[1]])?);
    }
    Ok((
        Reader {
            probes,
            n_probes: info.n_probes,
            head,
        },
        info,
    ))
}
