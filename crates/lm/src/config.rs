//! The architecture of a transformer: family, sizes and the choices that differ between families,
//! read from a Hugging Face `config.json` or from GGUF metadata.

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// The transformer families glassbox runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// GPT-2: pre-LayerNorm, learned positions, GELU-tanh MLP, tied unembedding.
    Gpt2,
    /// Llama and its relatives (Mistral, Qwen2, SmolLM): pre-RMSNorm, rotary positions, SwiGLU,
    /// grouped-query attention.
    Llama,
    /// BERT encoders: post-LayerNorm, absolute positions and token types, GELU-erf, no causal mask.
    Bert,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Gpt2 => "gpt2",
            Family::Llama => "llama",
            Family::Bert => "bert",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    LayerNorm,
    RmsNorm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// GELU with the tanh approximation (GPT-2's `gelu_new`).
    GeluTanh,
    /// GELU with the exact error function (BERT's `gelu`).
    GeluErf,
    /// SiLU (x·sigmoid(x)), the gate of SwiGLU.
    Silu,
    Relu,
    /// No activation (transformers' "linear"): a gated MLP with it is bilinear.
    Identity,
}

impl Activation {
    /// Hugging Face `hidden_act` / `activation_function` names.
    pub fn from_hf(name: &str) -> Option<Self> {
        Some(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_tanh" => Activation::GeluTanh,
            "gelu" => Activation::GeluErf,
            "silu" | "swish" => Activation::Silu,
            "relu" => Activation::Relu,
            "linear" => Activation::Identity,
            _ => return None,
        })
    }
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub family: Family,
    /// The architecture as the file names it (e.g. `LlamaForCausalLM`).
    pub architecture: String,
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// Key/value heads; fewer than `n_heads` under grouped-query attention.
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub vocab_size: usize,
    /// Longest sequence the model accepts (its position table or its training context).
    pub max_positions: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub activation: Activation,
    /// Rotary base for Llama-family models; `None` for learned positions.
    pub rope_theta: Option<f64>,
    /// The unembedding is the token embedding (GPT-2, SmolLM2).
    pub tied_embeddings: bool,
    /// BERT's token-type vocabulary (0 for decoders).
    pub type_vocab_size: usize,
    /// Q/K/V projections carry biases (GPT-2, BERT, Qwen2).
    pub qkv_bias: bool,
    /// The MLP is gated: act(x·W_gate) ⊙ (x·W_up).
    pub gated_mlp: bool,
}

impl ModelConfig {
    /// Decoders attend only to earlier positions.
    pub fn causal(&self) -> bool {
        self.family != Family::Bert
    }

    /// Whether the model has an unembedding (BERT encoders as shipped for embeddings do not).
    pub fn has_unembed(&self) -> bool {
        self.family != Family::Bert
    }

    /// Read a Hugging Face `config.json`.
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| Error::format(path, format!("invalid JSON: {e}")))?;
        Self::from_hf_json(&json).map_err(|msg| Error::format(path, msg))
    }

    /// The supported `architectures` / `model_type` values, for error messages.
    pub const SUPPORTED: &'static str = "GPT2LMHeadModel / GPT2Model (gpt2), LlamaForCausalLM (llama), \
        MistralForCausalLM (mistral), Qwen2ForCausalLM (qwen2), BertModel / BertForMaskedLM (bert)";

    pub fn from_hf_json(json: &Value) -> std::result::Result<Self, String> {
        let architecture = json["architectures"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let model_type = json["model_type"].as_str().unwrap_or("");
        let family = match (architecture.as_str(), model_type) {
            ("GPT2LMHeadModel" | "GPT2Model", _) | ("", "gpt2") => Family::Gpt2,
            ("LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM", _)
            | ("", "llama" | "mistral" | "qwen2") => Family::Llama,
            ("BertModel" | "BertForMaskedLM" | "BertForPreTraining", _) | ("", "bert") => Family::Bert,
            _ => {
                let named = if architecture.is_empty() { model_type } else { &architecture };
                return Err(format!(
                    "unsupported architecture '{named}' (model_type '{model_type}'); glassbox runs {}",
                    Self::SUPPORTED
                ));
            }
        };
        let architecture = if architecture.is_empty() { model_type.to_string() } else { architecture };
        match family {
            Family::Gpt2 => gpt2_from_json(json, architecture),
            Family::Llama => llama_from_json(json, architecture, model_type),
            Family::Bert => bert_from_json(json, architecture),
        }
    }

    /// Check the sizes fit together; every loader calls this.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("layers", self.n_layers),
            ("d_model", self.d_model),
            ("heads", self.n_heads),
            ("kv heads", self.n_kv_heads),
            ("d_head", self.d_head),
            ("d_mlp", self.d_mlp),
            ("vocabulary", self.vocab_size),
            ("positions", self.max_positions),
        ];
        for (what, n) in positive {
            if n == 0 {
                return Err(format!("the config gives 0 {what}"));
            }
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(format!(
                "{} attention heads are not a multiple of {} key/value heads",
                self.n_heads, self.n_kv_heads
            ));
        }
        if self.rope_theta.is_some() && !self.d_head.is_multiple_of(2) {
            return Err(format!("rotary positions need an even head size, got {}", self.d_head));
        }
        Ok(())
    }
}

