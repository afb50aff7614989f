//! glassbox-report: figures (plotters) and one self-contained HTML page from run folders.

mod chart;
mod grid;
mod html;
mod run;

pub use chart::line_chart_svg;
pub use grid::image_grid_png;
pub use html::render_report;
pub use run::{find_runs, Run};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    #[error("figure: {0}")]
    Figure(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportSummary {
    pub runs: usize,
    pub figures: usize,
}
