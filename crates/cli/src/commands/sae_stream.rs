//! `glassbox sae stream`: an SAE trained on a language model's activations read from an
//! activation store, however large, in shuffled batches.

use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_lm::store::ActivationStore;
use glassbox_sae::training::{TrainArchitecture, TrainConfig, Trainer};
use serde_json::{json, Map};
use std::path::PathBuf;
use std::time::Instant;

/// Train a TopK or BatchTopK SAE on one hook of an activation store (`glassbox acts MODEL --text
/// FILE --hooks ... --out STORE`) with SAELens's recipe: decoder rows of norm 0.1 and encoder =
/// decoderᵀ at the start, latents chosen by pre-activation times decoder-row norm, MSE plus AuxK
/// on latents dead for 1,000 steps, gradients clipped to norm 1, Adam. Rows are read in shuffled
/// batches through a buffer of a few shards, so the store may be far larger than memory; rows of
/// special tokens (BOS, EOS, padding) are left out unless --keep-special-tokens, and so is the
/// first position of every context (--skip-first).
///
/// The SAE is written as a SAELens directory (cfg.json + sae_weights.safetensors; BatchTopK as
/// JumpReLU with its learned threshold) with `training.json` beside it. Judge it with `glassbox
/// sae eval`.
#[derive(Args, Debug)]
pub struct SaeStreamArgs {
    /// Activation store folder.
    pub store: PathBuf,
    /// Hook to train on (one of the store's).
    #[arg(long)]
    pub hook: String,
    #[arg(long, default_value = "topk", value_parser = ["topk", "batchtopk"])]
    pub architecture: String,
    /// Active latents per token (BatchTopK: on average over a batch).
    #[arg(long, default_value_t = 32)]
    pub k: usize,
    /// Latents per input dimension: d_sae = expansion × d_in.
    #[arg(long, default_value_t = 8)]
    pub expansion: usize,
    /// Training tokens (default: as many as the store holds; when the rows left after leaving
    /// out special tokens and skipped positions run out, a reshuffled pass continues).
    #[arg(long)]
    pub tokens: Option<usize>,
    /// Tokens per step.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    /// Shards held in the shuffle buffer.
    #[arg(long, default_value_t = 4)]
    pub buffer_shards: usize,
    /// Leave out the first N positions of every context: a context cut from running text has
    /// no BOS, and its first token is the model's attention sink, with a residual stream norm
    /// often a hundred times the others' (SAELens leaves out the BOS it puts there).
    #[arg(long, default_value_t = 1)]
    pub skip_first: usize,
    /// Train on the rows of special tokens too.
    #[arg(long)]
    pub keep_special_tokens: bool,
    /// The model whose special tokens to leave out (default: the model the store was made from).
    #[arg(long)]
    pub model: Option<String>,
    /// Output SAE directory.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn stream(cli: &Cli, a: &SaeStreamArgs) -> Result<()> {
    let store = ActivationStore::open(&a.store)?;
    let index = store.index();
    let d_in: usize = store
        .hook_shape(&a.hook)
        .map(|s| s.iter().product())
        .with_context(|| format!("{}: no hook {} (the store has {})", a.store.display(), a.hook, index.hooks.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")))?;
    if a.k == 0 || a.expansion == 0 || a.batch == 0 {
        bail!("--k, --expansion and --batch must be at least 1");
    }
    let d_sae = a.expansion * d_in;
    if a.k > d_sae {
        bail!("--k {} is more than the SAE's {d_sae} latents", a.k);
    }
    let special: Vec<u32> = if a.keep_special_tokens {
        Vec::new()
    } else {
        let model = a.model.clone().unwrap_or_else(|| index.model.clone());
        let m = glassbox_lm::load(&model).with_context(|| format!("cannot open model {model} for its special tokens (give --model, or --keep-special-tokens)"))?;
        m.tokenizer.special_ids().to_vec()
    };
    let architecture = match a.architecture.as_str() {
        "batchtopk" => TrainArchitecture::BatchTopK { k: a.k },
        _ => TrainArchitecture::TopK { k: a.k },
    };
    let mut config = TrainConfig::new(d_in, d_sae, architecture);
    config.lr = a.lr;
    config.seed = cli.seed;
    let mut trainer = Trainer::new(config);
    let target = a.tokens.unwrap_or(store.total_tokens());
    let bar = glassbox_core::train::progress_bar(!cli.quiet, target as u64, 0);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens  {per_sec}  {msg}")?);
    let clock = Instant::now();
    let (mut seen, mut pass) = (0usize, 0u64);
    let mut recent: Vec<(f64, f64)> = Vec::new();
    let mut last = Default::default();
    'passes: while seen < target {
        let mut any = false;
        for batch in store.shuffled(&a.hook, a.batch, a.buffer_shards, cli.seed.wrapping_add(pass)).excluding_tokens(&special).skipping_first_positions(a.skip_first) {
            let batch = batch?;
            let rows = (batch.len() / d_in).min(target - seen);
            any = true;
            last = trainer.step(&batch[..rows * d_in], rows);
            seen += rows;
            recent.push((last.explained_variance, last.l0));
            if recent.len() > 100 {
                recent.remove(0);
            }
            let mean = |f: fn(&(f64, f64)) -> f64| recent.iter().map(f).sum::<f64>() / recent.len() as f64;
            bar.set_position(seen as u64);
            bar.set_message(format!("explained variance {:.3}  L0 {:.1}  dead {}", mean(|r| r.0), mean(|r| r.1), last.dead));
            if seen >= target {
                break 'passes;
            }
        }
        if !any {
            bail!("{}: no rows of hook {} to train on", a.store.display(), a.hook);
        }
        pass += 1;
    }
    bar.finish_and_clear();
    let seconds = clock.elapsed().as_secs_f64();
    let mean = |f: fn(&(f64, f64)) -> f64| recent.iter().map(f).sum::<f64>() / recent.len().max(1) as f64;
    let mut metadata = Map::new();
    metadata.insert("model_name".into(), json!(index.model));
    metadata.insert("hook_name".into(), json!(a.hook));
    metadata.insert("context_size".into(), json!(index.context));
    metadata.insert("exclude_special_tokens".into(), json!(!a.keep_special_tokens));
    metadata.insert("seqpos_slice".into(), json!([a.skip_first, null]));
    metadata.insert("training_architecture".into(), json!(a.architecture));
    let sae = trainer.to_sae(metadata);
    sae.save(&a.out)?;
    let report = json!({
        "store": a.store.display().to_string(), "hook": a.hook, "architecture": a.architecture, "k": a.k,
        "d_in": d_in, "d_sae": d_sae, "tokens": seen, "steps": trainer.step, "batch": a.batch, "lr": a.lr,
        "seconds": seconds, "tokens_per_s": seen as f64 / seconds,
        "explained_variance_last_100_steps": mean(|r| r.0), "l0_last_100_steps": mean(|r| r.1),
        "dead_latents": last.dead, "threshold": matches!(architecture, TrainArchitecture::BatchTopK { .. }).then_some(trainer.threshold),
        "special_tokens_left_out": special,
    });
    glassbox_core::io::write_json(&a.out.join("training.json"), &report)?;
    println!(
        "{} SAE ({d_in} -> {d_sae}, k {}) on {seen} tokens of {} in {:.0} s ({:.0} tokens/s): explained variance {:.3}, L0 {:.1} over the last {} steps; {} dead; wrote {}",
        a.architecture,
        a.k,
        a.hook,
        seconds,
        seen as f64 / seconds,
        mean(|r| r.0),
        mean(|r| r.1),
        recent.len(),
        last.dead,
        a.out.display()
    );
    Ok(())
}
