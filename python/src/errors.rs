//! glassbox errors as Python exceptions, with the messages the command line prints.

use glassbox_core::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::{create_exception, PyErr};

// A file that was read but holds the wrong thing: a ValueError, as a bad argument would be.
create_exception!(glassbox, FormatError, PyValueError, "A file was read but its content is wrong; the message names the file.");
create_exception!(glassbox, DivergedError, PyRuntimeError, "Training diverged; the message names the step.");

/// The Python exception for a library error: OSError (FileNotFoundError) for files that cannot
/// be read or written, FormatError for bad content, ValueError for bad requests.
pub fn to_py(e: Error) -> PyErr {
    exception(Some(&e), e.to_string())
}

/// The Python exception for a failed command: the library error at its root picks the type,
/// and the message is the whole chain, as `glassbox` prints it after "error: ".
pub fn command_to_py(e: anyhow::Error) -> PyErr {
    exception(e.chain().find_map(|c| c.downcast_ref::<Error>()), format!("{e:#}"))
}

fn exception(e: Option<&Error>, message: String) -> PyErr {
    match e {
        Some(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        Some(Error::Io { .. }) => PyOSError::new_err(message),
        Some(Error::Format { .. }) => FormatError::new_err(message),
        Some(Error::Diverged(_)) => DivergedError::new_err(message),
        Some(Error::Invalid(_)) | None => PyValueError::new_err(message),
    }
}

pub trait IntoPyResult<T> {
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for glassbox_core::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
