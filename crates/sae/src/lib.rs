//! glassbox-sae: TopK sparse autoencoders and the Universal SAE (Thasarathan et al. 2025), with
//! the universality metrics (R², firing entropy, co-firing, energy, Hungarian matching).
//!
//! Training runs on the host in f32 with hand-written gradients: only the sampled model's
//! encoder and decoder get gradients, and the TopK codes are decoded sparsely.

pub mod analysis;
pub mod concepts;
pub mod dashboard;
pub mod dashboard_export;
pub mod dictionary;
pub mod encoder;
pub mod experiments;
pub mod lm_eval;
pub mod metrics;
pub mod planted;
pub mod resample;
pub mod saelens;
pub mod store;
pub mod text_cards;
pub mod text_pairs;
pub mod topk;
pub mod training;
pub mod topk_sae;
pub mod usae;

pub use glassbox_core::{Error, Result};
