use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use glassbox_lm::generate::{generate, Sampling};
use glassbox_lm::hookfile::HookFile;
use glassbox_lm::hooks::hook_names;
use glassbox_lm::tokenizer::read_utf8_text;
use glassbox_lm::{score, Batch, Hooks, Intervention, LoadedModel};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Open, run and hook pretrained language models, or train a small one on your text
/// (`glassbox lm train`).
///
/// MODEL is a Hugging Face model folder (config.json, model.safetensors or a sharded index,
/// tokenizer.json), a model id such as HuggingFaceTB/SmolLM2-135M found in the local Hugging
/// Face cache ($HF_HOME/hub, default ~/.cache/huggingface/hub; nothing is downloaded), or a
/// GGUF file. Families: GPT-2, Llama (also Mistral, Qwen2, SmolLM) and BERT encoders.
///
/// Hook names and shapes follow TransformerLens's HookedTransformer (`blocks.3.hook_resid_post`,
/// `blocks.0.attn.hook_pattern`, ...), without weight processing; `glassbox lm info MODEL` lists
/// them all.
#[derive(Args, Debug)]
pub struct LmArgs {
    #[command(subcommand)]
    pub command: LmCommand,
}

#[derive(Subcommand, Debug)]
pub enum LmCommand {
    Info(InfoArgs),
    Train(super::lm_train::LmTrainArgs),
    Run(RunArgs),
    Score(ScoreArgs),
    Generate(GenerateArgs),
}

/// Family, sizes, parameter count, stored dtypes, tokenizer and every hook name of a model.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model folder, Hugging Face id in the local cache, or GGUF file.
    pub model: String,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Interventions applied while the model runs (any hook; repeat a flag for several hooks).
#[derive(Args, Debug, Default)]
pub struct InterventionArgs {
    /// Zero-ablate this hook.
    #[arg(long = "ablate", value_name = "HOOK")]
    pub ablate: Vec<String>,
    /// Mean-ablate this hook: every position gets the mean over the batch's positions.
    #[arg(long = "mean-ablate", value_name = "HOOK")]
    pub mean_ablate: Vec<String>,
    /// Add a vector at every position of a hook (steering): HOOK=FILE, where FILE is a
    /// safetensors file holding one tensor of the hook's per-token size.
    #[arg(long = "steer", value_name = "HOOK=FILE")]
    pub steer: Vec<String>,
    /// Multiply steering vectors by this factor.
    #[arg(long, default_value_t = 1.0)]
    pub steer_scale: f32,
}

/// Run prompts and save the activations at the hooks asked for.
///
/// Each line of the prompts file is one prompt, tokenized as the model's tokenizer does by
/// default (its special tokens added; a fixed-length padding in tokenizer.json switched off).
/// OUT holds one F32 tensor per hook, named by the hook, the prompts' positions concatenated
/// in order on the first axis ([total_tokens, ...]); attention scores and patterns are
/// [total_query_tokens, heads, longest_prompt], zero-padded, with masked scores at -inf. It
/// also holds `tokens` (I64 [total_tokens]) and `offsets` (I64 [prompts + 1]). Hook `logits`
/// gives the logits.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Model folder, Hugging Face id in the local cache, or GGUF file.
    pub model: String,
    /// UTF-8 text file, one prompt per line.
    #[arg(long)]
    pub prompts: PathBuf,
    /// Hooks to save, comma separated (see `glassbox lm info MODEL`). The forward pass stops
    /// after the deepest block they name (or runs to the end for `ln_final.*` and `logits`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub hooks: Vec<String>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Prompts run together, up to about this many tokens per forward pass.
    #[arg(long, default_value_t = 4096)]
    pub batch_tokens: usize,
    /// Fold each norm's weight and bias into the next linear map, as TransformerLens's
    /// fold_ln: outputs are unchanged, and hook_normalized becomes the bare normalised stream.
    /// Pre-norm models only.
    #[arg(long)]
    pub fold_ln: bool,
    #[command(flatten)]
    pub interventions: InterventionArgs,
}

