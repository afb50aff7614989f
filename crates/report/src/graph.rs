//! A layered interaction graph as SVG: one column of nodes per layer, edges between adjacent
//! columns drawn with width and opacity growing with their strength.

use crate::chart::register_font;
use crate::html::esc;
use crate::{fmt_num, ReportError};
use std::fmt::Write;
use plotters::prelude::*;

/// One edge between node `from` of layer `layer` and node `to` of layer `layer + 1`.
#[derive(Clone, Copy, Debug)]
pub struct GraphEdge {
    pub layer: usize,
    pub from: usize,
    pub to: usize,
    pub weight: f64,
}

/// Layers named `layers` with `sizes[i]` nodes each (drawn top to bottom in index order).
/// Edge strengths are normalised per layer pair, so every pair shows its own strongest edges;
/// hovering an edge shows its two features and strength.
pub fn layered_graph_svg(title: &str, layers: &[String], sizes: &[usize], edges: &[GraphEdge]) -> Result<String, ReportError> {
    register_font();
    let fig = |e: &dyn std::fmt::Debug| ReportError::Figure(format!("graph '{title}': {e:?}"));
    if layers.len() != sizes.len() {
        return Err(ReportError::Figure(format!("graph '{title}': {} layer names for {} sizes", layers.len(), sizes.len())));
    }
    let tallest = sizes.iter().copied().max().unwrap_or(1).max(1);
    let (width, height) = (160 * layers.len().max(2) as u32 + 80, (14 * tallest as u32).clamp(240, 900) + 90);
    let mut max_per_pair = vec![0.0f64; layers.len()];
    for e in edges {
        if e.layer + 1 >= layers.len() || e.from >= sizes[e.layer] || e.to >= sizes[e.layer + 1] {
            return Err(ReportError::Figure(format!("graph '{title}': edge {e:?} is outside the layers")));
        }
        max_per_pair[e.layer] = max_per_pair[e.layer].max(e.weight);
    }
    let x_of = |l: usize| 70.0 + (width as f64 - 140.0) * l as f64 / (layers.len().max(2) - 1) as f64;
    let y_of = |l: usize, i: usize| 60.0 + (height as f64 - 90.0) * (i as f64 + 0.5) / sizes[l].max(1) as f64;
    let mut svg = String::new();
    let mut hover = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fig(&e))?;
        root.draw(&Text::new(title.to_string(), (12, 8), ("sans-serif", 20).into_font())).map_err(|e| fig(&e))?;
        let mut sorted: Vec<&GraphEdge> = edges.iter().filter(|e| e.weight > 0.0).collect();
        sorted.sort_by(|a, b| (a.weight / max_per_pair[a.layer]).total_cmp(&(b.weight / max_per_pair[b.layer])));
        for e in sorted {
            let s = (e.weight / max_per_pair[e.layer]).clamp(0.0, 1.0);
            let style = RGBColor(33, 102, 172).mix(0.15 + 0.85 * s).stroke_width((1.0 + 4.0 * s).round() as u32);
            let p0 = (x_of(e.layer) as i32, y_of(e.layer, e.from) as i32);
            let p1 = (x_of(e.layer + 1) as i32, y_of(e.layer + 1, e.to) as i32);
            root.draw(&PathElement::new(vec![p0, p1], style)).map_err(|e| fig(&e))?;
            let _ = write!(
                hover,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"transparent\" stroke-width=\"5\"><title>{} feature {} → {} feature {}: {}</title></line>",
                p0.0, p0.1, p1.0, p1.1, esc(&layers[e.layer]), e.from + 1, esc(&layers[e.layer + 1]), e.to + 1, fmt_num(e.weight)
            );
        }
        for (l, name) in layers.iter().enumerate() {
            let x = x_of(l) as i32;
            root.draw(&Text::new(name.clone(), (x - 40, 34), ("sans-serif", 14).into_font())).map_err(|e| fig(&e))?;
            for i in 0..sizes[l] {
                let y = y_of(l, i) as i32;
                root.draw(&Circle::new((x, y), 4, BLACK.filled())).map_err(|e| fig(&e))?;
            }
        }
        root.present().map_err(|e| fig(&e))?;
    }
    // Strongest edges drawn last, so on top for hovering too.
    Ok(crate::chart::with_hover(svg, &hover))
}
