//! Sparse autoencoders in SAELens's file format: load, save, encode, decode, train on arrays and
//! evaluate at a language model's hook.

use crate::arrays::{f32_out, F32In};
use crate::errors::IntoPyResult;
use crate::model::LanguageModel;
use glassbox_sae::saelens::{Architecture, Sae};
use glassbox_sae::training::{expected_average_scale, TrainArchitecture, TrainConfig, Trainer};
use numpy::PyArrayDyn;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// An SAE as SAELens stores it: `W_enc [d_in, d_sae]`, `b_enc`, `W_dec [d_sae, d_in]`, `b_dec`.
#[pyclass(frozen, name = "SAE", module = "glassbox._glassbox")]
pub struct PySae {
    inner: Sae,
}

#[pymethods]
impl PySae {
    /// Read a SAELens folder (`cfg.json` and `sae_weights.safetensors`, v6 or earlier).
    #[staticmethod]
    fn load_from_disk(path: PathBuf) -> PyResult<Self> {
        Ok(PySae { inner: Sae::load(&path).py()? })
    }

    /// Write `path/cfg.json` and `path/sae_weights.safetensors` as SAELens 6 reads them.
    fn save_model(&self, path: PathBuf) -> PyResult<()> {
        self.inner.save(&path).py()
    }

    #[getter]
    fn d_in(&self) -> usize {
        self.inner.d_in
    }

    #[getter]
    fn d_sae(&self) -> usize {
        self.inner.d_sae
    }

    /// "standard", "topk" or "jumprelu".
    #[getter]
    fn architecture(&self) -> &'static str {
        self.inner.architecture.name()
    }

    /// TopK's k (None for the other architectures).
    #[getter]
    fn k(&self) -> Option<usize> {
        match self.inner.architecture {
            Architecture::TopK { k, .. } => Some(k),
            _ => None,
        }
    }

    /// The hook the SAE reads, from its metadata, if recorded.
    #[getter]
    fn hook_name(&self) -> Option<&str> {
        self.inner.hook_name()
    }

    /// SAELens's `metadata` (model_name, hook_name, ...) as a JSON string.
    fn metadata_json(&self) -> String {
        serde_json::Value::Object(self.inner.metadata.clone()).to_string()
    }

    #[getter]
    #[allow(non_snake_case)]
    fn W_enc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        f32_out(py, self.inner.w_enc.clone(), &[self.inner.d_in, self.inner.d_sae])
    }

    #[getter]
    fn b_enc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        f32_out(py, self.inner.b_enc.clone(), &[self.inner.d_sae])
    }

    #[getter]
    #[allow(non_snake_case)]
    fn W_dec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        f32_out(py, self.inner.w_dec.clone(), &[self.inner.d_sae, self.inner.d_in])
    }

    #[getter]
    fn b_dec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        f32_out(py, self.inner.b_dec.clone(), &[self.inner.d_in])
    }

    /// JumpReLU's per-latent threshold (None for the other architectures).
    #[getter]
    fn threshold<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArrayDyn<f32>>>> {
        match &self.inner.architecture {
            Architecture::JumpRelu { threshold } => Ok(Some(f32_out(py, threshold.clone(), &[self.inner.d_sae])?)),
            _ => Ok(None),
        }
    }

    /// Latents `[rows, d_sae]` of `x` `[rows, d_in]` (float32, C-contiguous, read in place).
    fn encode<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let x = F32In::new(x, "x")?;
        let rows = x.rows_of(self.inner.d_in, "x")?;
        let values = x.slice();
        let acts = py.detach(|| self.inner.encode(values, rows));
        f32_out(py, acts, &[rows, self.inner.d_sae])
    }

    /// Reconstructions `[rows, d_in]` of latents `[rows, d_sae]`.
    fn decode<'py>(&self, py: Python<'py>, latents: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let a = F32In::new(latents, "latents")?;
        let rows = a.rows_of(self.inner.d_sae, "latents")?;
        let values = a.slice();
        let out = py.detach(|| self.inner.decode(values, rows));
        f32_out(py, out, &[rows, self.inner.d_in])
    }

    /// Evaluate at `hook` of `model` on `contexts` (lists of token ids) as SAELens's
    /// `run_evals` does; returns the metrics as a JSON string and the feature density.
    #[pyo3(signature = (model, hook, contexts, batch_contexts=8, skip_first=0))]
    fn evaluate<'py>(&self, py: Python<'py>, model: &LanguageModel, hook: &str, contexts: Vec<Vec<u32>>, batch_contexts: usize, skip_first: usize) -> PyResult<(String, Bound<'py, PyArrayDyn<f32>>)> {
        if contexts.is_empty() || contexts.iter().any(Vec::is_empty) {
            return Err(PyValueError::new_err("evaluation needs at least one context, each with at least one token"));
        }
        let loaded = model.loaded();
        let eval = py.detach(|| glassbox_sae::lm_eval::evaluate(loaded, &self.inner, hook, &contexts, batch_contexts, skip_first, |_| {})).py()?;
        let density: Vec<f32> = eval.feature_density.iter().map(|&v| v as f32).collect();
        let n = density.len();
        let json = serde_json::to_string(&eval).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok((json, f32_out(py, density, &[n])?))
    }

    fn __repr__(&self) -> String {
        let hook = self.inner.hook_name().map(|h| format!(", hook {h}")).unwrap_or_default();
        format!("SAE({}, d_in {}, d_sae {}{hook})", self.inner.architecture.name(), self.inner.d_in, self.inner.d_sae)
    }
}

