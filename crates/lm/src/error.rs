//! The library's error type is glassbox-core's: every variant names the file or request at fault.
pub use glassbox_core::{Error, Result};
