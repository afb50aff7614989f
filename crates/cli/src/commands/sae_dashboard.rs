//! `glassbox sae dashboard`: feature dashboards of an SAE at its language-model hook, into a run
//! folder the HTML report renders, and optionally Neuronpedia's upload format.

use super::lm_acts::pack_text;
use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_sae::dashboard::{collect, DashboardOptions, LatentChoice, Pass};
use glassbox_sae::dashboard_export::{report_json, write_neuronpedia, NeuronpediaSource, REPORT_FILE};
use glassbox_sae::saelens::Sae;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Feature dashboards, laid out as SAEDashboard and Neuronpedia show them: per latent its top
/// activating contexts, five samples from each of ten equal-width intervals of (0, max], the share
/// of tokens it fires on with a histogram of its non-zero activations, and the tokens its decoder
/// direction promotes and suppresses through the unembedding (W_dec · W_U, with the final norm's
/// weight, centred over the vocabulary; given when the SAE reads the residual stream).
///
/// The text is cut into contexts as `glassbox acts --text` does and read twice (first for each
/// latent's maximum, firing rate and top contexts, then for the intervals and histograms); beyond
/// the tokenized text itself, memory does not grow with its length. Special tokens and the first --skip-first positions of every
/// context are left out. The run folder (--out) holds run.json and feature_dashboards.json; render
/// it with `glassbox report OUT`. --neuronpedia DIR also writes one batch-N.json per latent in the
/// format Neuronpedia's feature upload reads.
#[derive(Args, Debug)]
pub struct SaeDashboardArgs {
    /// SAE directory (SAELens layout).
    pub sae: PathBuf,
    /// The language model: a Hugging Face folder, cache id or GGUF file.
    #[arg(long)]
    pub model: String,
    /// UTF-8 text; blank lines separate documents.
    #[arg(long)]
    pub text: PathBuf,
    /// Hook the SAE reads (default: the SAE's metadata.hook_name).
    #[arg(long)]
    pub hook: Option<String>,
    /// These latents (comma separated), in this order.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["top_latents", "mix_latents"])]
    pub latents: Vec<usize>,
    /// The N latents that fire most often.
    #[arg(long, conflicts_with = "mix_latents")]
    pub top_latents: Option<usize>,
    /// N latents: half the most frequently firing, the rest spread over the firing-frequency
    /// ranking of the others that fire (the default, with 20).
    #[arg(long)]
    pub mix_latents: Option<usize>,
    /// Tokens per context.
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// Read at most this many contexts from the start of the text (default: all).
    #[arg(long)]
    pub contexts: Option<usize>,
    /// Leave out the first N positions of every context (a context cut from running text has
    /// no BOS, and its first token is the model's attention sink).
    #[arg(long, default_value_t = 1)]
    pub skip_first: usize,
    /// Top activating contexts per latent.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Samples per activation interval.
    #[arg(long, default_value_t = 5)]
    pub per_interval: usize,
    /// Tokens shown before the token a context is about.
    #[arg(long, default_value_t = 10)]
    pub before: usize,
    /// Tokens shown after the token a context is about.
    #[arg(long, default_value_t = 5)]
    pub after: usize,
    /// Contexts per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch_contexts: usize,
    /// Run folder to write (run.json + feature_dashboards.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write Neuronpedia's feature upload files (batch-N.json, one latent each) here.
    #[arg(long)]
    pub neuronpedia: Option<PathBuf>,
    /// Neuronpedia model id (default: the model's file or folder name).
    #[arg(long)]
    pub neuronpedia_model_id: Option<String>,
    /// Neuronpedia SAE set name (default: the SAE folder's name).
    #[arg(long)]
    pub neuronpedia_set: Option<String>,
}

