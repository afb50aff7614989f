//! Checkpoints: a folder with `model.safetensors` (named f32 weights, PyTorch layouts) and
//! `model.json` (architecture, task, seed, training configuration, metrics, version).

use crate::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use crate::model::hf_layout::{self, HfFamily};
use crate::model::{Architecture, Model, Params};
use crate::tensor::Device;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CARD_FILE: &str = "model.json";
/// Hugging Face's config.json, written beside language-model checkpoints.
pub const HF_CONFIG_FILE: &str = "config.json";

/// What the model was trained to do; enough to rebuild its data set for `eval` and `acts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub data: crate::dataspec::DataSpec,
    pub n_outputs: usize,
    pub multilabel: bool,
}

/// The contents of `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub glassbox_version: String,
    pub architecture: Architecture,
    pub task: Option<Task>,
    pub seed: u64,
    pub training: Option<serde_json::Value>,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub epochs_done: usize,
}

impl ModelCard {
    pub fn new(architecture: Architecture, seed: u64) -> Self {
        ModelCard {
            glassbox_version: env!("CARGO_PKG_VERSION").to_string(),
            architecture,
            task: None,
            seed,
            training: None,
            metrics: BTreeMap::new(),
            epochs_done: 0,
        }
    }
}

pub fn params_to_host(params: &Params) -> Vec<HostTensor> {
    params
        .specs
        .iter()
        .zip(params.to_host())
        .map(|(s, data)| HostTensor { name: s.name.clone(), shape: s.shape.clone(), data })
        .collect()
}

/// The Hugging Face layout a model is saved in, if any (language-model transformers).
fn hf_family(arch: &Architecture) -> Option<(&crate::model::TransformerConfig, HfFamily)> {
    match arch {
        Architecture::Transformer(t) => hf_layout::family(t).map(|f| (t, f)),
        _ => None,
    }
}

/// Write the weights first and the card last, each atomically: a card always describes
/// weights that are complete on disk. Language-model transformers are written in their Hugging
/// Face layout with a config.json (see [`crate::model::hf_layout`]); the end-of-text id for it
/// comes from the card's `training.data.eos_token_id` when present.
pub fn save(dir: &Path, model: &Model, card: &ModelCard) -> Result<()> {
    write_files(model, card, |name| dir.join(name)).map(|_| ())
}

/// The files of [`save`] written to their staged names (`NAME.next`, see
/// [`crate::io::commit_set`]); returns their names in the order to put them in place, the card
/// last.
pub(crate) fn save_staged(dir: &Path, model: &Model, card: &ModelCard) -> Result<Vec<&'static str>> {
    write_files(model, card, |name| crate::io::staged(dir, name))
}

fn write_files(model: &Model, card: &ModelCard, path: impl Fn(&str) -> std::path::PathBuf) -> Result<Vec<&'static str>> {
    let mut names = Vec::new();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "glassbox".to_string());
    meta.insert("architecture".to_string(), model.arch.kind_name().to_string());
    let mut tensors = params_to_host(&model.params);
    if let Some((t, family)) = hf_family(&model.arch) {
        // transformers refuses safetensors files whose format is not "pt".
        meta.insert("format".to_string(), "pt".to_string());
        tensors = hf_layout::to_hf(t, family, &tensors);
        let eos = card.training.as_ref().and_then(|t| t["data"]["eos_token_id"].as_u64()).unwrap_or(0) as u32;
        write_json(&path(HF_CONFIG_FILE), &hf_layout::config_json(t, family, eos))?;
        names.push(HF_CONFIG_FILE);
    }
    write_f32(&path(WEIGHTS_FILE), &tensors, meta)?;
    write_json(&path(CARD_FILE), card)?;
    names.extend([WEIGHTS_FILE, CARD_FILE]);
    Ok(names)
}

/// Read the named tensors of `specs` from a safetensors file, checking that every expected
/// name is present with the right shape and dtype and that there are no others.
pub fn read_params(file: &SafetensorsFile, specs: &[crate::model::ParamSpec]) -> Result<Vec<Vec<f32>>> {
    let path = &file.path;
    let entries = file.entries()?;
    let found: HashMap<&str, (&safetensors::Dtype, &Vec<usize>)> =
        entries.iter().map(|(n, d, s)| (n.as_str(), (d, s))).collect();
    let missing: Vec<&str> = specs.iter().map(|s| s.name.as_str()).filter(|n| !found.contains_key(n)).collect();
    if !missing.is_empty() {
        return Err(Error::format(path, format!("missing tensor(s) {}", missing.join(", "))));
    }
    let extra: Vec<&str> = entries
        .iter()
        .map(|e| e.0.as_str())
        .filter(|n| !specs.iter().any(|s| s.name == *n))
        .collect();
    if !extra.is_empty() {
        return Err(Error::format(path, format!("unexpected tensor(s) {} for this architecture", extra.join(", "))));
    }
    specs
        .iter()
        .map(|spec| {
            let (dtype, shape) = found[spec.name.as_str()];
            if *dtype != safetensors::Dtype::F32 {
                return Err(Error::format(path, format!("tensor '{}' has dtype {dtype:?}, expected F32", spec.name)));
            }
            if *shape != spec.shape {
                return Err(Error::format(path, format!(
                    "tensor '{}' has shape {shape:?} but the architecture needs {:?}",
                    spec.name, spec.shape
                )));
            }
            Ok(file.tensor_f32(&spec.name)?.data)
        })
        .collect()
}

/// Load a checkpoint folder; the weights are checked against `model.json`'s architecture.
pub fn load(dir: &Path, device: &Device) -> Result<(Model, ModelCard)> {
    if !dir.is_dir() {
        return Err(Error::format(dir, "not a checkpoint folder (expected model.json and model.safetensors)"));
    }
    let card: ModelCard = read_json(&dir.join(CARD_FILE))?;
    card.architecture.validate().map_err(|e| Error::format(dir.join(CARD_FILE), e.to_string()))?;
    let path = dir.join(WEIGHTS_FILE);
    let file = SafetensorsFile::open(&path)?;
    // Every layer has tensors of its own: a layer count the weights cannot hold is refused
    // before it sizes the list of parameters.
    if let Architecture::Transformer(t) = &card.architecture {
        let held = file.entries()?.len();
        if t.n_layers > held {
            return Err(Error::format(
                dir.join(CARD_FILE),
                format!("claims {} layers, but {} holds only {held} tensors", t.n_layers, path.display()),
            ));
        }
    }
    let specs = card.architecture.param_specs();
    let host = match hf_family(&card.architecture) {
        Some((t, family)) => {
            let tensors = file.entries()?.into_iter().map(|(name, _, _)| Ok((name.clone(), file.tensor_f32(&name)?.data))).collect::<Result<HashMap<_, _>>>()?;
            let mut params = hf_layout::from_hf(t, family, &tensors).map_err(|e| Error::format(&path, e.to_string()))?;
            specs
                .iter()
                .map(|s| {
                    let v = params.remove(&s.name).ok_or_else(|| Error::format(&path, format!("no tensor for '{}'", s.name)))?;
                    if v.len() != s.numel() {
                        return Err(Error::format(&path, format!("'{}' has {} values, the architecture needs {:?}", s.name, v.len(), s.shape)));
                    }
                    Ok(v)
                })
                .collect::<Result<Vec<_>>>()?
        }
        None => read_params(&file, &specs)?,
    };
    let params = Params::from_host(specs, host, device).require_grad();
    Ok((Model { arch: card.architecture.clone(), params }, card))
}
