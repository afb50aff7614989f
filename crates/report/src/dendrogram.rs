//! A dendrogram as SVG (e.g. the Ward tree of a model collection): leaves along the bottom in
//! tree order, coloured by group, each merge drawn as a bracket at its height.

use crate::chart::register_font;
use crate::ReportError;
use plotters::prelude::*;

/// One merge: clusters `a` and `b` (0..n are the leaves, n + i the cluster of merge i, scipy's
/// labelling) joined at `height`.
#[derive(Clone, Copy, Debug)]
pub struct DendrogramMerge {
    pub a: usize,
    pub b: usize,
    pub height: f64,
}

/// `groups[leaf]` colours the leaves (e.g. the recovered tree of each model); `y_label` names
/// the height (e.g. "Ward distance").
pub fn dendrogram_svg(title: &str, y_label: &str, merges: &[DendrogramMerge], groups: &[usize]) -> Result<String, ReportError> {
    let n = groups.len();
    let fig = |e: &dyn std::fmt::Debug| ReportError::Figure(format!("dendrogram '{title}': {e:?}"));
    if n < 2 || merges.len() != n - 1 || merges.iter().enumerate().any(|(i, m)| m.a >= n + i || m.b >= n + i || !m.height.is_finite()) {
        return Err(ReportError::Figure(format!("dendrogram '{title}': needs n − 1 = {} merges of earlier clusters with finite heights for {n} leaves, got {}", n.saturating_sub(1), merges.len())));
    }
    register_font();
    // Leaf order: depth-first from the root, so every cluster's leaves are contiguous.
    let mut order = Vec::with_capacity(n);
    let mut stack = vec![n + merges.len() - 1];
    while let Some(c) = stack.pop() {
        if c < n {
            order.push(c);
        } else {
            stack.push(merges[c - n].b);
            stack.push(merges[c - n].a);
        }
    }
    let (width, height, left, top, bottom) = (960i32, 420i32, 70i32, 40i32, 40i32);
    let plot_w = (width - left - 20) as f64;
    let mut x = vec![0f64; n + merges.len()];
    for (k, &leaf) in order.iter().enumerate() {
        x[leaf] = left as f64 + plot_w * (k as f64 + 0.5) / n as f64;
    }
    let top_h = merges.iter().map(|m| m.height).fold(0f64, f64::max).max(1e-12);
    let y_of = |h: f64| (height - bottom) as f64 - (height - bottom - top) as f64 * h / top_h;
    let mut y = vec![y_of(0.0); n + merges.len()];
    for (i, m) in merges.iter().enumerate() {
        x[n + i] = 0.5 * (x[m.a] + x[m.b]);
        y[n + i] = y_of(m.height);
    }
    let palette = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40), RGBColor(148, 103, 189), RGBColor(140, 86, 75), RGBColor(227, 119, 194), RGBColor(127, 127, 127)];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fig(&e))?;
        root.draw(&Text::new(title.to_string(), (10, 8), ("sans-serif", 18))).map_err(|e| fig(&e))?;
        root.draw(&Text::new(format!("{y_label} (top {top_h:.3})"), (10, 28), ("sans-serif", 12))).map_err(|e| fig(&e))?;
        let grey = RGBColor(90, 90, 90);
        for (i, m) in merges.iter().enumerate() {
            let yc = y[n + i] as i32;
            let path = vec![(x[m.a] as i32, y[m.a] as i32), (x[m.a] as i32, yc), (x[m.b] as i32, yc), (x[m.b] as i32, y[m.b] as i32)];
            root.draw(&PathElement::new(path, grey.stroke_width(1))).map_err(|e| fig(&e))?;
        }
        let base = height - bottom;
        for (leaf, &g) in groups.iter().enumerate() {
            let colour = palette[g % palette.len()];
            root.draw(&Rectangle::new([(x[leaf] as i32 - 1, base + 2), (x[leaf] as i32 + 1, base + 14)], colour.filled())).map_err(|e| fig(&e))?;
        }
        root.draw(&Text::new(format!("{n} models, coloured by group"), (left, base + 18), ("sans-serif", 12))).map_err(|e| fig(&e))?;
        root.present().map_err(|e| fig(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dendrogram_draws_every_merge_and_rejects_bad_input() {
        let merges = [DendrogramMerge { a: 0, b: 1, height: 1.0 }, DendrogramMerge { a: 2, b: 3, height: 5.0 }];
        let svg = dendrogram_svg("t", "Ward", &merges, &[0, 0, 1]).unwrap();
        assert_eq!(svg.matches("<polyline").count() + svg.matches("<path").count(), 2, "{svg}");
        assert!(dendrogram_svg("t", "Ward", &merges[..1], &[0, 0, 1]).is_err());
        assert!(dendrogram_svg("t", "Ward", &[DendrogramMerge { a: 0, b: 5, height: 1.0 }, merges[1]], &[0, 0, 1]).is_err());
    }
}
