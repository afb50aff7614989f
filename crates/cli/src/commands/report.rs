use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Render run folders into one self-contained HTML page.
///
/// Each DIR is a run folder (with run.json) or a folder of run folders. Training curves,
/// metrics, configurations and image grids are embedded; the page needs no network.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run folders, or folders containing run folders.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Output HTML file (default: report.html in the first DIR).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "glassbox report")]
    pub title: String,
}

pub fn run(a: &ReportArgs) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].join("report.html"));
    let s = glassbox_report::render_report(&a.dirs, &out, &a.title)?;
    println!("wrote {} ({} runs, {} figures)", out.display(), s.runs, s.figures);
    Ok(())
}