pub fn dashboard(cli: &Cli, a: &SaeDashboardArgs) -> Result<()> {
    let start = Instant::now();
    let sae = Sae::load(&a.sae)?;
    let hook = match (&a.hook, sae.hook_name()) {
        (Some(h), _) => h.clone(),
        (None, Some(h)) => h.to_string(),
        (None, None) => bail!("{}: cfg.json names no hook (metadata.hook_name); give --hook", a.sae.display()),
    };
    let choice = match (&a.latents, a.top_latents, a.mix_latents) {
        (l, _, _) if !l.is_empty() => LatentChoice::Given(l.clone()),
        (_, Some(n), _) => LatentChoice::MostFrequent(n),
        (_, _, n) => LatentChoice::Mix(n.unwrap_or(20)),
    };
    if matches!(choice, LatentChoice::MostFrequent(0) | LatentChoice::Mix(0)) || a.top == 0 || a.contexts == Some(0) {
        bail!("--top-latents, --mix-latents, --top and --contexts must be at least 1");
    }
    let m = glassbox_lm::load(&a.model).with_context(|| format!("cannot open model {}", a.model))?;
    let config = &m.model.config;
    if a.context < 2 || a.context > config.max_positions {
        bail!("--context must be between 2 and the model's context of {} tokens (got {})", config.max_positions, a.context);
    }
    if a.skip_first >= a.context {
        bail!("--skip-first {} leaves no position of a {}-token context", a.skip_first, a.context);
    }
    let corpus = pack_text(&m, &a.text, a.context)?;
    let contexts: Vec<Vec<u32>> = corpus.packed.contexts.into_iter().take(a.contexts.unwrap_or(usize::MAX)).map(|c| c.tokens).collect();
    let opts = DashboardOptions {
        top: a.top,
        per_interval: a.per_interval,
        before: a.before,
        after: a.after,
        skip_first: a.skip_first,
        batch_contexts: a.batch_contexts.max(1),
        seed: cli.seed,
        ..DashboardOptions::default()
    };
    if !cli.quiet {
        eprintln!("{} contexts of {} tokens from {}; SAE of {} latents at {hook}", contexts.len(), a.context, a.text.display(), sae.d_sae);
    }
    let bar = glassbox_core::train::progress_bar(!cli.quiet, contexts.len() as u64, 0);
    bar.set_style(indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} contexts  {per_sec}  ETA {eta}")?);
    bar.set_message("pass 1/2 (maxima, top contexts)");
    let mut pass = Pass::First;
    let d = collect(&m, &sae, &hook, &contexts, &choice, &opts, |p, done| {
        if p != pass {
            pass = p;
            bar.set_message("pass 2/2 (intervals, histograms)");
            bar.reset();
        }
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let source = json!({ "model": a.model, "sae": a.sae.display().to_string(), "text": a.text.display().to_string() });
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    glassbox_core::io::write_json(&a.out.join(REPORT_FILE), &report_json(&d, &m.tokenizer, source))?;
    let shown: Vec<usize> = d.latents.iter().map(|l| l.latent).collect();
    let run = json!({
        "name": format!("Feature dashboards: {} at {hook}", a.sae.file_name().map_or(a.sae.display().to_string(), |n| n.to_string_lossy().to_string())),
        "command": super::command_line(),
        "seed": cli.seed,
        "wall_time_s": start.elapsed().as_secs_f64(),
        "metrics": { "tokens": d.tokens, "contexts": d.contexts, "latents_shown": shown.len(), "dead_fraction": d.dead as f64 / d.d_sae as f64 },
        "config": {
            "model": a.model, "sae": a.sae.display().to_string(), "hook": hook, "text": a.text.display().to_string(), "context": a.context,
            "skip_first": a.skip_first, "top": a.top, "per_interval": a.per_interval, "before": a.before, "after": a.after,
            // A string with spaces, so that the report's table can wrap it.
            "latents": shown.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
        },
        "feature_dashboards": { "file": REPORT_FILE },
    });
    glassbox_core::io::write_json(&a.out.join("run.json"), &run)?;
    if let Some(dir) = &a.neuronpedia {
        let stem = |p: &std::path::Path| p.file_stem().map_or("model".into(), |s| s.to_string_lossy().to_string());
        let np = NeuronpediaSource {
            model_id: a.neuronpedia_model_id.clone().unwrap_or_else(|| stem(std::path::Path::new(&a.model))),
            layer: glassbox_lm::hooks::block_of(&hook).unwrap_or(0),
            sae_set: a.neuronpedia_set.clone().unwrap_or_else(|| stem(&a.sae)),
            // The text's file name: a local path means nothing to whoever reads the export.
            dataset: a.text.file_name().map_or_else(|| a.text.display().to_string(), |n| n.to_string_lossy().to_string()),
        };
        let files = write_neuronpedia(dir, &d, &m.tokenizer, &np)?;
        println!("wrote {} Neuronpedia feature files to {}", files.len(), dir.display());
    }
    println!(
        "dashboards of {} latents ({} tokens, {} of {} latents never fired) -> {} ({:.1} s); render with `glassbox report {}`",
        shown.len(),
        d.tokens,
        d.dead,
        d.d_sae,
        a.out.display(),
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}
