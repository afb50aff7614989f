//! A decoder-only transformer that glassbox trains itself, with TransformerLens parameter and
//! hook names (`embed.W_E`, `blocks.0.attn.W_Q`, `blocks.0.hook_resid_mid`, …).
//!
//! One implementation covers three models:
//! - Nanda et al.'s grokking model ("Progress measures for grokking via mechanistic
//!   interpretability", ICLR 2023): no normalisation, learned positions, causal attention
//!   without biases, a ReLU MLP with biases, the answer read at the last position;
//! - GPT-style language models: pre-LayerNorm blocks, learned positions, GELU MLPs, biases, a
//!   final LayerNorm and an unembedding tied to the embedding (GPT-2's layout);
//! - the bilinear transformer of Pearce et al. ("Bilinear MLPs enable weight-based mechanistic
//!   interpretability", ICLR 2025): RMSNorm without gain, rotary attention, the MLP
//!   P((W n) ⊙ (V n)), no biases, attention output scaled by 1/√(2·n_layers).

use super::params::{Init, ParamSpec, Params};
use super::Recorder;
use crate::tensor::{from_vec, HostValues, Tensor};
use crate::{Error, Result};
use burn::tensor::activation::{gelu, gelu_approximate, relu, silu, softmax};
use burn::tensor::module::embedding;
use burn::tensor::Bool;
use serde::{Deserialize, Serialize};

/// Which positions the model scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readout {
    /// Only the last position: the model is a classifier of whole sequences. The final block
    /// computes its queries and MLP at that position alone; earlier positions of the last
    /// block cannot reach the output, so the logits are exactly those of the full model.
    /// Logits `[batch, d_vocab_out]`.
    LastPosition,
    /// Every position, as a language model: logits `[batch, n_ctx · d_vocab_out]`.
    EveryPosition,
}

