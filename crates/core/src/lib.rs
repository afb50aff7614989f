//! glassbox-core: data sets, models with named activation sites, training and checkpoints.
//!
//! Nothing outside this crate names a burn backend: callers get devices from [`tensor`].

pub mod acts;
pub mod checkpoint;
pub mod data;
pub mod dataspec;
pub mod error;
pub mod experiment;
pub mod inspect;
pub mod io;
pub mod matrix;
pub mod model;
pub mod tensor;
pub mod train;
pub mod vmath;

pub use error::{Error, Result};