/// Mean next-token loss and perplexity of a text, per document and overall.
///
/// Documents are separated by blank lines and tokenized with the model's default special
/// tokens; a document longer than the model's context is scored in consecutive windows.
/// The overall loss is the mean over all predicted tokens. With --ablate (or another
/// intervention) the loss is that of the edited model, to see what an ablation costs.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Model folder, Hugging Face id in the local cache, or GGUF file.
    pub model: String,
    /// UTF-8 text file; blank lines separate documents.
    #[arg(long)]
    pub text: PathBuf,
    /// Print every document's loss, not only the total.
    #[arg(long)]
    pub per_document: bool,
    /// Also write the results as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Documents run together, up to about this many tokens per forward pass.
    #[arg(long, default_value_t = 4096)]
    pub batch_tokens: usize,
    #[command(flatten)]
    pub interventions: InterventionArgs,
}

/// Continue a prompt, greedily or by sampling, with a key/value cache.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model folder, Hugging Face id in the local cache, or GGUF file.
    pub model: String,
    /// The prompt, tokenized with the model's default special tokens.
    #[arg(long)]
    pub prompt: String,
    /// New tokens at most.
    #[arg(long, default_value_t = 50)]
    pub max_new_tokens: usize,
    /// 0 is greedy; above 0 samples from softmax(logits / temperature).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Nucleus sampling: keep the most likely tokens up to this total probability.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Go on past the end-of-text token.
    #[arg(long)]
    pub ignore_eos: bool,
    #[command(flatten)]
    pub interventions: InterventionArgs,
}

pub fn run(cli: &Cli, a: &LmArgs) -> Result<()> {
    match &a.command {
        LmCommand::Info(a) => info(a),
        LmCommand::Train(a) => super::lm_train::run(cli, a),
        LmCommand::Run(a) => run_prompts(cli, a),
        LmCommand::Score(a) => score_text(cli, a),
        LmCommand::Generate(a) => generate_text(cli, a),
    }
}

fn open(model: &str) -> Result<LoadedModel> {
    glassbox_lm::load(model).with_context(|| format!("cannot open model {model}"))
}

