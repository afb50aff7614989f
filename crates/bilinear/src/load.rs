//! Loading a bilinear layer from a glassbox checkpoint or from any safetensors file plus a
//! small JSON that names its tensors (for layers trained in PyTorch).

use crate::layer::{BilinearLayer, BilinearModel};
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::checkpoint::{self, ModelCard};
use glassbox_core::io::{read_json, HostTensor, SafetensorsFile};
use glassbox_core::model::{Architecture, Model};
use glassbox_core::tensor::infer_device;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Which tensor of a safetensors file is which (all in PyTorch `[out, in]` layout). Give
/// either `w` and `v`, or `wv`: the reference code's single `Linear(d_in, 2 d_h)` whose rows
/// [0, d_h) are W and [d_h, 2 d_h) are V. `wv_bias` likewise stacks b1 and b2.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightMap {
    pub w: Option<String>,
    pub v: Option<String>,
    pub wv: Option<String>,
    /// The down-projection / head P (`[d_out, d_h]`).
    pub p: String,
    /// The embedding E (`[d_in, d_raw]`), if the model has one.
    pub embed: Option<String>,
    pub b1: Option<String>,
    pub b2: Option<String>,
    pub wv_bias: Option<String>,
}

/// Load the bilinear model of a glassbox checkpoint folder.
pub fn from_checkpoint(dir: &Path) -> Result<(BilinearModel, ModelCard)> {
    let (model, card) = checkpoint::load(dir, &infer_device())?;
    let bilinear = from_model(&model).map_err(|e| Error::format(dir.join(checkpoint::CARD_FILE), e.to_string()))?;
    Ok((bilinear, card))
}

/// The f64 analysis view of a trained glassbox bilinear model.
pub fn from_model(model: &Model) -> Result<BilinearModel> {
    if !matches!(model.arch, Architecture::Bilinear { .. }) {
        return Err(Error::invalid(format!("a {} model is not bilinear", model.arch.kind_name())));
    }
    let host = model.params.to_host();
    let tensors: HashMap<String, HostTensor> = model
        .params
        .specs
        .iter()
        .zip(host)
        .map(|(s, data)| (s.name.clone(), HostTensor { name: s.name.clone(), shape: s.shape.clone(), data }))
        .collect();
    let map = WeightMap {
        w: Some("layers.0.w.weight".into()),
        v: Some("layers.0.v.weight".into()),
        p: "head.weight".into(),
        embed: tensors.contains_key("embed.weight").then(|| "embed.weight".into()),
        b1: tensors.contains_key("layers.0.w.bias").then(|| "layers.0.w.bias".into()),
        b2: tensors.contains_key("layers.0.v.bias").then(|| "layers.0.v.bias".into()),
        ..Default::default()
    };
    let path = Path::new(checkpoint::WEIGHTS_FILE);
    assemble(path, &map, |name| tensors.get(name).cloned().ok_or_else(|| Error::format(path, format!("no tensor '{name}'"))))
}

/// The MLP of block `block` of a bilinear transformer (glassbox's `MlpKind::Bilinear`):
/// out = W_out ((x W_gate) ⊙ (x W_in)), as W = W_gateᵀ, V = W_inᵀ, P = W_outᵀ, no biases.
pub fn transformer_mlp(model: &Model, block: usize) -> Result<BilinearLayer> {
    let Architecture::Transformer(t) = &model.arch else {
        return Err(Error::invalid(format!("a {} model is not a transformer", model.arch.kind_name())));
    };
    if t.mlp != glassbox_core::model::MlpKind::Bilinear || block >= t.n_layers {
        return Err(Error::invalid(format!("block {block} of this transformer ({} blocks, {:?} MLPs) has no bilinear MLP", t.n_layers, t.mlp)));
    }
    let host = model.params.to_host();
    let get = |name: &str| -> &[f32] { &host[model.params.index(&format!("blocks.{block}.mlp.{name}")).expect("bilinear MLP weights")] };
    let (d, h) = (t.d_model, t.d_mlp);
    // [d, h] row-major to [h, d].
    let transposed = |m: &[f32]| Mat::from_fn(h, d, |r, c| m[c * h + r] as f64);
    // W_out [h, d] row-major to P [d, h].
    let w_out = get("W_out");
    let p = Mat::from_fn(d, h, |r, c| w_out[c * d + r] as f64);
    Ok(BilinearLayer { w: transposed(get("W_gate")), v: transposed(get("W_in")), p, b1: None, b2: None })
}

