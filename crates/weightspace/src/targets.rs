//! The frozen networks a reader probes: every model of a zoo, run on a batch of probe inputs,
//! with the gradient of a downstream loss back to those inputs (never to the models' weights:
//! the zoo is data).

use crate::probes::ProbeSpace;
use crate::{Error, Result};
use glassbox_zoo::accuracy_zoo::Classifier;
use glassbox_zoo::cnn::Cnn;
use glassbox_zoo::inr;
use glassbox_zoo::mlp::{Activation, Mlp};
use glassbox_zoo::store::Zoo;

pub trait Targets: Sync {
    /// What the backward pass of one model needs from its forward pass.
    type Trace: Send + Sync;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values per probe input (2 for an INR's coordinates, 64 for an 8×8 image).
    fn input_dim(&self) -> usize;
    /// Values per probe output (1 for an INR, 10 logits for a classifier).
    fn output_dim(&self) -> usize;
    /// Model m's outputs on the P inputs `x` (P × input_dim, row-major): P × output_dim.
    fn forward(&self, m: usize, x: &[f32]) -> (Vec<f32>, Self::Trace);
    /// The gradient of Σ d_out ⊙ outputs with respect to `x`.
    fn input_grad(&self, m: usize, x: &[f32], trace: &Self::Trace, d_out: &[f32]) -> Vec<f32>;
}

/// SIREN INRs (zoo family "inr"), flat parameter vectors as the zoo stores them.
pub struct InrTargets<'a> {
    pub params: &'a [Vec<f32>],
}

fn as_points(x: &[f32]) -> Vec<[f32; 2]> {
    x.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}

impl Targets for InrTargets<'_> {
    type Trace = inr::Trace;
    fn len(&self) -> usize {
        self.params.len()
    }
    fn input_dim(&self) -> usize {
        2
    }
    fn output_dim(&self) -> usize {
        1
    }
    fn forward(&self, m: usize, x: &[f32]) -> (Vec<f32>, inr::Trace) {
        inr::forward(&self.params[m], &as_points(x))
    }
    fn input_grad(&self, m: usize, x: &[f32], trace: &inr::Trace, d_out: &[f32]) -> Vec<f32> {
        let points = as_points(x);
        let mut dx = vec![[0f32; 2]; points.len()];
        inr::backward(&self.params[m], &points, trace, d_out, None, Some(&mut dx));
        dx.into_iter().flatten().collect()
    }
}

/// The trained classifiers of an accuracy zoo (family "mlp" or "cnn"), each with its own
/// activation.
pub struct ClassifierTargets<'a, N: Classifier> {
    pub net: N,
    pub params: &'a [Vec<f32>],
    pub activations: Vec<Activation>,
}

impl<N: Classifier> Targets for ClassifierTargets<'_, N>
where
    N::Trace: Send + Sync,
{
    type Trace = N::Trace;
    fn len(&self) -> usize {
        self.params.len()
    }
    fn input_dim(&self) -> usize {
        self.net.input_dim()
    }
    fn output_dim(&self) -> usize {
        self.net.output_dim()
    }
    fn forward(&self, m: usize, x: &[f32]) -> (Vec<f32>, Self::Trace) {
        self.net.forward(&self.params[m], self.activations[m], x)
    }
    fn input_grad(&self, m: usize, x: &[f32], trace: &Self::Trace, d_out: &[f32]) -> Vec<f32> {
        self.net.input_grad(&self.params[m], self.activations[m], x, trace, d_out)
    }
}

/// Every model's activation, from labels.json.
fn activations(zoo: &Zoo) -> Result<Vec<Activation>> {
    zoo.label_strings("activation")?
        .iter()
        .map(|a| Activation::parse(a).ok_or_else(|| Error::format(zoo.dir.join("labels.json"), format!("unknown activation '{a}' (relu or tanh)"))))
        .collect()
}