fn info(a: &InfoArgs) -> Result<()> {
    let m = open(&a.model)?;
    let c = &m.model.config;
    let hooks = hook_names(c);
    let summary = serde_json::json!({
        "source": m.source.path().display().to_string(),
        "family": c.family.name(),
        "architecture": c.architecture,
        "layers": c.n_layers,
        "d_model": c.d_model,
        "heads": c.n_heads,
        "kv_heads": c.n_kv_heads,
        "d_head": c.d_head,
        "d_mlp": c.d_mlp,
        "vocab_size": c.vocab_size,
        "context": c.max_positions,
        "norm": format!("{:?}", c.norm),
        "norm_eps": c.norm_eps,
        "activation": format!("{:?}", c.activation),
        "rope_theta": c.rope_theta,
        "tied_embeddings": c.tied_embeddings,
        "parameters": m.model.n_params(),
        "stored_dtypes": m.dtypes,
        "tokenizer": {
            "vocab_size": m.tokenizer.vocab_size(),
            "bos": m.tokenizer.bos_id(),
            "eos": m.tokenizer.eos_id(),
            "adds_bos": m.tokenizer.adds_bos(),
        },
        "hooks": hooks,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!("{}", m.source.path().display());
    println!("  family        {} ({})", c.family.name(), c.architecture);
    println!("  layers        {}", c.n_layers);
    println!("  d_model       {}", c.d_model);
    println!("  heads         {} query, {} key/value, d_head {}", c.n_heads, c.n_kv_heads, c.d_head);
    println!("  d_mlp         {} ({:?}{})", c.d_mlp, c.activation, if c.gated_mlp { ", gated" } else { "" });
    println!("  vocabulary    {}", c.vocab_size);
    println!("  context       {} tokens", c.max_positions);
    println!("  norm          {:?}, eps {:e}", c.norm, c.norm_eps);
    match c.rope_theta {
        Some(theta) => println!("  positions     rotary, theta {theta}"),
        None => println!("  positions     learned"),
    }
    println!("  unembedding   {}", if !c.has_unembed() { "none (encoder)" } else if c.tied_embeddings { "tied to the token embedding" } else { "separate" });
    println!("  parameters    {}", m.model.n_params());
    let dtypes: Vec<String> = m.dtypes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!("  stored as     {} (computed in f32)", dtypes.join(", "));
    let id = |t: Option<u32>| t.map_or_else(|| "none".to_string(), |t| t.to_string());
    println!(
        "  tokenizer     {} tokens, BOS {}, EOS {}, adds BOS: {}",
        m.tokenizer.vocab_size(),
        id(m.tokenizer.bos_id()),
        id(m.tokenizer.eos_id()),
        if m.tokenizer.adds_bos() { "yes" } else { "no" }
    );
    println!("  hooks ({}):", hooks.len());
    for h in hooks {
        println!("    {h}");
    }
    Ok(())
}

/// Build the hook set: captures plus the command line's interventions.
fn hooks_for(m: &LoadedModel, capture: &[String], iv: &InterventionArgs) -> Result<Hooks> {
    let c = &m.model.config;
    let mut hooks = Hooks::capture(c, capture)?;
    for h in &iv.ablate {
        hooks.intervene(c, h, Intervention::Zero)?;
    }
    for h in &iv.mean_ablate {
        hooks.intervene(c, h, Intervention::Mean(None))?;
    }
    for spec in &iv.steer {
        let (hook, file) = spec.split_once('=').with_context(|| format!("--steer {spec}: expected HOOK=FILE"))?;
        let st = glassbox_core::io::SafetensorsFile::open(Path::new(file))?;
        let names: Vec<String> = st.entries()?.into_iter().map(|e| e.0).collect();
        let name = match names.as_slice() {
            [one] => one.clone(),
            _ if names.iter().any(|n| n == hook) => hook.to_string(),
            _ => bail!("{file}: expected one tensor (or one named {hook}), found {}", names.join(", ")),
        };
        let v: Vec<f32> = st.tensor_f32(&name)?.data.iter().map(|x| x * iv.steer_scale).collect();
        hooks.intervene(c, hook, Intervention::Add(v))?;
    }
    Ok(hooks)
}

/// One prompt per line, tokenized; errors name the file and line.
fn read_prompts(m: &LoadedModel, path: &Path) -> Result<Vec<Vec<u32>>> {
    let text = read_utf8_text(path)?;
    let context = m.model.config.max_positions;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let ids = m.tokenizer.encode(line)?;
        if ids.is_empty() {
            bail!("{}: line {} gives no tokens (an empty line for a model that adds no special tokens)", path.display(), i + 1);
        }
        if ids.len() > context {
            bail!(
                "{}: line {} has {} tokens, more than the model's context of {} tokens",
                path.display(),
                i + 1,
                ids.len(),
                context
            );
        }
        prompts.push(ids);
    }
    if prompts.is_empty() {
        bail!("{}: no prompts (the file is empty)", path.display());
    }
    Ok(prompts)
}

/// Group consecutive items into batches of about `budget` tokens.
fn batches(lengths: impl Iterator<Item = usize>, budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut tokens, mut i) = (0, 0, 0);
    for len in lengths {
        if tokens > 0 && tokens + len > budget.max(1) {
            out.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += len;
        i += 1;
    }
    if i > start {
        out.push(start..i);
    }
    out
}

fn token_bar(cli: &Cli, total: u64) -> indicatif::ProgressBar {
    if cli.quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens  {per_sec}  ETA {eta}").expect("valid template"),
    );
    bar
}

