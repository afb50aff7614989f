//! Line charts as SVG text. Plotters lays text out with the bundled DejaVu Sans (no system font needed);
//! the SVG names the family "sans-serif", so a browser draws it with its own sans-serif font.

use crate::html::esc;
use crate::{fmt_num, ReportError};
use std::fmt::Write;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // Only fails on a malformed font, and the bundled one is known good; layout would then report it.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

pub(crate) type Series = (String, Vec<(f64, f64)>);

/// Several named series on one chart, with axis labels, a legend and a title. Non-finite points are
/// skipped (a series left with none is left out); an empty chart is still drawn.
pub fn line_chart_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<String, ReportError> {
    register_font();
    let fig = |e: &dyn std::fmt::Debug| ReportError::Figure(format!("line chart '{title}': {e:?}"));
    let series: Vec<Series> = series
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                p.iter()
                    .copied()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let ((x0, x1), (y0, y1)) = ranges(&series);
    let integral_x = series
        .iter()
        .flat_map(|(_, p)| p)
        .all(|(x, _)| x.fract() == 0.0);
    let x_labels = if integral_x && x1 - x0 <= 10.0 {
        (x1 - x0) as usize + 1
    } else {
        10
    };
    let legend_at = legend_corner(&series, (x0, x1), (y0, y1));
    let mut svg = String::new();
    let hover;
    {
        let root = SVGBackend::with_string(&mut svg, (560, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fig(&e))?;
        let mut chart = framed(&root, title)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| fig(&e))?;
        // Ticks are computed in floating point: print a tick within rounding of zero as 0.
        let (xs, ys) = ((x1 - x0) * 1e-9, (y1 - y0) * 1e-9);
        let x_num = |v: &f64| fmt_num(if v.abs() < xs { 0.0 } else { *v });
        let y_num = |v: &f64| fmt_num(if v.abs() < ys { 0.0 } else { *v });
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(x_labels)
            .x_label_formatter(&x_num)
            .y_label_formatter(&y_num)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| fig(&e))?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let dots = if points.len() <= 40 { 3 } else { 0 };
            chart
                .draw_series(
                    LineSeries::new(points.iter().copied(), color.stroke_width(2)).point_size(dots),
                )
                .map_err(|e| fig(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        let chart_ref = &chart;
        hover = hover_targets(series.iter().flat_map(|(name, points)| {
            points.iter().map(move |&(x, y)| (chart_ref.backend_coord(&(x, y)), format!("{name} at {x_label} {}: {}", fmt_num(x), fmt_num(y))))
        }));
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(legend_at)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.5))
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| fig(&e))?;
        }
        root.present().map_err(|e| fig(&e))?;
    }
    Ok(with_hover(svg, &hover))
}

/// At most 600 transparent squares, each over a point, whose tooltip gives the point's value
/// (every n-th point when there are more).
pub(crate) fn hover_targets(points: impl Iterator<Item = ((i32, i32), String)>) -> String {
    let points: Vec<((i32, i32), String)> = points.collect();
    let stride = points.len().div_ceil(600).max(1);
    let mut s = String::new();
    for ((x, y), text) in points.into_iter().step_by(stride) {
        let _ = write!(s, "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"transparent\"><title>{}</title></rect>", x - 5, y - 5, esc(&text));
    }
    s
}

/// `svg` with `targets` drawn last (on top), in a group of their own.
pub(crate) fn with_hover(mut svg: String, targets: &str) -> String {
    if targets.is_empty() {
        return svg;
    }
    if let Some(end) = svg.rfind("</svg>") {
        svg.insert_str(end, &format!("<g class=\"hover\">{targets}</g>"));
    }
    svg
}

