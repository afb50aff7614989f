//! A model as a chain of sections with folded biases, in f64 (the conventions of the LIB
//! reference code, ApolloResearch/rib).
//!
//! Node layer l is the input of section l; node activations are row vectors with a trailing
//! constant 1, and each folded weight maps that 1 to a pre-activation whose activation is 1
//! again, so every hidden node layer keeps its constant coordinate. The logits have none.
//! A transformer's first node layer has one row per position (see [`crate::transformer`]).

use crate::{Error, Result};
use faer::Mat;
use crate::transformer::{Attention, ResidualMlp};
use glassbox_core::model::{Activation, Architecture, Model};

/// What a section does after its folded linear map.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gate {
    Identity,
    Relu,
    Gelu,
    /// The pre-activation is [left | right]; the output is left ⊙ right (the bilinear layer of
    /// Pearce et al. 2024).
    Bilinear,
}

impl Gate {
    /// The pre-activation that the folded constant maps to: the root of act(x) = 1.
    fn constant_pre(self) -> f64 {
        match self {
            Gate::Identity | Gate::Relu | Gate::Bilinear => 1.0,
            Gate::Gelu => gelu_root_of_one(),
        }
    }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

/// d/dx x Φ(x) = Φ(x) + x φ(x) (burn's gelu is the exact erf form).
fn gelu_derivative(x: f64) -> f64 {
    let phi = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)) + x * phi
}

/// Newton's method on gelu(x) = 1 from x = 1 (gelu is increasing there).
fn gelu_root_of_one() -> f64 {
    let mut x = 1.0;
    for _ in 0..50 {
        x -= (gelu(x) - 1.0) / gelu_derivative(x);
    }
    x
}

/// One section: out = gate(f · weight), with f including its constant coordinate.
#[derive(Clone, Debug)]
pub struct Section {
    /// Parameter prefix in the checkpoint (e.g. `layers.0`).
    pub name: String,
    /// Folded weight in row form, D_in × P (P = 2·D_out for a bilinear section).
    pub weight: Mat<f64>,
    pub gate: Gate,
}

impl Section {
    pub fn in_width(&self) -> usize {
        self.weight.nrows()
    }

    pub fn out_width(&self) -> usize {
        match self.gate {
            Gate::Bilinear => self.weight.ncols() / 2,
            _ => self.weight.ncols(),
        }
    }

    pub fn pre(&self, f: &Mat<f64>) -> Mat<f64> {
        f * &self.weight
    }

    pub fn output_from_pre(&self, pre: &Mat<f64>) -> Mat<f64> {
        let (n, w) = (pre.nrows(), self.out_width());
        match self.gate {
            Gate::Identity => pre.clone(),
            Gate::Relu => Mat::from_fn(n, w, |r, c| pre[(r, c)].max(0.0)),
            Gate::Gelu => Mat::from_fn(n, w, |r, c| gelu(pre[(r, c)])),
            Gate::Bilinear => Mat::from_fn(n, w, |r, c| pre[(r, c)] * pre[(r, w + c)]),
        }
    }

    pub fn forward(&self, f: &Mat<f64>) -> Mat<f64> {
        self.output_from_pre(&self.pre(f))
    }

    /// The diagonal of ∂out/∂pre for each sample, N × P, integrated along the ray α·f from the
    /// zero baseline: Σ_α w_α gate'(α·pre) (pre is linear in f, bias included, so α·f gives α·pre).
    /// For a bilinear section ∂(l⊙r)/∂l = r and ∂/∂r = l, so the row is [r | l].
    pub fn gates(&self, pre: &Mat<f64>, rule: &Integration) -> Mat<f64> {
        let (n, p) = (pre.nrows(), pre.ncols());
        let points = rule.points();
        let w = self.out_width();
        Mat::from_fn(n, p, |r, c| {
            points
                .iter()
                .map(|&(alpha, weight)| {
                    let x = alpha * pre[(r, c)];
                    weight
                        * match self.gate {
                            Gate::Identity => 1.0,
                            Gate::Relu => (x > 0.0) as u8 as f64,
                            Gate::Gelu => gelu_derivative(x),
                            Gate::Bilinear => alpha * pre[(r, if c < w { c + w } else { c - w })],
                        }
                })
                .sum()
        })
    }

    /// T·C: the pre-activation-side image of output directions C (D_out × k), P × k. The
    /// per-sample Jacobian of f ↦ gate(f·W)·C is (T C)ᵀ diag(s) Wᵀ with s from [`Section::gates`].
    pub fn expand(&self, c: &Mat<f64>) -> Mat<f64> {
        match self.gate {
            Gate::Bilinear => {
                let w = self.out_width();
                Mat::from_fn(2 * w, c.ncols(), |r, j| c[(r % w, j)])
            }
            _ => c.clone(),
        }
    }
}

