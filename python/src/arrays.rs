//! numpy arrays in and out. Inputs that are C-contiguous float32 are read in place (anything
//! else is converted once by numpy); results are handed to numpy as the Vec Rust computed them
//! in, so neither direction copies.

use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

/// A float32 array Rust reads in place.
pub struct F32In<'py> {
    array: PyReadonlyArrayDyn<'py, f32>,
}

impl<'py> F32In<'py> {
    /// Borrow `obj` if it is a C-contiguous float32 ndarray; otherwise read it through
    /// `numpy.ascontiguousarray(obj, dtype=float32)`.
    pub fn new(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        let array = match obj.cast::<PyArrayDyn<f32>>() {
            Ok(a) if a.is_c_contiguous() => a.clone(),
            _ => {
                let py = obj.py();
                let kwargs = [("dtype", "float32")].into_py_dict(py)?;
                let converted = py
                    .import("numpy")?
                    .call_method("ascontiguousarray", (obj,), Some(&kwargs))
                    .map_err(|e| PyValueError::new_err(format!("{what} is not a float32 array and cannot be made one: {e}")))?;
                converted.cast_into::<PyArrayDyn<f32>>().map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?
            }
        };
        Ok(F32In { array: array.readonly() })
    }

    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn slice(&self) -> &[f32] {
        self.array.as_slice().expect("checked C-contiguous")
    }

    /// `[rows, width]` for a 2-D array whose width must be `width`.
    pub fn rows_of(&self, width: usize, what: &str) -> PyResult<usize> {
        match self.shape() {
            [rows, w] if *w == width => Ok(*rows),
            shape => Err(PyValueError::new_err(format!("{what} has shape {shape:?}; expected [rows, {width}]"))),
        }
    }
}

/// `values` as an ndarray of `shape`, without copying.
pub fn f32_out<'py>(py: Python<'py>, values: Vec<f32>, shape: &[usize]) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    debug_assert_eq!(values.len(), shape.iter().product::<usize>());
    values.into_pyarray(py).reshape(shape.to_vec())
}

/// The address of the first value Rust sees for an input array (tests check it is numpy's own).
#[pyfunction]
pub fn _input_address(x: &Bound<'_, PyAny>) -> PyResult<usize> {
    Ok(F32In::new(x, "x")?.slice().as_ptr() as usize)
}

/// A fresh result array and the address Rust wrote it at (tests check numpy did not copy it).
#[pyfunction]
pub fn _output_with_address(py: Python<'_>, n: usize) -> PyResult<(Bound<'_, PyArrayDyn<f32>>, usize)> {
    let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let address = values.as_ptr() as usize;
    Ok((f32_out(py, values, &[n])?, address))
}
