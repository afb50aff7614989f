use crate::Cli;
use anyhow::{Context, Result};
use clap::Args;
use glassbox_core::{checkpoint, tensor, train};
use std::path::PathBuf;

/// Evaluate a checkpoint on the test split of the data set it was trained on.
///
/// The data set (and, for generated sets, its seed and split) is read from model.json, so
/// the numbers match those reported during training.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint folder (model.json + model.safetensors).
    pub checkpoint: PathBuf,
    /// Evaluate on the training split instead of the test split.
    #[arg(long)]
    pub train_split: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cli: &Cli, a: &EvalArgs) -> Result<()> {
    let (model, card) = checkpoint::load(&a.checkpoint, &tensor::infer_device())?;
    let task = card.task.as_ref().with_context(|| {
        format!("{}: model.json records no task, so there is no data set to evaluate on", a.checkpoint.display())
    })?;
    let data = task.data.load(cli.data.as_deref())?;
    let set = if a.train_split { &data.train } else { &data.test };
    let e = train::evaluate(&model, set, 4096);
    if a.json {
        println!("{}", serde_json::json!({ "dataset": set.name, "samples": set.len(), "loss": e.loss, "accuracy": e.accuracy }));
    } else {
        println!("{} ({} samples): loss {:.6}  accuracy {:.4}", set.name, set.len(), e.loss, e.accuracy);
    }
    Ok(())
}
