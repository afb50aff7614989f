use anyhow::Result;
use clap::Args;
use glassbox_core::inspect;
use std::path::PathBuf;

/// Summarise any safetensors or GGUF file, or a checkpoint folder.
///
/// Lists every tensor with dtype, shape, min/max/mean/std over finite values and NaN/Inf
/// counts, plus the file's metadata. Works on files from PyTorch, SAELens or glassbox, and on
/// GGUF files from llama.cpp (statistics of the dequantised values; the dtype is the stored
/// quantisation type).
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A .safetensors or .gguf file, or a checkpoint folder.
    pub path: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.4e}"))
}

pub fn run(a: &InspectArgs) -> Result<()> {
    let s = if glassbox_lm::loader::is_gguf(&a.path) {
        glassbox_lm::loader::summarize_gguf(&a.path)?
    } else {
        inspect::summarize(&a.path)?
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("{}", s.path);
    for (k, v) in &s.metadata {
        println!("  metadata {k} = {v}");
    }
    println!("  {:<32} {:<6} {:<18} {:>11} {:>11} {:>11} {:>11} {:>5} {:>5}", "tensor", "dtype", "shape", "min", "max", "mean", "std", "nan", "inf");
    for t in &s.tensors {
        println!(
            "  {:<32} {:<6} {:<18} {:>11} {:>11} {:>11} {:>11} {:>5} {:>5}",
            t.name, t.dtype, format!("{:?}", t.shape), fmt(t.min), fmt(t.max), fmt(t.mean), fmt(t.std), t.nan, t.inf
        );
    }
    let total: usize = s.tensors.iter().map(|t| t.numel).sum();
    println!("  {} tensors, {} values", s.tensors.len(), total);
    Ok(())
}
