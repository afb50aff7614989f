use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use faer::Mat;
use glassbox_sae::analysis::{universality, write_run};
use glassbox_sae::experiments::train as train_usae;
use glassbox_sae::metrics::{dead_fraction, r2_per_dim};
use glassbox_sae::store::{read_site, save_usae};
use glassbox_sae::topk_sae::{TopKSae, TrainOptions};
use glassbox_sae::usae::{Loss, ScheduleTick, Usae, UsaeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// Sparse autoencoders on activations (spec/usae.md): a TopK SAE for one model, or a Universal
/// SAE with one concept dictionary shared by several.
#[derive(Args, Debug)]
pub struct SaeArgs {
    #[command(subcommand)]
    pub command: SaeCommand,
}

#[derive(Subcommand, Debug)]
pub enum SaeCommand {
    Train(SaeTrainArgs),
}

/// Train on activation files (from `glassbox acts`, or safetensors exported from PyTorch).
///
/// One file: a TopK SAE (exact-k, unit-norm decoder rows, AuxK on dead latents, b_dec from the
/// data mean, MSE), saved as cfg.json + sae.safetensors with SAELens's field and tensor names.
/// Several files: a Universal SAE over the same inputs (row r of every file is the same input):
/// per-model Linear + BatchNorm + ReLU + TopK encoders and unit-row dictionaries over one shared
/// latent index, L1 + 0.1·AuxK-L1, one model sampled per step and only its encoder and decoder
/// updated, per-model AdamW (wd 1e-5) and scheduler, scalar standardisation per model; saved as
/// cfg.json + usae.safetensors, with the universality analysis (R² matrix, firing entropy,
/// co-firing, dead latents, energy) of the --eval files in run.json and figures/.
#[derive(Args, Debug)]
pub struct SaeTrainArgs {
    /// Activation files, one per model.
    #[arg(required = true)]
    pub acts: Vec<PathBuf>,
    /// Site to read: one for every file, or one per file (comma separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub site: Vec<String>,
    /// Evaluation activation files (same models and order); defaults to the training files.
    #[arg(long, value_delimiter = ',')]
    pub eval: Vec<PathBuf>,
    #[arg(long, default_value = "glassbox-sae")]
    pub out: PathBuf,
    /// Latents.
    #[arg(long, default_value_t = 512)]
    pub m: usize,
    #[arg(long, default_value_t = 16)]
    pub k: usize,
    #[arg(long, default_value_t = 4000)]
    pub steps: usize,
    /// Inputs per step.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// USAE: no BatchNorm in the encoders.
    #[arg(long)]
    pub no_batch_norm: bool,
    /// USAE: mean squared instead of mean absolute error.
    #[arg(long)]
    pub l2: bool,
    /// USAE: one schedule over global steps (the paper's intent) instead of the code's
    /// per-model ticks.
    #[arg(long)]
    pub global_schedule: bool,
    /// USAE: also update every decoder from its own term each step (not the code's rule).
    #[arg(long)]
    pub update_all_decoders: bool,
    /// USAE: Gao-style tied init (unit dictionary rows, encoder 0.5·D, zero bias) instead of the
    /// code's N(0, 1) rows: converges far faster on small runs (spec 5.1's prototype).
    #[arg(long)]
    pub tied_init: bool,
}

fn load(files: &[PathBuf], sites: &[String]) -> Result<Vec<Mat<f32>>> {
    if sites.len() != 1 && sites.len() != files.len() {
        bail!("--site takes one name or one per file ({} files, {} sites)", files.len(), sites.len());
    }
    let data: Vec<Mat<f32>> = files.iter().enumerate().map(|(i, f)| read_site(f, &sites[if sites.len() == 1 { 0 } else { i }])).collect::<glassbox_sae::Result<_>>()?;
    if let Some(bad) = data.iter().position(|d| d.nrows() != data[0].nrows()) {
        bail!("{} has {} samples but {} has {}: a USAE needs the same inputs in every file", files[bad].display(), data[bad].nrows(), files[0].display(), data[0].nrows());
    }
    Ok(data)
}

pub fn run(cli: &Cli, a: &SaeArgs) -> Result<()> {
    let SaeCommand::Train(t) = &a.command;
    let start = Instant::now();
    let train = load(&t.acts, &t.site)?;
    let eval = if t.eval.is_empty() { train.clone() } else { load(&t.eval, &t.site)? };
    if eval.len() != train.len() || eval.iter().zip(&train).any(|(e, tr)| e.ncols() != tr.ncols()) {
        bail!("--eval needs the same models (and widths) as the training files");
    }
    if t.k == 0 || t.k > t.m {
        bail!("--k must be in 1..=--m");
    }
    let command = super::command_line();
    if train.len() == 1 {
        let data = &train[0];
        let mut sae = TopKSae::init(data, t.m, t.k, cli.seed)?;
        sae.hook_name = t.site[0].clone();
        let report = sae.train(data, &TrainOptions { batch: t.batch, lr: t.lr, seed: cli.seed, ..TrainOptions::new(data.ncols(), t.steps) });
        let codes = sae.encode(&eval[0]);
        let ev = r2_per_dim(&eval[0], &sae.decode(&codes));
        let dead = dead_fraction(&codes.to_dense(), 0.0);
        sae.save(&t.out)?;
        let run = serde_json::json!({
            "name": format!("TopK SAE on {}", t.acts[0].display()), "command": command, "seed": cli.seed, "wall_time_s": start.elapsed().as_secs_f64(),
            "metrics": { "explained_variance": ev, "l0": codes.l0(), "dead_fraction": dead, "final_train_mse": report.final_mse },
        });
        glassbox_core::io::write_json(&t.out.join("run.json"), &run)?;
        println!("explained variance {ev:.4}  L0 {:.2}  dead {:.3}; wrote {}", codes.l0(), dead, t.out.display());
        return Ok(());
    }
    let names: Vec<String> = t.acts.iter().map(|f| f.file_stem().map_or("model".into(), |s| s.to_string_lossy().to_string())).collect();
    let shapes: Vec<(&str, usize)> = names.iter().zip(&train).map(|(n, d)| (n.as_str(), d.ncols())).collect();
    let config = UsaeConfig {
        lr: t.lr,
        batch_norm: !t.no_batch_norm,
        loss: if t.l2 { Loss::L2 } else { Loss::L1 },
        tick: if t.global_schedule { ScheduleTick::Global } else { ScheduleTick::PerModel },
        update_all_decoders: t.update_all_decoders,
        tied_init: t.tied_init,
        ..UsaeConfig::new(t.m, t.k, t.steps)
    };
    let mut usae = Usae::new(config, &shapes, cli.seed)?;
    let stats_rows = train[0].nrows().min(1000);
    for (s, d) in usae.models.iter_mut().zip(&train) {
        s.fit_standardisation(&d.subrows(0, stats_rows).to_owned());
    }
    let train_std: Vec<Mat<f32>> = train.iter().zip(&usae.models).map(|(d, s)| s.standardise(d)).collect();
    let eval_std: Vec<Mat<f32>> = eval.iter().zip(&usae.models).map(|(d, s)| s.standardise(d)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(cli.seed ^ 0x5AE);
    let n = train_std[0].nrows();
    let progress = glassbox_core::train::progress_bar(!cli.quiet, t.steps as u64, 0);
    train_usae(&mut usae, t.steps, cli.seed, |_| {
        progress.inc(1);
        let rows: Vec<usize> = (0..t.batch).map(|_| rng.random_range(0..n)).collect();
        train_std.iter().map(|d| Mat::from_fn(rows.len(), d.ncols(), |r, c| d[(rows[r], c)])).collect()
    })
    .context("USAE training")?;
    progress.finish_and_clear();
    save_usae(&usae, &t.out)?;
    let u = universality(&usae, &eval_std)?;
    write_run(&t.out, &format!("USAE over {}", names.join(", ")), &command, &u, start.elapsed().as_secs_f64())?;
    println!("R² (per-dim; row encodes, column decodes):");
    for (i, row) in u.r2.iter().enumerate() {
        println!("  {:>16} {}", names[i], row.iter().map(|v| format!("{v:7.3}")).collect::<Vec<_>>().join(" "));
    }
    println!("dead {:?}  mean co-fire proportion {:.3?}; wrote {}", u.dead_fraction, u.mean_cofire_proportion, t.out.display());
    Ok(())
}
