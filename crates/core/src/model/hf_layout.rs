//! Language-model transformers in Hugging Face layouts, so that transformers and glassbox's
//! model loader open a glassbox checkpoint folder as they open any model folder:
//! - GPT-style models as GPT-2 (`GPT2LMHeadModel`: fused `c_attn`, Conv1D weights `[in, out]`,
//!   unembedding tied to `wte`);
//! - bilinear models as Llama (`LlamaForCausalLM`) with `hidden_act` "linear", so that its
//!   gated MLP down(act(gate x) ⊙ up x) is P((W n) ⊙ (V n)); RMSNorm gains are ones and the
//!   attention residual scale is folded into `o_proj`. Their SwiGLU twins are plain Llamas.

use super::transformer::{MlpKind, Norm, Positions, Readout, TransformerConfig};
use crate::io::HostTensor;
use crate::{Error, Result};
use serde_json::json;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfFamily {
    Gpt2,
    Llama,
}

/// The Hugging Face family a configuration is saved as, if any (none for classifiers such as
/// the modular-addition model, which keep glassbox's names).
pub fn family(t: &TransformerConfig) -> Option<HfFamily> {
    // A causal LM's head predicts the vocabulary it reads.
    if t.readout != Readout::EveryPosition || t.n_heads * t.d_head != t.d_model || t.d_vocab_out != t.d_vocab {
        return None;
    }
    let gpt2 = matches!(t.norm, Norm::LayerNorm { .. })
        && t.positions == Positions::Learned
        && matches!(t.mlp, MlpKind::Gelu | MlpKind::GeluTanh)
        && t.mlp_bias
        && t.attn_bias
        && t.tied_embeddings
        && t.attn_residual_scale == 1.0;
    let llama = matches!(t.norm, Norm::RmsNorm { .. }) && matches!(t.positions, Positions::Rotary { .. }) && t.gated() && !t.attn_bias && !t.tied_embeddings && t.d_mlp > 0;
    if gpt2 && t.d_mlp > 0 {
        Some(HfFamily::Gpt2)
    } else if llama {
        Some(HfFamily::Llama)
    } else {
        None
    }
}

/// config.json of the family; `eos` is the end-of-text token id.
pub fn config_json(t: &TransformerConfig, family: HfFamily, eos: u32) -> serde_json::Value {
    let eps = match t.norm {
        Norm::LayerNorm { eps } | Norm::RmsNorm { eps } => eps,
        Norm::None => 0.0,
    };
    match family {
        HfFamily::Gpt2 => json!({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": t.d_vocab, "n_positions": t.n_ctx, "n_embd": t.d_model, "n_layer": t.n_layers,
            "n_head": t.n_heads, "n_inner": t.d_mlp,
            "activation_function": if t.mlp == MlpKind::Gelu { "gelu" } else { "gelu_new" },
            "layer_norm_epsilon": eps, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "tie_word_embeddings": true, "bos_token_id": eos, "eos_token_id": eos, "torch_dtype": "float32",
        }),
        HfFamily::Llama => {
            let Positions::Rotary { base } = t.positions else { unreachable!("a Llama-layout model is rotary") };
            json!({
                "architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "vocab_size": t.d_vocab, "max_position_embeddings": t.n_ctx, "hidden_size": t.d_model,
                "intermediate_size": t.d_mlp, "num_hidden_layers": t.n_layers, "num_attention_heads": t.n_heads,
                "num_key_value_heads": t.n_heads, "head_dim": t.d_head,
                "hidden_act": if t.mlp == MlpKind::SwiGlu { "silu" } else { "linear" },
                "rms_norm_eps": eps, "rope_theta": base, "attention_bias": false, "mlp_bias": false,
                "tie_word_embeddings": false, "bos_token_id": eos, "eos_token_id": eos, "torch_dtype": "float32",
            })
        }
    }
}