fn run_prompts(cli: &Cli, a: &RunArgs) -> Result<()> {
    let mut m = open(&a.model)?;
    if a.fold_ln {
        m.fold_layer_norms()?;
    }
    let prompts = read_prompts(&m, &a.prompts)?;
    let mut hooks = hooks_for(&m, &a.hooks, &a.interventions)?;
    let total: usize = prompts.iter().map(Vec::len).sum();
    let bar = token_bar(cli, total as u64);
    let mut file = HookFile::new();
    for range in batches(prompts.iter().map(Vec::len), a.batch_tokens) {
        let seqs = &prompts[range];
        m.model.run_hooks(&Batch::new(seqs), &mut hooks)?;
        file.push(seqs, hooks.take_cache());
        bar.inc(seqs.iter().map(Vec::len).sum::<usize>() as u64);
    }
    bar.finish_and_clear();
    let meta = HashMap::from([
        ("format".to_string(), "glassbox-lm-hooks".to_string()),
        ("model".to_string(), m.source.path().display().to_string()),
        ("prompts".to_string(), a.prompts.display().to_string()),
        ("fold_ln".to_string(), a.fold_ln.to_string()),
        ("glassbox_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    file.write(&a.out, meta)?;
    println!("{} prompts, {total} tokens, {} hooks -> {}", prompts.len(), a.hooks.len(), a.out.display());
    Ok(())
}

fn score_text(cli: &Cli, a: &ScoreArgs) -> Result<()> {
    let m = open(&a.model)?;
    if !m.model.config.has_unembed() {
        bail!("{}: a {} encoder has no next-token head to score with", a.model, m.model.config.family.name());
    }
    let text = read_utf8_text(&a.text)?;
    let docs = score::split_documents(&text);
    if docs.is_empty() {
        bail!("{}: no documents (the file has no text)", a.text.display());
    }
    let mut hooks = hooks_for(&m, &[], &a.interventions)?;
    let bar = token_bar(cli, docs.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} documents  {per_sec}  ETA {eta}")?);
    let start = std::time::Instant::now();
    let losses = score::score(&m.model, &m.tokenizer, &docs, a.batch_tokens, &mut hooks, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let nll: f64 = losses.iter().map(|l| l.nll).sum();
    let predicted: usize = losses.iter().map(|l| l.predicted).sum();
    if predicted == 0 {
        bail!("{}: no document has two tokens to predict from", a.text.display());
    }
    let loss = nll / predicted as f64;
    let seconds = start.elapsed().as_secs_f64();
    if a.per_document {
        println!("{:>8} {:>8} {:>10} {:>12}", "document", "tokens", "loss", "perplexity");
        for (i, l) in losses.iter().enumerate() {
            println!("{:>8} {:>8} {:>10.5} {:>12.3}", i + 1, l.predicted, l.mean(), l.mean().exp());
        }
    }
    println!(
        "{} documents, {predicted} predicted tokens: loss {loss:.6} nats, perplexity {:.4} ({:.0} tokens/s)",
        docs.len(),
        loss.exp(),
        predicted as f64 / seconds
    );
    if let Some(path) = &a.json {
        let json = serde_json::json!({
            "model": m.source.path().display().to_string(),
            "text": a.text.display().to_string(),
            "documents": docs.len(),
            "predicted_tokens": predicted,
            "loss": loss,
            "perplexity": loss.exp(),
            "interventions": {"ablate": a.interventions.ablate, "mean_ablate": a.interventions.mean_ablate, "steer": a.interventions.steer},
            "per_document": losses.iter().map(|l| serde_json::json!({"tokens": l.predicted, "loss": l.mean()})).collect::<Vec<_>>(),
            "seconds": seconds,
        });
        glassbox_core::io::write_json(path, &json)?;
    }
    Ok(())
}

fn generate_text(cli: &Cli, a: &GenerateArgs) -> Result<()> {
    let m = open(&a.model)?;
    let prompt = m.tokenizer.encode(&a.prompt)?;
    let mut hooks = hooks_for(&m, &[], &a.interventions)?;
    let sampling = Sampling { temperature: a.temperature, top_p: a.top_p, seed: cli.seed };
    let stop = if a.ignore_eos { None } else { m.tokenizer.eos_id() };
    print!("{}", a.prompt);
    std::io::stdout().flush().ok();
    // Decode the whole continuation each time so that multi-byte characters split across
    // tokens print correctly.
    let mut shown = String::new();
    let mut so_far = Vec::new();
    let tok = &m.tokenizer;
    let out = generate(&m.model, &prompt, a.max_new_tokens, sampling, stop, &mut hooks, |t| {
        so_far.push(t);
        if let Ok(text) = tok.decode(&so_far) {
            if let Some(new) = text.strip_prefix(&shown) {
                print!("{new}");
                std::io::stdout().flush().ok();
            }
            shown = text;
        }
    })?;
    println!();
    if !cli.quiet {
        eprintln!("({} new tokens)", out.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::batches;

    #[test]
    fn batches_respect_the_token_budget() {
        assert_eq!(batches([3, 3, 3, 10, 1].into_iter(), 6), vec![0..2, 2..3, 3..4, 4..5]);
    }
}
