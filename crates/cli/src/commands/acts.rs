use crate::Cli;
use anyhow::{Context, Result};
use clap::Args;
use glassbox_core::{acts, checkpoint, io, tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// Capture activations at named sites for a data set into one safetensors file.
///
/// Writes one tensor per site, shaped [samples, ...] (conv maps keep [C, H, W]), plus the
/// inputs under `input` if asked. Site names follow TransformerLens style: `layers.0.pre`,
/// `layers.0.post`, `embed`, `logits`, ...; run with an unknown name to see the valid ones.
#[derive(Args, Debug)]
pub struct ActsArgs {
    /// Checkpoint folder.
    pub checkpoint: PathBuf,
    /// Sites to capture, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub sites: Vec<String>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Use the training split instead of the test split.
    #[arg(long)]
    pub train_split: bool,
    /// Keep only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
}

pub fn run(cli: &Cli, a: &ActsArgs) -> Result<()> {
    let (model, card) = checkpoint::load(&a.checkpoint, &tensor::infer_device())?;
    let sites = if a.sites.is_empty() { model.site_names() } else { a.sites.clone() };
    model.check_sites(&sites)?;
    let task = card.task.as_ref().with_context(|| format!("{}: model.json records no task", a.checkpoint.display()))?;
    let data = task.data.load(cli.data.as_deref())?;
    let set = if a.train_split { &data.train } else { &data.test };
    let tensors = acts::capture(&model, set, &sites, a.batch_size, a.limit)?;
    let meta = HashMap::from([
        ("format".to_string(), "glassbox-activations".to_string()),
        ("checkpoint".to_string(), a.checkpoint.display().to_string()),
        ("dataset".to_string(), set.name.clone()),
    ]);
    io::write_f32(&a.out, &tensors, meta)?;
    for t in &tensors {
        println!("{:<20} {:?}", t.name, t.shape);
    }
    println!("wrote {}", a.out.display());
    Ok(())
}
