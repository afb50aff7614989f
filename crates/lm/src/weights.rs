//! A transformer's parameters in one layout for every family, and the Hugging Face names they
//! are read from. Q, K and V are kept as one stacked map, and a gated MLP's gate and up
//! projections likewise, so that each is one GEMM.

use crate::config::{Family, ModelConfig};
use crate::error::{Error, Result};
use crate::ops::{Linear, Norm};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Block {
    pub ln1: Norm,
    pub ln2: Norm,
    /// Rows: the query heads, then the key heads, then the value heads.
    pub qkv: Linear,
    pub attn_out: Linear,
    /// Plain MLPs: W_in. Gated MLPs: the gate's rows, then the up projection's.
    pub mlp_in: Linear,
    pub mlp_out: Linear,
}

#[derive(Clone, Debug)]
pub struct Weights {
    /// `[vocab, d_model]`.
    pub token_embed: Vec<f32>,
    /// `[positions, d_model]` for learned positions.
    pub pos_embed: Option<Vec<f32>>,
    /// BERT's `[types, d_model]`.
    pub type_embed: Option<Vec<f32>>,
    /// BERT's LayerNorm after the embeddings.
    pub embed_norm: Option<Norm>,
    pub blocks: Vec<Block>,
    pub final_norm: Option<Norm>,
    /// `None` when the unembedding is the token embedding.
    pub unembed: Option<Linear>,
}

impl Weights {
    pub fn n_params(&self) -> usize {
        let lin = |l: &Linear| l.weight.len() + l.bias.as_ref().map_or(0, Vec::len);
        let norm = |n: &Norm| n.weight.len() + n.bias.as_ref().map_or(0, Vec::len);
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| norm(&b.ln1) + norm(&b.ln2) + lin(&b.qkv) + lin(&b.attn_out) + lin(&b.mlp_in) + lin(&b.mlp_out))
            .sum();
        self.token_embed.len()
            + self.pos_embed.as_ref().map_or(0, Vec::len)
            + self.type_embed.as_ref().map_or(0, Vec::len)
            + self.embed_norm.as_ref().map_or(0, norm)
            + blocks
            + self.final_norm.as_ref().map_or(0, norm)
            + self.unembed.as_ref().map_or(0, lin)
    }
}

/// Where named tensors come from (a safetensors folder, a GGUF file), already in f32 and in
/// PyTorch's row-major shape order.
pub trait TensorSource {
    /// The file a tensor lives in, for error messages.
    fn file_of(&self, name: &str) -> PathBuf;
    fn contains(&self, name: &str) -> bool;
    /// `None` when absent.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    fn read(&mut self, name: &str) -> Result<Vec<f32>>;
}

/// Read one tensor and check its shape against the config's.
pub fn take(src: &mut dyn TensorSource, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let Some(found) = src.shape(name) else {
        return Err(Error::format(src.file_of(name), format!("weight {name} is missing (the config needs it, shape {shape:?})")));
    };
    if found != shape {
        return Err(Error::format(
            src.file_of(name),
            format!("weight {name} has shape {found:?}, but the config implies {shape:?}"),
        ));
    }
    let data = src.read(name)?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(src.file_of(name), format!("weight {name} holds a non-finite value at index {i}")));
    }
    Ok(data)
}

fn linear(src: &mut dyn TensorSource, name: &str, d_out: usize, d_in: usize, bias: bool) -> Result<Linear> {
    let weight = take(src, &format!("{name}.weight"), &[d_out, d_in])?;
    let bias = if bias { Some(take(src, &format!("{name}.bias"), &[d_out])?) } else { None };
    Ok(Linear { weight, bias, d_in, d_out })
}

/// GPT-2's Conv1D stores `[in, out]`; transpose into a Linear.
fn conv1d(src: &mut dyn TensorSource, name: &str, d_in: usize, d_out: usize) -> Result<Linear> {
    let w = take(src, &format!("{name}.weight"), &[d_in, d_out])?;
    let mut weight = vec![0f32; w.len()];
    for i in 0..d_in {
        for o in 0..d_out {
            weight[o * d_in + i] = w[i * d_out + o];
        }
    }
    let bias = Some(take(src, &format!("{name}.bias"), &[d_out])?);
    Ok(Linear { weight, bias, d_in, d_out })
}