fn usize_field(json: &Value, key: &str) -> std::result::Result<usize, String> {
    json[key]
        .as_u64()
        .map(|v| v as usize)
        .ok_or_else(|| format!("config field '{key}' is missing or not a non-negative integer"))
}

fn usize_or(json: &Value, key: &str, default: usize) -> std::result::Result<usize, String> {
    match &json[key] {
        Value::Null => Ok(default),
        v => v.as_u64().map(|v| v as usize).ok_or_else(|| format!("config field '{key}' is not an integer")),
    }
}

fn f64_or(json: &Value, key: &str, default: f64) -> std::result::Result<f64, String> {
    match &json[key] {
        Value::Null => Ok(default),
        v => v.as_f64().ok_or_else(|| format!("config field '{key}' is not a number")),
    }
}

fn activation(json: &Value, key: &str, default: &str) -> std::result::Result<Activation, String> {
    let name = json[key].as_str().unwrap_or(default);
    Activation::from_hf(name).ok_or_else(|| format!("unsupported activation {key} = '{name}'"))
}

fn gpt2_from_json(json: &Value, architecture: String) -> std::result::Result<ModelConfig, String> {
    let d_model = usize_field(json, "n_embd")?;
    let n_heads = usize_field(json, "n_head")?;
    let config = ModelConfig {
        family: Family::Gpt2,
        architecture,
        n_layers: usize_field(json, "n_layer")?,
        d_model,
        n_heads,
        n_kv_heads: n_heads,
        d_head: d_model / n_heads.max(1),
        d_mlp: usize_or(json, "n_inner", 4 * d_model)?,
        vocab_size: usize_field(json, "vocab_size")?,
        max_positions: usize_field(json, "n_positions")?,
        norm: NormKind::LayerNorm,
        norm_eps: f64_or(json, "layer_norm_epsilon", 1e-5)?,
        activation: activation(json, "activation_function", "gelu_new")?,
        rope_theta: None,
        tied_embeddings: true,
        type_vocab_size: 0,
        qkv_bias: true,
        gated_mlp: false,
    };
    if !d_model.is_multiple_of(n_heads.max(1)) {
        return Err(format!("n_embd {d_model} is not a multiple of n_head {n_heads}"));
    }
    config.validate()?;
    Ok(config)
}

fn llama_from_json(json: &Value, architecture: String, model_type: &str) -> std::result::Result<ModelConfig, String> {
    let d_model = usize_field(json, "hidden_size")?;
    let n_heads = usize_field(json, "num_attention_heads")?;
    // transformers 5 moves the rotary base into `rope_parameters`.
    let rope = &json["rope_parameters"];
    let rope_theta = match (&json["rope_theta"], &rope["rope_theta"]) {
        (Value::Null, Value::Null) => 10_000.0,
        (Value::Null, v) | (v, _) => v.as_f64().ok_or("config field 'rope_theta' is not a number")?,
    };
    for scaling in [&json["rope_scaling"], rope] {
        if let Some(kind) = scaling.get("rope_type").or_else(|| scaling.get("type")).and_then(Value::as_str) {
            if kind != "default" {
                return Err(format!("rotary scaling '{kind}' is not supported (only plain RoPE)"));
            }
        }
    }
    let qwen = model_type == "qwen2" || architecture.starts_with("Qwen2");
    let config = ModelConfig {
        family: Family::Llama,
        architecture,
        n_layers: usize_field(json, "num_hidden_layers")?,
        d_model,
        n_heads,
        n_kv_heads: usize_or(json, "num_key_value_heads", n_heads)?,
        d_head: usize_or(json, "head_dim", d_model / n_heads.max(1))?,
        d_mlp: usize_field(json, "intermediate_size")?,
        vocab_size: usize_field(json, "vocab_size")?,
        max_positions: usize_or(json, "max_position_embeddings", 2048)?,
        norm: NormKind::RmsNorm,
        norm_eps: f64_or(json, "rms_norm_eps", 1e-6)?,
        activation: activation(json, "hidden_act", "silu")?,
        rope_theta: Some(rope_theta),
        tied_embeddings: json["tie_word_embeddings"].as_bool().unwrap_or(false),
        type_vocab_size: 0,
        qkv_bias: qwen || json["attention_bias"].as_bool().unwrap_or(false),
        gated_mlp: true,
    };
    config.validate()?;
    Ok(config)
}

