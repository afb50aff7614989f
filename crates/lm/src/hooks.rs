//! TransformerLens-style hook points: which activations to keep and how to intervene on them.
//!
//! Every hook tensor has the batch's tokens on its first axis (`[tokens, ...]`, prompts
//! concatenated in order, no padding). Attention scores and patterns are `[query tokens, heads,
//! max key length]`, zero beyond a prompt's own length; masked (future) scores are `-inf`, as
//! TransformerLens leaves them. Only the hooks asked for are kept.

use crate::config::{Family, ModelConfig};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A captured activation.
#[derive(Clone, Debug, PartialEq)]
pub struct HookTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HookTensor {
    /// Values per token (the product of the shape after the first axis).
    pub fn row_len(&self) -> usize {
        self.shape[1..].iter().product()
    }
}

/// A function that edits a hook's activation in place (how SAEs are spliced in).
pub type HookFn = Arc<dyn Fn(&str, &mut [f32], &[usize]) + Send + Sync>;

/// What to do to an activation as it flows past its hook.
#[derive(Clone)]
pub enum Intervention {
    /// Set it to zero.
    Zero,
    /// Replace every position by a mean: the given per-token mean, or the batch's own mean
    /// over positions when `None`.
    Mean(Option<Vec<f32>>),
    /// Replace it by this tensor (same shape as the hook).
    Replace(HookTensor),
    /// Add a per-token vector at every position (steering).
    Add(Vec<f32>),
    /// Any edit, given the hook name, the values and the shape.
    Edit(HookFn),
}

impl std::fmt::Debug for Intervention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Intervention::Zero => write!(f, "Zero"),
            Intervention::Mean(m) => write!(f, "Mean({})", if m.is_some() { "given" } else { "batch" }),
            Intervention::Replace(t) => write!(f, "Replace({:?})", t.shape),
            Intervention::Add(v) => write!(f, "Add(len {})", v.len()),
            Intervention::Edit(_) => write!(f, "Edit(fn)"),
        }
    }
}

impl Intervention {
    fn apply(&self, name: &str, data: &mut [f32], shape: &[usize]) -> Result<()> {
        let row: usize = shape[1..].iter().product();
        match self {
            Intervention::Zero => data.iter_mut().for_each(|v| *v = 0.0),
            Intervention::Mean(given) => {
                let mean = match given {
                    Some(m) => {
                        check_len(name, "mean", m.len(), row)?;
                        m.clone()
                    }
                    None => batch_mean(data, row),
                };
                data.chunks_mut(row.max(1)).for_each(|r| r.copy_from_slice(&mean));
            }
            Intervention::Replace(t) => {
                if t.shape != shape {
                    return Err(Error::invalid(format!(
                        "replacement for hook {name} has shape {:?}, the activation has {shape:?}",
                        t.shape
                    )));
                }
                data.copy_from_slice(&t.data);
            }
            Intervention::Add(v) => {
                check_len(name, "steering vector", v.len(), row)?;
                data.chunks_mut(row.max(1)).for_each(|r| r.iter_mut().zip(v).for_each(|(x, a)| *x += a));
            }
            Intervention::Edit(f) => f(name, data, shape),
        }
        Ok(())
    }
}

fn check_len(hook: &str, what: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::invalid(format!("{what} for hook {hook} has {got} values; the hook has {want} per token")))
    }
}

fn batch_mean(data: &[f32], row: usize) -> Vec<f32> {
    let rows = data.len() / row.max(1);
    let mut sum = vec![0f64; row];
    for r in data.chunks(row.max(1)) {
        sum.iter_mut().zip(r).for_each(|(s, &v)| *s += v as f64);
    }
    sum.into_iter().map(|s| (s / rows.max(1) as f64) as f32).collect()
}

/// The hooks one forward pass should keep or intervene on, and what it kept.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    capture: BTreeSet<String>,
    interventions: BTreeMap<String, Vec<Intervention>>,
    /// Captured activations by hook name, filled by the forward pass.
    pub cache: BTreeMap<String, HookTensor>,
}