fn norm(src: &mut dyn TensorSource, name: &str, d: usize, bias: bool) -> Result<Norm> {
    let weight = take(src, &format!("{name}.weight"), &[d])?;
    let bias = if bias { Some(take(src, &format!("{name}.bias"), &[d])?) } else { None };
    Ok(Norm { weight, bias })
}

/// Stack linear maps with the same input along their outputs.
pub fn stack(parts: Vec<Linear>) -> Linear {
    let d_in = parts[0].d_in;
    let d_out = parts.iter().map(|p| p.d_out).sum();
    let has_bias = parts.iter().any(|p| p.bias.is_some());
    let mut weight = Vec::with_capacity(d_out * d_in);
    let mut bias = has_bias.then(|| Vec::with_capacity(d_out));
    for p in parts {
        weight.extend_from_slice(&p.weight);
        if let Some(b) = bias.as_mut() {
            b.extend(p.bias.unwrap_or_else(|| vec![0.0; p.d_out]));
        }
    }
    Linear { weight, bias, d_in, d_out }
}

/// The first prefix under which `probe` exists (checkpoints save with or without the
/// task head's prefix, e.g. `transformer.` for GPT2LMHeadModel, `bert.` for BertForMaskedLM).
fn prefix_of(src: &dyn TensorSource, candidates: &[&'static str], probe: &str) -> &'static str {
    candidates.iter().copied().find(|p| src.contains(&format!("{p}{probe}"))).unwrap_or(candidates[0])
}

/// Read a Hugging Face checkpoint's weights by its family's names.
pub fn load_hf(config: &ModelConfig, src: &mut dyn TensorSource) -> Result<Weights> {
    match config.family {
        Family::Gpt2 => load_gpt2(config, src),
        Family::Llama => load_llama(config, src, &HfLlamaNames),
        Family::Bert => load_bert(config, src),
    }
}

fn load_gpt2(c: &ModelConfig, src: &mut dyn TensorSource) -> Result<Weights> {
    let p = prefix_of(src, &["transformer.", ""], "wte.weight");
    let d = c.d_model;
    // Grown as blocks are read: the layer count is only what the config claims.
    let mut blocks = Vec::new();
    for i in 0..c.n_layers {
        let b = format!("{p}h.{i}");
        blocks.push(Block {
            ln1: norm(src, &format!("{b}.ln_1"), d, true)?,
            qkv: conv1d(src, &format!("{b}.attn.c_attn"), d, 3 * d)?,
            attn_out: conv1d(src, &format!("{b}.attn.c_proj"), d, d)?,
            ln2: norm(src, &format!("{b}.ln_2"), d, true)?,
            mlp_in: conv1d(src, &format!("{b}.mlp.c_fc"), d, c.d_mlp)?,
            mlp_out: conv1d(src, &format!("{b}.mlp.c_proj"), c.d_mlp, d)?,
        });
    }
    Ok(Weights {
        token_embed: take(src, &format!("{p}wte.weight"), &[c.vocab_size, d])?,
        pos_embed: Some(take(src, &format!("{p}wpe.weight"), &[c.max_positions, d])?),
        type_embed: None,
        embed_norm: None,
        blocks,
        final_norm: Some(norm(src, &format!("{p}ln_f"), d, true)?),
        unembed: None,
    })
}

/// Tensor names of a Llama-family checkpoint; GGUF files use other names for the same tensors.
pub trait LlamaNames {
    fn embed(&self) -> String;
    fn block(&self, i: usize, part: LlamaPart) -> String;
    fn final_norm(&self) -> String;
    fn unembed(&self) -> String;
}

#[derive(Clone, Copy, Debug)]
pub enum LlamaPart {
    AttnNorm,
    Q,
    K,
    V,
    O,
    MlpNorm,
    Gate,
    Up,
    Down,
}

pub struct HfLlamaNames;

impl LlamaNames for HfLlamaNames {
    fn embed(&self) -> String {
        "model.embed_tokens".into()
    }
    fn block(&self, i: usize, part: LlamaPart) -> String {
        let tail = match part {
            LlamaPart::AttnNorm => "input_layernorm",
            LlamaPart::Q => "self_attn.q_proj",
            LlamaPart::K => "self_attn.k_proj",
            LlamaPart::V => "self_attn.v_proj",
            LlamaPart::O => "self_attn.o_proj",
            LlamaPart::MlpNorm => "post_attention_layernorm",
            LlamaPart::Gate => "mlp.gate_proj",
            LlamaPart::Up => "mlp.up_proj",
            LlamaPart::Down => "mlp.down_proj",
        };
        format!("model.layers.{i}.{tail}")
    }
    fn final_norm(&self) -> String {
        "model.norm".into()
    }
    fn unembed(&self) -> String {
        "lm_head".into()
    }
}

pub fn load_llama(c: &ModelConfig, src: &mut dyn TensorSource, names: &dyn LlamaNames) -> Result<Weights> {
    let (d, dh) = (c.d_model, c.d_head);
    // Grown as blocks are read: the layer count is only what the config claims.
    let mut blocks = Vec::new();
    for i in 0..c.n_layers {
        let n = |part| names.block(i, part);
        let q = linear(src, &n(LlamaPart::Q), c.n_heads * dh, d, c.qkv_bias)?;
        let k = linear(src, &n(LlamaPart::K), c.n_kv_heads * dh, d, c.qkv_bias)?;
        let v = linear(src, &n(LlamaPart::V), c.n_kv_heads * dh, d, c.qkv_bias)?;
        let gate = linear(src, &n(LlamaPart::Gate), c.d_mlp, d, false)?;
        let up = linear(src, &n(LlamaPart::Up), c.d_mlp, d, false)?;
        blocks.push(Block {
            ln1: norm(src, &n(LlamaPart::AttnNorm), d, false)?,
            qkv: stack(vec![q, k, v]),
            attn_out: linear(src, &n(LlamaPart::O), d, c.n_heads * dh, false)?,
            ln2: norm(src, &n(LlamaPart::MlpNorm), d, false)?,
            mlp_in: stack(vec![gate, up]),
            mlp_out: linear(src, &n(LlamaPart::Down), d, c.d_mlp, false)?,
        });
    }
    let unembed_name = format!("{}.weight", names.unembed());
    let unembed = if c.tied_embeddings && !src.contains(&unembed_name) {
        None
    } else {
        Some(linear(src, &names.unembed(), c.vocab_size, d, false)?)
    };
    Ok(Weights {
        token_embed: take(src, &format!("{}.weight", names.embed()), &[c.vocab_size, d])?,
        pos_embed: None,
        type_embed: None,
        embed_norm: None,
        blocks,
        final_norm: Some(norm(src, &names.final_norm(), d, false)?),
        unembed,
    })
}

fn load_bert(c: &ModelConfig, src: &mut dyn TensorSource) -> Result<Weights> {
    let p = prefix_of(src, &["", "bert."], "embeddings.word_embeddings.weight");
    let d = c.d_model;
    // Grown as blocks are read: the layer count is only what the config claims.
    let mut blocks = Vec::new();
    for i in 0..c.n_layers {
        let b = format!("{p}encoder.layer.{i}");
        let q = linear(src, &format!("{b}.attention.self.query"), d, d, true)?;
        let k = linear(src, &format!("{b}.attention.self.key"), d, d, true)?;
        let v = linear(src, &format!("{b}.attention.self.value"), d, d, true)?;
        blocks.push(Block {
            qkv: stack(vec![q, k, v]),
            attn_out: linear(src, &format!("{b}.attention.output.dense"), d, d, true)?,
            // Post-LN: ln1 follows attention, ln2 follows the MLP.
            ln1: norm(src, &format!("{b}.attention.output.LayerNorm"), d, true)?,
            mlp_in: linear(src, &format!("{b}.intermediate.dense"), c.d_mlp, d, true)?,
            mlp_out: linear(src, &format!("{b}.output.dense"), d, c.d_mlp, true)?,
            ln2: norm(src, &format!("{b}.output.LayerNorm"), d, true)?,
        });
    }
    Ok(Weights {
        token_embed: take(src, &format!("{p}embeddings.word_embeddings.weight"), &[c.vocab_size, d])?,
        pos_embed: Some(take(src, &format!("{p}embeddings.position_embeddings.weight"), &[c.max_positions, d])?),
        type_embed: Some(take(src, &format!("{p}embeddings.token_type_embeddings.weight"), &[c.type_vocab_size, d])?),
        embed_norm: Some(norm(src, &format!("{p}embeddings.LayerNorm"), d, true)?),
        blocks,
        final_norm: None,
        unembed: None,
    })
}

/// Tensors of one or more safetensors files (a sharded checkpoint's index maps names to files).
pub struct SafetensorsSource {
    files: Vec<glassbox_core::io::SafetensorsFile>,
    /// name -> (file index, shape, dtype name)
    index: BTreeMap<String, (usize, Vec<usize>, String)>,
}

impl SafetensorsSource {
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut index = BTreeMap::new();
        for (i, path) in paths.iter().enumerate() {
            let file = glassbox_core::io::SafetensorsFile::open(path)?;
            for (name, dtype, shape) in file.entries()? {
                index.insert(name, (i, shape, format!("{dtype:?}")));
            }
            files.push(file);
        }
        Ok(SafetensorsSource { files, index })
    }

    /// Tensor count per dtype, e.g. {"F32": 101}.
    pub fn dtype_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, _, dtype) in self.index.values() {
            *counts.entry(dtype.clone()).or_insert(0) += 1;
        }
        counts
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }
}

