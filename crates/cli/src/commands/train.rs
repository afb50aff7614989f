use crate::Cli;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use glassbox_core::data::glyphs::GlyphWorld;
use glassbox_core::data::modadd::ModularAddition;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::model::{Activation, Architecture, TransformerConfig};
use glassbox_core::train::optim::{OptimConfig, OptimKind};
use glassbox_core::train::schedule::{Schedule, ScheduleKind};
use glassbox_core::train::{self, RunOptions, TrainConfig};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelKind {
    /// Multi-layer perceptron; --hidden sets the hidden widths, --activation the non-linearity.
    Mlp,
    /// Bilinear layer model logits = U((W E x) * (V E x)); --hidden is d_h.
    Bilinear,
    /// Small CNN: conv3x3+relu+maxpool per --channels entry, then a --hidden linear layer.
    Cnn,
    /// Decoder-only transformer over token sequences, read at the last position (modadd: the
    /// tokens "a b ="); --hidden is the MLP width, --layers, --d-model, --heads, --d-head the rest.
    /// No LayerNorm, learned positions, ReLU MLP: Nanda et al.'s grokking model by default.
    Transformer,
}

/// Train a model on a data set, writing a checkpoint folder after every epoch.
///
/// The output folder gets model.safetensors + model.json (the checkpoint), optimizer.safetensors
/// (for --resume) and run.json (configuration and per-epoch metrics, read by `glassbox report`).
/// A run that is stopped can be continued with the same command plus --resume and ends with
/// exactly the weights of an uninterrupted run. If the loss becomes NaN or infinite, training
/// stops with the step number and the last good checkpoint is kept.
///
/// Examples:
///   glassbox train --model mlp --dataset mnist --hidden 512 --epochs 10 --out runs/mlp-mnist
///   glassbox train --model bilinear --dataset mnist --hidden 512 --optimizer adamw \
///       --weight-decay 1.0 --input-noise 0.5 --batch-size 2048 --drop-last --epochs 20 --out runs/bil
///   glassbox train --model mlp --dataset modadd --p 113 --train-fraction 0.3 --weight-decay 1 \
///       --target-accuracy 1.0 --epochs 5000 --out runs/grok
///   glassbox train --model transformer --dataset modadd --batch-size 10000 --lr 1e-3 \
///       --weight-decay 1 --beta2 0.98 --schedule constant --warmup-epochs 10 --epochs 60000 \
///       --loss-f64 --eval-every 100 --save-every 500 --target-accuracy 1.0 --out runs/grok-transformer
#[derive(Args, Debug, Clone)]
#[command(verbatim_doc_comment)]
pub struct TrainArgs {
    /// Model family.
    #[arg(long, value_enum)]
    pub model: ModelKind,
    /// Data set: mnist, fashion-mnist, digits (need --data), modadd, glyphs (built in).
    #[arg(long)]
    pub dataset: String,
    /// Output folder for the checkpoint and run.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Hidden widths, comma separated (MLP: one per layer; bilinear: d_h; CNN: the linear layer).
    #[arg(long, value_delimiter = ',', default_value = "512")]
    pub hidden: Vec<usize>,
    /// MLP non-linearity: relu, gelu, tanh or sin.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// Add biases (MLP always has them unless --no-bias; bilinear only with --bias).
    #[arg(long)]
    pub bias: bool,
    /// Bilinear model without the embedding E: logits = U((W x) ⊙ (V x)) on the raw input.
    #[arg(long)]
    pub no_embed: bool,
    /// MLP with a linear embedding of this width (no bias, no activation) before the first
    /// layer: the modular-addition MLP of the Local Interaction Basis reproduction, with its initialisation.
    #[arg(long)]
    pub embed: Option<usize>,
    /// Write the checkpoint every N epochs (and after the last): for full-batch runs of many
    /// short epochs. --resume continues from the last one written.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub save_every: u64,
    /// MLP without biases.
    #[arg(long)]
    pub no_bias: bool,
    /// Transformer: number of blocks.
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Transformer: residual stream width.
    #[arg(long, default_value_t = 128)]
    pub d_model: usize,
    /// Transformer: attention heads per block.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Transformer: width of each head.
    #[arg(long, default_value_t = 32)]
    pub d_head: usize,
    /// Transformer without MLPs.
    #[arg(long)]
    pub attn_only: bool,
    /// CNN channels per conv stage, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32")]
    pub channels: Vec<usize>,
    /// Passes over the training set (the most; --target-accuracy can stop earlier).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Training examples per optimizer step (also the batch size of evaluation).
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate (the schedule and warm-up scale it per epoch).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Optimizer: adam (weight decay as an L2 term) or adamw (decoupled weight decay).
    #[arg(long, value_enum, default_value = "adamw")]
    pub optimizer: OptimArg,
    /// AdamW: decoupled weight decay. Adam: L2 term added to the gradient.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Adam/AdamW decay rate of the running mean of gradients.
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f64,
    /// Adam/AdamW decay rate of the running mean of squared gradients.
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f64,
    /// Learning-rate schedule, stepped once per epoch.
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: ScheduleArg,
    /// Linear learning-rate warm-up over this many epochs: epoch e (from 0) uses
    /// lr * (e + 1) / N; 0 = no warm-up.
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    /// Clip the global gradient norm to this value.
    #[arg(long)]
    pub clip_grad: Option<f64>,
    /// Std of Gaussian noise added to every training input (test inputs stay clean).
    #[arg(long, default_value_t = 0.0)]
    pub input_noise: f64,
    /// Drop the last incomplete batch of every epoch.
    #[arg(long)]
    pub drop_last: bool,
    /// Evaluate on the test split every N epochs.
    #[arg(long, default_value_t = 1)]
    pub eval_every: usize,
    /// Stop once test accuracy reaches this value (e.g. 1.0).
    #[arg(long)]
    pub target_accuracy: Option<f64>,
    /// Row blocks per batch whose gradients are computed in parallel. The result depends on
    /// this and not on --threads, so pass it to get identical weights on any machine. Default:
    /// the number of threads (the fastest choice); with --resume, the value the run started with.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
    /// Compute the cross-entropy in f64, as grokking runs do: in f32, losses near 1e-7 lose
    /// their gradient to rounding and training turns unstable.
    #[arg(long)]
    pub loss_f64: bool,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Modular addition: the modulus p.
    #[arg(long, default_value_t = 113)]
    pub p: usize,
    /// Modular addition: fraction of the p*p pairs used for training.
    #[arg(long, default_value_t = 0.3)]
    pub train_fraction: f64,
    /// Glyph world: number of training images.
    #[arg(long, default_value_t = 20000)]
    pub glyph_train: usize,
    /// Glyph world: number of test images.
    #[arg(long, default_value_t = 4000)]
    pub glyph_test: usize,
    /// Stop after this many epochs in this invocation (resume later with --resume).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimArg {
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Cosine,
}

