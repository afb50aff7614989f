use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use glassbox_weightspace::probes::ProbeKind;
use glassbox_weightspace::reader::{train_reader, ReaderConfig, Task};
use glassbox_weightspace::saved::{self, ReaderInfo, TaskInfo};
use glassbox_weightspace::targets::{Targets, ZooTargets};
use glassbox_zoo::store::{self, Zoo};
use glassbox_zoo::{accuracy_zoo, inr};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Model readers: predict a property of each model in a zoo from its answers to probes.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    #[command(subcommand)]
    pub command: ProbeCommand,
}

#[derive(Subcommand, Debug)]
pub enum ProbeCommand {
    Train(ProbeTrainArgs),
    Eval(ProbeEvalArgs),
    Predict(ProbePredictArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Method {
    /// Probes generated from latents by a shared deep linear generator (ProbeGen, Kahana et al., ICLR 2025).
    Probegen,
    /// ProbeGen's generator with ReLU between its layers (a control).
    Nonlinear,
    /// Free learned probes.
    Vanilla,
    /// Fixed inputs ~ U(-1, 1).
    Uniform,
    /// Fixed: the image grid the INRs were fitted on (an oracle; INR zoos).
    Grid,
    /// Fixed: real training inputs of the zoo's models (digits-mlp-acc and mnist-cnn-acc zoos).
    Real,
    /// Weight statistics (mean, variance, quantiles per tensor) into an MLP.
    Statnn,
}

/// Train a reader on a zoo's training split and report the validation and test metric per
/// epoch and the test metric at the best validation epoch.
///
/// Reads INR zoos (family inr: probes are 2-D coordinates), MLP zoos (family mlp: probes are
/// inputs in [-1, 1], through tanh when learned) and CNN zoos (family cnn: 28×28 images in
/// [-1, 1]; ProbeGen's generator is a stack of transposed convolutions). The task follows the zoo's target: classes
/// (cross-entropy, accuracy) when every value is a class index, else a number (MSE, Kendall's
/// tau-b). Probe readers follow the paper: a head of six Linear layers (width 256,
/// ReLU between), Adam 3e-4, cosine to 0 per step, batches of 32 models; only the probes and
/// the head learn (the zoo's weights are frozen and get no gradient).
///
/// Writes into --out: run.json (learning curves, result), figures/ (the probes), and for probe
/// methods the reader of the best validation epoch (reader.safetensors + reader.json) for
/// `glassbox probe eval` and `glassbox probe predict`.
#[derive(Args, Debug)]
pub struct ProbeTrainArgs {
    /// Zoo folder (from `glassbox zoo build` or `glassbox zoo import`); the reader learns its
    /// default target.
    pub zoo: PathBuf,
    /// How the models are read: learned or fixed probes into a shared head, or weight
    /// statistics.
    #[arg(long, value_enum, default_value = "probegen")]
    pub method: Method,
    /// Number of probes P.
    #[arg(long, default_value_t = 64)]
    pub probes: usize,
    /// Epochs (default: 30, or 40 for statnn as in the paper).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// What the target is: auto (classes when every value is a class index), classes or
    /// regression (e.g. test accuracy given in whole percent).
    #[arg(long, value_enum, default_value = "auto")]
    pub task: TaskKind,
    /// Output folder for run.json, figures/ and the saved reader.
    #[arg(long, default_value = "glassbox-probe")]
    pub out: PathBuf,
}

/// Score a trained reader on a zoo with labels: accuracy or Kendall's tau-b of its predictions
/// on one split (or all models). The zoo must hold models of the layout the reader was trained
/// on (same family and tensors) and the target the reader predicts.
#[derive(Args, Debug)]
pub struct ProbeEvalArgs {
    /// Folder written by `glassbox probe train`.
    pub reader: PathBuf,
    /// Zoo folder with the models to score and their labels.
    pub zoo: PathBuf,
    /// Which models to score: the zoo's train, val or test split, or all of them.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitName,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SplitName {
    Train,
    Val,
    Test,
    All,
}

/// Apply a trained reader to every model of a zoo (e.g. one made by `glassbox zoo import`) and
/// write one CSV row per model: index, name (when the zoo's labels have one), prediction (the
/// class, or the number), and for classes the predicted class's probability.
#[derive(Args, Debug)]
pub struct ProbePredictArgs {
    /// Folder written by `glassbox probe train`.
    pub reader: PathBuf,
    /// Zoo folder with the models to predict (labels are not needed).
    pub zoo: PathBuf,
    /// CSV file to write.
    #[arg(long, default_value = "predictions.csv")]
    pub out: PathBuf,
}

pub fn run(cli: &Cli, a: &ProbeArgs) -> Result<()> {
    match &a.command {
        ProbeCommand::Train(t) => train(cli, t),
        ProbeCommand::Eval(e) => eval(e),
        ProbeCommand::Predict(p) => predict(p),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskKind {
    /// Classes when every target value is a class index (0, 1, 2, …), else a number.
    Auto,
    /// Cross-entropy over class indices; scored by accuracy.
    Classes,
    /// MSE on the value; scored by Kendall's tau-b.
    Regression,
}

/// The task of predicting label `key` of every model.
fn task_of(zoo: &Zoo, key: &str, kind: TaskKind) -> Result<Task> {
    let values = zoo.values(key)?;
    let class_like = values.iter().all(|&v| v >= 0.0 && v.fract() == 0.0 && v < 100_000.0);
    match kind {
        TaskKind::Regression => Ok(Task::Regression { values: values.iter().map(|&v| v as f32).collect() }),
        TaskKind::Auto if !class_like => Ok(Task::Regression { values: values.iter().map(|&v| v as f32).collect() }),
        _ if !class_like => bail!("{}: '{key}' is not a class index (0, 1, 2, …) for every model", zoo.dir.join("labels.json").display()),
        _ => {
            let labels: Vec<usize> = values.iter().map(|&v| v as usize).collect();
            let n_classes = labels.iter().max().map_or(0, |m| m + 1);
            Ok(Task::Classes { labels, n_classes })
        }
    }
}

/// The fixed inputs of grid and real probes: the INR image grid, or the training images of a
/// digits-mlp-acc or mnist-cnn-acc zoo.
fn given_inputs(cli: &Cli, zoo: &Zoo, method: Method) -> Result<Vec<f32>> {
    let generation = &zoo.spec.generation;
    match (method, zoo.spec.family.as_str()) {
        (Method::Grid, "inr") => {
            let side = generation.get("side").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            if side == 0 {
                bail!(
                    "{}: zoo.json records no image side, so there is no grid to probe",
                    zoo.dir.display()
                );
            }
            Ok(inr::grid(side).into_iter().flatten().collect())
        }
        (Method::Real, family) => {
            let preset = generation.get("preset").and_then(|v| v.as_str()).unwrap_or("unknown");
            let seed = || generation.get("seed").and_then(|v| v.as_u64()).with_context(|| format!("{}: records no seed", zoo.dir.join("zoo.json").display()));
            match (family, preset) {
                ("mlp", "digits-mlp-acc") => {
                    let digits = glassbox_core::data::load_all_digits(cli.data.as_deref())?;
                    Ok(accuracy_zoo::digits_mlp_acc(&digits, zoo.spec.count, seed()?)?.train.0)
                }
                ("cnn", "mnist-cnn-acc") => {
                    let seed = seed()?;
                    let mnist = glassbox_core::data::load_named("mnist", cli.data.as_deref(), seed)?;
                    Ok(accuracy_zoo::mnist_cnn_acc(&mnist, zoo.spec.count, seed)?.train.0)
                }
                _ => bail!("--method real needs the inputs the models were trained on, which glassbox knows for digits-mlp-acc and mnist-cnn-acc zoos; this zoo's preset is '{preset}'"),
            }
        }
        (Method::Grid, family) => bail!("--method grid is for INR zoos; this zoo's family is '{family}'"),
        _ => Ok(Vec::new()),
    }
}

fn train(cli: &Cli, t: &ProbeTrainArgs) -> Result<()> {
    let start = Instant::now();
    let zoo = store::load(&t.zoo)?;
    let targets = ZooTargets::of(&zoo)?;
    let task = task_of(&zoo, &zoo.spec.target, t.task)?;
    if let Task::Classes { n_classes, .. } = &task {
        if *n_classes < 2 {
            bail!("{}: target '{}' has a single class; a reader needs at least two", t.zoo.display(), zoo.spec.target);
        }
    }
    let epochs = t.epochs.unwrap_or(if matches!(t.method, Method::Statnn) {
        40
    } else {
        30
    });
    if t.probes == 0 || epochs == 0 {
        bail!("--probes and --epochs must be at least 1");
    }
    let splits = &zoo.spec.splits;
    if splits.train.is_empty() || splits.val.is_empty() {
        bail!(
            "{}: the zoo's train and val splits must not be empty (train {}, val {})",
            t.zoo.display(),
            splits.train.len(),
            splits.val.len()
        );
    }
    let metric = task.metric_name();
    std::fs::create_dir_all(t.out.join("figures")).with_context(|| format!("cannot create {}", t.out.join("figures").display()))?;
    let row = |e: usize, train: Option<f64>, val: f64, test: f64| {
        let mut r = serde_json::json!({ "epoch": e + 1, format!("val_{metric}"): val, format!("test_{metric}"): test });
        if let Some(v) = train {
            r[format!("train_{metric}")] = serde_json::json!(v);
        }
        r
    };
    let (history, at_best, best_epoch) = match t.method {
        Method::Statnn => {
            let tensors = zoo.spec.tensor_sizes();
            let r = glassbox_weightspace::statnn::train_statnn(
                &zoo.params,
                &tensors,
                &task,
                splits,
                epochs,
                cli.seed,
            );
            let history: Vec<serde_json::Value> = (0..r.val_metric.len())
                .map(|e| row(e, None, r.val_metric[e], r.test_metric[e]))
                .collect();
            (history, r.test_at_best_val, r.best_epoch)
        }
        m => {
            let kind = match m {
                Method::Probegen => ProbeKind::ProbeGen,
                Method::Nonlinear => ProbeKind::Nonlinear,
                Method::Vanilla => ProbeKind::Vanilla,
                Method::Uniform => ProbeKind::Uniform,
                Method::Grid => ProbeKind::Grid,
                _ => ProbeKind::Real,
            };
            let space = targets.probe_space();
            let (r, reader) = train_reader(
                &targets,
                &task,
                splits,
                &space,
                &given_inputs(cli, &zoo, m)?,
                &ReaderConfig::new(kind, t.probes, epochs, cli.seed),
            )?;
            let history = (0..r.val_metric.len())
                .map(|e| {
                    row(
                        e,
                        Some(r.train_metric[e]),
                        r.val_metric[e],
                        r.test_metric[e],
                    )
                })
                .collect();
            write_probe_figure(&t.out, &reader.probes, space.dim, zoo.spec.family.as_str())?;
            let info = ReaderInfo {
                method: r.method.clone(),
                task: match &task {
                    Task::Classes { n_classes, .. } => TaskInfo::Classes {
                        n_classes: *n_classes,
                    },
                    Task::Regression { .. } => TaskInfo::Regression,
                },
                target: zoo.spec.target.clone(),
                metric: metric.into(),
                family: zoo.spec.family.clone(),
                tensors: zoo.spec.tensors.clone(),
                n_probes: reader.n_probes,
                input_dim: space.dim,
                head_dims: reader.head.dims.clone(),
                best_epoch: r.best_epoch,
                test_at_best_val: r.test_at_best_val,
                trained_on: t.zoo.display().to_string(),
            };
            saved::save(&t.out, &reader, &info)?;
            (history, r.test_at_best_val, r.best_epoch)
        }
    };
    let run = serde_json::json!({
        "name": format!("{:?} reader on {}", t.method, t.zoo.display()).to_lowercase(), "command": super::command_line(), "seed": cli.seed,
        "wall_time_s": start.elapsed().as_secs_f64(), "history": history,
        "metrics": { format!("test_{metric}_at_best_val"): at_best, "best_epoch": best_epoch },
    });
    glassbox_core::io::write_json(&t.out.join("run.json"), &run)?;
    println!(
        "test {metric} at the best validation epoch ({best_epoch}): {at_best:.4}; wrote {}",
        t.out.display()
    );
    Ok(())
}

/// INR probes as points in the plane; image probes as a grid of images.
fn write_probe_figure(out: &Path, probes: &[f32], dim: usize, family: &str) -> Result<()> {
    if family == "inr" {
        let points: Vec<(f64, f64)> = probes
            .chunks_exact(2)
            .map(|p| (p[0] as f64, p[1] as f64))
            .collect();
        let svg = glassbox_report::scatter_chart_svg(
            "Probe coordinates (the INRs were fitted on [-1, 1]²)",
            "x",
            "y",
            &points,
        )?;
        glassbox_core::io::write_atomic(&out.join("figures/probes.svg"), svg.as_bytes())?;
    } else {
        let side = (dim as f64).sqrt().round() as usize;
        if side * side == dim {
            let images: Vec<Vec<f32>> = probes.chunks_exact(dim).map(<[f32]>::to_vec).collect();
            glassbox_core::io::write_atomic(&out.join("figures/probes.png"), &glassbox_report::image_grid_png(&images, side, side, 8)?)?;
        }
    }
    Ok(())
}

/// A saved reader and a zoo it can read.
fn load_pair(
    reader: &Path,
    zoo: &Path,
) -> Result<(glassbox_weightspace::reader::Reader, ReaderInfo, Zoo)> {
    let (r, info) = saved::load(reader)?;
    let zoo = store::load(zoo)?;
    if zoo.spec.family != info.family || zoo.spec.tensors != info.tensors {
        bail!("{}: the reader in {} reads '{}' models with tensors {:?}; this zoo holds '{}' models with {:?}", zoo.dir.display(), reader.display(), info.family, info.tensors, zoo.spec.family, zoo.spec.tensors);
    }
    let targets = ZooTargets::of(&zoo)?;
    if info.input_dim != targets.input_dim() || r.head.dims[0] != info.n_probes * targets.output_dim() {
        bail!("{}: probes of {} values and a head reading {} numbers do not fit '{}' models ({} inputs, {} outputs per probe)", reader.join("reader.json").display(), info.input_dim, r.head.dims[0], info.family, targets.input_dim(), targets.output_dim());
    }
    Ok((r, info, zoo))
}

fn eval(e: &ProbeEvalArgs) -> Result<()> {
    let (reader, info, zoo) = load_pair(&e.reader, &e.zoo)?;
    let targets = ZooTargets::of(&zoo)?;
    // The reader's own task decides how the labels are read.
    let task = match (task_of(&zoo, &info.target, if matches!(info.task, TaskInfo::Regression) { TaskKind::Regression } else { TaskKind::Classes })?, &info.task) {
        (Task::Classes { labels, .. }, TaskInfo::Classes { n_classes }) => Task::Classes { labels, n_classes: *n_classes },
        (task, _) => task,
    };
    if let Task::Classes { labels, n_classes } = &task {
        if let Some(i) = labels.iter().position(|l| l >= n_classes) {
            bail!(
                "{}: model {i} has class {} but the reader knows {n_classes} classes",
                e.zoo.display(),
                labels[i]
            );
        }
    }
    let splits = &zoo.spec.splits;
    let (idx, which): (Vec<usize>, &str) = match e.split {
        SplitName::Train => (splits.train.clone(), "training split"),
        SplitName::Val => (splits.val.clone(), "validation split"),
        SplitName::Test => (splits.test.clone(), "test split"),
        SplitName::All => ((0..targets.len()).collect(), "all models"),
    };
    if idx.is_empty() {
        bail!("{}: the {which} is empty", e.zoo.display());
    }
    let value = task.metric(&reader.predict(&targets, &idx), &idx);
    println!("{} on {} models ({which} of {}): {value:.4}", info.metric, idx.len(), e.zoo.display());
    Ok(())
}

fn predict(p: &ProbePredictArgs) -> Result<()> {
    let (reader, info, zoo) = load_pair(&p.reader, &p.zoo)?;
    let targets = ZooTargets::of(&zoo)?;
    let idx: Vec<usize> = (0..targets.len()).collect();
    let out = reader.predict(&targets, &idx);
    let mut csv = String::from(if matches!(info.task, TaskInfo::Classes { .. }) {
        "model,name,class,probability\n"
    } else {
        "model,name,prediction\n"
    });
    for (r, label) in zoo.labels.iter().enumerate() {
        let name = label
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .replace(',', ";");
        match info.task {
            TaskInfo::Classes { .. } => {
                let row: Vec<f32> = (0..out.ncols()).map(|c| out[(r, c)]).collect();
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = row.iter().map(|v| (v - max).exp()).sum();
                let best = glassbox_zoo::mlp::argmax(&row);
                csv.push_str(&format!("{r},{name},{best},{:.4}\n", 1.0 / total));
            }
            TaskInfo::Regression => csv.push_str(&format!("{r},{name},{:.6}\n", out[(r, 0)])),
        }
    }
    glassbox_core::io::write_atomic(&p.out, csv.as_bytes())?;
    println!("predicted {} models; wrote {}", idx.len(), p.out.display());
    Ok(())
}