impl Hooks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep these hooks (checked against the model's hook names).
    pub fn capture<I: IntoIterator<Item = S>, S: AsRef<str>>(config: &ModelConfig, names: I) -> Result<Self> {
        let mut hooks = Hooks::new();
        for name in names {
            hooks.keep(config, name.as_ref())?;
        }
        Ok(hooks)
    }

    pub fn keep(&mut self, config: &ModelConfig, name: &str) -> Result<()> {
        check_hook(config, name)?;
        self.capture.insert(name.to_string());
        Ok(())
    }

    /// Intervene at `name`; several interventions at one hook apply in the order added.
    pub fn intervene(&mut self, config: &ModelConfig, name: &str, what: Intervention) -> Result<()> {
        check_hook(config, name)?;
        self.interventions.entry(name.to_string()).or_default().push(what);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.capture.is_empty() && self.interventions.is_empty()
    }

    /// Does the forward pass need to produce this hook's value?
    pub fn wants(&self, name: &str) -> bool {
        self.capture.contains(name) || self.interventions.contains_key(name)
    }

    /// Every hook kept or intervened on.
    pub fn requested(&self) -> impl Iterator<Item = &str> {
        self.capture.iter().chain(self.interventions.keys()).map(String::as_str)
    }

    /// Does any requested hook match this predicate (e.g. any attention pattern)?
    pub fn wants_any(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.capture.iter().any(|n| pred(n)) || self.interventions.keys().any(|n| pred(n))
    }

    /// Apply the interventions at `name` to the activation, then keep a copy if asked.
    pub fn visit(&mut self, name: &str, data: &mut [f32], shape: &[usize]) -> Result<()> {
        if let Some(list) = self.interventions.get(name) {
            for what in list {
                what.apply(name, data, shape)?;
            }
        }
        if self.capture.contains(name) {
            self.cache.insert(name.to_string(), HookTensor { shape: shape.to_vec(), data: data.to_vec() });
        }
        Ok(())
    }

    /// Take the captured activations, leaving the requests in place for the next batch.
    pub fn take_cache(&mut self) -> BTreeMap<String, HookTensor> {
        std::mem::take(&mut self.cache)
    }
}

/// The per-block hook names of a family, with `{i}` for the block index.
pub fn block_hook_templates(family: Family) -> Vec<&'static str> {
    let mut names = vec![
        "blocks.{i}.hook_resid_pre",
        "blocks.{i}.ln1.hook_scale",
        "blocks.{i}.ln1.hook_normalized",
        "blocks.{i}.attn.hook_q",
        "blocks.{i}.attn.hook_k",
        "blocks.{i}.attn.hook_v",
    ];
    if family == Family::Llama {
        names.extend(["blocks.{i}.attn.hook_rot_q", "blocks.{i}.attn.hook_rot_k"]);
    }
    names.extend([
        "blocks.{i}.attn.hook_attn_scores",
        "blocks.{i}.attn.hook_pattern",
        "blocks.{i}.attn.hook_z",
        "blocks.{i}.hook_attn_out",
        "blocks.{i}.hook_resid_mid",
        "blocks.{i}.ln2.hook_scale",
        "blocks.{i}.ln2.hook_normalized",
        "blocks.{i}.mlp.hook_pre",
    ]);
    if family == Family::Llama {
        names.push("blocks.{i}.mlp.hook_pre_linear");
    }
    names.extend(["blocks.{i}.mlp.hook_post", "blocks.{i}.hook_mlp_out", "blocks.{i}.hook_resid_post"]);
    if family == Family::Bert {
        names.push("blocks.{i}.hook_normalized_resid_post");
    }
    names
}

/// Hooks outside the blocks, in the order the forward pass reaches them.
pub fn outer_hooks(family: Family) -> (Vec<&'static str>, Vec<&'static str>) {
    match family {
        Family::Gpt2 => (
            vec!["hook_embed", "hook_pos_embed"],
            vec!["ln_final.hook_scale", "ln_final.hook_normalized", "logits"],
        ),
        Family::Llama => (vec!["hook_embed"], vec!["ln_final.hook_scale", "ln_final.hook_normalized", "logits"]),
        Family::Bert => (
            vec![
                "embed.hook_embed",
                "embed.hook_pos_embed",
                "embed.hook_token_type_embed",
                "embed.ln.hook_scale",
                "embed.ln.hook_normalized",
                "hook_full_embed",
            ],
            vec![],
        ),
    }
}

