//! Open a language model by what a user names: a Hugging Face model folder, a model id in the
//! local Hugging Face cache, or a GGUF file. Nothing is downloaded.

use crate::config::{Activation, Family, ModelConfig, NormKind};
use crate::error::{Error, Result};
use crate::gguf::{unpermute_qk, GgufFile};
use crate::model::Transformer;
use crate::tokenizer::{GgufTokenizerMeta, Tokenizer};
use crate::weights::{self, LlamaNames, LlamaPart, SafetensorsSource, TensorSource};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a model was read from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    HfFolder(PathBuf),
    Gguf(PathBuf),
}

impl ModelSource {
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::HfFolder(p) | ModelSource::Gguf(p) => p,
        }
    }
}

/// A model ready to run, with its tokenizer.
pub struct LoadedModel {
    pub model: Transformer,
    pub tokenizer: Tokenizer,
    pub source: ModelSource,
    /// Stored tensor count per storage type (F32, BF16, Q4_1, ...).
    pub dtypes: BTreeMap<String, usize>,
}

impl LoadedModel {
    /// Fold the norms' weights into the maps that read them (TransformerLens's `fold_ln`).
    pub fn fold_layer_norms(&mut self) -> Result<()> {
        let config = self.model.config.clone();
        weights::fold_layer_norms(&config, &mut self.model.weights)
    }
}

/// Open `spec`: a folder, a `.gguf` file, or a Hugging Face id (`ORG/NAME`) in the local cache.
pub fn load(spec: &str) -> Result<LoadedModel> {
    let path = resolve(spec)?;
    if path.is_dir() {
        load_hf_folder(&path)
    } else {
        load_gguf(&path)
    }
}

/// The folder or file `spec` names.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let path = PathBuf::from(spec);
    if path.exists() {
        // config.json named directly means its folder.
        if path.file_name().is_some_and(|n| n == "config.json") {
            return Ok(path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf));
        }
        return Ok(path);
    }
    let parts: Vec<&str> = spec.split('/').collect();
    if parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && *p != "." && *p != "..") {
        return hf_cache_snapshot(&hub_dir(), parts[0], parts[1]);
    }
    Err(Error::invalid(format!(
        "{spec}: no such file or folder, and not a Hugging Face model id of the form ORG/NAME"
    )))
}

/// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
        let user = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        user.join(".cache").join("huggingface")
    });
    home.join("hub")
}

/// The snapshot folder of `org/name` in a Hugging Face hub cache: the revision `refs/main`
/// names, else the only snapshot there is.
pub fn hf_cache_snapshot(hub: &Path, org: &str, name: &str) -> Result<PathBuf> {
    let repo = hub.join(format!("models--{org}--{name}"));
    let not_found = || {
        Error::invalid(format!(
            "model {org}/{name} is not in the local Hugging Face cache ({} does not exist); glassbox \
             never downloads: fetch it once with `huggingface-cli download {org}/{name}` or pass a folder",
            repo.display()
        ))
    };
    if !repo.is_dir() {
        return Err(not_found());
    }
    let snapshots = repo.join("snapshots");
    if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let dir = snapshots.join(rev.trim());
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    let mut revs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .map_err(|_| not_found())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    match revs.len() {
        1 => Ok(revs.remove(0)),
        0 => Err(Error::format(&snapshots, "the cache holds no snapshot of this model")),
        n => Err(Error::format(&snapshots, format!("{n} snapshots and no refs/main to choose one; pass the folder"))),
    }
}

pub fn load_hf_folder(dir: &Path) -> Result<LoadedModel> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::format(dir, "no config.json in this model folder"));
    }
    let config = ModelConfig::from_hf_file(&config_path)?;
    let tokenizer_path = dir.join("tokenizer.json");
    if !tokenizer_path.is_file() {
        return Err(Error::format(dir, "no tokenizer.json in this model folder"));
    }
    let tokenizer = Tokenizer::from_file(&tokenizer_path)?;
    let mut src = SafetensorsSource::open(&weights::safetensors_files(dir)?)?;
    let dtypes = src.dtype_counts();
    let weights = weights::load_hf(&config, &mut src)?;
    Ok(LoadedModel { model: Transformer::new(config, weights), tokenizer, source: ModelSource::HfFolder(dir.to_path_buf()), dtypes })
}

