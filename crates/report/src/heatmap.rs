//! A labelled matrix as an SVG heat map (e.g. the USAE's cross-reconstruction R²): one cell per
//! entry, coloured on a diverging scale (RdBu, symmetric about zero), with the value printed.

use crate::chart::register_font;
use crate::grid::rdbu;
use crate::html::esc;
use crate::{fmt_num, ReportError};
use std::fmt::Write;
use plotters::prelude::*;

/// `values[r][c]` with `rows[r]` down the side and `cols[c]` along the top. Colours run from red
/// (−limit) through white (0) to blue (+limit), limit = the largest finite |value|; non-finite
/// entries are grey.
pub fn heatmap_svg(title: &str, rows: &[String], cols: &[String], values: &[Vec<f64>]) -> Result<String, ReportError> {
    if rows.is_empty() || cols.is_empty() || values.len() != rows.len() || values.iter().any(|r| r.len() != cols.len()) {
        return Err(ReportError::Figure(format!("heat map '{title}': values must be {} × {} and non-empty", rows.len(), cols.len())));
    }
    register_font();
    let fig = |e: &dyn std::fmt::Debug| ReportError::Figure(format!("heat map '{title}': {e:?}"));
    let limit = values.iter().flatten().filter(|v| v.is_finite()).fold(0f64, |m, v| m.max(v.abs()));
    // Wide enough for the longest column label and the row labels (about 8 px per character).
    let chars = |names: &[String]| names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as i32;
    let (cell, row_h, left, top) = ((chars(cols) * 8 + 12).max(72), 72i32, chars(rows) * 8 + 20, 60i32);
    let (w, h) = ((left + cell * cols.len() as i32 + 20).max(title.chars().count() as i32 * 10 + 20), top + row_h * rows.len() as i32 + 20);
    let mut svg = String::new();
    let mut hover = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w as u32, h as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fig(&e))?;
        root.draw(&Text::new(title.to_string(), (10, 8), ("sans-serif", 18))).map_err(|e| fig(&e))?;
        let label = ("sans-serif", 14).into_font();
        for (c, name) in cols.iter().enumerate() {
            let style = label.clone().into_text_style(&root).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Bottom));
            root.draw(&Text::new(name.clone(), (left + cell * c as i32 + cell / 2, top - 6), style)).map_err(|e| fig(&e))?;
        }
        for (r, name) in rows.iter().enumerate() {
            let style = label.clone().into_text_style(&root).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Right, plotters::style::text_anchor::VPos::Center));
            root.draw(&Text::new(name.clone(), (left - 8, top + row_h * r as i32 + row_h / 2), style)).map_err(|e| fig(&e))?;
            for (c, &v) in values[r].iter().enumerate() {
                let (x, y) = (left + cell * c as i32, top + row_h * r as i32);
                let [red, green, blue] = if v.is_finite() { rdbu(if limit > 0.0 { (v / limit) as f32 } else { 0.0 }) } else { [160, 160, 160] };
                root.draw(&Rectangle::new([(x, y), (x + cell - 2, y + row_h - 2)], RGBColor(red, green, blue).filled())).map_err(|e| fig(&e))?;
                // Dark text on light cells, light text on saturated ones.
                let dark = v.is_finite() && limit > 0.0 && (v / limit).abs() > 0.6;
                let colour = if dark { WHITE } else { BLACK };
                let style = ("sans-serif", 14).into_font().color(&colour).pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Center));
                let text = if v.is_finite() { format!("{v:.3}") } else { fmt_num(v) };
                root.draw(&Text::new(text.clone(), (x + cell / 2 - 1, y + row_h / 2 - 1), style)).map_err(|e| fig(&e))?;
                let _ = write!(hover, "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"transparent\"><title>{} → {}: {}</title></rect>", cell - 2, row_h - 2, esc(name), esc(&cols[c]), esc(&text));
            }
        }
        root.present().map_err(|e| fig(&e))?;
    }
    Ok(crate::chart::with_hover(svg, &hover))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heat_map_prints_every_value_and_rejects_ragged_input() {
        let names = vec!["a".to_string(), "b".to_string()];
        let svg = heatmap_svg("R²", &names, &names, &[vec![0.9, -0.25], vec![0.5, f64::NAN]]).unwrap();
        for text in ["0.900", "-0.250", "0.500", "NaN", "R²"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(heatmap_svg("x", &names, &names, &[vec![1.0]]).is_err());
    }
}