/// Normalisation before attention, before the MLP and before the unembedding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Norm {
    #[default]
    None,
    /// (x − mean) / √(var + eps) · w + b (GPT-2).
    LayerNorm { eps: f64 },
    /// x / √(mean(x²) + eps), without a learned gain.
    RmsNorm { eps: f64 },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Positions {
    /// A learned vector per position added to the token embedding.
    #[default]
    Learned,
    /// Rotary embeddings of queries and keys over the whole head (rotate-half convention).
    Rotary { base: f64 },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MlpKind {
    #[default]
    Relu,
    /// GELU with erf.
    Gelu,
    /// GELU with the tanh approximation (GPT-2's gelu_new).
    GeluTanh,
    /// (x W_gate) ⊙ (x W_in), then W_out: no activation at all.
    Bilinear,
    /// SiLU(x W_gate) ⊙ (x W_in), then W_out (SwiGLU, Llama's MLP).
    SwiGlu,
}

/// How weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitScheme {
    /// Nanda et al.: every matrix N(0, 1/d_model) except the unembedding, N(0, 1/d_vocab_out).
    #[default]
    Nanda,
    /// GPT-2: N(0, 0.02²), the matrices writing into the residual stream N(0, 0.02²/(2·n_layers)),
    /// gains one, biases zero.
    Gpt2,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerConfig {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub d_head: usize,
    /// Hidden width of each MLP; 0 makes an attention-only model.
    pub d_mlp: usize,
    pub d_vocab: usize,
    pub d_vocab_out: usize,
    pub n_ctx: usize,
    pub readout: Readout,
    #[serde(default)]
    pub norm: Norm,
    #[serde(default)]
    pub positions: Positions,
    #[serde(default)]
    pub mlp: MlpKind,
    #[serde(default = "yes")]
    pub mlp_bias: bool,
    /// Biases of the query, key, value and output maps.
    #[serde(default)]
    pub attn_bias: bool,
    /// The unembedding is the transposed embedding (no `unembed.W_U`).
    #[serde(default)]
    pub tied_embeddings: bool,
    /// The attention output is multiplied by this before it joins the residual stream.
    #[serde(default = "one")]
    pub attn_residual_scale: f64,
    #[serde(default)]
    pub init: InitScheme,
}

impl TransformerConfig {
    /// Nanda et al.'s one-layer modular-addition model for modulus p: d_model 128, 4 heads of
    /// 32, d_mlp 512, vocabulary 0..p plus "=" (p + 1 tokens in and out), context "a b =".
    pub fn modular_addition(p: usize) -> Self {
        TransformerConfig {
            n_layers: 1,
            d_model: 128,
            n_heads: 4,
            d_head: 32,
            d_mlp: 512,
            d_vocab: p + 1,
            d_vocab_out: p + 1,
            n_ctx: 3,
            readout: Readout::LastPosition,
            norm: Norm::None,
            positions: Positions::Learned,
            mlp: MlpKind::Relu,
            mlp_bias: true,
            attn_bias: false,
            tied_embeddings: false,
            attn_residual_scale: 1.0,
            init: InitScheme::Nanda,
        }
    }

    /// A GPT-style language model: pre-LayerNorm (eps 1e-5), learned positions, GELU MLP with
    /// biases, attention biases, unembedding tied to the embedding, GPT-2 initialisation;
    /// d_head = d_model / n_heads.
    pub fn gpt_style(n_layers: usize, d_model: usize, n_heads: usize, d_mlp: usize, vocab: usize, n_ctx: usize) -> Self {
        TransformerConfig {
            n_layers,
            d_model,
            n_heads,
            d_head: d_model / n_heads.max(1),
            d_mlp,
            d_vocab: vocab,
            d_vocab_out: vocab,
            n_ctx,
            readout: Readout::EveryPosition,
            norm: Norm::LayerNorm { eps: 1e-5 },
            positions: Positions::Learned,
            mlp: MlpKind::Gelu,
            mlp_bias: true,
            attn_bias: true,
            tied_embeddings: true,
            attn_residual_scale: 1.0,
            init: InitScheme::Gpt2,
        }
    }

    /// The bilinear paper's language model with MLP `mlp` (`Bilinear`, or its `SwiGlu` twin):
    /// RMSNorm without gain (eps 1e-8), rotary positions (base 10000), no biases, attention
    /// output scaled by 1/√(2·n_layers), untied unembedding; otherwise as [`Self::gpt_style`].
    pub fn bilinear_lm(n_layers: usize, d_model: usize, n_heads: usize, d_mlp: usize, vocab: usize, n_ctx: usize, mlp: MlpKind) -> Self {
        TransformerConfig {
            norm: Norm::RmsNorm { eps: 1e-8 },
            positions: Positions::Rotary { base: 10000.0 },
            mlp,
            mlp_bias: false,
            attn_bias: false,
            tied_embeddings: false,
            attn_residual_scale: 1.0 / ((2 * n_layers) as f64).sqrt(),
            ..Self::gpt_style(n_layers, d_model, n_heads, d_mlp, vocab, n_ctx)
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(format!("transformer architecture: {m}")));
        let sizes = [self.n_layers, self.d_model, self.n_heads, self.d_head, self.d_vocab, self.d_vocab_out, self.n_ctx];
        if sizes.contains(&0) {
            return bad("layers, widths, heads, vocabularies and context must be non-zero".into());
        }
        // Token ids travel as f32 model inputs, which hold integers exactly up to 2^24.
        if self.d_vocab > 1 << 24 {
            return bad(format!("vocabulary of {} tokens is larger than 2^24", self.d_vocab));
        }
        if self.tied_embeddings && self.d_vocab != self.d_vocab_out {
            return bad(format!("tied embeddings need d_vocab = d_vocab_out, got {} and {}", self.d_vocab, self.d_vocab_out));
        }
        if matches!(self.positions, Positions::Rotary { .. }) && self.d_head % 2 == 1 {
            return bad(format!("rotary positions need an even head width, got {}", self.d_head));
        }
        if self.gated() && self.mlp_bias {
            return bad("the gated (bilinear and SwiGLU) MLPs have no biases".into());
        }
        if !self.attn_residual_scale.is_finite() || self.attn_residual_scale == 0.0 {
            return bad("the attention residual scale must be finite and non-zero".into());
        }
        Ok(())
    }

    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let (d, h, dh, dm) = (self.d_model, self.n_heads, self.d_head, self.d_mlp);
        let (matrix, residual_out, unembed) = match self.init {
            InitScheme::Nanda => (Init::Normal { fan: d }, Init::Normal { fan: d }, Init::Normal { fan: self.d_vocab_out }),
            // 1/√2500 = 0.02.
            InitScheme::Gpt2 => (Init::Normal { fan: 2500 }, Init::Normal { fan: 2500 * 2 * self.n_layers }, Init::Normal { fan: 2500 }),
        };
        let mut specs = vec![ParamSpec::new("embed.W_E", &[self.d_vocab, d], matrix)];
        if self.positions == Positions::Learned {
            specs.push(ParamSpec::new("pos_embed.W_pos", &[self.n_ctx, d], matrix));
        }
        let norm = |specs: &mut Vec<ParamSpec>, name: &str| {
            if let Norm::LayerNorm { .. } = self.norm {
                specs.push(ParamSpec::new(format!("{name}.w"), &[d], Init::Ones));
                specs.push(ParamSpec::new(format!("{name}.b"), &[d], Init::Zeros));
            }
        };
        for l in 0..self.n_layers {
            norm(&mut specs, &format!("blocks.{l}.ln1"));
            for m in ["Q", "K", "V"] {
                specs.push(ParamSpec::new(format!("blocks.{l}.attn.W_{m}"), &[h, d, dh], matrix));
                if self.attn_bias {
                    specs.push(ParamSpec::new(format!("blocks.{l}.attn.b_{m}"), &[h, dh], Init::Zeros));
                }
            }
            specs.push(ParamSpec::new(format!("blocks.{l}.attn.W_O"), &[h, dh, d], residual_out));
            if self.attn_bias {
                specs.push(ParamSpec::new(format!("blocks.{l}.attn.b_O"), &[d], Init::Zeros));
            }
            if dm > 0 {
                norm(&mut specs, &format!("blocks.{l}.ln2"));
                specs.push(ParamSpec::new(format!("blocks.{l}.mlp.W_in"), &[d, dm], matrix));
                if self.gated() {
                    specs.push(ParamSpec::new(format!("blocks.{l}.mlp.W_gate"), &[d, dm], matrix));
                }
                if self.mlp_bias {
                    specs.push(ParamSpec::new(format!("blocks.{l}.mlp.b_in"), &[dm], Init::Zeros));
                }
                specs.push(ParamSpec::new(format!("blocks.{l}.mlp.W_out"), &[dm, d], residual_out));
                if self.mlp_bias {
                    specs.push(ParamSpec::new(format!("blocks.{l}.mlp.b_out"), &[d], Init::Zeros));
                }
            }
        }
        norm(&mut specs, "ln_final");
        if !self.tied_embeddings {
            specs.push(ParamSpec::new("unembed.W_U", &[d, self.d_vocab_out], unembed));
        }
        specs
    }

    /// Hook names in forward order (TransformerLens's), then `logits`.
    pub fn site_names(&self) -> Vec<String> {
        let mut v = vec!["hook_embed".to_string()];
        if self.positions == Positions::Learned {
            v.push("hook_pos_embed".into());
        }
        let norm_hooks = |v: &mut Vec<String>, name: &str| {
            if self.norm != Norm::None {
                v.push(format!("{name}.hook_scale"));
                v.push(format!("{name}.hook_normalized"));
            }
        };
        for l in 0..self.n_layers {
            v.push(format!("blocks.{l}.hook_resid_pre"));
            norm_hooks(&mut v, &format!("blocks.{l}.ln1"));
            for s in ["q", "k", "v"] {
                v.push(format!("blocks.{l}.attn.hook_{s}"));
            }
            if let Positions::Rotary { .. } = self.positions {
                v.push(format!("blocks.{l}.attn.hook_rot_q"));
                v.push(format!("blocks.{l}.attn.hook_rot_k"));
            }
            for s in ["attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid"] {
                v.push(format!("blocks.{l}.{s}"));
            }
            if self.d_mlp > 0 {
                norm_hooks(&mut v, &format!("blocks.{l}.ln2"));
                v.push(format!("blocks.{l}.mlp.hook_pre"));
                if self.gated() {
                    v.push(format!("blocks.{l}.mlp.hook_pre_linear"));
                }
                v.push(format!("blocks.{l}.mlp.hook_post"));
                v.push(format!("blocks.{l}.hook_mlp_out"));
            }
            v.push(format!("blocks.{l}.hook_resid_post"));
        }
        norm_hooks(&mut v, "ln_final");
        v.push("logits".into());
        v
    }

    /// The MLP has a gate matrix W_gate beside W_in.
    pub fn gated(&self) -> bool {
        matches!(self.mlp, MlpKind::Bilinear | MlpKind::SwiGlu)
    }

    /// Outputs per sequence: the vocabulary, times the context for a language model.
    pub fn output_dim(&self) -> usize {
        match self.readout {
            Readout::LastPosition => self.d_vocab_out,
            Readout::EveryPosition => self.n_ctx * self.d_vocab_out,
        }
    }

    /// Token ids `[batch, positions ≤ n_ctx]` (as f32) to logits (see [`Readout`]).
    pub(crate) fn forward(&self, p: &Params, x: Tensor<2>, rec: &mut Recorder) -> Tensor<2> {
        let [b, _] = x.dims();
        let logits = linear(self.forward_hidden(p, x, rec), self.unembedding(p), None);
        let [_, q, v] = logits.dims();
        logits.reshape([b, q * v])
    }

    /// The unembedding `[d_model, vocab]`: W_U, or W_Eᵀ when tied.
    pub(crate) fn unembedding(&self, p: &Params) -> Tensor<2> {
        if self.tied_embeddings {
            p.get::<2>("embed.W_E").transpose()
        } else {
            p.get("unembed.W_U")
        }
    }

    /// Token ids to the final normalised residual stream `[batch, read positions, d_model]`,
    /// which the unembedding turns into logits.
    pub(crate) fn forward_hidden(&self, p: &Params, x: Tensor<2>, rec: &mut Recorder) -> Tensor<3> {
        let [b, n] = x.dims();
        let embed = embedding(p.get::<2>("embed.W_E"), x.int());
        rec.record("hook_embed", &embed);
        let mut resid = embed;
        if self.positions == Positions::Learned {
            let pos = p.get::<2>("pos_embed.W_pos").narrow(0, 0, n).unsqueeze_dim::<3>(0).expand([b, n, self.d_model]);
            rec.record("hook_pos_embed", &pos);
            resid = resid + pos;
        }
        for l in 0..self.n_layers {
            let queries = match self.readout {
                Readout::LastPosition if l + 1 == self.n_layers => 1,
                _ => n,
            };
            rec.record(&format!("blocks.{l}.hook_resid_pre"), &resid);
            let normed = self.normalize(p, &format!("blocks.{l}.ln1"), resid.clone(), rec);
            let mut attn_out = self.attention(p, l, normed, queries, rec);
            if self.attn_residual_scale != 1.0 {
                attn_out = attn_out * self.attn_residual_scale;
            }
            rec.record(&format!("blocks.{l}.hook_attn_out"), &attn_out);
            resid = resid.narrow(1, n - queries, queries) + attn_out;
            rec.record(&format!("blocks.{l}.hook_resid_mid"), &resid);
            if self.d_mlp > 0 {
                let normed = self.normalize(p, &format!("blocks.{l}.ln2"), resid.clone(), rec);
                let out = self.mlp(p, l, normed, rec);
                rec.record(&format!("blocks.{l}.hook_mlp_out"), &out);
                resid = resid + out;
            }
            rec.record(&format!("blocks.{l}.hook_resid_post"), &resid);
        }
        self.normalize(p, "ln_final", resid, rec)
    }

    fn normalize(&self, p: &Params, name: &str, x: Tensor<3>, rec: &mut Recorder) -> Tensor<3> {
        let (centred, eps) = match self.norm {
            Norm::None => return x,
            Norm::LayerNorm { eps } => (x.clone() - x.mean_dim(2), eps),
            Norm::RmsNorm { eps } => (x, eps),
        };
        let scale = ((centred.clone() * centred.clone()).mean_dim(2) + eps).sqrt();
        rec.record(&format!("{name}.hook_scale"), &scale);
        let mut out = centred / scale;
        if let Norm::LayerNorm { .. } = self.norm {
            out = out * p.get::<1>(&format!("{name}.w")).unsqueeze_dims::<3>(&[0, 1]) + p.get::<1>(&format!("{name}.b")).unsqueeze_dims::<3>(&[0, 1]);
        }
        rec.record(&format!("{name}.hook_normalized"), &out);
        out
    }

    fn mlp(&self, p: &Params, l: usize, x: Tensor<3>, rec: &mut Recorder) -> Tensor<3> {
        let name = |s: &str| format!("blocks.{l}.mlp.{s}");
        let bias = |s: &str| self.mlp_bias.then(|| p.get::<1>(&name(s)));
        let pre = linear(x.clone(), p.get(&name("W_in")), bias("b_in"));
        let post = match self.mlp {
            MlpKind::Bilinear | MlpKind::SwiGlu => {
                let gate = linear(x, p.get(&name("W_gate")), None);
                rec.record(&name("hook_pre"), &gate);
                rec.record(&name("hook_pre_linear"), &pre);
                if self.mlp == MlpKind::SwiGlu { silu(gate) * pre } else { gate * pre }
            }
            kind => {
                rec.record(&name("hook_pre"), &pre);
                match kind {
                    MlpKind::Relu => relu(pre),
                    MlpKind::Gelu => gelu_exact(pre),
                    _ => gelu_approximate(pre),
                }
            }
        };
        rec.record(&name("hook_post"), &post);
        linear(post, p.get(&name("W_out")), bias("b_out"))
    }

    /// Causal multi-head attention of the last `queries` positions over all positions of `x`
    /// `[batch, n, d_model]`; returns `[batch, queries, d_model]`.
    fn attention(&self, p: &Params, l: usize, x: Tensor<3>, queries: usize, rec: &mut Recorder) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let (h, dh) = (self.n_heads, self.d_head);
        // [batch, positions, d] · W [h, d, dh] (+ b [h, dh]) -> [batch, h, positions, dh]
        let project = |x: Tensor<3>, m: &str| -> Tensor<4> {
            let [b, t, _] = x.dims();
            let w: Tensor<3> = p.get(&format!("blocks.{l}.attn.W_{m}"));
            let y = x.reshape([b * t, d]).matmul(w.swap_dims(0, 1).reshape([d, h * dh]));
            let y = if self.attn_bias { y + p.get::<2>(&format!("blocks.{l}.attn.b_{m}")).reshape([1, h * dh]) } else { y };
            y.reshape([b, t, h, dh]).swap_dims(1, 2)
        };
        let mut q = project(x.clone().narrow(1, n - queries, queries), "Q");
        let mut k = project(x.clone(), "K");
        let v = project(x, "V");
        for (name, t) in [("q", &q), ("k", &k), ("v", &v)] {
            rec.record(&format!("blocks.{l}.attn.hook_{name}"), &t.clone().swap_dims(1, 2));
        }
        if let Positions::Rotary { base } = self.positions {
            q = rotate(q, n - queries, base);
            k = rotate(k, 0, base);
            rec.record(&format!("blocks.{l}.attn.hook_rot_q"), &q.clone().swap_dims(1, 2));
            rec.record(&format!("blocks.{l}.attn.hook_rot_k"), &k.clone().swap_dims(1, 2));
        }
        let scores = q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt();
        // Query i sits at position n - queries + i and sees keys 0..=that position; tril_mask
        // is true above that diagonal.
        let mask = Tensor::<2, Bool>::tril_mask([queries, n], (n - queries) as i64, &scores.device());
        let scores = scores.mask_fill(mask.unsqueeze_dims::<4>(&[0, 1]).expand([b, h, queries, n]), f32::NEG_INFINITY);
        rec.record(&format!("blocks.{l}.attn.hook_attn_scores"), &scores);
        let pattern = softmax(scores, 3);
        rec.record(&format!("blocks.{l}.attn.hook_pattern"), &pattern);
        let z = pattern.matmul(v).swap_dims(1, 2); // [batch, queries, h, dh]
        rec.record(&format!("blocks.{l}.attn.hook_z"), &z);
        let w_o: Tensor<3> = p.get(&format!("blocks.{l}.attn.W_O"));
        let out = z.reshape([b * queries, h * dh]).matmul(w_o.reshape([h * dh, d]));
        let out = if self.attn_bias { out + p.get::<1>(&format!("blocks.{l}.attn.b_O")).unsqueeze_dim(0) } else { out };
        out.reshape([b, queries, d])
    }
}

