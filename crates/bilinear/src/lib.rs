//! Bilinear MLPs read from their weights (Pearce et al. 2024, "Bilinear MLPs enable weight-based
//! mechanistic interpretability"): interaction matrices and the output tensor, their
//! eigendecomposition, the low-rank truncated model, HOSVD, chaining, and adversarial masks built
//! without data or gradients.

pub mod adversarial;
pub mod analysis;
pub mod experiments;
pub mod decompose;
pub mod eigen;
pub mod hosvd;
pub mod interaction;
pub mod layer;
pub mod load;
pub mod output_features;

pub use decompose::{decompose, Decomposition};
pub use eigen::{eigh, lanczos_top_k, Spectrum};
pub use glassbox_core::{Error, Result};
pub use layer::{BilinearLayer, BilinearModel};
