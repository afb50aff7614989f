//! USAE files (one folder per run, after SAELens): `cfg.json` (m, k, the models with their
//! width and scalar standardisation, the training settings) and `usae.safetensors` with
//! `{model}.W_enc`, `{model}.b_enc`, `{model}.bn.{gamma,beta,running_mean,running_var}` and
//! `{model}.D_raw`. Also reading one site of an activation file (`glassbox acts`, or a PyTorch
//! export).

use crate::usae::{Usae, UsaeConfig, B, BETA, GAMMA, V, W};
use crate::{Error, Result};
use faer::{Mat, MatRef};
use glassbox_core::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const USAE_WEIGHTS: &str = "usae.safetensors";

#[derive(Serialize, Deserialize)]
struct ModelEntry {
    name: String,
    d: usize,
    mean: f32,
    std: f32,
}

#[derive(Serialize, Deserialize)]
struct StoredConfig {
    kind: String,
    config: UsaeConfig,
    models: Vec<ModelEntry>,
    steps: usize,
}

pub fn save_usae(usae: &Usae, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let models = usae.models.iter().map(|s| ModelEntry { name: s.name.clone(), d: s.d, mean: s.mean, std: s.std }).collect();
    write_json(&dir.join("cfg.json"), &StoredConfig { kind: "usae".into(), config: usae.config.clone(), models, steps: usae.steps })?;
    let m = usae.config.m;
    let mut tensors = Vec::new();
    for s in &usae.models {
        let t = |suffix: &str, shape: Vec<usize>, data: &[f32]| HostTensor { name: format!("{}.{suffix}", s.name), shape, data: data.to_vec() };
        tensors.push(t("W_enc", vec![m, s.d], &s.params[W]));
        tensors.push(t("b_enc", vec![m], &s.params[B]));
        tensors.push(t("bn.gamma", vec![m], &s.params[GAMMA]));
        tensors.push(t("bn.beta", vec![m], &s.params[BETA]));
        tensors.push(t("bn.running_mean", vec![m], &s.running_mean));
        tensors.push(t("bn.running_var", vec![m], &s.running_var));
        tensors.push(t("D_raw", vec![m, s.d], &s.params[V]));
    }
    write_f32(&dir.join(USAE_WEIGHTS), &tensors, HashMap::from([("producer".to_string(), "glassbox usae".to_string())]))
}

/// A USAE written by [`save_usae`]; every tensor's name and shape is checked.
pub fn load_usae(dir: &Path) -> Result<Usae> {
    let cfg_path = dir.join("cfg.json");
    let stored: StoredConfig = read_json(&cfg_path)?;
    if stored.kind != "usae" {
        return Err(Error::format(&cfg_path, format!("kind '{}' is not a USAE", stored.kind)));
    }
    let path = dir.join(USAE_WEIGHTS);
    let file = SafetensorsFile::open(&path)?;
    // Every tensor's shape is checked before the USAE is built: building allocates m × d values
    // per model, which must be sizes the file really holds, not ones cfg.json only claims.
    let m = stored.config.m;
    let found: HashMap<String, Vec<usize>> = file.entries()?.into_iter().map(|(name, _, shape)| (name, shape)).collect();
    for e in &stored.models {
        for (suffix, shape) in [("W_enc", vec![m, e.d]), ("b_enc", vec![m]), ("bn.gamma", vec![m]), ("bn.beta", vec![m]), ("bn.running_mean", vec![m]), ("bn.running_var", vec![m]), ("D_raw", vec![m, e.d])] {
            let name = format!("{}.{suffix}", e.name);
            match found.get(&name) {
                None => return Err(Error::format(&path, format!("no tensor '{name}' (cfg.json lists model '{}')", e.name))),
                Some(s) if *s != shape => return Err(Error::format(&path, format!("tensor '{name}' has shape {s:?}, expected {shape:?}"))),
                Some(_) => {}
            }
        }
    }
    let shapes: Vec<(&str, usize)> = stored.models.iter().map(|e| (e.name.as_str(), e.d)).collect();
    let mut usae = Usae::new(stored.config, &shapes, 0)?;
    for (s, e) in usae.models.iter_mut().zip(&stored.models) {
        let get = |suffix: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = file.tensor_f32(&format!("{}.{suffix}", e.name))?;
            if t.shape != shape {
                return Err(Error::format(&path, format!("tensor '{}.{suffix}' has shape {:?}, expected {shape:?}", e.name, t.shape)));
            }
            Ok(t.data)
        };
        s.params = vec![get("W_enc", &[m, e.d])?, get("b_enc", &[m])?, get("bn.gamma", &[m])?, get("bn.beta", &[m])?, get("D_raw", &[m, e.d])?];
        s.running_mean = get("bn.running_mean", &[m])?;
        s.running_var = get("bn.running_var", &[m])?;
        (s.mean, s.std) = (e.mean, e.std);
    }
    usae.steps = stored.steps;
    Ok(usae)
}

/// One site of an activation file as [samples, features] (trailing dimensions flattened).
pub fn read_site(path: &Path, site: &str) -> Result<Mat<f32>> {
    let file = SafetensorsFile::open(path)?;
    let t = file.tensor_f32(site).map_err(|_| {
        let names = file.entries().map(|e| e.into_iter().map(|(n, _, _)| n).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        Error::format(path, format!("no activation site '{site}'; the file has: {names}"))
    })?;
    if t.shape.is_empty() || t.shape[0] == 0 {
        return Err(Error::format(path, format!("site '{site}' has shape {:?}: need [samples, ...]", t.shape)));
    }
    if t.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::format(path, format!("site '{site}' contains NaN or Inf")));
    }
    let n = t.shape[0];
    Ok(MatRef::from_row_major_slice(&t.data, n, t.data.len() / n).to_owned())
}

/// One site's activations of a model on a data set, one row per sample (batches of 1000).
pub fn capture_site(model: &glassbox_core::model::Model, data: &glassbox_core::data::Dataset, site: &str) -> Result<Mat<f32>> {
    let t = glassbox_core::acts::capture(model, data, &[site.to_string()], 1000, None)?.remove(0);
    let width = t.data.len() / data.len().max(1);
    Ok(Mat::from_fn(data.len(), width, |r, c| t.data[r * width + c]))
}