impl TrainArgs {
    pub fn data_spec(&self, seed: u64) -> Result<DataSpec> {
        let tokens = matches!(self.model, ModelKind::Transformer);
        if tokens && self.dataset != "modadd" {
            bail!("the transformer reads token sequences; of the built-in data sets only modadd has them, not {}", self.dataset);
        }
        let modadd = ModularAddition { p: self.p, train_fraction: self.train_fraction, seed, tokens };
        let glyphs = GlyphWorld { n_train: self.glyph_train, n_test: self.glyph_test, seed };
        Ok(DataSpec::from_name(&self.dataset, seed, Some(modadd), Some(glyphs))?)
    }

    pub fn architecture(&self, input_dim: usize, image: Option<[usize; 3]>, n_out: usize) -> Result<Architecture> {
        if self.hidden.is_empty() {
            bail!("--hidden needs at least one width");
        }
        Ok(match self.model {
            ModelKind::Mlp => Architecture::Mlp {
                dims: std::iter::once(input_dim).chain(self.hidden.iter().copied()).chain([n_out]).collect(),
                activation: self.activation.parse::<Activation>()?,
                bias: !self.no_bias,
                embed: self.embed,
            },
            ModelKind::Bilinear => {
                if self.hidden.len() != 1 {
                    bail!("the bilinear model has one hidden width (--hidden D), got {:?}", self.hidden);
                }
                Architecture::Bilinear { d_in: input_dim, d_hidden: self.hidden[0], d_out: n_out, bias: self.bias, embed: !self.no_embed }
            }
            ModelKind::Cnn => {
                let Some(image) = image else { bail!("the CNN needs an image data set (mnist, fashion-mnist, digits, glyphs)") };
                Architecture::Cnn { image, channels: self.channels.clone(), kernel: 3, hidden: self.hidden[0], d_out: n_out }
            }
            ModelKind::Transformer => Architecture::Transformer(TransformerConfig {
                n_layers: self.layers,
                d_model: self.d_model,
                n_heads: self.heads,
                d_head: self.d_head,
                d_mlp: if self.attn_only { 0 } else { self.hidden[0] },
                // The token data sets' vocabulary is their set of classes ("=" included).
                d_vocab: n_out,
                d_vocab_out: n_out,
                n_ctx: input_dim,
                ..TransformerConfig::modular_addition(n_out - 1)
            }),
        })
    }

