//! Sparse autoencoders as SAELens shares them, and their encode and decode.
//!
//! A directory holds `cfg.json` and `sae_weights.safetensors` with `W_enc [d_in, d_sae]`,
//! `b_enc [d_sae]`, `W_dec [d_sae, d_in]`, `b_dec [d_in]`, and for JumpReLU `threshold [d_sae]`.
//! glassbox writes SAELens's v6 layout (architecture fields at the top level; where the
//! activations come from, `hook_name` and `model_name`, under `metadata`, with a
//! `sae_lens_version` of at least 6.0.0 so that SAELens reads it as v6) and reads v6 and the flat
//! configs of earlier versions (`hook_point`, `activation_fn_str`, `activation_fn_kwargs.k`).
//! BatchTopK SAEs are shared as JumpReLU (their learned threshold for every latent), as SAELens
//! does.

use crate::topk::topk_row;
use crate::{Error, Result};
use glassbox_core::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use glassbox_lm::ops::{matmul_add, Strided};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

pub const CONFIG: &str = "cfg.json";
pub const WEIGHTS: &str = "sae_weights.safetensors";
/// Written as `metadata.sae_lens_version`: the file-format version SAELens keys its reader on.
const FORMAT_VERSION: &str = "6.0.0";

/// How latents are computed from the pre-activations `pre = (x − b_dec) W_enc + b_enc`.
#[derive(Clone, Debug, PartialEq)]
pub enum Architecture {
    /// ReLU (trained with an L1 penalty); SAELens's "standard".
    Standard,
    /// The k largest pre-activations of each row, ReLU'd, the rest 0. With
    /// `rescale_acts_by_decoder_norm`, pre-activations are first multiplied by their decoder
    /// row's norm (and divided by it again before decoding).
    TopK { k: usize, rescale_acts_by_decoder_norm: bool },
    /// relu(pre) where pre > the latent's threshold (strictly), else 0.
    JumpRelu { threshold: Vec<f32> },
}

impl Architecture {
    /// SAELens's `architecture` string.
    pub fn name(&self) -> &'static str {
        match self {
            Architecture::Standard => "standard",
            Architecture::TopK { .. } => "topk",
            Architecture::JumpRelu { .. } => "jumprelu",
        }
    }
}

/// An SAE with row-major weights; see the module documentation for the layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Sae {
    pub architecture: Architecture,
    pub d_in: usize,
    pub d_sae: usize,
    pub w_enc: Vec<f32>,
    pub b_enc: Vec<f32>,
    pub w_dec: Vec<f32>,
    pub b_dec: Vec<f32>,
    /// Subtract b_dec from the input before encoding.
    pub apply_b_dec_to_input: bool,
    /// SAELens's `metadata`: `model_name`, `hook_name`, `context_size`, ... as read or set,
    /// unknown keys kept.
    pub metadata: Map<String, Value>,
}

impl Sae {
    /// The hook the SAE reads (`metadata.hook_name`), if recorded.
    pub fn hook_name(&self) -> Option<&str> {
        self.metadata.get("hook_name").and_then(Value::as_str)
    }

    /// `pre = (x − b_dec·apply_b_dec_to_input) W_enc + b_enc` for `rows` rows of `x`.
    pub fn pre_activations(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (d, m) = (self.d_in, self.d_sae);
        assert_eq!(x.len(), rows * d, "SAE input: {} values for {rows} rows of {d}", x.len());
        let shifted: Vec<f32>;
        let input = if self.apply_b_dec_to_input {
            shifted = x.chunks(d).flat_map(|row| row.iter().zip(&self.b_dec).map(|(v, b)| v - b)).collect();
            &shifted
        } else {
            x
        };
        let mut pre = self.b_enc.repeat(rows);
        matmul_add(&mut pre, m, Strided::rows(input, d), Strided::rows(&self.w_enc, m), rows, m, d, true);
        pre
    }

