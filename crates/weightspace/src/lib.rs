//! glassbox-weightspace: reading what a model is from its weights or its answers — ProbeGen,
//! vanilla probing, fixed probes and the StatNN baseline (spec/probegen.md).

pub mod experiments;
pub mod mlp;
pub mod probes;
pub mod reader;
pub mod statnn;

pub use glassbox_core::{Error, Result};