/// Every hook name of a model, in forward order.
pub fn hook_names(config: &ModelConfig) -> Vec<String> {
    let (before, after) = outer_hooks(config.family);
    let mut names: Vec<String> = before.iter().map(|s| s.to_string()).collect();
    for i in 0..config.n_layers {
        names.extend(block_hook_templates(config.family).iter().map(|t| t.replace("{i}", &i.to_string())));
    }
    names.extend(after.iter().map(|s| s.to_string()));
    names
}

/// An unknown hook is an error that lists the valid names (blocks as templates).
pub fn check_hook(config: &ModelConfig, name: &str) -> Result<()> {
    if hook_names(config).iter().any(|n| n == name) {
        return Ok(());
    }
    let (before, after) = outer_hooks(config.family);
    let blocks = block_hook_templates(config.family)
        .iter()
        .map(|t| t.replace("{i}", &format!("{{0..{}}}", config.n_layers - 1)))
        .collect::<Vec<_>>();
    let all: Vec<String> = before.iter().map(|s| s.to_string()).chain(blocks).chain(after.iter().map(|s| s.to_string())).collect();
    Err(Error::invalid(format!("unknown hook '{name}'; this {} model has: {}", config.family.name(), all.join(", "))))
}

/// Attention scores and patterns are `[query tokens, heads, keys]`, not per-token like the rest.
pub fn is_attention_map(name: &str) -> bool {
    name.ends_with("attn.hook_pattern") || name.ends_with("attn.hook_attn_scores")
}

/// Parse a block index out of a hook name (`blocks.3.…` → 3).
pub fn block_of(name: &str) -> Option<usize> {
    name.strip_prefix("blocks.")?.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, NormKind};

    fn tiny(family: Family) -> ModelConfig {
        ModelConfig {
            family,
            architecture: "test".into(),
            n_layers: 2,
            d_model: 4,
            n_heads: 2,
            n_kv_heads: 2,
            d_head: 2,
            d_mlp: 8,
            vocab_size: 10,
            max_positions: 16,
            norm: NormKind::LayerNorm,
            norm_eps: 1e-5,
            activation: Activation::GeluTanh,
            rope_theta: None,
            tied_embeddings: true,
            type_vocab_size: 0,
            qkv_bias: true,
            gated_mlp: false,
        }
    }

    #[test]
    fn unknown_hooks_list_the_valid_ones() {
        let c = tiny(Family::Gpt2);
        assert!(check_hook(&c, "blocks.1.hook_resid_post").is_ok());
        let err = check_hook(&c, "blocks.2.hook_resid_post").unwrap_err().to_string();
        assert!(err.contains("blocks.{0..1}.hook_resid_post") && err.contains("logits"), "{err}");
        assert!(check_hook(&c, "blocks.0.attn.hook_rot_q").is_err(), "GPT-2 has no rotary hooks");
    }

    #[test]
    fn interventions_edit_then_capture() {
        let c = tiny(Family::Gpt2);
        let name = "blocks.0.hook_resid_pre";
        let mut hooks = Hooks::capture(&c, [name]).unwrap();
        hooks.intervene(&c, name, Intervention::Add(vec![1., 2.])).unwrap();
        hooks.intervene(&c, name, Intervention::Mean(None)).unwrap();
        let mut data = vec![0., 0., 2., 4.];
        hooks.visit(name, &mut data, &[2, 2]).unwrap();
        // add -> [1,2,3,6]; batch mean -> [2,4] on both rows
        assert_eq!(data, vec![2., 4., 2., 4.]);
        assert_eq!(hooks.cache[name].data, data);
        let mut bad = Hooks::new();
        bad.intervene(&c, name, Intervention::Add(vec![1.; 3])).unwrap();
        assert!(bad.visit(name, &mut data, &[2, 2]).unwrap_err().to_string().contains("3 values"));
    }
}
