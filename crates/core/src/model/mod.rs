//! Models with named activation sites (TransformerLens-style names such as `layers.0.pre`).
//!
//! A [`Model`] is an [`Architecture`] (serialisable, stored in `model.json`) plus named
//! [`Params`]. `forward` runs on any device; `forward_sites` also returns chosen activations.

mod arch;
pub mod hf_layout;
pub mod params;
pub mod transformer;

pub use arch::{Activation, Architecture};
pub use params::{Init, ParamSpec, Params};
pub use transformer::{InitScheme, MlpKind, Norm, Positions, Readout, TransformerConfig};

use crate::tensor::{Device, Tensor};
use crate::{Error, Result};

/// An activation recorded at a named site, flattened to `[batch, features]`;
/// `shape` is the per-sample shape before flattening (e.g. `[16, 28, 28]` for a conv map).
#[derive(Clone, Debug)]
pub struct SiteValue {
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Tensor<2>,
}

/// Collects the activations a caller asked for; records nothing for a plain forward pass.
pub(crate) struct Recorder<'a> {
    wanted: &'a [String],
    pub(crate) found: Vec<SiteValue>,
}

impl Recorder<'_> {
    pub(crate) fn record<const D: usize>(&mut self, name: &str, t: &Tensor<D>) {
        if self.wanted.iter().any(|w| w == name) {
            let dims = t.dims();
            let features: usize = dims[1..].iter().product();
            self.found.push(SiteValue {
                name: name.to_string(),
                shape: dims[1..].to_vec(),
                value: t.clone().reshape([dims[0], features]),
            });
        }
    }
}

#[derive(Clone, Debug)]
pub struct Model {
    pub arch: Architecture,
    pub params: Params,
}

impl Model {
    /// A freshly initialised model; the same seed always gives the same weights.
    pub fn init(arch: Architecture, seed: u64, device: &Device) -> Result<Self> {
        arch.validate()?;
        let params = Params::init(arch.param_specs(), seed, device);
        Ok(Model { arch, params })
    }

    /// Inputs `[batch, input_dim]` to outputs `[batch, n_outputs]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut rec = Recorder { wanted: &[], found: Vec::new() };
        self.arch.forward(&self.params, x, &mut rec)
    }

    /// A transformer's final normalised residual stream `[batch, read positions, d_model]` and
    /// its unembedding `[d_model, vocab]`, whose product is [`forward`](Self::forward)'s logits:
    /// language-model training fuses that product with the loss. None for other architectures.
    pub fn hidden_and_unembedding(&self, x: Tensor<2>) -> Option<(Tensor<3>, Tensor<2>)> {
        let Architecture::Transformer(t) = &self.arch else { return None };
        let mut rec = Recorder { wanted: &[], found: Vec::new() };
        Some((t.forward_hidden(&self.params, x, &mut rec), t.unembedding(&self.params)))
    }

    /// The outputs and the activations at `sites`, in the order asked for.
    /// An unknown site is an error that lists the valid names.
    pub fn forward_sites(&self, x: Tensor<2>, sites: &[String]) -> Result<(Tensor<2>, Vec<SiteValue>)> {
        self.check_sites(sites)?;
        let mut rec = Recorder { wanted: sites, found: Vec::new() };
        let out = self.arch.forward(&self.params, x, &mut rec);
        let mut found = rec.found;
        found.sort_by_key(|s| sites.iter().position(|w| *w == s.name));
        Ok((out, found))
    }

    pub fn site_names(&self) -> Vec<String> {
        self.arch.site_names()
    }

    pub fn check_sites(&self, sites: &[String]) -> Result<()> {
        let valid = self.site_names();
        for s in sites {
            if !valid.contains(s) {
                return Err(Error::invalid(format!(
                    "unknown activation site '{s}'; this {} model has: {}",
                    self.arch.kind_name(),
                    valid.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn to_device(&self, device: &Device) -> Model {
        Model { arch: self.arch.clone(), params: self.params.to_device(device) }
    }
}

/// A model on an autodiff device with frozen weights, for gradients with respect to its inputs
/// (activation maximisation): only the input is tracked, so no weight gradient is ever formed.
pub struct InputGradients {
    model: Model,
    device: Device,
}

impl InputGradients {
    pub fn new(model: &Model) -> Self {
        let device = crate::tensor::train_device();
        // Params::from_host leaves the values untracked; nothing calls require_grad on them.
        let params = Params::from_host(model.params.specs.clone(), model.params.to_host(), &device);
        InputGradients { model: Model { arch: model.arch.clone(), params }, device }
    }

    /// For `n` inputs (row-major `[n, input_dim]`): the scores s_r = site(x_r) · `direction` and
    /// the gradient of Σ_r s_r with respect to x, row-major like x.
    pub fn along(&self, x: Vec<f32>, n: usize, site: &str, direction: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let input_dim = self.model.arch.input_dim();
        if x.len() != n * input_dim {
            return Err(Error::invalid(format!("{} input values for {n} inputs of {input_dim}", x.len())));
        }
        let x = crate::tensor::from_vec(x, [n, input_dim], &self.device).require_grad();
        let (_, sites) = self.model.forward_sites(x.clone(), &[site.to_string()])?;
        let a = sites.into_iter().next().expect("forward_sites returns the site asked for").value;
        if a.dims()[1] != direction.len() {
            return Err(Error::invalid(format!("site '{site}' has {} features but the direction has {}", a.dims()[1], direction.len())));
        }
        let dir = crate::tensor::from_vec(direction.to_vec(), [1, direction.len()], &self.device);
        let scores = (a * dir).sum_dim(1).reshape([n]);
        let grads = scores.clone().sum().backward();
        let dx = x.grad(&grads).expect("the input is tracked");
        Ok((crate::tensor::to_vec(scores), crate::tensor::to_vec(dx)))
    }
}
