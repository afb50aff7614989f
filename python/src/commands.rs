//! Run-folder commands run in this process, exactly as the `glassbox` binary runs them.

use crate::errors::command_to_py;
use pyo3::prelude::*;

/// Run `glassbox ARGS...` in this process (the words after `glassbox`), with the GIL released.
/// Output goes to this process's stdout and stderr; errors raise with the message the command
/// line prints.
#[pyfunction]
pub fn run(py: Python<'_>, args: Vec<String>) -> PyResult<()> {
    py.detach(|| glassbox::run(args)).map_err(command_to_py)
}

/// The `--help` text of `glassbox ARGS...` (the words that name a command).
#[pyfunction]
pub fn help_text(args: Vec<String>) -> PyResult<String> {
    glassbox::help_text(args).map_err(command_to_py)
}

/// Size the thread pool every computation uses, once per process (before the first
/// computation; default: all cores). Asking later for another size raises.
#[pyfunction]
pub fn set_threads(threads: usize) -> PyResult<()> {
    glassbox::set_threads(Some(threads)).map_err(command_to_py)
}
