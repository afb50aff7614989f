//! The `glassbox` binary: the commands of the glassbox library crate, with mimalloc.

use clap::Parser;
use glassbox::{commands, set_threads, Cli};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
