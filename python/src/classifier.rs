//! A model glassbox trained (`glassbox train`): MLP, bilinear MLP, CNN, INR or transformer,
//! with its named activation sites.

use crate::arrays::{f32_out, F32In};
use crate::errors::IntoPyResult;
use glassbox_core::model::{Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};
use numpy::PyArrayDyn;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

#[pyclass(frozen, module = "glassbox._glassbox")]
pub struct Checkpoint {
    model: Model,
    card_json: String,
}

#[pymethods]
impl Checkpoint {
    /// Open a checkpoint folder (`model.json` and `model.safetensors`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let (model, card) = glassbox_core::checkpoint::load(&path, &infer_device()).py()?;
        let card_json = serde_json::to_string(&card).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Checkpoint { model, card_json })
    }

    /// model.json (architecture, task, training, metrics) as a JSON string.
    fn card_json(&self) -> &str {
        &self.card_json
    }

    /// "mlp", "bilinear", "cnn", "inr", "transformer", ...
    #[getter]
    fn kind(&self) -> &'static str {
        self.model.arch.kind_name()
    }

    #[getter]
    fn input_dim(&self) -> usize {
        self.model.arch.input_dim()
    }

    #[getter]
    fn output_dim(&self) -> usize {
        self.model.arch.output_dim()
    }

    /// The activation sites, in the order of the forward pass.
    fn site_names(&self) -> Vec<String> {
        self.model.site_names()
    }

    /// Outputs `[rows, output_dim]` of inputs `[rows, input_dim]`, and the activations at
    /// `sites` as `{site: [rows, ...per-sample shape]}`.
    fn forward<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>, sites: Vec<String>) -> PyResult<(Bound<'py, PyArrayDyn<f32>>, Bound<'py, PyDict>)> {
        let x = F32In::new(x, "x")?;
        let rows = x.rows_of(self.model.arch.input_dim(), "x")?;
        if rows == 0 {
            return Err(PyValueError::new_err("x has no rows"));
        }
        if let Architecture::Transformer(t) = &self.model.arch {
            // A transformer reads token ids: anything else would index outside its embedding.
            if let Some(bad) = x.slice().iter().find(|&&v| !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < t.d_vocab)) {
                return Err(PyValueError::new_err(format!("x holds {bad}, not a token id: a transformer reads whole numbers from 0 to {}", t.d_vocab - 1)));
            }
        }
        let input = from_vec(x.slice().to_vec(), [rows, self.model.arch.input_dim()], &infer_device());
        let model = &self.model;
        let (out, found) = py.detach(|| model.forward_sites(input, &sites)).py()?;
        let cache = PyDict::new(py);
        for site in found {
            let mut shape = vec![rows];
            shape.extend(&site.shape);
            cache.set_item(&site.name, f32_out(py, to_vec(site.value), &shape)?)?;
        }
        Ok((f32_out(py, to_vec(out), &[rows, self.model.arch.output_dim()])?, cache))
    }

    fn __repr__(&self) -> String {
        format!("Checkpoint({}, {} -> {})", self.model.arch.kind_name(), self.model.arch.input_dim(), self.model.arch.output_dim())
    }
}
