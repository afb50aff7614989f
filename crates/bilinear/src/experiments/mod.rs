//! The small-scale reproductions of spec/bilinear.md section 6, each with the spec's
//! acceptance thresholds as named checks. `glassbox repro bilinear-X --check` runs them.

pub mod boolean;
pub mod digits;
pub mod mnist5k;
pub mod modadd;
pub mod paper;

use crate::layer::BilinearModel;
use crate::load::from_model;
use crate::Result;
use glassbox_core::data::Split;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::io::write_json;
use faer::Mat;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};
use glassbox_core::train::{self, TrainConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One acceptance threshold and whether the measurement met it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    /// The measured numbers and the threshold, in words.
    pub detail: String,
    pub pass: bool,
}

impl Check {
    pub fn new(name: &str, pass: bool, detail: String) -> Check {
        Check { name: name.into(), detail, pass }
    }
}

/// What an experiment measured: a table of rows (free-form JSON) and the checks.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    pub rows: Vec<serde_json::Value>,
    pub checks: Vec<Check>,
    pub wall_time_s: f64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.pass)
    }

    /// run.json in `dir`: the checks become metrics (1 pass, 0 fail) so the report shows them.
    pub fn write(&self, dir: &Path, command: &str) -> Result<()> {
        let metrics: serde_json::Map<String, serde_json::Value> =
            self.checks.iter().map(|c| (c.name.clone(), serde_json::Value::from(c.pass as u8))).collect();
        let run = serde_json::json!({
            "name": self.name,
            "command": command,
            "wall_time_s": self.wall_time_s,
            "versions": { "glassbox": env!("CARGO_PKG_VERSION") },
            "metrics": metrics,
            "checks": self.checks,
            "rows": self.rows,
        });
        write_json(&dir.join("run.json"), &run)
    }
}

/// Where an experiment reads data and writes its models.
#[derive(Clone, Debug)]
pub struct ExperimentOptions {
    pub data_dir: Option<PathBuf>,
    pub out: PathBuf,
    pub seeds: Vec<u64>,
    pub progress: bool,
}

/// Train one model of a reproduction; its checkpoint goes to `out/name`.
pub(crate) fn fit(arch: Architecture, data: &Split, spec: &DataSpec, cfg: &TrainConfig, seed: u64, out: &Path, name: &str, progress: bool) -> Result<Model> {
    let opts = train::RunOptions {
        out_dir: out.join(name),
        name: name.into(),
        command: format!("glassbox repro ({name})"),
        seed,
        resume: false,
        progress,
        stop_after_epochs: None,
        save_every: cfg.epochs,
    };
    Ok(train::train(arch, data, spec, cfg, &opts)?.model)
}

pub(crate) fn bilinear_arch(d_in: usize, d_hidden: usize, d_out: usize) -> Architecture {
    Architecture::Bilinear { d_in, d_hidden, d_out, bias: false, embed: true }
}

/// The ReLU baseline "E -> ReLU(W · + c) -> U" of the spec: E followed by W is one linear map
/// of rank <= d_hidden, so a one-hidden-layer ReLU MLP of the same width is the same function class.
pub(crate) fn relu_arch(d_in: usize, d_hidden: usize, d_out: usize) -> Architecture {
    Architecture::Mlp { dims: vec![d_in, d_hidden, d_out], activation: Activation::Relu, bias: true }
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

pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}
