use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use glassbox_core::model::{Architecture, MlpKind, TransformerConfig};
use glassbox_core::train::lm::{train_lm, Decay, LmConfig};
use glassbox_core::train::optim::{OptimConfig, OptimKind};
use glassbox_core::train::RunOptions;
use glassbox_lm::corpus::{pack, save_tokenizer, split_documents, train_tokenizer};
use glassbox_lm::score;
use glassbox_lm::tokenizer::{read_utf8_text, Tokenizer};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LmKind {
    /// Pre-LayerNorm blocks, learned positions, GELU MLP with biases, attention biases, the
    /// unembedding tied to the embedding (GPT-2's design).
    Gpt,
    /// Pearce et al.'s bilinear transformer: RMSNorm without gain, rotary attention, the MLP
    /// P((W n) ⊙ (V n)) without biases, attention output scaled by 1/√(2·layers), untied
    /// unembedding.
    Bilinear,
    /// The bilinear transformer with a SiLU on the gate (SwiGLU, Llama's MLP): the gated MLP the
    /// bilinear paper compares with.
    Swiglu,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DecayArg {
    Constant,
    Linear,
    Cosine,
}

/// The share of documents `lm train` holds out for validation unless told otherwise.
pub const DEFAULT_VAL_FRACTION: f64 = 0.05;

/// Train a small language model on your text.
///
/// The text files are cut into documents at blank lines; a seeded share of the documents is
/// held out for validation. Unless --tokenizer names an existing tokenizer.json, a byte-level
/// BPE tokenizer of --vocab tokens is trained on the training documents first (lowercased
/// with --lowercase, as the bilinear paper's 4,096-token tokenizer). Each document's tokens are
/// followed by <|endoftext|>, concatenated and cut into contexts of --context + 1 tokens. The
/// model learns next-token prediction at every position with AdamW (gradients clipped to norm
/// 1), a linear warm-up and then --decay (linear towards zero by default).
///
/// The output folder is a Hugging Face model folder as well as a glassbox checkpoint:
/// config.json + model.safetensors + tokenizer.json in the layout of GPT-2 (gpt) or of Llama
/// with an identity gate (bilinear), which transformers and the other `glassbox lm` commands
/// open; model.json (glassbox's card), optimizer.safetensors (for --resume) and run.json
/// (per-step training loss, validation loss every --eval-every steps).
///
/// Examples:
///   glassbox lm train tinystories_val.txt --arch bilinear --vocab 4096 --lowercase \
///       --layers 4 --d-model 256 --d-mlp 512 --steps 2000 --out runs/bilinear-lm
///   glassbox lm train tinystories_val.txt --arch gpt --tokenizer runs/bilinear-lm/tokenizer.json \
///       --layers 4 --d-model 256 --d-mlp 768 --steps 2000 --out runs/gpt-lm
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct LmTrainArgs {
    /// UTF-8 text files.
    #[arg(required = true)]
    pub text: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Model architecture.
    #[arg(long, value_enum, default_value = "bilinear")]
    pub arch: LmKind,
    /// An existing tokenizer.json instead of training one.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Vocabulary of the tokenizer to train.
    #[arg(long, default_value_t = 4096)]
    pub vocab: usize,
    /// Lowercase the text (in the trained tokenizer's normaliser).
    #[arg(long)]
    pub lowercase: bool,
    /// Share of the documents held out for validation.
    #[arg(long, default_value_t = DEFAULT_VAL_FRACTION)]
    pub val_fraction: f64,
    /// Context length in tokens: the longest sequence the model reads.
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// Number of transformer blocks.
    #[arg(long, default_value_t = 4)]
    pub layers: usize,
    /// Residual stream width (a multiple of --heads).
    #[arg(long, default_value_t = 256)]
    pub d_model: usize,
    /// Attention heads per block; each head is d_model / heads wide.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// MLP width (the bilinear MLP has three matrices to the GPT MLP's two: 2/3 of the GPT
    /// width gives equal parameters).
    #[arg(long, default_value_t = 512)]
    pub d_mlp: usize,
    /// Optimizer steps (each on --batch-size contexts).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Contexts per step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Peak learning rate, reached at the end of the warm-up.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Linear learning-rate warm-up over this many steps.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// How the learning rate falls after the warm-up, down to zero at the last step (constant:
    /// it stays at --lr).
    #[arg(long, value_enum, default_value = "linear")]
    pub decay: DecayArg,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f64,
    /// AdamW decay rate of the running mean of squared gradients (beta1 is 0.9).
    #[arg(long, default_value_t = 0.95)]
    pub beta2: f64,
    /// Validation loss every N steps (and at the last).
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    /// Checkpoint every N steps (and at the last).
    #[arg(long, default_value_t = 100)]
    pub save_every: usize,
    /// Row blocks per batch computed in parallel; the result depends on this, not on
    /// --threads. Default: the number of threads, or with --resume what the run started with.
    #[arg(long)]
    pub shards: Option<usize>,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many steps in this invocation (resume later with --resume).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

impl LmTrainArgs {
    fn architecture(&self, vocab: usize) -> Result<TransformerConfig> {
        if self.d_mlp == 0 {
            bail!("--d-mlp must be at least 1: the saved Hugging Face layouts have MLPs");
        }
        if self.heads == 0 || self.d_model % self.heads != 0 {
            bail!("--d-model {} is not a multiple of --heads {}", self.d_model, self.heads);
        }
        let (l, d, h, m, n) = (self.layers, self.d_model, self.heads, self.d_mlp, self.context);
        Ok(match self.arch {
            LmKind::Gpt => TransformerConfig::gpt_style(l, d, h, m, vocab, n),
            LmKind::Bilinear => TransformerConfig::bilinear_lm(l, d, h, m, vocab, n, MlpKind::Bilinear),
            LmKind::Swiglu => TransformerConfig::bilinear_lm(l, d, h, m, vocab, n, MlpKind::SwiGlu),
        })
    }
}

/// The shards a resumed run started with (its result depends on them, not on --threads).
fn resumed_shards(a: &LmTrainArgs) -> Result<Option<usize>> {
    let card = a.out.join(glassbox_core::checkpoint::CARD_FILE);
    if a.resume {
        // A checkpoint whose writing a kill cut short is finished or discarded first, and a
        // tokenizer a kill cut short is written again.
        glassbox_core::train::recover_checkpoint(&a.out)?;
        if a.out.is_dir() {
            glassbox_core::io::remove_temporaries(&a.out, |name, _| name == "tokenizer.json")?;
        }
    }
    if !(a.resume && card.exists()) {
        return Ok(None);
    }
    let card: glassbox_core::checkpoint::ModelCard = glassbox_core::io::read_json(&card)?;
    Ok(card.training.as_ref().and_then(|t| t["config"]["shards"].as_u64()).map(|n| n as usize))
}

pub fn run(cli: &Cli, a: &LmTrainArgs) -> Result<()> {
    // The architecture's own checks, before any text is read or tokenizer trained.
    Architecture::Transformer(a.architecture(a.vocab.max(1))?).validate()?;
    let mut docs_text = Vec::new();
    for path in &a.text {
        docs_text.push(read_utf8_text(path)?);
    }
    let docs: Vec<String> = docs_text.iter().flat_map(|t| score::split_documents(t)).collect();
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let (train_idx, val_idx) = split_documents(docs.len(), a.val_fraction, cli.seed).context("splitting the text into training and validation documents")?;
    let train_docs: Vec<&str> = train_idx.iter().map(|&i| docs[i]).collect();
    let val_docs: Vec<&str> = val_idx.iter().map(|&i| docs[i]).collect();
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let tokenizer = match &a.tokenizer {
        Some(path) => {
            let t = Tokenizer::from_file(path)?;
            let target = a.out.join("tokenizer.json");
            // Copying a file onto itself would empty it.
            let same = target.exists() && std::fs::canonicalize(path).ok() == std::fs::canonicalize(&target).ok();
            if !same {
                let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
                glassbox_core::io::write_atomic(&target, &bytes).with_context(|| format!("cannot copy {} into {}", path.display(), a.out.display()))?;
            }
            t
        }
        None if a.resume && a.out.join("tokenizer.json").is_file() => Tokenizer::from_file(&a.out.join("tokenizer.json"))?,
        None => {
            if !cli.quiet {
                eprintln!("training a {}-token BPE tokenizer on {} documents", a.vocab, train_docs.len());
            }
            save_tokenizer(&train_tokenizer(&train_docs, a.vocab, a.lowercase)?, &a.out)?
        }
    };
    let (train, val) = (pack(&tokenizer, &train_docs, a.context)?, pack(&tokenizer, &val_docs, a.context)?);
    if val.is_empty() {
        bail!("the {} validation documents hold fewer than {} tokens: raise --val-fraction or shorten --context", val_docs.len(), a.context + 1);
    }
    let arch = a.architecture(tokenizer.vocab_size())?;
    let shards = match a.shards {
        Some(n) => n,
        None => resumed_shards(a)?.unwrap_or_else(rayon::current_num_threads),
    };
    let cfg = LmConfig {
        steps: a.steps,
        batch_size: a.batch_size,
        lr: a.lr,
        optim: OptimConfig { kind: OptimKind::AdamW, beta1: 0.9, beta2: a.beta2, eps: 1e-8, weight_decay: a.weight_decay },
        warmup_steps: a.warmup,
        decay: match a.decay {
            DecayArg::Constant => Decay::Constant,
            DecayArg::Linear => Decay::Linear,
            DecayArg::Cosine => Decay::Cosine,
        },
        min_lr: 0.0,
        clip_grad_norm: Some(1.0),
        eval_every: a.eval_every,
        shards,
    };
    let files: Vec<String> = a.text.iter().map(|p| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().to_string())).collect();
    let data = serde_json::json!({
        "files": files, "documents": { "train": train_docs.len(), "validation": val_docs.len() },
        "tokens": { "train": train.tokens.len(), "validation": val.tokens.len() },
        "contexts": { "train": train.len(), "validation": val.len() }, "val_fraction": a.val_fraction,
        "eos_token_id": tokenizer.eos_id(),
    });
    if !cli.quiet {
        eprintln!(
            "training a {:?} transformer ({} layers, d_model {}) on {} contexts of {} tokens ({} validation) -> {}",
            a.arch, a.layers, a.d_model, train.len(), a.context, val.len(), a.out.display()
        );
    }
    let opts = RunOptions {
        out_dir: a.out.clone(),
        name: a.out.file_name().map_or("lm".into(), |n| n.to_string_lossy().to_string()),
        command: super::command_line(),
        seed: cli.seed,
        resume: a.resume,
        progress: !cli.quiet,
        stop_after_epochs: a.stop_after,
        save_every: a.save_every,
    };
    let (model, card) = train_lm(Architecture::Transformer(arch), &train, &val, data, &cfg, &opts)?;
    for (k, v) in &card.metrics {
        println!("{k}: {v:.6}");
    }
    println!("steps: {}", card.epochs_done);
    println!("parameters: {}", model.params.numel());
    println!("checkpoint: {}", a.out.display());
    Ok(())
}
