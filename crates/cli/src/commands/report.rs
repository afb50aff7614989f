use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Render run folders into one self-contained HTML page.
///
/// Each DIR is a run folder (with run.json) or a folder of run folders. The page opens with an
/// overview card per run (its headline numbers), then shows the runs grouped by method in the
/// order of the work (trained models, bilinear, LIB, SAEs, zoos and readers, ProbeX, language
/// models, reproductions, then anything else), each group with how to read it; a sidebar (a top
/// bar on narrow screens) lists them all. Training curves, metrics, configurations, figures and
/// feature dashboards are embedded; the page needs no network.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run folders, or folders containing run folders.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Output HTML file (default: report.html in the first DIR).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Page title, shown as the heading and in the browser's tab.
    #[arg(long, default_value = "glassbox report")]
    pub title: String,
}

pub fn run(a: &ReportArgs) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].join("report.html"));
    let s = glassbox_report::render_report(&a.dirs, &out, &a.title)?;
    println!("wrote {} ({} runs, {} figures)", out.display(), s.runs, s.figures);
    Ok(())
}