/// Load from `weights` (safetensors) with the tensor names in `map_path` (JSON [`WeightMap`]).
pub fn from_safetensors(weights: &Path, map_path: &Path) -> Result<BilinearModel> {
    let map: WeightMap = read_json(map_path)?;
    let file = SafetensorsFile::open(weights)?;
    assemble(weights, &map, |name| file.tensor_f32(name))
}

fn assemble(path: &Path, map: &WeightMap, get: impl Fn(&str) -> Result<HostTensor>) -> Result<BilinearModel> {
    let bad = |msg: String| Error::format(path, msg);
    let matrix = |name: &str| -> Result<Mat<f64>> {
        let t = get(name)?;
        if t.shape.len() != 2 {
            return Err(bad(format!("tensor '{name}' has shape {:?}; a matrix is needed", t.shape)));
        }
        let (r, c) = (t.shape[0], t.shape[1]);
        Ok(Mat::from_fn(r, c, |i, j| t.data[i * c + j] as f64))
    };
    let vector = |name: &str| -> Result<Vec<f64>> {
        let t = get(name)?;
        if t.shape.len() != 1 {
            return Err(bad(format!("tensor '{name}' has shape {:?}; a vector is needed", t.shape)));
        }
        Ok(t.data.iter().map(|&x| x as f64).collect())
    };
    let (w, v) = match (&map.w, &map.v, &map.wv) {
        (Some(w), Some(v), None) => (matrix(w)?, matrix(v)?),
        (None, None, Some(wv)) => {
            let m = matrix(wv)?;
            if m.nrows() % 2 != 0 {
                return Err(bad(format!("'{wv}' has {} rows; the stacked [W; V] needs an even number", m.nrows())));
            }
            let h = m.nrows() / 2;
            (m.subrows(0, h).to_owned(), m.subrows(h, h).to_owned())
        }
        _ => return Err(bad("the weight map needs either both 'w' and 'v' or 'wv'".into())),
    };
    let (b1, b2) = match (&map.b1, &map.b2, &map.wv_bias) {
        (b1, b2, None) => (b1.as_deref().map(vector).transpose()?, b2.as_deref().map(vector).transpose()?),
        (None, None, Some(name)) => {
            let b = vector(name)?;
            let h = b.len() / 2;
            (Some(b[..h].to_vec()), Some(b[h..].to_vec()))
        }
        _ => return Err(bad("give either 'b1'/'b2' or 'wv_bias', not both".into())),
    };
    let p = matrix(&map.p)?;
    let embed = map.embed.as_deref().map(matrix).transpose()?;
    let (h, d) = (w.nrows(), w.ncols());
    if v.nrows() != h || v.ncols() != d {
        return Err(bad(format!("W is {h}x{d} but V is {}x{}", v.nrows(), v.ncols())));
    }
    if p.ncols() != h {
        return Err(bad(format!("P has {} columns but the layer has {h} hidden units", p.ncols())));
    }
    for (name, b) in [("b1", &b1), ("b2", &b2)] {
        if let Some(b) = b {
            if b.len() != h {
                return Err(bad(format!("{name} has {} values but the layer has {h} hidden units", b.len())));
            }
        }
    }
    if let Some(e) = &embed {
        if e.nrows() != d {
            return Err(bad(format!("the embedding has {} rows but the layer reads {d} inputs", e.nrows())));
        }
    }
    let layer = BilinearLayer { w, v, p, b1, b2 };
    let model = BilinearModel { embed, layer };
    if [&model.layer.w, &model.layer.v, &model.layer.p].iter().any(|m| (0..m.nrows()).any(|i| (0..m.ncols()).any(|j| !m[(i, j)].is_finite()))) {
        return Err(bad("the weights contain NaN or Inf".into()));
    }
    Ok(model)
}
