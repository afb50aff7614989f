//! `glassbox sae stream`: an SAE trained on a language model's activations, read from an
//! activation store however large, or computed by the model as training goes, in shuffled
//! batches; checkpointed, resumable.

use super::lm_acts::pack_text;
use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_lm::store::{ActivationStore, ShuffledBatches};
use glassbox_lm::stream::ModelStream;
use glassbox_lm::LoadedModel;
use glassbox_sae::training::{expected_average_scale, StepStats, TrainArchitecture, TrainConfig, Trainer};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Instant;

/// Train a sparse autoencoder on one hook of a language model with SAELens's recipe, from an
/// activation store (`glassbox acts MODEL --text FILE --hooks ... --out STORE`) or straight from
/// the model (`--model MODEL --text FILE`, nothing written but the SAE).
///
/// Architectures: TopK and BatchTopK (decoder rows of norm 0.1 and encoder = decoderᵀ at the
/// start, latents chosen by pre-activation times decoder-row norm, AuxK on latents dead for 1,000
/// steps), JumpReLU (a learned threshold per latent trained through a straight-through estimator,
/// with an L0 penalty) and standard (ReLU with an L1 penalty weighted by decoder-row norms). All:
/// MSE summed over the width, gradients clipped to norm 1, Adam.
///
/// Rows are drawn in shuffled batches through a bounded buffer, so neither the store nor the
/// text has to fit in memory; rows of special tokens (BOS, EOS, padding) are left out unless
/// --keep-special-tokens, and so is the first position of every context (--skip-first).
///
/// The SAE is written as a SAELens directory (cfg.json + sae_weights.safetensors; BatchTopK as
/// JumpReLU with its learned threshold) with `training.json` beside it. While training, the
/// whole state is checkpointed to OUT/training-checkpoint.safetensors; --resume continues from
/// it (from a store, exactly as an uninterrupted run would have gone on; from a model, with the
/// contexts it had not run yet). Judge the SAE with `glassbox sae eval`.
#[derive(Args, Debug)]
pub struct SaeStreamArgs {
    /// Activation store folder (or give --model and --text to compute activations as needed).
    pub store: Option<PathBuf>,
    /// Hook to train on.
    #[arg(long)]
    pub hook: String,
    /// Compute the activations with this model over --text instead of reading a store (with a
    /// store: the model whose special tokens to leave out; default the store's model).
    #[arg(long)]
    pub model: Option<String>,
    /// UTF-8 text to run the model on (blank lines separate documents), with --model.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// With --text: tokens per context.
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// With --text: contexts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_contexts: usize,
    /// With --text: rows held in the shuffle buffer.
    #[arg(long, default_value_t = 65536)]
    pub buffer_tokens: usize,
    /// SAE architecture: topk, batchtopk, jumprelu or standard (see above).
    #[arg(long, default_value = "topk", value_parser = ["topk", "batchtopk", "jumprelu", "standard"])]
    pub architecture: String,
    /// TopK and BatchTopK: active latents per token (BatchTopK: on average over a batch).
    #[arg(long, default_value_t = 32)]
    pub k: usize,
    /// JumpReLU: weight of the L0 penalty (mean active latents per token).
    #[arg(long, default_value_t = 1.0)]
    pub l0_coefficient: f32,
    /// JumpReLU: every latent's threshold at the start (in the units the SAE sees, after
    /// --normalize).
    #[arg(long, default_value_t = 0.01)]
    pub jumprelu_init_threshold: f32,
    /// JumpReLU: width of the straight-through estimator's window around the threshold.
    #[arg(long, default_value_t = 0.05)]
    pub jumprelu_bandwidth: f32,
    /// Standard: weight of the L1 penalty (Σ activation × decoder-row norm, mean over tokens).
    #[arg(long, default_value_t = 1.0)]
    pub l1_coefficient: f32,
    /// JumpReLU and standard: steps over which the penalty's weight grows from 0.
    #[arg(long, default_value_t = 0)]
    pub sparsity_warm_up_steps: u64,
    /// Latents per input dimension: d_sae = expansion × d_in.
    #[arg(long, default_value_t = 8)]
    pub expansion: usize,
    /// Activation normalisation: `expected-average` trains on inputs scaled so that their
    /// average norm is √d_in (the scale is estimated on the first 64k rows and folded into the
    /// saved weights, which then take activations in their original units).
    #[arg(long, default_value = "none", value_parser = ["none", "expected-average"])]
    pub normalize: String,
    /// Training tokens (default: as many as the store or text holds; when the rows left after
    /// leaving out special tokens and skipped positions run out, a reshuffled pass continues).
    #[arg(long)]
    pub tokens: Option<usize>,
    /// Tokens per step.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Adam learning rate, constant over the run.
    #[arg(long, default_value_t = 3e-4)]
    pub lr: f64,
    /// With a store: the shuffle buffer's size, in shards' worth of rows. Contexts are read from
    /// all shards in a random order, so the buffer mixes the whole store whatever its size.
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
    /// Write a checkpoint every this many tokens (0: never).
    #[arg(long, default_value_t = 1_000_000)]
    pub checkpoint_every: usize,
    /// Continue the run whose checkpoint is in --out.
    #[arg(long)]
    pub resume: bool,
    /// Output SAE directory.
    #[arg(long)]
    pub out: PathBuf,
}

