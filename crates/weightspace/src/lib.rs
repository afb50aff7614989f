//! glassbox-weightspace: reading what a model is from its weights or its answers — ProbeGen,
//! vanilla probing, fixed probes and the StatNN baseline (spec/probegen.md).

pub mod experiments;
pub mod kendall;
pub mod mlp;
pub mod probes;
pub mod reader;
pub mod saved;
pub mod statnn;
pub mod targets;

pub use glassbox_core::{Error, Result};
