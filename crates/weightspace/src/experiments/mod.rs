//! The reproductions of spec/probegen.md section 6, each with the spec's thresholds as named
//! checks: `glassbox repro probegen-digits-inr --check` runs R1, `probegen-digits-mlp` R2,
//! `probegen-mnist-inr` the 12k MNIST-INR zoo of issue 6; `probex-tree-world` spec/probex.md 6 (A1-A7), `probex-zeroshot` its A8, `probex-mnist-trees` the real-data tree zoo.

pub mod digits_inr;
pub mod digits_mlp;
pub mod mnist_inr;
pub mod mnist_trees;
pub mod tree_world;
pub mod tree_world_zeroshot;

pub use glassbox_core::experiment::{Check, ExperimentOptions, Outcome};