pub fn load_gguf(path: &Path) -> Result<LoadedModel> {
    let file = GgufFile::open(path)?;
    let config = gguf_config(&file)?;
    let tokenizer = Tokenizer::from_gguf(&gguf_tokenizer_meta(&file)?).map_err(|e| Error::format(path, e.to_string()))?;
    let mut dtypes = BTreeMap::new();
    for t in &file.tensors {
        *dtypes.entry(t.ggml_type.name().to_string()).or_insert(0) += 1;
    }
    let mut src = GgufSource { file: &file, heads: config.n_heads, kv_heads: config.n_kv_heads };
    let weights = weights::load_llama(&config, &mut src, &GgufLlamaNames)?;
    Ok(LoadedModel { model: Transformer::new(config, weights), tokenizer, source: ModelSource::Gguf(path.to_path_buf()), dtypes })
}

fn meta_u64(file: &GgufFile, key: &str) -> Result<u64> {
    file.meta(key)
        .and_then(|v| v.as_u64())
        .ok_or_else(|| Error::format(&file.path, format!("metadata key {key} is missing or not an integer")))
}

/// The architecture of a GGUF file from its `{arch}.*` metadata (llama.cpp's key names).
pub fn gguf_config(file: &GgufFile) -> Result<ModelConfig> {
    let arch = file
        .meta("general.architecture")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::format(&file.path, "metadata key general.architecture is missing"))?
        .to_string();
    if arch != "llama" {
        return Err(Error::format(
            &file.path,
            format!("GGUF architecture '{arch}' is not supported; glassbox reads llama-architecture GGUF files"),
        ));
    }
    let key = |k: &str| format!("{arch}.{k}");
    let d_model = meta_u64(file, &key("embedding_length"))? as usize;
    let n_heads = meta_u64(file, &key("attention.head_count"))? as usize;
    let n_kv_heads = file.meta(&key("attention.head_count_kv")).and_then(|v| v.as_u64()).map_or(n_heads, |v| v as usize);
    let embd = file
        .tensor_info("token_embd.weight")
        .ok_or_else(|| Error::format(&file.path, "tensor token_embd.weight is missing"))?;
    let vocab_size = embd.shape().first().copied().unwrap_or(0);
    let config = ModelConfig {
        family: Family::Llama,
        architecture: arch.clone(),
        n_layers: meta_u64(file, &key("block_count"))? as usize,
        d_model,
        n_heads,
        n_kv_heads,
        d_head: file.meta(&key("rope.dimension_count")).and_then(|v| v.as_u64()).map_or(d_model / n_heads.max(1), |v| v as usize),
        d_mlp: meta_u64(file, &key("feed_forward_length"))? as usize,
        vocab_size,
        max_positions: meta_u64(file, &key("context_length"))? as usize,
        norm: NormKind::RmsNorm,
        norm_eps: file.meta(&key("attention.layer_norm_rms_epsilon")).and_then(|v| v.as_f64()).unwrap_or(1e-5),
        activation: Activation::Silu,
        rope_theta: Some(file.meta(&key("rope.freq_base")).and_then(|v| v.as_f64()).unwrap_or(10_000.0)),
        tied_embeddings: file.tensor_info("output.weight").is_none(),
        type_vocab_size: 0,
        qkv_bias: file.tensor_info("blk.0.attn_q.bias").is_some(),
        gated_mlp: true,
    };
    config.validate().map_err(|msg| Error::format(&file.path, msg))?;
    Ok(config)
}

fn gguf_tokenizer_meta(file: &GgufFile) -> Result<GgufTokenizerMeta> {
    let strings = |key: &str| -> Result<Vec<String>> {
        match file.meta(key) {
            None => Ok(Vec::new()),
            Some(v) => v
                .as_strings()
                .map(|s| s.into_iter().map(str::to_string).collect())
                .ok_or_else(|| Error::format(&file.path, format!("metadata key {key} is not an array of strings"))),
        }
    };
    let id = |key: &str| file.meta(key).and_then(|v| v.as_u64()).map(|v| v as u32);
    let flag = |key: &str| match file.meta(key) {
        Some(crate::gguf::GgufValue::Bool(b)) => Some(*b),
        _ => None,
    };
    let model = file
        .meta("tokenizer.ggml.model")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::format(&file.path, "the file carries no tokenizer (tokenizer.ggml.model is missing)"))?
        .to_string();
    let token_types = match file.meta("tokenizer.ggml.token_type").and_then(|v| v.as_array()) {
        Some(a) => a.iter().map(|v| v.as_f64().map_or(0, |x| x as i32)).collect(),
        None => Vec::new(),
    };
    Ok(GgufTokenizerMeta {
        model,
        pre: file.meta("tokenizer.ggml.pre").and_then(|v| v.as_str()).map(str::to_string),
        tokens: strings("tokenizer.ggml.tokens")?,
        merges: strings("tokenizer.ggml.merges")?,
        token_types,
        bos: id("tokenizer.ggml.bos_token_id"),
        eos: id("tokenizer.ggml.eos_token_id"),
        unk: id("tokenizer.ggml.unknown_token_id"),
        add_bos: flag("tokenizer.ggml.add_bos_token"),
        add_eos: flag("tokenizer.ggml.add_eos_token"),
    })
}