/// The models of a loaded zoo, whichever family it holds.
pub enum ZooTargets<'a> {
    Inr(InrTargets<'a>),
    Mlp(ClassifierTargets<'a, Mlp>),
    Cnn(ClassifierTargets<'a, Cnn>),
}

pub enum ZooTrace {
    /// Boxed: an INR trace is five matrices' headers, far bigger than an MLP trace.
    Inr(Box<inr::Trace>),
    Mlp(glassbox_zoo::mlp::Trace),
    Cnn(glassbox_zoo::cnn::Trace),
}

impl<'a> ZooTargets<'a> {
    /// INR zoos, and MLP zoos whose labels name each model's activation.
    pub fn of(zoo: &'a Zoo) -> Result<ZooTargets<'a>> {
        match zoo.spec.family.as_str() {
            "inr" => {
                let expected = inr::tensors();
                if zoo.spec.tensors != expected {
                    return Err(Error::format(zoo.dir.join("zoo.json"), format!("an INR zoo must hold the SIREN 2-32-32-1 tensors {expected:?}, this one holds {:?}", zoo.spec.tensors)));
                }
                Ok(ZooTargets::Inr(InrTargets {
                    params: &zoo.params,
                }))
            }
            "mlp" => {
                let net = Mlp::from_tensors(&zoo.spec.tensors).ok_or_else(|| Error::format(zoo.dir.join("zoo.json"), format!("the tensors {:?} are not an MLP's (layers.i.weight/bias …, head.weight/bias, widths chaining)", zoo.spec.tensors)))?;
                let activations = activations(zoo)?;
                Ok(ZooTargets::Mlp(ClassifierTargets {
                    net,
                    params: &zoo.params,
                    activations,
                }))
            }
            "cnn" => {
                let g = &zoo.spec.generation;
                let int = |key: &str| g.get(key).and_then(|v| v.as_u64());
                // Readers probe with 28×28 images, and the network runs with the zoo CNN's kernel, stride and padding.
                let want = glassbox_zoo::cnn::geometry(28);
                if ["side", "kernel", "stride", "padding"].iter().any(|&key| int(key) != want[key].as_u64()) {
                    return Err(Error::format(zoo.dir.join("zoo.json"), format!("CNN readers need side 28, kernel 3, stride 2 and padding 1 in 'generation'; it records side {:?}, kernel {:?}, stride {:?}, padding {:?}", int("side"), int("kernel"), int("stride"), int("padding"))));
                }
                let net = Cnn::from_tensors(&zoo.spec.tensors, 28).ok_or_else(|| Error::format(zoo.dir.join("zoo.json"), format!("the tensors {:?} are not a glassbox zoo CNN's (convs.l.weight/bias chaining from one channel into head.weight/bias)", zoo.spec.tensors)))?;
                Ok(ZooTargets::Cnn(ClassifierTargets { net, params: &zoo.params, activations: activations(zoo)? }))
            }
            other => Err(Error::format(
                zoo.dir.join("zoo.json"),
                format!("readers know the model families 'inr', 'mlp' and 'cnn', not '{other}'"),
            )),
        }
    }

    /// Where this family's probes live.
    pub fn probe_space(&self) -> ProbeSpace {
        match self {
            ZooTargets::Inr(_) => ProbeSpace::inr(),
            ZooTargets::Mlp(t) => ProbeSpace::image(t.net.input_dim()),
            ZooTargets::Cnn(_) => ProbeSpace::image28(),
        }
    }
}

impl Targets for ZooTargets<'_> {
    type Trace = ZooTrace;
    fn len(&self) -> usize {
        match self {
            ZooTargets::Inr(t) => t.len(),
            ZooTargets::Mlp(t) => t.len(),
            ZooTargets::Cnn(t) => t.len(),
        }
    }
    fn input_dim(&self) -> usize {
        match self {
            ZooTargets::Inr(t) => t.input_dim(),
            ZooTargets::Mlp(t) => t.input_dim(),
            ZooTargets::Cnn(t) => t.input_dim(),
        }
    }
    fn output_dim(&self) -> usize {
        match self {
            ZooTargets::Inr(t) => t.output_dim(),
            ZooTargets::Mlp(t) => t.output_dim(),
            ZooTargets::Cnn(t) => t.output_dim(),
        }
    }
    fn forward(&self, m: usize, x: &[f32]) -> (Vec<f32>, ZooTrace) {
        match self {
            ZooTargets::Inr(t) => {
                let (y, tr) = t.forward(m, x);
                (y, ZooTrace::Inr(Box::new(tr)))
            }
            ZooTargets::Mlp(t) => {
                let (y, tr) = t.forward(m, x);
                (y, ZooTrace::Mlp(tr))
            }
            ZooTargets::Cnn(t) => {
                let (y, tr) = t.forward(m, x);
                (y, ZooTrace::Cnn(tr))
            }
        }
    }
    fn input_grad(&self, m: usize, x: &[f32], trace: &ZooTrace, d_out: &[f32]) -> Vec<f32> {
        match (self, trace) {
            (ZooTargets::Inr(t), ZooTrace::Inr(tr)) => t.input_grad(m, x, tr, d_out),
            (ZooTargets::Mlp(t), ZooTrace::Mlp(tr)) => t.input_grad(m, x, tr, d_out),
            (ZooTargets::Cnn(t), ZooTrace::Cnn(tr)) => t.input_grad(m, x, tr, d_out),
            _ => unreachable!("a trace comes from the same targets' forward"),
        }
    }
}
