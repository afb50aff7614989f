//! glassbox-weightspace: reading what a model is from its weights or its answers — ProbeGen,
//! vanilla probing, fixed probes and the StatNN baseline (ProbeGen, Kahana et al. 2025);
//! ProbeX, the dense expert, model trees and their router (ProbeX, Horwitz et al. 2025).

pub mod collection;
pub mod deconv;
pub mod experiments;
pub mod fit;
pub mod kendall;
pub mod layers;
pub mod probes;
pub mod probex;
pub mod reader;
pub mod saved;
pub mod saved_experts;
pub mod statnn;
pub mod targets;
pub mod tree_study;
pub mod trees;
pub mod zeroshot;

pub use glassbox_core::{Error, Result};