    /// The latents of `rows` rows of `x`, dense `[rows, d_sae]`.
    pub fn encode(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut acts = self.pre_activations(x, rows);
        let m = self.d_sae;
        match &self.architecture {
            Architecture::Standard => acts.iter_mut().for_each(|v| *v = v.max(0.0)),
            Architecture::JumpRelu { threshold } => acts.chunks_mut(m).for_each(|row| {
                row.iter_mut().zip(threshold).for_each(|(v, &t)| *v = if *v > t { v.max(0.0) } else { 0.0 })
            }),
            Architecture::TopK { k, rescale_acts_by_decoder_norm } => {
                let norms = rescale_acts_by_decoder_norm.then(|| self.decoder_norms());
                for row in acts.chunks_mut(m) {
                    if let Some(n) = &norms {
                        row.iter_mut().zip(n).for_each(|(v, n)| *v *= n);
                    }
                    keep_top_k(row, *k);
                }
            }
        }
        acts
    }

    /// x̂ = latents W_dec + b_dec for dense latents `[rows, d_sae]`.
    pub fn decode(&self, acts: &[f32], rows: usize) -> Vec<f32> {
        let (d, m) = (self.d_in, self.d_sae);
        assert_eq!(acts.len(), rows * m, "SAE latents: {} values for {rows} rows of {m}", acts.len());
        let unscaled: Vec<f32>;
        let acts = match &self.architecture {
            Architecture::TopK { rescale_acts_by_decoder_norm: true, .. } => {
                let norms = self.decoder_norms();
                unscaled = acts.chunks(m).flat_map(|row| row.iter().zip(&norms).map(|(v, n)| v / n)).collect();
                &unscaled
            }
            _ => acts,
        };
        let mut out = self.b_dec.repeat(rows);
        matmul_add(&mut out, d, Strided::rows(acts, m), Strided::rows(&self.w_dec, d), rows, d, m, true);
        out
    }

    /// ‖W_dec[i, :]‖ for every latent.
    pub fn decoder_norms(&self) -> Vec<f32> {
        self.w_dec.chunks(self.d_in).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect()
    }

