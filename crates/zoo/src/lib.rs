//! glassbox-zoo: model zoos — many small trained networks stored together with the properties
//! to predict — built from presets (INR zoos of spec/probegen.md), in shards that resume.

pub mod build;
pub mod inr;
pub mod store;

pub use glassbox_core::{Error, Result};
