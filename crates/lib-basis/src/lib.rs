//! glassbox-lib-basis: the Local Interaction Basis (Bushnaq et al. 2024, "The Local Interaction
//! Basis") of MLP-like models, its PCA and neuron baselines, the interaction graph between
//! adjacent layers, and ablation curves.
//!
//! Everything runs in f64 on the host with closed-form Jacobians: a model is a chain of folded
//! [`network::Section`]s, each a linear map followed by an elementwise gate (identity, ReLU,
//! GELU) or the bilinear product, or of a one-layer transformer's attention and residual MLP
//! ([`transformer`]), whose Jacobians are per sample and position.

pub mod ablation;
pub mod analysis;
pub mod basis;
pub mod edges;
pub mod experiments;
pub mod fourier;
pub mod linalg;
pub mod network;
pub mod transformer;

pub use basis::{build, Basis, BasisOptions, LayerBasis, Threshold, Variant};
pub use glassbox_core::{Error, Result};
pub use network::{Integration, Network};
