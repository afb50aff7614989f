//! The `glassbox` commands as a library: argument parsing, progress and printing, no maths.
//! The `glassbox` binary and the Python package both run commands through [`run`].

pub mod commands;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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

/// Size rayon's global pool once; burn's matmuls and faer both use it. In a long-lived process
/// (the Python package) the pool already exists after the first command, or after any library
/// call that ran on rayon's default pool: asking again for the size it has (or for none) is
/// fine, asking for another is an error.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        bail!("--threads must be at least 1 (got 0)");
    }
    let have = match POOL_SIZED.get() {
        Some(&have) => have,
        None => {
            let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            // Fails only when the pool exists already; then it keeps the size it has.
            let built = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
            *POOL_SIZED.get_or_init(|| if built.is_ok() { n } else { rayon::current_num_threads() })
        }
    };
    match threads {
        Some(n) if n != have => bail!("the thread pool of this process already has {have} threads; it cannot be resized to {n}"),
        _ => Ok(()),
    }
}

static POOL_SIZED: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Parse `args` (the words after `glassbox`) and run that command in this process, as the
/// binary would. `--help` and `--version` print their text and succeed.
pub fn run<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let argv: Vec<String> = std::iter::once("glassbox".to_string()).chain(args.into_iter().map(Into::into)).collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            print!("{e}");
            return Ok(());
        }
        Err(e) => bail!("{}", e.render().to_string().trim_end()),
    };
    commands::set_command_line(argv.join(" "));
    match (set_threads(cli.threads), cli.threads) {
        (Ok(()), _) => commands::run(&cli),
        // The process's pool has another size (a long-lived process, such as a Python session or
        // a reused Ray worker, ran other work first): this command gets a pool of its own.
        (Err(_), Some(n)) if n > 0 => rayon::ThreadPoolBuilder::new().num_threads(n).build()?.install(|| commands::run(&cli)),
        (Err(e), _) => Err(e),
    }
}

/// The `--help` text of the command `args` names (the words after `glassbox`, no options).
pub fn help_text<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let argv: Vec<String> = std::iter::once("glassbox".to_string())
        .chain(args.into_iter().map(Into::into))
        .chain(std::iter::once("--help".to_string()))
        .collect();
    match Cli::try_parse_from(&argv) {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => Ok(e.render().to_string()),
        Err(e) => bail!("{}", e.render().to_string().trim_end()),
        Ok(_) => bail!("`{}` has no help text", argv.join(" ")),
    }
}