impl TensorSource for SafetensorsSource {
    fn file_of(&self, name: &str) -> PathBuf {
        let i = self.index.get(name).map_or(0, |e| e.0);
        self.files.get(i).map_or_else(PathBuf::new, |f| f.path.clone())
    }
    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.index.get(name).map(|e| e.1.clone())
    }
    fn read(&mut self, name: &str) -> Result<Vec<f32>> {
        let (i, _, _) = self.index.get(name).ok_or_else(|| Error::invalid(format!("no tensor {name}")))?;
        Ok(self.files[*i].tensor_f32(name)?.data)
    }
}

/// The safetensors files of a Hugging Face model folder: `model.safetensors`, or the shards
/// that `model.safetensors.index.json` lists.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(Error::format(
            dir,
            "no model.safetensors or model.safetensors.index.json in this model folder \
             (PyTorch .bin checkpoints are not read: convert them to safetensors)",
        ));
    }
    let json: serde_json::Value = glassbox_core::io::read_json(&index)?;
    let map = json["weight_map"]
        .as_object()
        .ok_or_else(|| Error::format(&index, "no 'weight_map' object"))?;
    let mut shards: Vec<String> = map.values().filter_map(|v| v.as_str().map(str::to_string)).collect();
    shards.sort();
    shards.dedup();
    if shards.is_empty() {
        return Err(Error::format(&index, "'weight_map' names no shard files"));
    }
    Ok(shards.into_iter().map(|s| dir.join(s)).collect())
}