/// llama.cpp's tensor names.
struct GgufLlamaNames;

impl LlamaNames for GgufLlamaNames {
    fn embed(&self) -> String {
        "token_embd".into()
    }
    fn block(&self, i: usize, part: LlamaPart) -> String {
        let tail = match part {
            LlamaPart::AttnNorm => "attn_norm",
            LlamaPart::Q => "attn_q",
            LlamaPart::K => "attn_k",
            LlamaPart::V => "attn_v",
            LlamaPart::O => "attn_output",
            LlamaPart::MlpNorm => "ffn_norm",
            LlamaPart::Gate => "ffn_gate",
            LlamaPart::Up => "ffn_up",
            LlamaPart::Down => "ffn_down",
        };
        format!("blk.{i}.{tail}")
    }
    fn final_norm(&self) -> String {
        "output_norm".into()
    }
    fn unembed(&self) -> String {
        "output".into()
    }
}

/// Dequantised GGUF tensors, with llama.cpp's Q/K row permutation undone.
struct GgufSource<'a> {
    file: &'a GgufFile,
    heads: usize,
    kv_heads: usize,
}

impl TensorSource for GgufSource<'_> {
    fn file_of(&self, _name: &str) -> PathBuf {
        self.file.path.clone()
    }
    fn contains(&self, name: &str) -> bool {
        self.file.tensor_info(name).is_some()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.file.tensor_info(name).map(|t| t.shape())
    }
    fn read(&mut self, name: &str) -> Result<Vec<f32>> {
        let data = self.file.dequantize(name)?;
        let heads = if name.ends_with("attn_q.weight") || name.ends_with("attn_q.bias") {
            self.heads
        } else if name.ends_with("attn_k.weight") || name.ends_with("attn_k.bias") {
            self.kv_heads
        } else {
            return Ok(data);
        };
        let shape = self.shape(name).unwrap_or_default();
        let rows = shape[0];
        let cols = shape.get(1).copied().unwrap_or(1);
        Ok(unpermute_qk(&data, rows, cols, heads))
    }
}

/// A GGUF file in `glassbox inspect`'s terms: metadata as text (long arrays shortened) and every
/// tensor's stored type, shape and value statistics after dequantisation.
pub fn summarize_gguf(path: &Path) -> Result<glassbox_core::inspect::FileSummary> {
    let file = GgufFile::open(path)?;
    let metadata = file.metadata.iter().map(|(k, v)| (k.clone(), describe_value(v))).collect();
    let tensors = file
        .tensors
        .iter()
        .map(|t| {
            let values = file.dequantize(&t.name).ok();
            glassbox_core::inspect::summarize_values(&t.name, &t.ggml_type.name(), &t.shape(), values.as_deref())
        })
        .collect();
    Ok(glassbox_core::inspect::FileSummary { path: path.display().to_string(), metadata, tensors })
}

fn describe_value(v: &crate::gguf::GgufValue) -> String {
    use crate::gguf::GgufValue as V;
    match v {
        V::String(s) if s.chars().count() > 120 => format!("{}... ({} characters)", s.chars().take(120).collect::<String>(), s.chars().count()),
        V::String(s) => s.clone(),
        V::Array(items) => {
            let shown: Vec<String> = items.iter().take(8).map(describe_value).collect();
            let more = if items.len() > 8 { format!(", ... ({} items)", items.len()) } else { String::new() };
            format!("[{}{more}]", shown.join(", "))
        }
        V::Bool(b) => b.to_string(),
        other => other.as_f64().map_or_else(|| format!("{other:?}"), |x| x.to_string()),
    }
}

/// Does the file start with the GGUF magic?
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"GGUF"
}