    /// The training configuration with `shards` row blocks per batch.
    pub fn config(&self, shards: usize) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optim: OptimConfig {
                kind: match self.optimizer {
                    OptimArg::Adam => OptimKind::Adam,
                    OptimArg::Adamw => OptimKind::AdamW,
                },
                beta1: self.beta1,
                beta2: self.beta2,
                eps: 1e-8,
                weight_decay: self.weight_decay,
            },
            schedule: Schedule {
                kind: match self.schedule {
                    ScheduleArg::Constant => ScheduleKind::Constant,
                    ScheduleArg::Cosine => ScheduleKind::Cosine,
                },
                warmup_epochs: self.warmup_epochs,
                min_lr: 0.0,
            },
            clip_grad_norm: self.clip_grad,
            input_noise: self.input_noise,
            drop_last: self.drop_last,
            eval_every: self.eval_every,
            target_accuracy: self.target_accuracy,
            shards,
            loss_f64: self.loss_f64,
        }
    }
}

/// Train and return the final test accuracy (used by the tour too).
pub fn train_run(cli: &Cli, a: &TrainArgs, name: &str) -> Result<train::Trained> {
    let spec = a.data_spec(cli.seed)?;
    let data = spec.load(cli.data.as_deref())?;
    let arch = a.architecture(data.train.input_dim, data.train.image_shape, data.train.n_outputs())?;
    if !cli.quiet {
        eprintln!(
            "training {} on {} ({} train / {} test) -> {}",
            arch.kind_name(), data.train.name, data.train.len(), data.test.len(), a.out.display()
        );
    }
    let opts = RunOptions {
        out_dir: a.out.clone(),
        name: name.to_string(),
        command: super::command_line(),
        seed: cli.seed,
        resume: a.resume,
        progress: !cli.quiet,
        stop_after_epochs: a.stop_after,
        save_every: a.save_every as usize,
    };
    Ok(train::train(arch, &data, &spec, &a.config(shards(a)?), &opts)?)
}

/// --shards, else what a resumed run started with, else one per thread.
fn shards(a: &TrainArgs) -> Result<usize> {
    if let Some(n) = a.shards {
        return Ok(n as usize);
    }
    let card = a.out.join(glassbox_core::checkpoint::CARD_FILE);
    if a.resume {
        // A checkpoint whose writing a kill cut short is finished or discarded first.
        glassbox_core::train::recover_checkpoint(&a.out)?;
    }
    if a.resume && card.exists() {
        let card: glassbox_core::checkpoint::ModelCard = glassbox_core::io::read_json(&card)?;
        if let Some(n) = card.training.as_ref().and_then(|t| t.get("shards")).and_then(|v| v.as_u64()) {
            return Ok(n as usize);
        }
    }
    Ok(rayon::current_num_threads())
}

pub fn run(cli: &Cli, a: &TrainArgs) -> Result<()> {
    let name = a.out.file_name().map_or("run".into(), |n| n.to_string_lossy().to_string());
    let trained = train_run(cli, a, &name)?;
    for (k, v) in &trained.card.metrics {
        println!("{k}: {v:.6}");
    }
    println!("checkpoint: {}", a.out.display());
    Ok(())
}
