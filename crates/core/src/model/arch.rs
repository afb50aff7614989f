//! The architectures: their parameters, activation sites and forward passes.

use super::params::{Init, ParamSpec, Params};
use super::transformer::TransformerConfig;
use super::Recorder;
use crate::tensor::Tensor;
use crate::{Error, Result};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Gelu,
    Tanh,
    Sin,
}

impl Activation {
    pub fn apply<const D: usize>(self, t: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => relu(t),
            Activation::Gelu => gelu(t),
            Activation::Tanh => t.tanh(),
            Activation::Sin => t.sin(),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "relu" => Ok(Activation::Relu),
            "gelu" => Ok(Activation::Gelu),
            "tanh" => Ok(Activation::Tanh),
            "sin" => Ok(Activation::Sin),
            _ => Err(Error::invalid(format!("unknown activation '{s}' (relu, gelu, tanh, sin)"))),
        }
    }
}

/// What a model is, independent of its weights. Stored in `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Architecture {
    /// `dims[0] -> dims[1] -> ... -> dims[n]`, activation after every layer but the last.
    /// With `embed: Some(d)` a linear embedding without bias or activation maps the input to
    /// width d first (the modular-addition MLP of the LIB paper, Bushnaq et al. 2024:
    /// `E_a[a] + E_b[b]`).
    Mlp {
        dims: Vec<usize>,
        activation: Activation,
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        embed: Option<usize>,
    },
    /// The image model of the bilinear-MLP paper (Pearce et al. 2024):
    /// logits = U((W E x + b1) ⊙ (V E x + b2)); biases only if `bias`. Without `embed` there is
    /// no E: logits = U((W x + b1) ⊙ (V x + b2)) (the Boolean toy and modular addition).
    Bilinear {
        d_in: usize,
        d_hidden: usize,
        d_out: usize,
        bias: bool,
        #[serde(default = "yes")]
        embed: bool,
    },
    /// conv(k, same padding) -> relu -> maxpool 2, per entry of `channels`; then
    /// linear `hidden` -> relu -> linear `d_out`.
    Cnn { image: [usize; 3], channels: Vec<usize>, kernel: usize, hidden: usize, d_out: usize },
    /// SIREN implicit neural representation: sin(w0 (W x + b)) layers, linear output.
    Siren { dims: Vec<usize>, w0: f64 },
    /// A decoder-only transformer over token ids (see [`TransformerConfig`]).
    Transformer(TransformerConfig),
}

fn yes() -> bool {
    true
}

fn linear(name: &str, d_in: usize, d_out: usize, bias: bool, init: Init) -> Vec<ParamSpec> {
    let mut v = vec![ParamSpec::new(format!("{name}.weight"), &[d_out, d_in], init)];
    if bias {
        v.push(ParamSpec::new(format!("{name}.bias"), &[d_out], init));
    }
    v
}

/// x @ W^T + b with a PyTorch-layout weight `[out, in]`, computed as (W @ x^T)^T: then the
/// weight gradient dy^T @ x comes out in W's own layout, and the flat parameter needs no
/// transposing copy on every backward pass (burn-flex's gemm takes strided operands).
fn apply_linear(p: &Params, name: &str, x: Tensor<2>, bias: bool) -> Tensor<2> {
    let y = p.get::<2>(&format!("{name}.weight")).matmul(x.transpose()).transpose();
    if bias {
        y + p.get::<1>(&format!("{name}.bias")).unsqueeze_dim(0)
    } else {
        y
    }
}