const CHECKPOINT: &str = "training-checkpoint.safetensors";
/// Rows read to estimate the input scale of `--normalize expected-average`.
const SCALE_ROWS: usize = 65536;

/// Where the activations come from.
enum Source {
    Store(ActivationStore),
    Model { model: Box<LoadedModel>, contexts: Vec<glassbox_lm::store::Context> },
}

/// One pass over a source.
enum Pass<'a> {
    Store(ShuffledBatches<'a>),
    Model(ModelStream<'a>),
}

impl Iterator for Pass<'_> {
    type Item = glassbox_lm::error::Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pass::Store(s) => s.next(),
            Pass::Model(s) => s.next(),
        }
    }
}

/// Position in the data: pass number, batches drawn in it, and (from a model) contexts run.
#[derive(Clone, Copy, Default)]
struct Position {
    pass: u64,
    batches: u64,
    contexts: usize,
}

struct Setup<'a> {
    args: &'a SaeStreamArgs,
    seed: u64,
    special: Vec<u32>,
}

impl Setup<'_> {
    /// Pass `position.pass` of the source, advanced to `position` (a store replays the batches
    /// already drawn, which is what makes a resumed run exact; a model stream skips the
    /// contexts already run).
    fn open<'s>(&self, source: &'s Source, position: Position) -> Result<Pass<'s>> {
        let a = self.args;
        let seed = self.seed.wrapping_add(position.pass);
        Ok(match source {
            Source::Store(store) => {
                let mut s = store.shuffled(&a.hook, a.batch, a.buffer_shards, seed).excluding_tokens(&self.special).skipping_first_positions(a.skip_first);
                for _ in 0..position.batches {
                    s.next().transpose()?;
                }
                Pass::Store(s)
            }
            Source::Model { model, contexts } => {
                let s = ModelStream::new(&model.model, &a.hook, contexts, a.batch, a.buffer_tokens, a.batch_contexts, seed)?;
                Pass::Model(s.excluding_tokens(&self.special).skipping_first_positions(a.skip_first).starting_after(position.contexts))
            }
        })
    }
}

