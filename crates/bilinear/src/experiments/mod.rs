//! Small-scale reproductions of the bilinear-MLP paper (Pearce et al. 2024, "Bilinear MLPs
//! enable weight-based mechanistic interpretability"), each with its acceptance thresholds as
//! named checks. `glassbox repro bilinear-X --check` runs them.

pub mod boolean;
pub mod digits;
pub mod mnist5k;
pub mod modadd;
pub mod paper;

use crate::layer::BilinearModel;
use crate::load::from_model;
use crate::Result;
pub use glassbox_core::experiment::{fit, mean, median, Check, ExperimentOptions, Outcome};
use faer::Mat;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};

pub(crate) fn bilinear_arch(d_in: usize, d_hidden: usize, d_out: usize) -> Architecture {
    Architecture::Bilinear { d_in, d_hidden, d_out, bias: false, embed: true }
}

/// The ReLU baseline "E -> ReLU(W · + c) -> U": E followed by W is one linear map
/// of rank <= d_hidden, so a one-hidden-layer ReLU MLP of the same width is the same function class.
pub(crate) fn relu_arch(d_in: usize, d_hidden: usize, d_out: usize) -> Architecture {
    Architecture::Mlp { dims: vec![d_in, d_hidden, d_out], activation: Activation::Relu, bias: true, embed: None }
}

pub(crate) fn analysis_view(model: &Model) -> Result<BilinearModel> {
    from_model(model)
}

/// max |a - b| / max |b|.
pub(crate) fn relative_error(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let (mut d, mut m) = (0.0f64, 0.0f64);
    for r in 0..a.nrows() {
        for c in 0..a.ncols() {
            d = d.max((a[(r, c)] - b[(r, c)]).abs());
            m = m.max(b[(r, c)].abs());
        }
    }
    d / m.max(1e-300)
}

/// The f32 logits of glassbox's own forward pass (burn), for the exactness check.
pub(crate) fn burn_logits(model: &Model, x: &Mat<f64>) -> Mat<f64> {
    let dev = infer_device();
    let m = model.to_device(&dev);
    let flat: Vec<f32> = (0..x.nrows()).flat_map(|r| (0..x.ncols()).map(move |j| x[(r, j)] as f32)).collect();
    let out = to_vec(m.forward(from_vec(flat, [x.nrows(), x.ncols()], &dev)));
    let k = out.len() / x.nrows();
    Mat::from_fn(x.nrows(), k, |r, c| out[r * k + c] as f64)
}

