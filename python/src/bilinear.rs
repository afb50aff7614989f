//! The per-class eigendecomposition of a bilinear layer (Pearce et al. 2024), from a glassbox
//! checkpoint or from weight arrays.

use crate::arrays::{f32_out, F32In};
use crate::errors::IntoPyResult;
use faer::Mat;
use glassbox_bilinear::decompose::{decompose, decompose_top_k, Decomposition};
use glassbox_bilinear::layer::{BilinearLayer, BilinearModel};
use numpy::PyArrayDyn;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use std::path::PathBuf;

/// Eigenvalues and eigenvectors of every class's interaction matrix B_c.
#[pyclass(frozen, module = "glassbox._glassbox")]
pub struct BilinearDecomposition {
    inner: Decomposition,
}

fn mat_out<'py>(py: Python<'py>, m: &Mat<f64>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let values: Vec<f32> = (0..m.nrows()).flat_map(|r| (0..m.ncols()).map(move |c| m[(r, c)] as f32)).collect();
    f32_out(py, values, &[m.nrows(), m.ncols()])
}

fn mat_in(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Mat<f64>> {
    let a = F32In::new(x, what)?;
    let [rows, cols] = a.shape() else {
        return Err(PyValueError::new_err(format!("{what} must be 2-D, got shape {:?}", a.shape())));
    };
    let (rows, cols) = (*rows, *cols);
    let v = a.slice();
    Ok(Mat::from_fn(rows, cols, |r, c| v[r * cols + c] as f64))
}

#[pymethods]
impl BilinearDecomposition {
    /// Decompose the bilinear model of a glassbox checkpoint (`glassbox train --model
    /// bilinear`); `top_k` keeps only the k largest-|λ| eigenpairs per class (Lanczos).
    #[staticmethod]
    #[pyo3(signature = (path, top_k=None))]
    fn from_checkpoint(py: Python<'_>, path: PathBuf, top_k: Option<usize>) -> PyResult<Self> {
        let (model, _) = glassbox_bilinear::load::from_checkpoint(&path).py()?;
        Self::run(py, &model, top_k)
    }

    /// Decompose y = P((W x + b1) ⊙ (V x + b2)), optionally behind an embedding E (x = E raw):
    /// W and V `[d_hidden, d_in]`, P `[d_out, d_hidden]`, E `[d_in, d_raw]` (PyTorch layout).
    #[staticmethod]
    #[pyo3(signature = (w, v, p, b1=None, b2=None, embed=None, top_k=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_weights(py: Python<'_>, w: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>, p: &Bound<'_, PyAny>, b1: Option<&Bound<'_, PyAny>>, b2: Option<&Bound<'_, PyAny>>, embed: Option<&Bound<'_, PyAny>>, top_k: Option<usize>) -> PyResult<Self> {
        let (w, v, p) = (mat_in(w, "W")?, mat_in(v, "V")?, mat_in(p, "P")?);
        if v.nrows() != w.nrows() || v.ncols() != w.ncols() || p.ncols() != w.nrows() {
            return Err(PyValueError::new_err(format!(
                "W is {}x{}, V {}x{}, P {}x{}: W and V must match and P must have d_hidden columns",
                w.nrows(), w.ncols(), v.nrows(), v.ncols(), p.nrows(), p.ncols()
            )));
        }
        let bias = |b: Option<&Bound<'_, PyAny>>, what: &str| -> PyResult<Option<Vec<f64>>> {
            b.map(|b| {
                let a = F32In::new(b, what)?;
                if a.shape() != [w.nrows()] {
                    return Err(PyValueError::new_err(format!("{what} has shape {:?}; expected [{}]", a.shape(), w.nrows())));
                }
                Ok(a.slice().iter().map(|&x| x as f64).collect())
            })
            .transpose()
        };
        let (b1, b2) = (bias(b1, "b1")?, bias(b2, "b2")?);
        let embed = embed.map(|e| mat_in(e, "embed")).transpose()?;
        if let Some(e) = &embed {
            if e.nrows() != w.ncols() {
                return Err(PyValueError::new_err(format!("embed has {} rows; W has {} inputs", e.nrows(), w.ncols())));
            }
        }
        let model = BilinearModel { embed, layer: BilinearLayer { w, v, p, b1, b2 } };
        Self::run(py, &model, top_k)
    }

    #[getter]
    fn n_classes(&self) -> usize {
        self.inner.n_classes()
    }

    /// True when the layer had biases and was decomposed on [x; 1].
    #[getter]
    fn bias_folded(&self) -> bool {
        self.inner.bias_folded
    }

    /// Class `c`'s eigenvalues, sorted by |λ|, largest first.
    fn eigenvalues<'py>(&self, py: Python<'py>, c: usize) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let s = self.class(c)?;
        f32_out(py, s.values.iter().map(|&v| v as f32).collect(), &[s.values.len()])
    }

    /// Class `c`'s eigenvectors as columns `[d_in, n]`, in the layer's input space.
    fn eigenvectors<'py>(&self, py: Python<'py>, c: usize) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        mat_out(py, &self.class(c)?.vectors)
    }

    /// Class `c`'s eigenvectors pulled back to raw-input space (Eᵀv) as columns `[d_raw, n]`.
    fn input_vectors<'py>(&self, py: Python<'py>, c: usize) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        self.class(c)?;
        mat_out(py, &self.inner.pixel_vectors[c])
    }

    /// Effective rank (Σ|λ|)² / Σλ² per class.
    fn effective_ranks(&self) -> Vec<f64> {
        self.inner.effective_ranks()
    }
}

impl BilinearDecomposition {
    fn run(py: Python<'_>, model: &BilinearModel, top_k: Option<usize>) -> PyResult<Self> {
        let inner = py
            .detach(|| match top_k {
                Some(k) => decompose_top_k(model, k),
                None => decompose(model),
            })
            .py()?;
        Ok(BilinearDecomposition { inner })
    }

    fn class(&self, c: usize) -> PyResult<&glassbox_bilinear::eigen::Spectrum> {
        self.inner.classes.get(c).ok_or_else(|| PyIndexError::new_err(format!("class {c} is out of range; the layer has {} classes", self.inner.n_classes())))
    }
}
