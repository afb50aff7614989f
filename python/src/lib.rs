//! The `glassbox._glassbox` extension module: thin bindings over the glassbox crates, no maths.
//! The Python package `glassbox` (python/glassbox) builds its API on these.

mod arrays;
mod bilinear;
mod classifier;
mod commands;
mod errors;
mod model;
mod sae;

use pyo3::prelude::*;

#[pymodule]
fn _glassbox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("FormatError", m.py().get_type::<errors::FormatError>())?;
    m.add("DivergedError", m.py().get_type::<errors::DivergedError>())?;
    m.add_class::<model::LanguageModel>()?;
    m.add_class::<sae::PySae>()?;
    m.add_class::<sae::PySaeTrainer>()?;
    m.add_class::<classifier::Checkpoint>()?;
    m.add_class::<bilinear::BilinearDecomposition>()?;
    m.add_function(wrap_pyfunction!(commands::run, m)?)?;
    m.add_function(wrap_pyfunction!(commands::help_text, m)?)?;
    m.add_function(wrap_pyfunction!(commands::set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(sae::_encode_seconds_in_rust, m)?)?;
    m.add_function(wrap_pyfunction!(arrays::_input_address, m)?)?;
    m.add_function(wrap_pyfunction!(arrays::_output_with_address, m)?)?;
    Ok(())
}
