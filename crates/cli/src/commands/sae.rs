use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use faer::Mat;
use glassbox_core::model::InputGradients;
use glassbox_sae::analysis::{extend_run, universality, write_run, CARD_NOTE};
use glassbox_sae::concepts::{write_concept_cards, CardModel, MaximiseOptions};
use glassbox_sae::experiments::train as train_usae;
use glassbox_sae::metrics::{dead_fraction, r2_per_dim};
use glassbox_sae::store::{capture_site, load_usae, read_site, save_usae};
use glassbox_sae::topk_sae::{TopKSae, TrainOptions};
use glassbox_sae::usae::{Loss, ScheduleTick, Usae, UsaeConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::Instant;

/// Sparse autoencoders on activations: a TopK SAE for one model, or a Universal SAE with one
/// concept dictionary shared by several; `stream` trains one on a language model's activation
/// store, `eval` judges it at the model's hook and `dashboard` shows what its latents respond to.
#[derive(Args, Debug)]
pub struct SaeArgs {
    #[command(subcommand)]
    pub command: SaeCommand,
}

#[derive(Subcommand, Debug)]
pub enum SaeCommand {
    Train(SaeTrainArgs),
    Cards(SaeCardsArgs),
    Eval(super::sae_eval::SaeEvalArgs),
    Stream(super::sae_stream::SaeStreamArgs),
    Universal(super::sae_universal::SaeUniversalArgs),
    Dashboard(super::sae_dashboard::SaeDashboardArgs),
}

/// Concept cards for a trained USAE: for its most universal latents, the test inputs that drive
/// each latent most in each model, and coordinated activation maximisation — per
/// model, an input optimised to maximise that latent (pixels under random shifts and noise, with
/// total-variation and L2 penalties, within the data range).
///
/// Give the models' checkpoints in the USAE's model order, with the site each was read at. The
/// test split of the data the models were trained on (from their model.json) supplies the
/// inputs; they must be images (a square number of pixels). Cards are written into the USAE
/// folder's figures/ and listed in its run.json.
#[derive(Args, Debug)]
pub struct SaeCardsArgs {
    /// USAE folder (cfg.json + usae.safetensors from `glassbox sae train`).
    pub usae: PathBuf,
    /// Checkpoint folders, one per USAE model, in its order (comma separated or repeated).
    #[arg(long = "model", value_delimiter = ',', required = true)]
    pub models: Vec<PathBuf>,
    /// Site to read: one for every model, or one per model (comma separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub site: Vec<String>,
    /// Number of latents, most universal first (most inputs on which they fire in every model).
    #[arg(long, default_value_t = 10)]
    pub cards: usize,
    /// Top-activating test inputs per model.
    #[arg(long, default_value_t = 8)]
    pub top: usize,
    /// Optimisation steps of the activation maximisation.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Use only the first N test inputs.
    #[arg(long)]
    pub limit: Option<usize>,
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
    /// Output folder for the SAE (or USAE) and its run.json.
    #[arg(long, default_value = "glassbox-sae")]
    pub out: PathBuf,
    /// Latents: the size of the dictionary.
    #[arg(long, default_value_t = 512)]
    pub m: usize,
    /// Active latents per input: the encoder keeps the k largest (1 to --m).
    #[arg(long, default_value_t = 16)]
    pub k: usize,
    /// Training steps, each on --batch inputs drawn at random.
    #[arg(long, default_value_t = 4000)]
    pub steps: usize,
    /// Inputs per step.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Learning rate (TopK SAE: constant Adam rate; USAE: the peak of its warm-up and cosine
    /// schedule).
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
    /// code's N(0, 1) rows: converges far faster on small runs.
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
    match &a.command {
        SaeCommand::Train(t) => train(cli, t),
        SaeCommand::Cards(c) => cards(cli, c),
        SaeCommand::Eval(e) => super::sae_eval::eval(cli, e),
        SaeCommand::Stream(s) => super::sae_stream::stream(cli, s),
        SaeCommand::Universal(u) => super::sae_universal::universal(cli, u),
        SaeCommand::Dashboard(d) => super::sae_dashboard::dashboard(cli, d),
    }
}

fn cards(cli: &Cli, c: &SaeCardsArgs) -> Result<()> {
    let usae = load_usae(&c.usae)?;
    let n = usae.models.len();
    if c.models.len() != n {
        bail!("{} holds a USAE over {} models ({}) but {} checkpoints were given", c.usae.display(), n, usae.models.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "), c.models.len());
    }
    if c.site.len() != 1 && c.site.len() != n {
        bail!("--site takes one name or one per model ({n} models, {} sites)", c.site.len());
    }
    let site = |i: usize| c.site[if c.site.len() == 1 { 0 } else { i }].as_str();
    let device = glassbox_core::tensor::infer_device();
    let mut models = Vec::new();
    let mut data_spec = None;
    for path in &c.models {
        let (model, card) = glassbox_core::checkpoint::load(path, &device)?;
        let task = card.task.with_context(|| format!("{}: model.json records no task, so there is no data to draw inputs from", path.display()))?;
        match &data_spec {
            None => data_spec = Some(task.data),
            Some(first) if *first != task.data => bail!("{} was trained on other data than {}: concept cards need the same inputs for every model", path.display(), c.models[0].display()),
            Some(_) => {}
        }
        models.push(model);
    }
    let split = data_spec.expect("at least one model").load(cli.data.as_deref())?;
    let mut test = split.test;
    if c.limit == Some(0) || c.top == 0 || c.cards == 0 {
        bail!("--limit, --top and --cards must be at least 1");
    }
    if let Some(limit) = c.limit {
        test = test.subset(&(0..limit.min(test.len())).collect::<Vec<_>>());
    }
    let side = (test.input_dim as f64).sqrt().round() as usize;
    if side * side != test.input_dim {
        bail!("concept cards need image inputs, but {} has {} input values per sample (not a square image)", test.name, test.input_dim);
    }
    let mut acts = Vec::new();
    for (i, model) in models.iter().enumerate() {
        let raw = capture_site(model, &test, site(i))?;
        let width = raw.ncols();
        if width != usae.models[i].d {
            bail!("{} at site '{}' has {width} features, but the USAE's model '{}' has {}", c.models[i].display(), site(i), usae.models[i].name, usae.models[i].d);
        }
        acts.push(usae.models[i].standardise(&raw));
    }
    let u = universality(&usae, &acts)?;
    let latents = glassbox_sae::concepts::most_universal(&u, c.cards);
    if latents.is_empty() {
        bail!("no latent fires in every model on these {} inputs, so no concept is universal enough for a card", test.len());
    }
    let gradients: Vec<InputGradients> = models.iter().map(InputGradients::new).collect();
    let card_models: Vec<CardModel> = (0..n).map(|i| CardModel { model: &gradients[i], site: site(i), acts: &acts[i] }).collect();
    let inputs: Vec<Vec<f32>> = (0..test.len()).map(|r| test.input(r).to_vec()).collect();
    let opts = MaximiseOptions { steps: c.steps, seed: cli.seed, ..MaximiseOptions::default() };
    let cards = write_concept_cards(&c.usae, &usae, &card_models, &inputs, [side, side], &latents, c.top, &opts)?;
    if !c.usae.join("run.json").exists() {
        write_run(&c.usae, "USAE", &super::command_line(), &u, 0.0)?;
    }
    extend_run(&c.usae, serde_json::json!({ "notes": [CARD_NOTE], "concept_cards": cards }))?;
    println!("concept cards for latents {latents:?} in {}", c.usae.join("figures").display());
    Ok(())
}

fn train(cli: &Cli, t: &SaeTrainArgs) -> Result<()> {
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
