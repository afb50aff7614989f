pub mod acts;
pub mod bilinear;
pub mod bilinear_lm;
pub mod data;
pub mod eval;
pub mod inspect;
pub mod lib;
pub mod lm;
pub mod lm_train;
pub mod lm_acts;
pub mod probe;
pub mod probex;
pub mod report;
pub mod repro;
pub mod repro_bilinear_lm;
pub mod sae;
pub mod sae_dashboard;
pub mod sae_eval;
pub mod sae_stream;
pub mod sae_universal;
pub mod tour;
pub mod train;
pub mod zoo;

use crate::{Cli, Command};
use anyhow::Result;

pub fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Train(a) => train::run(cli, a),
        Command::Eval(a) => eval::run(cli, a),
        Command::Bilinear(a) => bilinear::run(cli, a),
        Command::Lib(a) => lib::run(cli, a),
        Command::Sae(a) => sae::run(cli, a),
        Command::Zoo(a) => zoo::run(cli, a),
        Command::Probe(a) => probe::run(cli, a),
        Command::Probex(a) => probex::run(cli, a),
        Command::Trees(a) => probex::trees(cli, a),
        Command::Lm(a) => lm::run(cli, a),
        Command::Data(a) => data::run(cli, a),
        Command::Acts(a) => acts::run(cli, a),
        Command::Inspect(a) => inspect::run(a),
        Command::Report(a) => report::run(a),
        Command::Repro(a) => repro::run(cli, a),
        Command::Tour(a) => tour::run(cli, a),
    }
}

thread_local! {
    /// The command line of a command run in-process, per calling thread: Python threads may
    /// run commands side by side.
    static COMMAND_LINE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Record the command line of a command run in-process (the process's own arguments are not it).
pub fn set_command_line(line: String) {
    COMMAND_LINE.with(|c| *c.borrow_mut() = Some(line));
}

/// The full command line, recorded in run.json.
pub fn command_line() -> String {
    COMMAND_LINE
        .with(|c| c.borrow().clone())
        .unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" "))
}
