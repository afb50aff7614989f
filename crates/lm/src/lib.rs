//! Language models for glassbox: open someone else's checkpoint (a Hugging Face folder or cache
//! id, or a GGUF file), tokenize as its library does, run it with TransformerLens-style hooks and
//! interventions, and stream its activations to disk.

pub mod allocator;
pub mod config;
pub mod corpus;
pub mod generate;
pub mod error;
pub mod gguf;
pub mod gguf_writer;
pub mod hookfile;
pub mod hooks;
pub mod loader;
pub mod model;
pub mod ops;
pub mod score;
pub mod store;
pub mod stream;
pub mod tokenizer;
pub mod weights;

pub use config::{Family, ModelConfig};
pub use hooks::{HookTensor, Hooks, Intervention};
pub use loader::{load, LoadedModel};
pub use model::{Batch, KvCache, Logits, Output, Transformer};
pub use tokenizer::Tokenizer;
