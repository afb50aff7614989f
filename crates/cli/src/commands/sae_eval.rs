//! `glassbox sae eval`: an SAE at its language-model hook, judged with SAELens's metrics.

use super::lm_acts::pack_text;
use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_sae::lm_eval::{evaluate_with_density, SaeEval, DENSE_SHARE};
use glassbox_sae::saelens::Sae;
use std::path::PathBuf;

/// Evaluate an SAE on held-out text as SAELens's `run_evals` does: explained_variance, mse,
/// cossim, l2_ratio, l0, l1, dead and dense fractions at its hook, and, with the SAE spliced into
/// the model, ce_loss_score (against zero-ablating the hook) and kl_div_score. For an encoder
/// (no unembedding), instead: the cosine of each context's mean-pooled output embedding with the
/// SAE spliced in to the clean one, against zero ablation (embedding_score).
///
/// The SAE is a SAELens directory (cfg.json + sae_weights.safetensors, any version; standard,
/// TopK, JumpReLU or BatchTopK saved as JumpReLU). The text is cut into contexts as `glassbox
/// acts --text` does; special tokens (BOS, EOS, CLS, SEP) are left out of every metric and keep
/// their activations when the SAE is spliced in. A latent is dead when it fires on none of the
/// evaluated tokens, dense when it fires on more than 10 % of them.
#[derive(Args, Debug)]
pub struct SaeEvalArgs {
    /// SAE directory (SAELens layout).
    pub sae: PathBuf,
    /// The language model: a Hugging Face folder, cache id or GGUF file.
    #[arg(long)]
    pub model: String,
    /// Held-out UTF-8 text; blank lines separate documents.
    #[arg(long)]
    pub text: PathBuf,
    /// Hook to read and splice (default: the SAE's metadata.hook_name).
    #[arg(long)]
    pub hook: Option<String>,
    /// Tokens per context.
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// Evaluate at most this many contexts (from the start of the text).
    #[arg(long, default_value_t = 64)]
    pub contexts: usize,
    /// Leave out the first N positions of every context: a context cut from running text has
    /// no BOS, and its first token is the model's attention sink, with a residual stream norm
    /// often a hundred times the others' (SAELens leaves out the BOS it puts there).
    #[arg(long, default_value_t = 1)]
    pub skip_first: usize,
    /// Also count which latents fire (the dead and dense fractions) over this many more
    /// contexts of the text, after the evaluated ones; they run only as far as the hook. A
    /// latent that fires once in 100,000 tokens looks dead on a few thousand.
    #[arg(long, default_value_t = 0)]
    pub density_contexts: usize,
    /// Contexts per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch_contexts: usize,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the metrics as a run folder (run.json) for `glassbox report`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn eval(cli: &Cli, a: &SaeEvalArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let sae = Sae::load(&a.sae)?;
    let hook = match (&a.hook, sae.hook_name()) {
        (Some(h), _) => h.clone(),
        (None, Some(h)) => h.to_string(),
        (None, None) => bail!("{}: cfg.json names no hook (metadata.hook_name); give --hook", a.sae.display()),
    };
    let m = glassbox_lm::load(&a.model).with_context(|| format!("cannot open model {}", a.model))?;
    let config = &m.model.config;
    if a.context < 2 || a.context > config.max_positions {
        bail!("--context must be between 2 and the model's context of {} tokens (got {})", config.max_positions, a.context);
    }
    let corpus = pack_text(&m, &a.text, a.context)?;
    let all: Vec<Vec<u32>> = corpus.packed.contexts.iter().map(|c| c.tokens.clone()).collect();
    let (contexts, rest) = all.split_at(a.contexts.clamp(1, all.len()));
    let density = &rest[..a.density_contexts.min(rest.len())];
    if density.len() < a.density_contexts && !cli.quiet {
        eprintln!("{}: only {} contexts left for --density-contexts {}", a.text.display(), density.len(), a.density_contexts);
    }
    let bar = glassbox_core::train::progress_bar(!cli.quiet, (contexts.len() + density.len()) as u64, 0);
    let result = evaluate_with_density(&m, &sae, &hook, contexts, density, a.batch_contexts, a.skip_first, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    if let Some(dir) = &a.out {
        write_run(dir, a, &hook, &result, start.elapsed().as_secs_f64())?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_table(&result, contexts.len(), a.context);
    }
    Ok(())
}

fn print_table(e: &SaeEval, contexts: usize, context: usize) {
    println!("SAE at {}: {} tokens ({contexts} contexts of {context}; special tokens and skipped positions left out)", e.hook_name, e.tokens);
    let rows = [
        ("explained_variance", e.explained_variance),
        ("mse", e.mse),
        ("cossim", e.cossim),
        ("l2_norm_in", e.l2_norm_in),
        ("l2_norm_out", e.l2_norm_out),
        ("l2_ratio", e.l2_ratio),
        ("l0", e.l0),
        ("l1", e.l1),
        ("dead_fraction", e.dead_fraction),
        ("dense_fraction", e.dense_fraction),
    ];
    for (name, v) in rows {
        println!("  {name:<24} {v:.6}");
    }
    println!("  (dead: firing on none of {} tokens; dense: firing on more than {:.0} % of them)", e.density_tokens, DENSE_SHARE * 100.0);
    match &e.predictions {
        Some(p) => {
            println!("next-token predictions ({} tokens):", p.predicted_tokens);
            for (name, v) in [
                ("ce_loss_without_sae", p.ce_loss_without_sae),
                ("ce_loss_with_sae", p.ce_loss_with_sae),
                ("ce_loss_with_ablation", p.ce_loss_with_ablation),
                ("ce_loss_score", p.ce_loss_score),
                ("kl_div_with_sae", p.kl_div_with_sae),
                ("kl_div_with_ablation", p.kl_div_with_ablation),
                ("kl_div_score", p.kl_div_score),
            ] {
                println!("  {name:<24} {v:.6}");
            }
        }
        None => println!("no next-token metrics: the model has no unembedding (an encoder)"),
    }
    if let Some(m) = &e.embedding {
        println!("mean-pooled output embedding of each of {} contexts, cosine to the clean one:", m.contexts);
        for (name, v) in [("embedding_cossim_with_sae", m.embedding_cossim_with_sae), ("embedding_cossim_with_ablation", m.embedding_cossim_with_ablation), ("embedding_score", m.embedding_score)] {
            println!("  {name:<30} {v:.6}");
        }
    }
}

/// The metrics as a report run: every scalar under its SAELens name.
fn write_run(dir: &std::path::Path, a: &SaeEvalArgs, hook: &str, e: &SaeEval, seconds: f64) -> Result<()> {
    let mut metrics = serde_json::Map::new();
    let flatten = |value: serde_json::Value, into: &mut serde_json::Map<String, serde_json::Value>| {
        for (k, v) in value.as_object().into_iter().flatten() {
            if v.is_number() {
                into.insert(k.clone(), v.clone());
            }
        }
    };
    let value = serde_json::to_value(e)?;
    flatten(value.clone(), &mut metrics);
    flatten(value["predictions"].clone(), &mut metrics);
    flatten(value["embedding"].clone(), &mut metrics);
    let name = a.sae.file_name().map_or(a.sae.display().to_string(), |n| n.to_string_lossy().to_string());
    let run = serde_json::json!({
        "name": format!("SAE evaluation: {name} at {hook}"),
        "command": super::command_line(),
        "wall_time_s": seconds,
        "metrics": metrics,
        "config": { "model": a.model, "sae": a.sae.display().to_string(), "hook": hook, "text": a.text.display().to_string(),
                    "context": a.context, "contexts": a.contexts, "density_contexts": a.density_contexts, "skip_first": a.skip_first },
    });
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    glassbox_core::io::write_json(&dir.join("run.json"), &run)?;
    Ok(())
}