fn bert_from_json(json: &Value, architecture: String) -> std::result::Result<ModelConfig, String> {
    let d_model = usize_field(json, "hidden_size")?;
    let n_heads = usize_field(json, "num_attention_heads")?;
    if let Some(kind) = json["position_embedding_type"].as_str() {
        if kind != "absolute" {
            return Err(format!("BERT position_embedding_type '{kind}' is not supported (only absolute)"));
        }
    }
    let config = ModelConfig {
        family: Family::Bert,
        architecture,
        n_layers: usize_field(json, "num_hidden_layers")?,
        d_model,
        n_heads,
        n_kv_heads: n_heads,
        d_head: d_model / n_heads.max(1),
        d_mlp: usize_field(json, "intermediate_size")?,
        vocab_size: usize_field(json, "vocab_size")?,
        max_positions: usize_field(json, "max_position_embeddings")?,
        norm: NormKind::LayerNorm,
        norm_eps: f64_or(json, "layer_norm_eps", 1e-12)?,
        activation: activation(json, "hidden_act", "gelu")?,
        rope_theta: None,
        tied_embeddings: false,
        type_vocab_size: usize_or(json, "type_vocab_size", 2)?,
        qkv_bias: true,
        gated_mlp: false,
    };
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_three_families() {
        let gpt2 = json!({"architectures": ["GPT2LMHeadModel"], "n_embd": 64, "n_head": 4, "n_layer": 2,
            "n_positions": 64, "vocab_size": 500, "activation_function": "gelu_new"});
        let c = ModelConfig::from_hf_json(&gpt2).unwrap();
        assert_eq!((c.family, c.d_head, c.d_mlp, c.activation), (Family::Gpt2, 16, 256, Activation::GeluTanh));

        let llama = json!({"architectures": ["LlamaForCausalLM"], "hidden_size": 576, "num_attention_heads": 9,
            "num_key_value_heads": 3, "num_hidden_layers": 30, "intermediate_size": 1536, "vocab_size": 49152,
            "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": true});
        let c = ModelConfig::from_hf_json(&llama).unwrap();
        assert_eq!((c.n_kv_heads, c.d_head, c.rope_theta, c.tied_embeddings), (3, 64, Some(1e5), true));

        let bert = json!({"architectures": ["BertModel"], "hidden_size": 384, "num_attention_heads": 12,
            "num_hidden_layers": 6, "intermediate_size": 1536, "vocab_size": 30522, "max_position_embeddings": 512});
        let c = ModelConfig::from_hf_json(&bert).unwrap();
        assert_eq!((c.family, c.activation, c.type_vocab_size, c.causal()), (Family::Bert, Activation::GeluErf, 2, false));
    }

    #[test]
    fn unknown_architecture_is_named_with_the_supported_list() {
        let err = ModelConfig::from_hf_json(&json!({"architectures": ["MambaForCausalLM"], "model_type": "mamba"}))
            .unwrap_err();
        assert!(err.contains("MambaForCausalLM") && err.contains("LlamaForCausalLM"), "{err}");
    }

    #[test]
    fn qwen2_has_qkv_biases_and_bad_head_counts_are_refused() {
        let qwen = json!({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
            "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1, "intermediate_size": 96,
            "vocab_size": 10});
        assert!(ModelConfig::from_hf_json(&qwen).unwrap().qkv_bias);
        let bad = json!({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
            "num_key_value_heads": 3, "num_hidden_layers": 1, "intermediate_size": 96, "vocab_size": 10});
        assert!(ModelConfig::from_hf_json(&bad).unwrap_err().contains("multiple"));
    }
}