fn tensor(name: &str, shape: &[usize], data: Vec<f32>) -> HostTensor {
    HostTensor { name: name.to_string(), shape: shape.to_vec(), data }
}

/// W `[h, d, dh]` (TransformerLens's W_Q/W_K/W_V) as `[d, h·dh]`: column h·dh + a is W[h, :, a].
fn heads_in(w: &[f32], h: usize, d: usize, dh: usize) -> Vec<f32> {
    (0..d).flat_map(|j| (0..h * dh).map(move |c| w[(c / dh) * d * dh + j * dh + c % dh])).collect()
}

/// Inverse of [`heads_in`].
fn heads_in_back(m: &[f32], h: usize, d: usize, dh: usize) -> Vec<f32> {
    (0..h * d * dh).map(|i| {
        let (hh, j, a) = (i / (d * dh), (i / dh) % d, i % dh);
        m[j * h * dh + hh * dh + a]
    }).collect()
}

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols * rows).map(|i| m[(i % rows) * cols + i / rows]).collect()
}

/// The tensors of a checkpoint in the family's names and layouts. `params` holds glassbox's
/// (TransformerLens's) names.
pub fn to_hf(t: &TransformerConfig, family: HfFamily, params: &[HostTensor]) -> Vec<HostTensor> {
    // With no parameters given, zeros of each parameter's size: the layout's names and shapes.
    let sizes: HashMap<String, usize> = t.param_specs().into_iter().map(|s| (s.name.clone(), s.numel())).collect();
    let get = |name: &str| match params.iter().find(|p| p.name == name) {
        Some(p) => p.data.clone(),
        None if params.is_empty() => vec![0.0; sizes[name]],
        None => panic!("no parameter {name}"),
    };
    let (d, h, dh, dm, v) = (t.d_model, t.n_heads, t.d_head, t.d_mlp, t.d_vocab);
    let mut out = Vec::new();
    match family {
        HfFamily::Gpt2 => {
            out.push(tensor("transformer.wte.weight", &[v, d], get("embed.W_E")));
            out.push(tensor("transformer.wpe.weight", &[t.n_ctx, d], get("pos_embed.W_pos")));
            for l in 0..t.n_layers {
                let p = |s: &str| format!("blocks.{l}.{s}");
                let hf = |s: &str| format!("transformer.h.{l}.{s}");
                out.push(tensor(&hf("ln_1.weight"), &[d], get(&p("ln1.w"))));
                out.push(tensor(&hf("ln_1.bias"), &[d], get(&p("ln1.b"))));
                let (q, k, vv) = (heads_in(&get(&p("attn.W_Q")), h, d, dh), heads_in(&get(&p("attn.W_K")), h, d, dh), heads_in(&get(&p("attn.W_V")), h, d, dh));
                let c_attn = (0..d).flat_map(|j| [&q, &k, &vv].into_iter().flat_map(move |m| m[j * d..(j + 1) * d].iter().copied())).collect();
                out.push(tensor(&hf("attn.c_attn.weight"), &[d, 3 * d], c_attn));
                let bias: Vec<f32> = ["b_Q", "b_K", "b_V"].iter().flat_map(|b| get(&p(&format!("attn.{b}")))).collect();
                out.push(tensor(&hf("attn.c_attn.bias"), &[3 * d], bias));
                out.push(tensor(&hf("attn.c_proj.weight"), &[d, d], get(&p("attn.W_O"))));
                out.push(tensor(&hf("attn.c_proj.bias"), &[d], get(&p("attn.b_O"))));
                out.push(tensor(&hf("ln_2.weight"), &[d], get(&p("ln2.w"))));
                out.push(tensor(&hf("ln_2.bias"), &[d], get(&p("ln2.b"))));
                out.push(tensor(&hf("mlp.c_fc.weight"), &[d, dm], get(&p("mlp.W_in"))));
                out.push(tensor(&hf("mlp.c_fc.bias"), &[dm], get(&p("mlp.b_in"))));
                out.push(tensor(&hf("mlp.c_proj.weight"), &[dm, d], get(&p("mlp.W_out"))));
                out.push(tensor(&hf("mlp.c_proj.bias"), &[d], get(&p("mlp.b_out"))));
            }
            out.push(tensor("transformer.ln_f.weight", &[d], get("ln_final.w")));
            out.push(tensor("transformer.ln_f.bias", &[d], get("ln_final.b")));
        }
        HfFamily::Llama => {
            let ones = vec![1f32; d];
            out.push(tensor("model.embed_tokens.weight", &[v, d], get("embed.W_E")));
            for l in 0..t.n_layers {
                let p = |s: &str| format!("blocks.{l}.{s}");
                let hf = |s: &str| format!("model.layers.{l}.{s}");
                out.push(tensor(&hf("input_layernorm.weight"), &[d], ones.clone()));
                for (m, name) in [("W_Q", "q_proj"), ("W_K", "k_proj"), ("W_V", "v_proj")] {
                    out.push(tensor(&hf(&format!("self_attn.{name}.weight")), &[h * dh, d], transpose(&heads_in(&get(&p(&format!("attn.{m}"))), h, d, dh), d, h * dh)));
                }
                let s = t.attn_residual_scale as f32;
                let o = transpose(&get(&p("attn.W_O")), h * dh, d).into_iter().map(|x| x * s).collect();
                out.push(tensor(&hf("self_attn.o_proj.weight"), &[d, h * dh], o));
                out.push(tensor(&hf("post_attention_layernorm.weight"), &[d], ones.clone()));
                out.push(tensor(&hf("mlp.gate_proj.weight"), &[dm, d], transpose(&get(&p("mlp.W_gate")), d, dm)));
                out.push(tensor(&hf("mlp.up_proj.weight"), &[dm, d], transpose(&get(&p("mlp.W_in")), d, dm)));
                out.push(tensor(&hf("mlp.down_proj.weight"), &[d, dm], transpose(&get(&p("mlp.W_out")), dm, d)));
            }
            out.push(tensor("model.norm.weight", &[d], ones));
            out.push(tensor("lm_head.weight", &[v, d], transpose(&get("unembed.W_U"), d, v)));
        }
    }
    out
}

