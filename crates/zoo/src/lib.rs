//! glassbox-zoo: model zoos — many small trained networks stored together with the properties
//! to predict — built from presets (for ProbeGen: INR zoos, accuracy zoos of trained MLPs and
//! CNNs; for ProbeX: model trees) in shards that resume.

pub mod accuracy_zoo;
pub mod build;
pub mod cnn;
pub mod dense;
pub mod export;
#[cfg(test)]
mod finite_differences;
pub mod import;
pub mod inr;
pub mod inr_zoo;
pub mod mlp;
pub mod mnist_trees;
pub mod store;
pub mod tree_world;

pub use glassbox_core::{Error, Result};
