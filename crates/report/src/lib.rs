//! glassbox-report: figures (plotters) and one self-contained HTML page from run folders.
//!
//! Charts are SVG; plotters lays text out with a bundled DejaVu Sans (assets/, licence alongside),
//! so no system font library is needed. Image grids are PNG (the `image` crate), embedded as base64.
//! A figure file may carry a [`FigureNote`] beside it (caption, colour scale, grid labels).

mod chart;
mod dashboard;
mod dendrogram;
mod figure;
mod graph;
mod grid;
mod heatmap;
mod html;
mod method;
mod run;
mod text_cards;

pub use chart::{bar_chart_svg, line_chart_svg, scatter_chart_svg};
pub use dendrogram::{dendrogram_svg, DendrogramMerge};
pub use graph::{layered_graph_svg, GraphEdge};
pub use figure::{ColourScale, FigureKind, FigureNote, GridLabels};
pub use grid::{diverging_grid_png, image_grid_png, power_spectrum_grid_png, Colormap};
pub use heatmap::heatmap_svg;
pub use html::render_report;
pub use run::{find_runs, Run};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A run folder or its run.json is not what a report needs.
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    /// A figure could not be drawn (bad sizes, plotting failure).
    #[error("{0}")]
    Figure(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportSummary {
    pub runs: usize,
    pub figures: usize,
}

/// A number as a person reads it: integers plain, others to 6 significant digits, tiny or huge in e-notation.
pub(crate) fn fmt_num(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{f:.0}");
    }
    let a = f.abs();
    if !(1e-4..1e6).contains(&a) {
        return format!("{f:.3e}");
    }
    let decimals = (5 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{f:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::fmt_num;

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(42.0), "42");
        assert_eq!(fmt_num(0.981), "0.981");
        assert_eq!(fmt_num(12.5), "12.5");
        assert_eq!(fmt_num(0.0009), "0.0009");
        assert_eq!(fmt_num(1.0 / 3.0), "0.333333");
        assert_eq!(fmt_num(123.456789), "123.457");
        assert_eq!(fmt_num(2.5e-7), "2.500e-7");
        assert_eq!(fmt_num(-0.07), "-0.07");
    }
}