/// How gradients are integrated from the zero baseline (the LIB reference code's
/// `integration_method`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "rule")]
pub enum Integration {
    /// One point α = 1: the plain gradient (every released paper config).
    Gradient,
    /// n + 1 equispaced points in [ε, 1 − ε], ε = 1e-3/(n + 1), trapezoid weights.
    Trapezoid { intervals: usize },
}

impl Integration {
    /// (α, weight) pairs.
    pub fn points(&self) -> Vec<(f64, f64)> {
        match *self {
            Integration::Gradient => vec![(1.0, 1.0)],
            Integration::Trapezoid { intervals: 0 } => vec![(0.5, 1.0)],
            Integration::Trapezoid { intervals: n } => {
                let eps = 1e-3 / (n + 1) as f64;
                (0..=n)
                    .map(|i| {
                        let alpha = eps + (1.0 - 2.0 * eps) * i as f64 / n as f64;
                        let w = if i == 0 || i == n { 0.5 / n as f64 } else { 1.0 / n as f64 };
                        (alpha, w)
                    })
                    .collect()
            }
        }
    }
}

/// What maps node layer l to node layer l + 1.
#[derive(Clone, Debug)]
pub enum Module {
    /// gate(f · W), row by row (MLP layers, embeddings, the unembedding).
    Dense(Section),
    /// A transformer's attention with its residual, all positions in, the last one out.
    Attention(Attention),
    /// A transformer's MLP with its residual.
    ResidualMlp(ResidualMlp),
}

impl Module {
    /// Rows N·P_in (sample-major) to rows N·P_out.
    pub fn forward(&self, f: &Mat<f64>) -> Mat<f64> {
        match self {
            Module::Dense(s) => s.forward(f),
            Module::Attention(a) => a.forward(f),
            Module::ResidualMlp(m) => m.forward(f),
        }
    }

    /// Input rows per sample.
    pub fn positions_in(&self) -> usize {
        match self {
            Module::Attention(a) => a.positions,
            _ => 1,
        }
    }

    /// Input width, the constant included.
    pub fn in_width(&self) -> usize {
        match self {
            Module::Dense(s) => s.in_width(),
            Module::Attention(a) => a.width(),
            Module::ResidualMlp(m) => m.w_out.ncols(),
        }
    }
}

/// How a network's first node layer is made from a data set's inputs.
#[derive(Clone, Debug)]
pub enum Input {
    /// The inputs themselves with the constant appended.
    Features,
    /// Token ids (one f32 per position): row s of a sample is W_E[token_s] + W_pos[s] with the
    /// constant appended; `embed` is vocabulary × d, `positions` P × d.
    Tokens { embed: Mat<f64>, positions: Mat<f64> },
}

/// A model as folded sections; node layer l is the input of section l, the last one the logits.
#[derive(Clone, Debug)]
pub struct Network {
    pub sections: Vec<Module>,
    /// Names of the node layers: `input`, then the activation site each section writes.
    pub node_names: Vec<String>,
    pub input: Input,
}

/// Row form of a PyTorch Linear [out, in] plus bias, folded: (in + 1) × (out [+ 1]).
fn fold(w: &[f32], b: Option<&[f32]>, d_in: usize, d_out: usize, out_const: Option<f64>) -> Mat<f64> {
    let cols = d_out + out_const.is_some() as usize;
    Mat::from_fn(d_in + 1, cols, |j, h| match (j < d_in, h < d_out) {
        (true, true) => w[h * d_in + j] as f64,
        (false, true) => b.map_or(0.0, |b| b[h] as f64),
        (true, false) => 0.0,
        (false, false) => out_const.unwrap_or(0.0),
    })
}