    /// Write `dir/cfg.json` and `dir/sae_weights.safetensors` (SAELens v6), each atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut metadata = self.metadata.clone();
        metadata.insert("sae_lens_version".into(), json!(FORMAT_VERSION));
        metadata.insert("glassbox_version".into(), json!(env!("CARGO_PKG_VERSION")));
        let mut cfg = json!({
            "d_in": self.d_in, "d_sae": self.d_sae, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": self.apply_b_dec_to_input, "normalize_activations": "none",
            "reshape_activations": "none", "architecture": self.architecture.name(), "metadata": metadata,
        });
        if let Architecture::TopK { k, rescale_acts_by_decoder_norm } = &self.architecture {
            cfg["k"] = json!(k);
            cfg["rescale_acts_by_decoder_norm"] = json!(rescale_acts_by_decoder_norm);
        }
        let t = |name: &str, shape: Vec<usize>, data: &[f32]| HostTensor { name: name.into(), shape, data: data.to_vec() };
        let mut tensors = vec![
            t("W_enc", vec![self.d_in, self.d_sae], &self.w_enc),
            t("b_enc", vec![self.d_sae], &self.b_enc),
            t("W_dec", vec![self.d_sae, self.d_in], &self.w_dec),
            t("b_dec", vec![self.d_in], &self.b_dec),
        ];
        if let Architecture::JumpRelu { threshold } = &self.architecture {
            tensors.push(t("threshold", vec![self.d_sae], threshold));
        }
        // Weights first: a directory with a cfg.json is a finished one.
        write_f32(&dir.join(WEIGHTS), &tensors, HashMap::new())?;
        write_json(&dir.join(CONFIG), &cfg)
    }

    /// Read a SAELens directory, v6 or earlier. Every tensor's name and shape is checked against
    /// cfg.json; F16 and BF16 weights are widened to f32.
    pub fn load(dir: &Path) -> Result<Sae> {
        let cfg_path = dir.join(CONFIG);
        let cfg: Value = read_json(&cfg_path)?;
        let cfg = cfg.as_object().ok_or_else(|| Error::format(&cfg_path, "not a JSON object"))?;
        let bad = |msg: String| Error::format(&cfg_path, msg);
        let size = |key: &str| {
            cfg.get(key)
                .and_then(Value::as_u64)
                .filter(|&v| v > 0)
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("missing or non-positive integer field '{key}'")))
        };
        let (d_in, d_sae) = (size("d_in")?, size("d_sae")?);
        let v6 = is_v6(cfg);
        let mut metadata = if v6 { cfg.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default() } else { pre6_metadata(cfg) };
        metadata.remove("sae_lens_version");
        // "expected_average_only_in" (pre-6.0: true) is the identity at inference: SAELens folds
        // the scale into the weights after training. The other modes rescale each row.
        match cfg.get("normalize_activations") {
            None | Some(Value::Null) | Some(Value::Bool(_)) => {}
            Some(Value::String(s)) if s == "none" || s == "expected_average_only_in" => {}
            Some(other) => {
                return Err(bad(format!(
                    "normalize_activations = {other} is not supported (glassbox reads \"none\" and \"expected_average_only_in\")"
                )));
            }
        }
        let weights = dir.join(WEIGHTS);
        let file = SafetensorsFile::open(&weights)?;
        let names: Vec<String> = file.entries()?.into_iter().map(|(name, _, _)| name).collect();
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            if !names.iter().any(|n| n == name) {
                return Err(Error::format(&weights, format!("no tensor '{name}' (has {})", names.join(", "))));
            }
            let t = file.tensor_f32(name)?;
            if t.shape != shape {
                return Err(Error::format(&weights, format!("tensor '{name}' has shape {:?}; cfg.json's d_in {d_in}, d_sae {d_sae} need {shape:?}", t.shape)));
            }
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::format(&weights, format!("tensor '{name}' has a non-finite value at index {i}")));
            }
            Ok(t.data)
        };
        // sae_lens 2.x files carry a `scaling_factor`: all ones is the identity (SAELens drops
        // it); anything else is a fine-tuning scale that glassbox does not apply.
        if names.iter().any(|n| n == "scaling_factor") && file.tensor_f32("scaling_factor")?.data.iter().any(|&v| v != 1.0) {
            return Err(Error::format(&weights, "tensor 'scaling_factor' is not all ones (a fine-tuning scale, which glassbox does not apply)"));
        }
        let architecture = match architecture_name(cfg, v6).as_str() {
            "standard" => Architecture::Standard,
            "jumprelu" => Architecture::JumpRelu { threshold: get("threshold", &[d_sae])? },
            "topk" => {
                let k = top_k(cfg).ok_or_else(|| bad("a TopK SAE without k ('k' or 'activation_fn_kwargs.k')".into()))?;
                if k == 0 || k > d_sae {
                    return Err(bad(format!("k = {k} must be in 1..={d_sae} (d_sae)")));
                }
                let rescale = cfg.get("rescale_acts_by_decoder_norm").and_then(Value::as_bool).unwrap_or(false);
                Architecture::TopK { k, rescale_acts_by_decoder_norm: rescale }
            }
            other => {
                return Err(bad(format!(
                    "unknown SAE architecture '{other}' (glassbox reads standard, topk and jumprelu; BatchTopK is shared as jumprelu)"
                )))
            }
        };
        Ok(Sae {
            architecture,
            d_in,
            d_sae,
            w_enc: get("W_enc", &[d_in, d_sae])?,
            b_enc: get("b_enc", &[d_sae])?,
            w_dec: get("W_dec", &[d_sae, d_in])?,
            b_dec: get("b_dec", &[d_in])?,
            apply_b_dec_to_input: cfg.get("apply_b_dec_to_input").and_then(Value::as_bool).unwrap_or(true),
            metadata,
        })
    }
}