pub fn stream(cli: &Cli, a: &SaeStreamArgs) -> Result<()> {
    if a.k == 0 || a.expansion == 0 || a.batch == 0 {
        bail!("--k, --expansion and --batch must be at least 1");
    }
    let (source, model_name, context, d_in) = open_source(a)?;
    let d_sae = a.expansion * d_in;
    let architecture = match a.architecture.as_str() {
        "batchtopk" => TrainArchitecture::BatchTopK { k: a.k },
        "jumprelu" => TrainArchitecture::JumpRelu { l0_coefficient: a.l0_coefficient, bandwidth: a.jumprelu_bandwidth, init_threshold: a.jumprelu_init_threshold },
        "standard" => TrainArchitecture::Standard { l1_coefficient: a.l1_coefficient },
        _ => TrainArchitecture::TopK { k: a.k },
    };
    let valid = a.jumprelu_bandwidth > 0.0 && a.jumprelu_init_threshold >= 0.0 && a.l0_coefficient >= 0.0 && a.l1_coefficient >= 0.0;
    if !valid {
        bail!("--jumprelu-bandwidth must be positive, and --jumprelu-init-threshold, --l0-coefficient and --l1-coefficient not negative");
    }
    if matches!(architecture, TrainArchitecture::TopK { .. } | TrainArchitecture::BatchTopK { .. }) && a.k > d_sae {
        bail!("--k {} is more than the SAE's {d_sae} latents", a.k);
    }
    let special: Vec<u32> = if a.keep_special_tokens {
        Vec::new()
    } else {
        match &source {
            Source::Model { model, .. } => model.tokenizer.special_ids().to_vec(),
            Source::Store(_) => {
                let model = a.model.clone().unwrap_or_else(|| model_name.clone());
                let m = glassbox_lm::load(&model).with_context(|| format!("cannot open model {model} for its special tokens (give --model, or --keep-special-tokens)"))?;
                m.tokenizer.special_ids().to_vec()
            }
        }
    };
    let mut config = TrainConfig::new(d_in, d_sae, architecture);
    config.lr = a.lr;
    config.seed = cli.seed;
    config.sparsity_warm_up_steps = a.sparsity_warm_up_steps;
    let setup = Setup { args: a, seed: cli.seed, special };

    let checkpoint = a.out.join(CHECKPOINT);
    let (mut trainer, mut position, mut seen, mut seconds_before) = if checkpoint.exists() {
        if !a.resume {
            bail!("{} holds the checkpoint of an unfinished run: give --resume to continue it, or remove it to start again", checkpoint.display());
        }
        let (trainer, progress) = Trainer::load_checkpoint(config, &checkpoint)?;
        let n = |k: &str| progress[k].as_f64().unwrap_or(0.0);
        let position = Position { pass: n("pass") as u64, batches: n("batches") as u64, contexts: n("contexts") as usize };
        (trainer, position, n("tokens") as usize, n("seconds"))
    } else {
        if a.resume {
            bail!("--resume: no checkpoint {} to continue from", checkpoint.display());
        }
        (Trainer::new(config), Position::default(), 0, 0.0)
    };
    let target = a.tokens.unwrap_or(match &source {
        Source::Store(store) => store.total_tokens(),
        Source::Model { contexts, .. } => contexts.len() * context,
    });
    if seen > 0 && !cli.quiet {
        eprintln!("resuming after {seen} of {target} tokens");
    }
    if a.normalize == "expected-average" && seen == 0 {
        // The scale comes from the data's own first rows (another shuffle of the same rows).
        let mut rows = Vec::new();
        for batch in setup.open(&source, Position { pass: u64::MAX, ..Default::default() })? {
            rows.extend(batch?);
            if rows.len() >= SCALE_ROWS * d_in {
                break;
            }
        }
        trainer.input_scale = expected_average_scale(&rows, d_in);
        if !cli.quiet {
            eprintln!("input scale {:.5} (mean norm {:.2} -> √{d_in})", trainer.input_scale, (d_in as f32).sqrt() / trainer.input_scale);
        }
    }

    let bar = glassbox_core::train::progress_bar(!cli.quiet, target as u64, seen as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens  {per_sec}  ETA {eta}  {msg}")?);
    let clock = Instant::now();
    let mut recent: Vec<StepStats> = Vec::new();
    let mut last_checkpoint = seen;
    let (log_lines, started_at) = (!cli.quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr()), seen);
    let mut pass = setup.open(&source, position)?;
    let mut any_this_pass = position.batches > 0;
    while seen < target {
        let Some(batch) = pass.next() else {
            if !any_this_pass {
                bail!("no rows of hook {} to train on", a.hook);
            }
            position = Position { pass: position.pass + 1, ..Default::default() };
            pass = setup.open(&source, position)?;
            any_this_pass = false;
            continue;
        };
        let batch = batch?;
        any_this_pass = true;
        let rows = (batch.len() / d_in).min(target - seen);
        let stats = trainer.step(&batch[..rows * d_in], rows);
        seen += rows;
        position.batches += 1;
        if let Pass::Model(s) = &pass {
            position.contexts = s.contexts_read();
        }
        recent.push(stats);
        if recent.len() > 100 {
            recent.remove(0);
        }
        let (ev, l0) = recent_means(&recent);
        bar.set_position(seen as u64);
        let message = format!("explained variance {ev:.3}  L0 {l0:.1}  dead {}", recent.last().map_or(0, |s| s.dead));
        // Without a terminal (a log file) the bar is hidden: a line every tenth of the run.
        if log_lines && seen * 10 / target.max(1) > (seen - rows) * 10 / target.max(1) {
            eprintln!("{seen}/{target} tokens  {:.0} tokens/s  {message}", (seen - started_at) as f64 / clock.elapsed().as_secs_f64());
        }
        bar.set_message(message);
        if a.checkpoint_every > 0 && seen - last_checkpoint >= a.checkpoint_every && seen < target {
            let progress = json!({"tokens": seen, "pass": position.pass, "batches": position.batches, "contexts": position.contexts,
                                  "seconds": seconds_before + clock.elapsed().as_secs_f64()});
            trainer.save_checkpoint(&checkpoint, &progress)?;
            last_checkpoint = seen;
        }
    }
    bar.finish_and_clear();
    seconds_before += clock.elapsed().as_secs_f64();
    let (ev, l0) = recent_means(&recent);
    let dead = recent.last().map_or(0, |s| s.dead);
    let mut metadata = Map::new();
    metadata.insert("model_name".into(), json!(model_name));
    metadata.insert("hook_name".into(), json!(a.hook));
    metadata.insert("context_size".into(), json!(context));
    metadata.insert("exclude_special_tokens".into(), json!(!a.keep_special_tokens));
    metadata.insert("seqpos_slice".into(), json!([a.skip_first, null]));
    metadata.insert("training_architecture".into(), json!(a.architecture));
    let sae = trainer.to_sae(metadata);
    sae.save(&a.out)?;
    let source_name = match (&a.store, &a.text) {
        (Some(s), _) => json!({"store": s.display().to_string()}),
        (None, Some(t)) => json!({"model": model_name, "text": t.display().to_string()}),
        _ => Value::Null,
    };
    let report = json!({
        "source": source_name, "hook": a.hook, "architecture": a.architecture, "k": a.k,
        "l0_coefficient": a.l0_coefficient, "l1_coefficient": a.l1_coefficient,
        "jumprelu_init_threshold": a.jumprelu_init_threshold, "jumprelu_bandwidth": a.jumprelu_bandwidth, "sparsity_warm_up_steps": a.sparsity_warm_up_steps,
        "d_in": d_in, "d_sae": d_sae, "tokens": seen, "steps": trainer.step, "batch": a.batch, "lr": a.lr,
        "input_scale": trainer.input_scale, "seconds": seconds_before, "tokens_per_s": seen as f64 / seconds_before,
        "explained_variance_last_100_steps": ev, "l0_last_100_steps": l0, "dead_latents": dead,
        "threshold": matches!(architecture, TrainArchitecture::BatchTopK { .. }).then_some(trainer.threshold),
        "special_tokens_left_out": setup.special,
    });
    glassbox_core::io::write_json(&a.out.join("training.json"), &report)?;
    // The run is finished: its checkpoint is no longer needed.
    if checkpoint.exists() {
        std::fs::remove_file(&checkpoint).with_context(|| format!("cannot remove {}", checkpoint.display()))?;
    }
    println!(
        "{} SAE ({d_in} -> {d_sae}) on {seen} tokens of {} in {seconds_before:.0} s ({:.0} tokens/s): explained variance {ev:.3}, L0 {l0:.1} over the last {} steps; {dead} dead; wrote {}",
        a.architecture,
        a.hook,
        seen as f64 / seconds_before,
        recent.len(),
        a.out.display()
    );
    Ok(())
}

