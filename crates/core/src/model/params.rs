//! Named parameters. Every model keeps its weights as a flat list of named tensors so that
//! checkpoints, optimisers and analyses see the same names and PyTorch layouts
//! (`Linear` weights are `[out, in]`, convolution weights `[out, in, kh, kw]`).

use crate::tensor::{from_vec, to_vec, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A parameter's name and shape, known before any value exists (used to check checkpoints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

/// How a parameter is initialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for Linear and Conv2d.
    Uniform { fan_in: usize },
    /// SIREN: first layer U(-1/fan_in, 1/fan_in), later layers U(-sqrt(6/fan_in)/w0, ..).
    SirenFirst { fan_in: usize },
    SirenHidden { fan_in: usize, w0_milli: u32 },
    /// N(0, 1/fan) (the modular-addition MLP of the LIB paper, Bushnaq et al. 2024).
    Normal { fan: usize },
    Zeros,
    Ones,
}

impl ParamSpec {
    pub fn new(name: impl Into<String>, shape: &[usize], init: Init) -> Self {
        ParamSpec { name: name.into(), shape: shape.to_vec(), init }
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Uniform bound, or the standard deviation for `Normal`.
    fn bound(&self) -> f64 {
        match self.init {
            Init::Normal { fan } => 1.0 / (fan as f64).sqrt(),
            Init::Zeros | Init::Ones => 0.0,
            Init::Uniform { fan_in } => 1.0 / (fan_in as f64).sqrt(),
            Init::SirenFirst { fan_in } => 1.0 / fan_in as f64,
            Init::SirenHidden { fan_in, w0_milli } => {
                (6.0 / fan_in as f64).sqrt() / (w0_milli as f64 / 1000.0)
            }
        }
    }
}

/// Named parameter values, each stored flat; models reshape them in `forward`.
#[derive(Clone, Debug)]
pub struct Params {
    pub specs: Vec<ParamSpec>,
    pub values: Vec<Tensor<1>>,
}

impl Params {
    /// Seeded initialisation: the same specs and seed give the same values on any machine.
    pub fn init(specs: Vec<ParamSpec>, seed: u64, device: &Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values = specs
            .iter()
            .map(|s| {
                let b = s.bound();
                let v: Vec<f32> = match s.init {
                    Init::Zeros => vec![0.0; s.numel()],
                    Init::Ones => vec![1.0; s.numel()],
                    Init::Normal { .. } => (0..s.numel()).map(|_| (b * rng.sample::<f64, _>(rand_distr::StandardNormal)) as f32).collect(),
                    _ => (0..s.numel()).map(|_| rng.random_range(-b..b) as f32).collect(),
                };
                from_vec(v, [s.numel()], device)
            })
            .collect();
        Params { specs, values }.require_grad()
    }

    /// Build from flat host values (e.g. read from a checkpoint); lengths must match the specs.
    pub fn from_host(specs: Vec<ParamSpec>, host: Vec<Vec<f32>>, device: &Device) -> Self {
        let values = specs
            .iter()
            .zip(host)
            .map(|(s, v)| {
                assert_eq!(v.len(), s.numel(), "{} has the wrong length", s.name);
                from_vec(v, [s.numel()], device)
            })
            .collect();
        Params { specs, values }
    }

    /// Mark every value as a leaf that keeps its gradient (no-op without autodiff).
    pub fn require_grad(mut self) -> Self {
        if self.values.first().is_some_and(|v| v.is_autodiff()) {
            self.values = self.values.into_iter().map(|v| v.detach().require_grad()).collect();
        }
        self
    }

    pub fn to_host(&self) -> Vec<Vec<f32>> {
        self.values.iter().map(|v| to_vec(v.clone())).collect()
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    /// The value of `name` reshaped to the shape its `ParamSpec` gives.
    pub fn get<const D: usize>(&self, name: &str) -> Tensor<D> {
        let i = self.index(name).unwrap_or_else(|| panic!("no parameter {name}"));
        let shape: [usize; D] = self.specs[i]
            .shape
            .clone()
            .try_into()
            .unwrap_or_else(|_| panic!("parameter {name} does not have rank {D}"));
        self.values[i].clone().reshape(shape)
    }

    pub fn numel(&self) -> usize {
        self.specs.iter().map(ParamSpec::numel).sum()
    }

    /// The same values on another device (e.g. a trained model moved to inference).
    pub fn to_device(&self, device: &Device) -> Self {
        Params::from_host(self.specs.clone(), self.to_host(), device)
    }
}