/// glassbox's parameters (by name) from the family's tensors (by name); the inverse of
/// [`to_hf`]. Refuses RMSNorm gains other than one, which the bilinear model does not have.
pub fn from_hf(t: &TransformerConfig, family: HfFamily, hf: &HashMap<String, Vec<f32>>) -> Result<HashMap<String, Vec<f32>>> {
    // The layout below is built at the sizes model.json claims: they are checked against the
    // values the file holds first (the layout has at least the architecture's parameters).
    let needed = t.param_specs().iter().try_fold(0usize, |sum, s| {
        s.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).and_then(|n| sum.checked_add(n))
    });
    let held: usize = hf.values().map(Vec::len).sum();
    if needed.is_none_or(|n| n > held) {
        let needed = needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
        return Err(Error::invalid(format!("model.json's architecture needs {needed} values, the weights hold {held}")));
    }
    // Every tensor the family's layout has, with the number of values model.json implies.
    let expected: HashMap<String, usize> = to_hf(t, family, &[]).into_iter().map(|x| (x.name, x.shape.iter().product())).collect();
    for (name, n) in &expected {
        match hf.get(name) {
            None => return Err(Error::invalid(format!("missing tensor '{name}'"))),
            Some(values) if values.len() != *n => {
                return Err(Error::invalid(format!("tensor '{name}' has {} values, model.json's architecture needs {n}", values.len())))
            }
            _ => {}
        }
    }
    let get = |name: &str| hf.get(name).cloned().ok_or_else(|| Error::invalid(format!("missing tensor '{name}'")));
    let (d, h, dh, dm, v) = (t.d_model, t.n_heads, t.d_head, t.d_mlp, t.d_vocab);
    let mut out = HashMap::new();
    match family {
        HfFamily::Gpt2 => {
            out.insert("embed.W_E".into(), get("transformer.wte.weight")?);
            out.insert("pos_embed.W_pos".into(), get("transformer.wpe.weight")?);
            for l in 0..t.n_layers {
                let p = |s: &str| format!("blocks.{l}.{s}");
                let hf = |s: &str| format!("transformer.h.{l}.{s}");
                out.insert(p("ln1.w"), get(&hf("ln_1.weight"))?);
                out.insert(p("ln1.b"), get(&hf("ln_1.bias"))?);
                let c_attn = get(&hf("attn.c_attn.weight"))?;
                let bias = get(&hf("attn.c_attn.bias"))?;
                for (i, m) in ["Q", "K", "V"].iter().enumerate() {
                    let part: Vec<f32> = (0..d).flat_map(|j| c_attn[j * 3 * d + i * d..j * 3 * d + (i + 1) * d].iter().copied()).collect();
                    out.insert(p(&format!("attn.W_{m}")), heads_in_back(&part, h, d, dh));
                    out.insert(p(&format!("attn.b_{m}")), bias[i * d..(i + 1) * d].to_vec());
                }
                out.insert(p("attn.W_O"), get(&hf("attn.c_proj.weight"))?);
                out.insert(p("attn.b_O"), get(&hf("attn.c_proj.bias"))?);
                out.insert(p("ln2.w"), get(&hf("ln_2.weight"))?);
                out.insert(p("ln2.b"), get(&hf("ln_2.bias"))?);
                out.insert(p("mlp.W_in"), get(&hf("mlp.c_fc.weight"))?);
                out.insert(p("mlp.b_in"), get(&hf("mlp.c_fc.bias"))?);
                out.insert(p("mlp.W_out"), get(&hf("mlp.c_proj.weight"))?);
                out.insert(p("mlp.b_out"), get(&hf("mlp.c_proj.bias"))?);
            }
            out.insert("ln_final.w".into(), get("transformer.ln_f.weight")?);
            out.insert("ln_final.b".into(), get("transformer.ln_f.bias")?);
        }
        HfFamily::Llama => {
            let unit = |name: &str| -> Result<()> {
                if get(name)?.iter().any(|&g| g != 1.0) {
                    return Err(Error::invalid(format!("'{name}' is not all ones: the bilinear transformer's RMSNorm has no gain")));
                }
                Ok(())
            };
            out.insert("embed.W_E".into(), get("model.embed_tokens.weight")?);
            for l in 0..t.n_layers {
                let p = |s: &str| format!("blocks.{l}.{s}");
                let hf = |s: &str| format!("model.layers.{l}.{s}");
                unit(&hf("input_layernorm.weight"))?;
                unit(&hf("post_attention_layernorm.weight"))?;
                for (m, name) in [("W_Q", "q_proj"), ("W_K", "k_proj"), ("W_V", "v_proj")] {
                    out.insert(p(&format!("attn.{m}")), heads_in_back(&transpose(&get(&hf(&format!("self_attn.{name}.weight")))?, h * dh, d), h, d, dh));
                }
                let s = t.attn_residual_scale as f32;
                out.insert(p("attn.W_O"), transpose(&get(&hf("self_attn.o_proj.weight"))?, d, h * dh).into_iter().map(|x| x / s).collect());
                out.insert(p("mlp.W_gate"), transpose(&get(&hf("mlp.gate_proj.weight"))?, dm, d));
                out.insert(p("mlp.W_in"), transpose(&get(&hf("mlp.up_proj.weight"))?, dm, d));
                out.insert(p("mlp.W_out"), transpose(&get(&hf("mlp.down_proj.weight"))?, d, dm));
            }
            unit("model.norm.weight")?;
            out.insert("unembed.W_U".into(), transpose(&get("lm_head.weight")?, v, d));
        }
    }
    Ok(out)
}
