use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_core::{acts, checkpoint, io, tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// Capture activations: of a glassbox checkpoint on its data set, or of a language model on a
/// text corpus.
///
/// A glassbox checkpoint folder: writes one safetensors file with one tensor per site, shaped
/// [samples, ...] (conv maps keep [C, H, W]). Site names follow TransformerLens style:
/// `layers.0.pre`, `layers.0.post`, `embed`, `logits`, ...; run with an unknown name to see the
/// valid ones.
///
/// A language model (Hugging Face folder, cache id or GGUF file) with --text: streams the corpus
/// through the model in fixed-length contexts and writes an activation store (a folder; see
/// --text). Kill it at any time and run the same command again: it resumes at the first
/// unfinished shard.
#[derive(Args, Debug)]
pub struct ActsArgs {
    /// Checkpoint folder, or a language model (with --text).
    pub checkpoint: PathBuf,
    /// Sites to capture, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub sites: Vec<String>,
    /// Output: a safetensors file for a checkpoint; a store folder for a language model.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub lm: super::lm_acts::LmActsArgs,
    /// Use the training split instead of the test split.
    #[arg(long)]
    pub train_split: bool,
    /// Keep only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Checkpoint: samples per forward pass (memory, not results).
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
}

pub fn run(cli: &Cli, a: &ActsArgs) -> Result<()> {
    if a.lm.text.is_some() {
        return super::lm_acts::run(cli, &a.checkpoint, &a.out, &a.lm);
    }
    if a.lm.shard.is_some() {
        bail!("--shard builds a language model's activation store together with other jobs; it needs --text");
    }
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