/// One cloud of points (e.g. per-latent co-firing against energy), with axis labels and a title.
/// Non-finite points are skipped.
pub fn scatter_chart_svg(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)]) -> Result<String, ReportError> {
    register_font();
    let fig = |e: &dyn std::fmt::Debug| ReportError::Figure(format!("scatter chart '{title}': {e:?}"));
    let points: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let ((x0, x1), (y0, y1)) = ranges(&[(String::new(), points.clone())]);
    let mut svg = String::new();
    let hover;
    {
        let root = SVGBackend::with_string(&mut svg, (560, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fig(&e))?;
        let mut chart = framed(&root, title)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| fig(&e))?;
        // Ticks are computed in floating point: print a tick within rounding of zero as 0.
        let (xs, ys) = ((x1 - x0) * 1e-9, (y1 - y0) * 1e-9);
        let x_num = |v: &f64| fmt_num(if v.abs() < xs { 0.0 } else { *v });
        let y_num = |v: &f64| fmt_num(if v.abs() < ys { 0.0 } else { *v });
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&x_num)
            .y_label_formatter(&y_num)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| fig(&e))?;
        let colour = Palette99::pick(0).to_rgba().mix(0.6);
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 2, colour.filled()))).map_err(|e| fig(&e))?;
        hover = hover_targets(points.iter().map(|&(x, y)| (chart.backend_coord(&(x, y)), format!("{x_label} {}, {y_label} {}", fmt_num(x), fmt_num(y)))));
        root.present().map_err(|e| fig(&e))?;
    }
    Ok(with_hover(svg, &hover))
}

/// One bar per named value (e.g. a metric per method), the value printed above each bar.
/// Non-finite values get no bar.
pub fn bar_chart_svg(title: &str, y_label: &str, bars: &[(String, f64)]) -> Result<String, ReportError> {
    register_font();
    let fig = |e: &dyn std::fmt::Debug| ReportError::Figure(format!("bar chart '{title}': {e:?}"));
    let finite = bars.iter().map(|b| b.1).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0f64, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = if hi > lo { (hi - lo) * 0.12 } else { 1.0 };
    let (y0, y1) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let n = bars.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (120 + 90 * n as u32, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fig(&e))?;
        let mut chart = framed(&root, title)
            .build_cartesian_2d((0..n - 1).into_segmented(), y0..y1)
            .map_err(|e| fig(&e))?;
        let names = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => bars.get(*i).map(|b| b.0.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&names)
            .y_desc(y_label)
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| fig(&e))?;
        let colour = Palette99::pick(0).to_rgba();
        let shown: Vec<(usize, f64)> = bars.iter().enumerate().map(|(i, b)| (i, b.1)).filter(|b| b.1.is_finite()).collect();
        chart
            .draw_series(shown.iter().map(|&(i, v)| {
                let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), v)], colour.filled());
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .map_err(|e| fig(&e))?;
        chart
            .draw_series(shown.iter().map(|&(i, v)| Text::new(fmt_num(v), (SegmentValue::CenterOf(i), v + pad * 0.25), TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom)))))
            .map_err(|e| fig(&e))?;
        root.present().map_err(|e| fig(&e))?;
    }
    Ok(svg)
}

/// The title, margin and axis-label areas every chart here shares.
fn framed<'a, 'b, DB: DrawingBackend>(root: &'a DrawingArea<DB, plotters::coord::Shift>, title: &'b str) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder.caption(title, ("sans-serif", 20)).margin(12).x_label_area_size(44).y_label_area_size(72);
    builder
}

/// Axis ranges covering all points, never empty, with a little room above and below.
fn ranges(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in series.iter().flat_map(|(_, p)| p) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    if x1 <= x0 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = if y1 > y0 {
        (y1 - y0) * 0.05
    } else if y0 != 0.0 {
        y0.abs() * 0.1
    } else {
        1.0
    };
    ((x0, x1), (y0 - pad, y1 + pad))
}

/// The corner whose legend-sized box (right/left 40%, top/bottom 35%) covers the fewest line samples.
fn legend_corner(
    series: &[Series],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    let mut counts = [0usize; 4]; // UpperRight, LowerRight, UpperLeft, LowerLeft
    for (_, p) in series {
        let norm = |&(x, y): &(f64, f64)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
        let pts: Vec<(f64, f64)> = p.iter().map(norm).collect();
        let samples = pts.windows(2).flat_map(|w| {
            (0..16).map(move |k| {
                let t = k as f64 / 16.0;
                (
                    w[0].0 + t * (w[1].0 - w[0].0),
                    w[0].1 + t * (w[1].1 - w[0].1),
                )
            })
        });
        for (x, y) in samples.chain(pts.last().copied()) {
            let (right, left, top, bottom) = (x > 0.6, x < 0.4, y > 0.65, y < 0.35);
            counts[0] += (right && top) as usize;
            counts[1] += (right && bottom) as usize;
            counts[2] += (left && top) as usize;
            counts[3] += (left && bottom) as usize;
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    [UpperRight, LowerRight, UpperLeft, LowerLeft][best].clone()
}