impl Network {
    /// The sections of an MLP (optionally with its embedding) or a bilinear model. CNNs and
    /// SIRENs are not MLP-like; tanh never reaches 1, so its constant cannot be folded.
    pub fn from_model(model: &Model) -> Result<Network> {
        let host = model.params.to_host();
        let get = |name: &str| -> Result<&[f32]> {
            model.params.index(name).map(|i| host[i].as_slice()).ok_or_else(|| Error::invalid(format!("the model has no parameter '{name}'")))
        };
        let opt = |name: &str| model.params.index(name).map(|i| host[i].as_slice());
        let linear = |name: &str, d_in: usize, d_out: usize, gate: Gate, out_const: bool| -> Result<Module> {
            let weight = fold(get(&format!("{name}.weight"))?, opt(&format!("{name}.bias")), d_in, d_out, out_const.then(|| gate.constant_pre()));
            Ok(Module::Dense(Section { name: name.to_string(), weight, gate }))
        };
        let dense = |m: Result<Module>| -> Result<Section> {
            match m? {
                Module::Dense(s) => Ok(s),
                _ => unreachable!("linear() builds dense sections"),
            }
        };
        let mut sections = Vec::new();
        let mut names = vec!["input".to_string()];
        match &model.arch {
            Architecture::Transformer(t) => return crate::transformer::network(t, &get, &opt),
            Architecture::Mlp { dims, activation, embed, .. } => {
                let gate = match activation {
                    Activation::Relu => Gate::Relu,
                    Activation::Gelu => Gate::Gelu,
                    other => return Err(Error::invalid(format!("LIB folds biases through the activation, which must reach 1 at some input: relu or gelu, not {other:?}"))),
                };
                let mut widths = dims.clone();
                if let Some(d) = *embed {
                    sections.push(linear("embed", dims[0], d, Gate::Identity, true)?);
                    names.push("embed".into());
                    widths[0] = d;
                }
                let n = widths.len() - 1;
                for i in 0..n - 1 {
                    sections.push(linear(&format!("layers.{i}"), widths[i], widths[i + 1], gate, true)?);
                    names.push(format!("layers.{i}.post"));
                }
                sections.push(linear("head", widths[n - 1], widths[n], Gate::Identity, false)?);
            }
            Architecture::Bilinear { d_in, d_hidden, d_out, embed, .. } => {
                let mut width = *d_in;
                if *embed {
                    sections.push(linear("embed", *d_in, *d_hidden, Gate::Identity, true)?);
                    names.push("embed".into());
                    width = *d_hidden;
                }
                let left = dense(linear("layers.0.w", width, *d_hidden, Gate::Identity, true))?.weight;
                let right = dense(linear("layers.0.v", width, *d_hidden, Gate::Identity, true))?.weight;
                let h = left.ncols();
                let weight = Mat::from_fn(width + 1, 2 * h, |j, c| if c < h { left[(j, c)] } else { right[(j, c - h)] });
                sections.push(Module::Dense(Section { name: "layers.0".into(), weight, gate: Gate::Bilinear }));
                names.push("layers.0.post".into());
                sections.push(linear("head", *d_hidden, *d_out, Gate::Identity, false)?);
            }
            other => {
                return Err(Error::invalid(format!("LIB needs an MLP-like model (mlp or bilinear); this is a {} model", other.kind_name())));
            }
        }
        names.push("logits".into());
        Ok(Network { sections, node_names: names, input: Input::Features })
    }

    /// Number of node layers, logits included.
    pub fn len(&self) -> usize {
        self.sections.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// The first node layer for N inputs (row-major f32 as glassbox data sets store them): the
    /// inputs with the constant appended, or a transformer's embedded tokens (P rows each).
    pub fn fold_input(&self, inputs: &[f32], n: usize) -> Mat<f64> {
        let d = self.sections[0].in_width() - 1;
        match &self.input {
            Input::Features => Mat::from_fn(n, d + 1, |r, j| if j < d { inputs[r * d + j] as f64 } else { 1.0 }),
            Input::Tokens { embed, positions } => {
                let p = positions.nrows();
                Mat::from_fn(n * p, d + 1, |r, j| if j < d { embed[(inputs[r] as usize, j)] + positions[(r % p, j)] } else { 1.0 })
            }
        }
    }

    /// Samples in a first node layer of `rows` rows.
    pub fn samples(&self, rows: usize) -> usize {
        rows / self.sections[0].positions_in()
    }

    /// Every node layer's activations, f_0 (input) … f_L (logits).
    pub fn node_activations(&self, f0: Mat<f64>) -> Vec<Mat<f64>> {
        let mut acts = vec![f0];
        for s in &self.sections {
            let next = s.forward(acts.last().unwrap());
            acts.push(next);
        }
        acts
    }

    /// The logits when node layer `l` holds `f` (sections l, l+1, … run on it).
    pub fn run_from(&self, l: usize, f: Mat<f64>) -> Mat<f64> {
        self.sections[l..].iter().fold(f, |f, s| s.forward(&f))
    }
}

/// Fraction of rows whose largest logit is at the label.
pub fn accuracy(logits: &Mat<f64>, labels: &[usize]) -> f64 {
    let hits = (0..logits.nrows())
        .filter(|&r| {
            let mut best = 0;
            for c in 1..logits.ncols() {
                if logits[(r, c)] > logits[(r, best)] {
                    best = c;
                }
            }
            best == labels[r]
        })
        .count();
    hits as f64 / logits.nrows().max(1) as f64
}