/// Fold each pre-norm's weight and bias into the linear map that reads it, as TransformerLens's
/// `fold_ln` does: `W (n ⊙ w + b) + c = (W diag w) n + (W b + c)`. The norms are left with unit
/// weight and no bias, so their `hook_normalized` is the bare normalised stream; outputs are
/// unchanged up to rounding. Post-norm models (BERT) cannot be folded: their norm's output is
/// also the residual stream.
pub fn fold_layer_norms(config: &ModelConfig, w: &mut Weights) -> Result<()> {
    if config.family == Family::Bert {
        return Err(Error::invalid("--fold-ln applies to pre-norm models (GPT-2, Llama); BERT's norms sit on the residual stream"));
    }
    for b in &mut w.blocks {
        fold_into(&mut b.ln1, &mut b.qkv);
        fold_into(&mut b.ln2, &mut b.mlp_in);
    }
    if let Some(norm) = w.final_norm.as_mut() {
        let unembed = w.unembed.get_or_insert_with(|| Linear {
            weight: w.token_embed.clone(),
            bias: None,
            d_in: config.d_model,
            d_out: config.vocab_size,
        });
        fold_into(norm, unembed);
    }
    Ok(())
}

fn fold_into(norm: &mut Norm, lin: &mut Linear) {
    let d_in = lin.d_in;
    if let Some(b) = norm.bias.take() {
        let bias = lin.bias.get_or_insert_with(|| vec![0.0; lin.d_out]);
        for (o, c) in bias.iter_mut().enumerate() {
            let row = &lin.weight[o * d_in..(o + 1) * d_in];
            *c += row.iter().zip(&b).map(|(wi, bi)| (*wi as f64) * (*bi as f64)).sum::<f64>() as f32;
        }
    }
    for row in lin.weight.chunks_mut(d_in) {
        row.iter_mut().zip(&norm.weight).for_each(|(wi, g)| *wi *= g);
    }
    norm.weight.iter_mut().for_each(|g| *g = 1.0);
}