/// Rotary embedding of `x` `[batch, heads, t, d_head]` whose rows sit at positions
/// `first..first + t`: x cos θ + rotate_half(x) sin θ, θ_{pos, i} = pos · base^(−2i/d_head) with
/// i taken modulo d_head/2 (the Hugging Face Llama convention).
fn rotate(x: Tensor<4>, first: usize, base: f64) -> Tensor<4> {
    let [_, _, t, dh] = x.dims();
    let half = dh / 2;
    let angle = |pos: usize, i: usize| pos as f64 * base.powf(-2.0 * (i % half) as f64 / dh as f64);
    let table = |f: fn(f64) -> f64| -> Tensor<4> {
        let values = (0..t).flat_map(|r| (0..dh).map(move |i| f(angle(first + r, i)) as f32)).collect();
        from_vec::<2>(values, [t, dh], &x.device()).unsqueeze_dims::<4>(&[0, 1])
    };
    let (cos, sin) = (table(f64::cos), table(f64::sin));
    let rotated = Tensor::cat(vec![x.clone().narrow(3, half, half).neg(), x.clone().narrow(3, 0, half)], 3);
    x * cos + rotated * sin
}

/// GELU with the exact error function. While training, its derivative comes from the same
/// vectorised host pass as its value: the result is x ⊙ D + (gelu(x) − x ⊙ D) with D = gelu′(x)
/// held constant, so autodiff records a product and a sum whose backward is one product. Burn's
/// own GELU backward recomputes erf and exp per element with libm, the largest elementwise cost
/// of a GPT-style training step.
fn gelu_exact(x: Tensor<3>) -> Tensor<3> {
    if !x.is_tracked() {
        return gelu(x);
    }
    let shape = x.dims();
    let inner = x.clone().inner();
    let device = inner.device();
    let host = HostValues::new(inner);
    let xs = host.as_ref();
    let (mut offset, mut derivative) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
    crate::vmath::gelu_erf_with_derivative(xs, &mut offset, &mut derivative);
    offset.iter_mut().zip(&derivative).zip(xs).for_each(|((v, &d), &x)| *v -= x * d);
    x * from_vec(derivative, shape, &device) + from_vec(offset, shape, &device)
}

