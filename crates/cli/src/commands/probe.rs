use crate::Cli;
use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use glassbox_weightspace::probes::ProbeKind;
use glassbox_weightspace::reader::{train_reader, ReaderConfig};
use glassbox_zoo::{inr, store};
use std::path::PathBuf;
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
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Method {
    /// Probes generated from latents by a shared deep linear generator (spec/probegen.md 2.3).
    Probegen,
    /// Free learned probes (spec 2.2).
    Vanilla,
    /// Fixed U(-1, 1)² coordinates (spec 2.6).
    Uniform,
    /// Fixed: the image grid the INRs were fitted on (an oracle).
    Grid,
    /// Weight statistics (mean, variance, quantiles per tensor) into an MLP (spec 6 R1).
    Statnn,
}

/// Train a reader on a zoo's training split and report validation and test accuracy per epoch,
/// test accuracy at the best validation epoch, and (for probe methods) the probe coordinates of
/// that epoch.
///
/// INR zoos (`glassbox zoo build digits-inr`) with class labels. Probe readers follow
/// spec/probegen.md 2.4-2.5: head of six Linear layers (width 256, ReLU between), Adam 3e-4, cosine to 0 per step,
/// batches of 32 models; only the probes and the head learn (the zoo's weights are frozen and
/// get no gradient). Writes run.json (with the learning curves) and figures/ into --out.
#[derive(Args, Debug)]
pub struct ProbeTrainArgs {
    pub zoo: PathBuf,
    #[arg(long, value_enum, default_value = "probegen")]
    pub method: Method,
    /// Number of probes P.
    #[arg(long, default_value_t = 64)]
    pub probes: usize,
    /// Epochs (default: 30, or 40 for statnn as in spec R1).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value = "glassbox-probe")]
    pub out: PathBuf,
}

pub fn run(cli: &Cli, a: &ProbeArgs) -> Result<()> {
    let ProbeCommand::Train(t) = &a.command;
    let start = Instant::now();
    let zoo = store::load(&t.zoo)?;
    if zoo.spec.family != "inr" {
        bail!("{}: probe readers so far read INR zoos, this zoo's family is '{}'", t.zoo.display(), zoo.spec.family);
    }
    let targets = zoo.targets()?;
    if targets.iter().any(|&c| c < 0.0 || c.fract() != 0.0) {
        bail!("{}: target '{}' is not a class index for every model", t.zoo.display(), zoo.spec.target);
    }
    let classes: Vec<usize> = targets.iter().map(|&c| c as usize).collect();
    let n_classes = classes.iter().max().map_or(0, |m| m + 1);
    let side = zoo.spec.generation.get("side").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let epochs = t.epochs.unwrap_or(if matches!(t.method, Method::Statnn) { 40 } else { 30 });
    if t.probes == 0 || epochs == 0 {
        bail!("--probes and --epochs must be at least 1");
    }
    if n_classes < 2 {
        bail!("{}: a reader needs at least two classes", t.zoo.display());
    }
    let splits = &zoo.spec.splits;
    if splits.train.is_empty() || splits.val.is_empty() {
        bail!("{}: the zoo's train and val splits must not be empty (train {}, val {})", t.zoo.display(), splits.train.len(), splits.val.len());
    }
    if matches!(t.method, Method::Grid) && side == 0 {
        bail!("{}: zoo.json records no image side, so there is no grid to probe", t.zoo.display());
    }
    std::fs::create_dir_all(t.out.join("figures"))?;
    let (history, at_best, best_epoch, probes) = match t.method {
        Method::Statnn => {
            let tensors: Vec<usize> = zoo.spec.tensors.iter().map(|(_, s)| s.iter().product()).collect();
            let r = glassbox_weightspace::statnn::train_statnn(&zoo.params, &tensors, &classes, n_classes, &zoo.spec.splits, epochs, cli.seed);
            let history: Vec<serde_json::Value> = (0..r.val_accuracy.len()).map(|e| serde_json::json!({ "epoch": e + 1, "val_accuracy": r.val_accuracy[e], "test_accuracy": r.test_accuracy[e] })).collect();
            (history, r.test_at_best_val, r.best_epoch, Vec::new())
        }
        m => {
            let kind = match m {
                Method::Probegen => ProbeKind::ProbeGen,
                Method::Vanilla => ProbeKind::Vanilla,
                Method::Uniform => ProbeKind::Uniform,
                _ => ProbeKind::Grid,
            };
            let r = train_reader(&zoo.params, &classes, n_classes, &zoo.spec.splits, &inr::grid(side), &ReaderConfig::new(kind, t.probes, epochs, cli.seed));
            let history = (0..r.val_accuracy.len())
                .map(|e| serde_json::json!({ "epoch": e + 1, "train_accuracy": r.train_accuracy[e], "val_accuracy": r.val_accuracy[e], "test_accuracy": r.test_accuracy[e] }))
                .collect();
            (history, r.test_at_best_val, r.best_epoch, r.probes)
        }
    };
    if !probes.is_empty() {
        let points: Vec<(f64, f64)> = probes.iter().map(|p| (p[0] as f64, p[1] as f64)).collect();
        let svg = glassbox_report::scatter_chart_svg("Probe coordinates (the INRs were fitted on [-1, 1]²)", "x", "y", &points)?;
        std::fs::write(t.out.join("figures/probes.svg"), svg)?;
    }
    let run = serde_json::json!({
        "name": format!("{:?} reader on {}", t.method, t.zoo.display()).to_lowercase(), "command": super::command_line(), "seed": cli.seed,
        "wall_time_s": start.elapsed().as_secs_f64(), "history": history, "probes": probes,
        "metrics": { "test_accuracy_at_best_val": at_best, "best_epoch": best_epoch },
    });
    glassbox_core::io::write_json(&t.out.join("run.json"), &run)?;
    println!("test accuracy at the best validation epoch ({best_epoch}): {at_best:.4}; wrote {}", t.out.display());
    Ok(())
}