/// SAELens's rule: a file is v6 when its `sae_lens_version` (top level or under `metadata`) is
/// 6 or later.
fn is_v6(cfg: &Map<String, Value>) -> bool {
    let version = cfg.get("sae_lens_version").or_else(|| cfg.pointer_in("metadata", "sae_lens_version"));
    version
        .and_then(Value::as_str)
        .and_then(|v| v.split(['.', '-']).next())
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 6)
}

/// The architecture as SAELens resolves it: v6 names it; earlier files may not (then
/// "standard"), and a TopK activation with a k makes any of them "topk".
fn architecture_name(cfg: &Map<String, Value>, v6: bool) -> String {
    let named = cfg.get("architecture").and_then(Value::as_str).unwrap_or(if v6 { "" } else { "standard" });
    if v6 {
        return named.to_string();
    }
    let activation = cfg.get("activation_fn_str").or_else(|| cfg.get("activation_fn")).and_then(Value::as_str);
    if activation == Some("topk") && top_k(cfg).is_some() {
        "topk".into()
    } else {
        named.to_string()
    }
}

fn top_k(cfg: &Map<String, Value>) -> Option<usize> {
    cfg.get("k")
        .or_else(|| cfg.pointer_in("activation_fn_kwargs", "k"))
        .and_then(Value::as_u64)
        .map(|k| k as usize)
}

/// The metadata of a flat pre-6.0 config, under v6's names.
fn pre6_metadata(cfg: &Map<String, Value>) -> Map<String, Value> {
    const KEYS: [&str; 11] = [
        "model_name",
        "hook_name",
        "model_class_name",
        "hook_head_index",
        "model_from_pretrained_kwargs",
        "prepend_bos",
        "exclude_special_tokens",
        "neuronpedia_id",
        "context_size",
        "seqpos_slice",
        "dataset_path",
    ];
    let mut meta: Map<String, Value> = KEYS.iter().filter_map(|&k| cfg.get(k).map(|v| (k.to_string(), v.clone()))).collect();
    for (old, new) in [("hook_point", "hook_name"), ("hook_point_head_index", "hook_head_index")] {
        if let Some(v) = cfg.get(old) {
            meta.entry(new).or_insert_with(|| v.clone());
        }
    }
    meta.retain(|_, v| !v.is_null());
    meta
}

trait PointerIn {
    fn pointer_in(&self, object: &str, key: &str) -> Option<&Value>;
}

impl PointerIn for Map<String, Value> {
    fn pointer_in(&self, object: &str, key: &str) -> Option<&Value> {
        self.get(object).and_then(Value::as_object).and_then(|o| o.get(key))
    }
}

/// Zero all but the k largest entries of `row`, then ReLU the kept ones (SAELens's TopK): the
/// same as keeping the k largest positive entries. Ties go to the lower index.
fn keep_top_k(row: &mut [f32], k: usize) {
    let kept = topk_row(row.iter().copied(), k, &[]);
    row.fill(0.0);
    for (i, v) in kept {
        row[i as usize] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_largest_and_relus_them() {
        let mut row = [0.5f32, -1.0, 3.0, 2.0, -0.5];
        keep_top_k(&mut row, 2);
        assert_eq!(row, [0.0, 0.0, 3.0, 2.0, 0.0]);
        let mut row = [-3.0f32, -1.0, -2.0];
        keep_top_k(&mut row, 2);
        assert_eq!(row, [0.0, 0.0, 0.0]);
    }

    #[test]
    fn versions_decide_the_layout() {
        let v = |j: Value| is_v6(j.as_object().unwrap());
        assert!(v(json!({"metadata": {"sae_lens_version": "6.54.12"}})));
        assert!(v(json!({"sae_lens_version": "6.0.0-rc.1"})));
        assert!(!v(json!({"sae_lens_version": "5.11.0"})));
        assert!(!v(json!({"hook_point": "blocks.0.hook_resid_pre"})));
    }
}