/// x `[batch, positions, d_in]` · W `[d_in, d_out]` (+ b).
fn linear(x: Tensor<3>, w: Tensor<2>, b: Option<Tensor<1>>) -> Tensor<3> {
    let [batch, t, d_in] = x.dims();
    let d_out = w.dims()[1];
    let y = x.reshape([batch * t, d_in]).matmul(w);
    let y = match b {
        Some(b) => y + b.unsqueeze_dim(0),
        None => y,
    };
    y.reshape([batch, t, d_out])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{to_vec, train_device};

    /// The training path of `gelu_exact` (value and derivative from the host pass) against
    /// burn's GELU on the same tracked input: the same values and the same gradient.
    #[test]
    fn gelu_exact_matches_burns_gelu_and_its_gradient() {
        let dev = train_device();
        let xs: Vec<f32> = (0..2 * 3 * 37).map(|i| (i as f32 - 111.0) * 0.07).collect();
        let run = |ours: bool| {
            let x = from_vec(xs.clone(), [2, 3, 37], &dev).require_grad();
            let y = if ours { gelu_exact(x.clone()) } else { gelu(x.clone()) };
            // A weighted sum, so that each element's gradient is scaled differently.
            let weights = from_vec((0..xs.len()).map(|i| 1.0 + (i % 5) as f32).collect(), [2, 3, 37], &dev);
            let grads = (y.clone() * weights).sum().backward();
            (to_vec(y), to_vec(x.grad(&grads).unwrap()))
        };
        let (ours, burns) = (run(true), run(false));
        for (a, b) in [(&ours.0, &burns.0), (&ours.1, &burns.1)] {
            let worst = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs() / q.abs().max(1.0)));
            assert!(worst < 2e-6, "differs by {worst}");
        }
    }
}