/// The source, the model's name, the context length and the hook's width.
fn open_source(a: &SaeStreamArgs) -> Result<(Source, String, usize, usize)> {
    match (&a.store, &a.text) {
        (Some(_), Some(_)) => bail!("give an activation store or --text (with --model), not both"),
        (None, None) => bail!("give an activation store folder, or --model and --text to compute activations as training goes"),
        (Some(dir), None) => {
            let store = ActivationStore::open(dir)?;
            let index = store.index();
            let d_in: usize = store
                .hook_shape(&a.hook)
                .map(|s| s.iter().product())
                .with_context(|| format!("{}: no hook {} (the store has {})", dir.display(), a.hook, index.hooks.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")))?;
            let (model, context) = (index.model.clone(), index.context);
            Ok((Source::Store(store), model, context, d_in))
        }
        (None, Some(text)) => {
            let spec = a.model.as_deref().context("--text needs --model")?;
            let model = glassbox_lm::load(spec).with_context(|| format!("cannot open model {spec}"))?;
            let config = &model.model.config;
            if a.context == 0 || a.context > config.max_positions {
                bail!("--context must be between 1 and the model's context of {} tokens (got {})", config.max_positions, a.context);
            }
            let d_in = hook_width(&model, &a.hook)?;
            let contexts = pack_text(&model, text, a.context)?.packed.contexts;
            let name = model.source.path().display().to_string();
            Ok((Source::Model { model: Box::new(model), contexts }, name, a.context, d_in))
        }
    }
}

/// Values per token at `hook`, from one forward pass of a single token.
fn hook_width(model: &LoadedModel, hook: &str) -> Result<usize> {
    let mut hooks = glassbox_lm::Hooks::capture(&model.model.config, [hook])?;
    let token = model.tokenizer.special_ids().first().copied().unwrap_or(0);
    model.model.run_hooks(&glassbox_lm::Batch::new(&[vec![token]]), &mut hooks)?;
    Ok(hooks.take_cache()[hook].row_len())
}

/// Mean explained variance and L0 over the recent steps.
fn recent_means(recent: &[StepStats]) -> (f64, f64) {
    let n = recent.len().max(1) as f64;
    (recent.iter().map(|s| s.explained_variance).sum::<f64>() / n, recent.iter().map(|s| s.l0).sum::<f64>() / n)
}
