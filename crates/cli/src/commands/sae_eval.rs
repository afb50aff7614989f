//! `glassbox sae eval`: an SAE at its language-model hook, judged with SAELens's metrics.

use super::lm_acts::pack_text;
use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_sae::lm_eval::{evaluate, SaeEval, DENSE_SHARE};
use glassbox_sae::saelens::Sae;
use std::path::PathBuf;

/// Evaluate an SAE on held-out text as SAELens's `run_evals` does: explained_variance, mse,
/// cossim, l2_ratio, l0, l1, dead and dense fractions at its hook, and, with the SAE spliced into
/// the model, ce_loss_score (against zero-ablating the hook) and kl_div_score.
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
    /// Contexts per forward pass.
    #[arg(long, default_value_t = 4)]
    pub batch_contexts: usize,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn eval(cli: &Cli, a: &SaeEvalArgs) -> Result<()> {
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
    let contexts: Vec<Vec<u32>> = corpus.packed.contexts.iter().take(a.contexts.max(1)).map(|c| c.tokens.clone()).collect();
    let bar = glassbox_core::train::progress_bar(!cli.quiet, contexts.len() as u64, 0);
    let result = evaluate(&m, &sae, &hook, &contexts, a.batch_contexts, a.skip_first, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
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
    println!("  (dense: firing on more than {:.0} % of tokens)", DENSE_SHARE * 100.0);
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
}