impl Architecture {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Architecture::Mlp { .. } => "mlp",
            Architecture::Bilinear { .. } => "bilinear",
            Architecture::Cnn { .. } => "cnn",
            Architecture::Siren { .. } => "siren",
            Architecture::Transformer(_) => "transformer",
        }
    }

    pub fn input_dim(&self) -> usize {
        match self {
            Architecture::Mlp { dims, .. } | Architecture::Siren { dims, .. } => dims[0],
            Architecture::Bilinear { d_in, .. } => *d_in,
            Architecture::Cnn { image, .. } => image.iter().product(),
            Architecture::Transformer(t) => t.n_ctx,
        }
    }

    pub fn output_dim(&self) -> usize {
        match self {
            Architecture::Mlp { dims, .. } | Architecture::Siren { dims, .. } => *dims.last().unwrap(),
            Architecture::Bilinear { d_out, .. } | Architecture::Cnn { d_out, .. } => *d_out,
            Architecture::Transformer(t) => t.output_dim(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::invalid(format!("{} architecture: {m}", self.kind_name())));
        match self {
            Architecture::Mlp { dims, embed, .. } => {
                if dims.len() < 2 || dims.contains(&0) || *embed == Some(0) {
                    return bad("needs at least two non-zero layer sizes and a non-zero embedding");
                }
            }
            Architecture::Siren { dims, .. } => {
                if dims.len() < 2 || dims.contains(&0) {
                    return bad("needs at least two non-zero layer sizes");
                }
            }
            Architecture::Bilinear { d_in, d_hidden, d_out, .. } => {
                if *d_in == 0 || *d_hidden == 0 || *d_out == 0 {
                    return bad("sizes must be non-zero");
                }
            }
            Architecture::Cnn { image, channels, kernel, hidden, d_out } => {
                if image.contains(&0) || channels.is_empty() || channels.contains(&0) {
                    return bad("image and channels must be non-zero");
                }
                if kernel % 2 == 0 || *hidden == 0 || *d_out == 0 {
                    return bad("kernel must be odd, hidden and d_out non-zero");
                }
                let shrink = 1usize << channels.len();
                if image[1] < shrink || image[2] < shrink {
                    return bad("image too small for that many pooling stages");
                }
            }
            Architecture::Transformer(t) => t.validate()?,
        }
        Ok(())
    }

    /// Feature map size after the conv stages of a CNN: (channels, h, w).
    fn cnn_features(image: &[usize; 3], channels: &[usize]) -> (usize, usize, usize) {
        let (mut h, mut w) = (image[1], image[2]);
        for _ in channels {
            h /= 2;
            w /= 2;
        }
        (*channels.last().unwrap(), h, w)
    }

    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut specs = Vec::new();
        match self {
            Architecture::Mlp { dims, bias, embed: None, .. } => {
                let n = dims.len() - 1;
                for i in 0..n {
                    let name = if i + 1 == n { "head".to_string() } else { format!("layers.{i}") };
                    specs.extend(linear(&name, dims[i], dims[i + 1], *bias, Init::Uniform { fan_in: dims[i] }));
                }
            }
            Architecture::Mlp { dims, bias, embed: Some(d), .. } => {
                // The LIB paper's modular-addition MLP (Bushnaq et al. 2024): every weight
                // N(0, 1/fan) with fan the width the weight reads after embedding (d for E and
                // the first layer), biases zero.
                specs.push(ParamSpec::new("embed.weight", &[*d, dims[0]], Init::Normal { fan: *d }));
                let mut widths = dims.clone();
                widths[0] = *d;
                let n = widths.len() - 1;
                for i in 0..n {
                    let name = if i + 1 == n { "head".to_string() } else { format!("layers.{i}") };
                    specs.push(ParamSpec::new(format!("{name}.weight"), &[widths[i + 1], widths[i]], Init::Normal { fan: widths[i] }));
                    if *bias {
                        specs.push(ParamSpec::new(format!("{name}.bias"), &[widths[i + 1]], Init::Zeros));
                    }
                }
            }
            Architecture::Bilinear { d_in, d_hidden: h, d_out, bias, embed } => {
                let layer_in = if *embed { *h } else { *d_in };
                if *embed {
                    specs.extend(linear("embed", *d_in, *h, false, Init::Uniform { fan_in: *d_in }));
                }
                specs.extend(linear("layers.0.w", layer_in, *h, *bias, Init::Uniform { fan_in: layer_in }));
                specs.extend(linear("layers.0.v", layer_in, *h, *bias, Init::Uniform { fan_in: layer_in }));
                specs.extend(linear("head", *h, *d_out, false, Init::Uniform { fan_in: *h }));
            }
            Architecture::Cnn { image, channels, kernel, hidden, d_out } => {
                let mut c_in = image[0];
                for (i, &c) in channels.iter().enumerate() {
                    let init = Init::Uniform { fan_in: c_in * kernel * kernel };
                    specs.push(ParamSpec::new(format!("convs.{i}.weight"), &[c, c_in, *kernel, *kernel], init));
                    specs.push(ParamSpec::new(format!("convs.{i}.bias"), &[c], init));
                    c_in = c;
                }
                let (c, h, w) = Self::cnn_features(image, channels);
                let flat = c * h * w;
                specs.extend(linear("fc", flat, *hidden, true, Init::Uniform { fan_in: flat }));
                specs.extend(linear("head", *hidden, *d_out, true, Init::Uniform { fan_in: *hidden }));
            }
            Architecture::Siren { dims, w0 } => {
                let n = dims.len() - 1;
                for i in 0..n {
                    let init = if i == 0 {
                        Init::SirenFirst { fan_in: dims[0] }
                    } else {
                        Init::SirenHidden { fan_in: dims[i], w0_milli: (w0 * 1000.0).round() as u32 }
                    };
                    let name = if i + 1 == n { "head".to_string() } else { format!("layers.{i}") };
                    specs.extend(linear(&name, dims[i], dims[i + 1], true, init));
                }
            }
            Architecture::Transformer(t) => specs = t.param_specs(),
        }
        specs
    }

    /// Every activation site, in forward order.
    pub fn site_names(&self) -> Vec<String> {
        let mut v = Vec::new();
        match self {
            Architecture::Mlp { dims, embed, .. } => {
                if embed.is_some() {
                    v.push("embed".to_string());
                }
                for i in 0..dims.len() - 2 {
                    v.push(format!("layers.{i}.pre"));
                    v.push(format!("layers.{i}.post"));
                }
            }
            Architecture::Siren { dims, .. } => {
                for i in 0..dims.len() - 2 {
                    v.push(format!("layers.{i}.pre"));
                    v.push(format!("layers.{i}.post"));
                }
            }
            Architecture::Bilinear { embed, .. } => {
                if *embed {
                    v.push("embed".to_string());
                }
                for s in ["layers.0.left", "layers.0.right", "layers.0.post"] {
                    v.push(s.to_string());
                }
            }
            Architecture::Cnn { channels, .. } => {
                for i in 0..channels.len() {
                    for s in ["pre", "post", "pool"] {
                        v.push(format!("convs.{i}.{s}"));
                    }
                }
                v.push("fc.pre".into());
                v.push("fc.post".into());
            }
            Architecture::Transformer(t) => return t.site_names(),
        }
        v.push("logits".into());
        v
    }

    pub(crate) fn forward(&self, p: &Params, x: Tensor<2>, rec: &mut Recorder) -> Tensor<2> {
        let out = match self {
            Architecture::Mlp { dims, activation, bias, embed } => {
                let mut h = x;
                if embed.is_some() {
                    h = apply_linear(p, "embed", h, false);
                    rec.record("embed", &h);
                }
                for i in 0..dims.len() - 2 {
                    let pre = apply_linear(p, &format!("layers.{i}"), h, *bias);
                    rec.record(&format!("layers.{i}.pre"), &pre);
                    h = activation.apply(pre);
                    rec.record(&format!("layers.{i}.post"), &h);
                }
                apply_linear(p, "head", h, *bias)
            }
            Architecture::Bilinear { bias, embed, .. } => {
                let e = if *embed {
                    let e = apply_linear(p, "embed", x, false);
                    rec.record("embed", &e);
                    e
                } else {
                    x
                };
                let left = apply_linear(p, "layers.0.w", e.clone(), *bias);
                rec.record("layers.0.left", &left);
                let right = apply_linear(p, "layers.0.v", e, *bias);
                rec.record("layers.0.right", &right);
                let g = left * right;
                rec.record("layers.0.post", &g);
                apply_linear(p, "head", g, false)
            }
            Architecture::Cnn { image, channels, kernel, .. } => {
                let b = x.dims()[0];
                let mut h: Tensor<4> = x.reshape([b, image[0], image[1], image[2]]);
                let pad = kernel / 2;
                for i in 0..channels.len() {
                    let w = p.get::<4>(&format!("convs.{i}.weight"));
                    let bias = p.get::<1>(&format!("convs.{i}.bias"));
                    let pre = conv2d(h, w, Some(bias), ConvOptions::new([1, 1], [pad, pad], [1, 1], 1));
                    rec.record(&format!("convs.{i}.pre"), &pre);
                    let post = relu(pre);
                    rec.record(&format!("convs.{i}.post"), &post);
                    h = max_pool2d(post, MaxPoolOptions::new([2, 2]));
                    rec.record(&format!("convs.{i}.pool"), &h);
                }
                let flat: Tensor<2> = h.flatten(1, 3);
                let pre = apply_linear(p, "fc", flat, true);
                rec.record("fc.pre", &pre);
                let post = relu(pre);
                rec.record("fc.post", &post);
                apply_linear(p, "head", post, true)
            }
            Architecture::Siren { dims, w0 } => {
                let mut h = x;
                for i in 0..dims.len() - 2 {
                    let pre = apply_linear(p, &format!("layers.{i}"), h, true);
                    rec.record(&format!("layers.{i}.pre"), &pre);
                    h = (pre * *w0).sin();
                    rec.record(&format!("layers.{i}.post"), &h);
                }
                apply_linear(p, "head", h, true)
            }
            Architecture::Transformer(t) => t.forward(p, x, rec),
        };
        rec.record("logits", &out);
        out
    }
}