/// The seconds of each of `repeats` encodes of `x`, timed inside Rust with no Python call in
/// between: the reference of bench/python_overhead.py, which times the same encodes called
/// from Python.
#[pyfunction]
pub fn _encode_seconds_in_rust(py: Python<'_>, sae: &PySae, x: &Bound<'_, PyAny>, repeats: usize) -> PyResult<Vec<f64>> {
    let x = F32In::new(x, "x")?;
    let rows = x.rows_of(sae.inner.d_in, "x")?;
    let values = x.slice();
    Ok(py.detach(|| {
        (0..repeats)
            .map(|_| {
                let start = std::time::Instant::now();
                let latents = sae.inner.encode(values, rows);
                std::hint::black_box(latents);
                start.elapsed().as_secs_f64()
            })
            .collect()
    }))
}

/// SAELens's training step on batches given from Python: TopK, BatchTopK, JumpReLU or standard
/// (L1), Adam with clipped gradients, dead-latent auxiliary loss.
#[pyclass(name = "SAETrainer", module = "glassbox._glassbox")]
pub struct PySaeTrainer {
    inner: Trainer,
}

#[pymethods]
impl PySaeTrainer {
    /// `architecture`: "topk", "batchtopk", "jumprelu" or "standard"; `k` for the first two,
    /// `sparsity_coefficient` (L0 for JumpReLU, L1 for standard) for the others.
    #[new]
    #[pyo3(signature = (d_in, d_sae, architecture="topk", k=None, sparsity_coefficient=None, lr=3e-4, seed=0, dead_feature_window=1000, sparsity_warm_up_steps=0))]
    #[allow(clippy::too_many_arguments)]
    fn new(d_in: usize, d_sae: usize, architecture: &str, k: Option<usize>, sparsity_coefficient: Option<f32>, lr: f64, seed: u64, dead_feature_window: u64, sparsity_warm_up_steps: u64) -> PyResult<Self> {
        if d_in == 0 || d_sae == 0 {
            return Err(PyValueError::new_err("d_in and d_sae must be at least 1"));
        }
        let need_k = || match k {
            Some(k) if k >= 1 && k <= d_sae => Ok(k),
            _ => Err(PyValueError::new_err(format!("{architecture} needs k between 1 and d_sae ({d_sae})"))),
        };
        let need_c = || sparsity_coefficient.filter(|c| c.is_finite() && *c >= 0.0).ok_or_else(|| PyValueError::new_err(format!("{architecture} needs a sparsity_coefficient >= 0")));
        let arch = match architecture {
            "topk" => TrainArchitecture::TopK { k: need_k()? },
            "batchtopk" => TrainArchitecture::BatchTopK { k: need_k()? },
            "jumprelu" => TrainArchitecture::jumprelu(need_c()?),
            "standard" => TrainArchitecture::Standard { l1_coefficient: need_c()? },
            other => return Err(PyValueError::new_err(format!("unknown architecture '{other}'; use topk, batchtopk, jumprelu or standard"))),
        };
        if !(lr.is_finite() && lr > 0.0) {
            return Err(PyValueError::new_err(format!("lr must be positive, got {lr}")));
        }
        let config = TrainConfig { lr, seed, dead_feature_window, sparsity_warm_up_steps, ..TrainConfig::new(d_in, d_sae, arch) };
        Ok(PySaeTrainer { inner: Trainer::new(config) })
    }

    /// Scale every input so that the rows of `x` have mean norm √d_in (SAELens's
    /// `normalize_activations="expected_average_only_in"`); the scale is folded out again by
    /// `to_sae`. Returns the scale.
    fn normalize_to(&mut self, x: &Bound<'_, PyAny>) -> PyResult<f32> {
        let x = F32In::new(x, "x")?;
        x.rows_of(self.inner.config.d_in, "x")?;
        self.inner.input_scale = expected_average_scale(x.slice(), self.inner.config.d_in);
        Ok(self.inner.input_scale)
    }

    /// One step on the batch `x` `[rows, d_in]`; returns what it measured before the update.
    fn step<'py>(&mut self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let x = F32In::new(x, "batch")?;
        let rows = x.rows_of(self.inner.config.d_in, "batch")?;
        if rows == 0 {
            return Err(PyValueError::new_err("the batch has no rows"));
        }
        let values = x.slice();
        let trainer = &mut self.inner;
        let s = py.detach(|| trainer.step(values, rows));
        let d = PyDict::new(py);
        d.set_item("mse_loss", s.mse_loss)?;
        d.set_item("aux_loss", s.aux_loss)?;
        d.set_item("sparsity_loss", s.sparsity_loss)?;
        d.set_item("l0", s.l0)?;
        d.set_item("explained_variance", s.explained_variance)?;
        d.set_item("dead", s.dead)?;
        Ok(d)
    }

    /// Steps taken so far.
    #[getter]
    fn steps(&self) -> u64 {
        self.inner.step
    }

    /// The SAE as it is shared (input scale and decoder norms folded in), with SAELens metadata
    /// given as a JSON object string.
    #[pyo3(signature = (metadata_json="{}"))]
    fn to_sae(&self, metadata_json: &str) -> PyResult<PySae> {
        let metadata = match serde_json::from_str(metadata_json) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(PyValueError::new_err("metadata must be a JSON object")),
        };
        Ok(PySae { inner: self.inner.to_sae(metadata) })
    }
}
