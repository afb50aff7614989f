//! The `glassbox` command line: argument parsing, progress and printing. No maths here.

mod commands;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// glassbox tells you what a trained neural network learned.
///
/// Train small models on real or built-in data, save and reload them, capture their
/// activations, inspect any safetensors file and render run folders into one HTML report.
/// Start with `glassbox tour`.
#[derive(Parser, Debug)]
#[command(name = "glassbox", version, about, long_about)]
pub struct Cli {
    /// Worker threads for tensor maths and parallel loops (default: all cores). Must be >= 1.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Seed for initialisation, shuffling, noise and generated data.
    #[arg(long, global = true, default_value_t = 42)]
    pub seed: u64,
    /// No progress bars or per-epoch lines; only results and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Folder with the real data sets (mnist/, fashion-mnist/, sklearn-digits/), as
    /// `glassbox data fetch` fills it. Defaults to the GLASSBOX_DATA environment variable, else
    /// the per-user cache (~/.cache/glassbox/data on Linux).
    #[arg(long, global = true, env = "GLASSBOX_DATA")]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Train(commands::train::TrainArgs),
    Eval(commands::eval::EvalArgs),
    Lm(commands::lm::LmArgs),
    Data(commands::data::DataArgs),
    Acts(commands::acts::ActsArgs),
    Inspect(commands::inspect::InspectArgs),
    Bilinear(commands::bilinear::BilinearArgs),
    Lib(commands::lib::LibArgs),
    Sae(commands::sae::SaeArgs),
    Zoo(commands::zoo::ZooArgs),
    Probe(commands::probe::ProbeArgs),
    Probex(commands::probex::ProbexArgs),
    Trees(commands::probex::TreesArgs),
    Report(commands::report::ReportArgs),
    Repro(commands::repro::ReproArgs),
    Tour(commands::tour::TourArgs),
}

/// Size rayon's global pool once; burn's matmuls and faer both use it.
fn set_threads(threads: Option<usize>) -> Result<()> {
    let n = match threads {
        Some(0) => bail!("--threads must be at least 1 (got 0)"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("cannot configure the thread pool")
}

fn main() {
    // Die quietly when the reader of our output goes away (`glassbox ... | head`), as Unix
    // tools do, instead of panicking on a failed print.
    // SAFETY: setting a signal disposition to the default before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    glassbox_lm::allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = set_threads(cli.threads).and_then(|()| commands::run(&cli));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
