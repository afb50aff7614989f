//! The single HTML page: a navigation sidebar (a top bar on narrow screens), an overview of one
//! card per run, then the runs grouped by method in the order of the work, each group opening
//! with how to read it and each run with its headline numbers, tables and figures inlined.
//! The page needs no script except for the SAE feature browser, and no network.

use crate::chart::Series;
use crate::figure::{known_figure, ColourScale, FigureKind, FigureNote, GridLabels};
use crate::grid::{Colormap, GridLayout};
use crate::method::{self, headlines, short, Headline, Kind, Method};
use crate::run::{find_runs, Run};
use crate::{fmt_num, image_grid_png, line_chart_svg, ReportError, ReportSummary};
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn fmt_value(v: &Value) -> String {
    let s = match v {
        Value::Number(n) => n.as_f64().map_or(n.to_string(), fmt_num),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Nested objects flattened to dotted keys.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                flatten(
                    &if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    },
                    v,
                    out,
                );
            }
        }
        other => out.push((prefix.to_string(), fmt_value(other))),
    }
}

/// Key-value pairs as a definition list that flows into as many columns as fit.
fn key_values(rows: &[(String, String)]) -> String {
    let mut s = String::from("<dl class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(s, "<div><dt>{}</dt><dd>{}</dd></div>", breakable(&esc(k)), esc(v));
    }
    s + "</dl>"
}

/// Escaped text, and when it is long a line-break opportunity after every dot, underscore and
/// "->" (metric names such as `lib.edges_needed.blocks.0.hook_resid_post`).
fn breakable(escaped: &str) -> String {
    if escaped.len() <= 28 {
        return escaped.to_string();
    }
    escaped.replace('.', ".<wbr>").replace('_', "_<wbr>").replace("-&gt;", "-&gt;<wbr>")
}

fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn group_of(key: &str) -> String {
    if key.contains("loss") {
        "loss".into()
    } else if key.contains("acc") {
        "accuracy".into()
    } else {
        key.into()
    }
}

/// One figure of a run section, and its kind for the group's "How to read this".
struct Figure {
    html: String,
    kind: Option<FigureKind>,
}

/// `<figure>` around `content`, wide figures taking a whole row, with the caption, the file
/// name (if any) and a colour bar (if the colours mean something).
fn figure(content: &str, wide: bool, kind: Option<FigureKind>, caption: &str, file: Option<&str>, colours: Option<&ColourScale>) -> String {
    let wide = if wide { " wide" } else { "" };
    let mut s = format!("<figure class=\"fig{wide}\">{content}<figcaption>");
    if let Some(kind) = kind {
        let _ = write!(s, "<span class=\"fig-kind\">{}</span> ", esc(kind.title().trim_end_matches('s')));
    }
    if !caption.is_empty() {
        let _ = write!(s, "{} ", esc(caption));
    }
    if let Some(f) = file {
        let _ = write!(s, "<span class=\"file\">{}</span>", esc(f));
    }
    if let Some(c) = colours {
        s.push_str(&colour_bar(c));
    }
    s + "</figcaption></figure>"
}

/// The colour map as a bar with what its ends (and middle) stand for.
fn colour_bar(c: &ColourScale) -> String {
    let mut s = format!(
        "<span class=\"cbar\" role=\"img\" aria-label=\"colour scale from {} to {}\"><span class=\"cbar-ramp\" style=\"background:{}\"></span><span class=\"cbar-ticks\"><span>{}</span>",
        esc(&c.low),
        esc(&c.high),
        c.colormap.css_gradient(),
        esc(&c.low)
    );
    let _ = write!(s, "<span>{}</span>", esc(c.mid.as_deref().unwrap_or("")));
    let _ = write!(s, "<span>{}</span></span></span>", esc(&c.high));
    s
}

/// Charts from history: losses together, accuracies together, anything else alone (in that order).
fn history_charts(run: &Run) -> Result<Vec<Figure>, ReportError> {
    let mut groups: Vec<(String, Vec<Series>)> = Vec::new();
    for s in run.history() {
        let group = group_of(&s.0);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, v)) => v.push(s),
            None => groups.push((group, vec![s])),
        }
    }
    groups.sort_by_key(|(g, _)| match g.as_str() {
        "loss" => 0,
        "accuracy" => 1,
        _ => 2,
    });
    let x = run.history_x();
    groups
        .iter()
        .map(|(g, s)| {
            let svg = line_chart_svg(g, x, g, s).map_err(|e| ReportError::Format {
                path: run.dir.join("run.json"),
                msg: format!("run '{}': {e}", run.name()),
            })?;
            let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
            let caption = format!("{} per {x}.", names.join(", "));
            Ok(Figure { html: figure(&format!("<div class=\"chart\">{svg}</div>"), false, Some(FigureKind::LineChart), &caption, None, None), kind: Some(FigureKind::LineChart) })
        })
        .collect()
}

fn image_grids(run: &Run) -> Result<Vec<Figure>, ReportError> {
    let Some(grids) = run.json.get("image_grids") else {
        return Ok(Vec::new());
    };
    let path = run.dir.join("run.json");
    let bad = |msg: String| ReportError::Format {
        path: path.clone(),
        msg: format!("run '{}': {msg}", run.name()),
    };
    let grids = grids
        .as_array()
        .ok_or_else(|| bad("'image_grids' is not a list".into()))?;
    let mut out = Vec::new();
    for (i, g) in grids.iter().enumerate() {
        let title = g
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("images")
            .to_string();
        let which = format!("image grid {i} ('{title}')");
        let dim = |k: &str| {
            g.get(k)
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("{which}: '{k}' is missing or not a whole number")))
        };
        let (h, w) = (dim("height")?, dim("width")?);
        let cols = g
            .get("cols")
            .and_then(Value::as_u64)
            .map_or(8, |c| c as usize);
        let images = g
            .get("images")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("{which}: 'images' is missing or not a list")))?;
        let images: Vec<Vec<f32>> = images
            .iter()
            .enumerate()
            .map(|(j, im)| {
                let a = im
                    .as_array()
                    .ok_or_else(|| bad(format!("{which}: image {j} is not a list of numbers")))?;
                Ok(a.iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect())
            })
            .collect::<Result<_, ReportError>>()?;
        let png = image_grid_png(&images, h, w, cols).map_err(|e| bad(format!("{which}: {e}")))?;
        let labels: Vec<String> = g
            .get("labels")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(fmt_value).collect())
            .unwrap_or_default();
        let layout = GridLayout::new(images.len(), h, w, cols);
        let finite = || images.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = (finite().fold(f32::INFINITY, f32::min), finite().fold(f32::NEG_INFINITY, f32::max));
        let colours = (lo <= hi).then(|| ColourScale { colormap: Colormap::Gray, low: short(lo as f64), mid: None, high: short(hi as f64) });
        let wide = wide_grid(layout, !labels.is_empty());
        let grid = GridLabels { cols: layout.cols, rows: layout.rows, cells: labels, ..Default::default() };
        let content = grid_content(&png, &title, layout, Some(&grid));
        out.push(Figure { html: figure(&content, wide, Some(FigureKind::ImageGrid), &title, None, colours.as_ref()), kind: Some(FigureKind::ImageGrid) });
    }
    Ok(out)
}

/// An image grid PNG scaled to the column (up to 1.5 times its size for small grids), pixels
/// kept sharp, with its labels placed by percentages of the grid so they follow the scaling:
/// cell labels on the lower right of each image, row labels to the left, column labels above.
fn grid_content(png: &[u8], alt: &str, l: GridLayout, labels: Option<&GridLabels>) -> String {
    let (w, h) = l.size();
    let shown = if w < 640 { w * 3 / 2 } else { w };
    let empty = GridLabels::default();
    let labels = labels.unwrap_or(&empty);
    let rows_labelled = !labels.row_labels.is_empty();
    let cols_labelled = !labels.col_labels.is_empty();
    let mut s = format!(
        "<div class=\"gridfig{}\" style=\"grid-template-columns:{}minmax(0,{shown}px)\">",
        if rows_labelled { " rowed" } else { "" },
        if rows_labelled { "auto " } else { "" }
    );
    if cols_labelled {
        if rows_labelled {
            s.push_str("<span></span>");
        }
        s.push_str("<div class=\"collabels\">");
        for (c, label) in labels.col_labels.iter().take(l.cols).enumerate() {
            let (left, _, width, _) = l.cell_percent(c);
            let _ = write!(s, "<span style=\"left:{left:.3}%;width:{width:.3}%\">{}</span>", esc(label));
        }
        s.push_str("</div>");
    }
    if rows_labelled {
        s.push_str("<div class=\"rowlabels\">");
        for (r, label) in labels.row_labels.iter().take(l.rows).enumerate() {
            let (_, top, _, height) = l.cell_percent(r * l.cols);
            let _ = write!(s, "<span style=\"top:{top:.3}%;height:{height:.3}%\">{}</span>", esc(label));
        }
        s.push_str("</div>");
    }
    let _ = write!(
        s,
        "<div class=\"gridbox\"><img alt=\"{}\" width=\"{w}\" height=\"{h}\" src=\"{}\">",
        esc(alt),
        data_uri("image/png", png)
    );
    if !labels.cells.is_empty() {
        s.push_str("<div class=\"labels\">");
        for (k, label) in labels.cells.iter().take(l.cols * l.rows).enumerate() {
            let (left, top, width, height) = l.cell_percent(k);
            let _ = write!(s, "<span style=\"left:{left:.3}%;top:{top:.3}%;width:{width:.3}%;height:{height:.3}%\"><b>{}</b></span>", esc(label));
        }
        s.push_str("</div>");
    }
    s + "</div></div>"
}

/// Wide figures take a row of their own: anything wider than 800 px, and small labelled image
/// grids (shown half as large again so that their labels fit).
fn wide_grid(l: GridLayout, labelled: bool) -> bool {
    (labelled && l.size().0 < 640) || l.size().0 > 800
}

/// Width and height of a PNG from its header.
fn png_size(bytes: &[u8]) -> Option<(usize, usize)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
    Some((be(16), be(20)))
}

/// The width an SVG asks for (its `width` attribute, in pixels).
fn svg_width(text: &str) -> Option<usize> {
    let tag = &text[text.find("<svg")?..];
    let tag = &tag[..tag.find('>')?];
    let at = tag.find(" width=\"")? + 8;
    let value = &tag[at..];
    value[..value.find('"')?].trim_end_matches("px").parse::<f64>().ok().map(|w| w as usize)
}

/// An SVG that may go into the page as markup (so its tooltips work): glassbox's own charts
/// with hover values, nothing that could run or fetch anything. Others become images.
fn inline_svg(text: &str) -> Option<&str> {
    let t = text.trim_start();
    if !t.starts_with("<svg") || !t.contains("<title>") {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    if ["<script", "javascript:", "foreignobject", "<iframe", "<!", "<?", "<use", "href", "<style", "url("].iter().any(|b| lower.contains(b)) {
        return None;
    }
    // Event handler attributes: whitespace, "on", letters, then "=".
    let b = lower.as_bytes();
    for i in 0..b.len().saturating_sub(3) {
        if b[i].is_ascii_whitespace() && b[i + 1] == b'o' && b[i + 2] == b'n' {
            let mut j = i + 3;
            while j < b.len() && b[j].is_ascii_lowercase() {
                j += 1;
            }
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                return None;
            }
        }
    }
    Some(t)
}

/// Where a figure goes among a run's files: the overviews (a tree, a matrix) before the
/// details, concept cards (many alike) last; LIB's Fourier figures by layer, so that each
/// layer's bases sit side by side (`fourier-{basis}-{l}-{layer}`).
fn reading_order(kind: Option<FigureKind>, name: &str) -> (u8, String) {
    let place = match kind {
        Some(FigureKind::Dendrogram) => 0,
        Some(FigureKind::Heatmap) => 1,
        Some(FigureKind::ConceptCards) => 3,
        _ => 2,
    };
    let within = match name.strip_prefix("fourier-").and_then(|rest| rest.split_once('-')) {
        Some((basis, layer)) => format!("fourier-{layer}-{basis}"),
        None => name.to_string(),
    };
    (place, within)
}

/// Files in `figures/` (PNG, SVG, JPEG, GIF, WebP), sorted by name: glassbox's charts inline
/// (for their tooltips), everything else as data URIs; each with the note beside it or the
/// caption known for its name.
fn folder_figures(dir: &Path) -> Result<Vec<Figure>, ReportError> {
    let figs = dir.join("figures");
    let Ok(entries) = std::fs::read_dir(&figs) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut out: Vec<((u8, String), Figure)> = Vec::new();
    for p in paths {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mime = match ext.as_str() {
            "png" => "image/png",
            "svg" => "image/svg+xml",
            "jpg" | "jpeg" => "image/jpeg",
            "gif" => "image/gif",
            "webp" => "image/webp",
            _ => continue,
        };
        let bytes = std::fs::read(&p).map_err(|source| ReportError::Io {
            path: p.clone(),
            source,
        })?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        // A damaged caption file costs the figure its caption, not the whole report.
        let note = FigureNote::read_beside(&p).unwrap_or_else(|e| {
            eprintln!("warning: {e}; the figure keeps its built-in caption");
            None
        });
        let note = note.unwrap_or_default();
        let (known_kind, known_caption) = known_figure(&name);
        let kind = note.kind.or(known_kind);
        let caption = if note.caption.is_empty() { known_caption.unwrap_or_default() } else { note.caption.clone() };
        let (content, width) = match ext.as_str() {
            "svg" => {
                let text = String::from_utf8_lossy(&bytes);
                let width = svg_width(&text).is_some_and(|w| w > 800);
                match inline_svg(&text) {
                    Some(svg) => (format!("<div class=\"chart\">{svg}</div>"), width),
                    None => (format!("<img alt=\"{}\" src=\"{}\">", esc(&name), data_uri(mime, &bytes)), width),
                }
            }
            "png" => {
                let size = png_size(&bytes);
                let layout = note.grid.as_ref().zip(size).and_then(|(g, (w, h))| GridLayout::from_size(w, h, g.cols, g.rows));
                match layout {
                    Some(l) => (grid_content(&bytes, &name, l, note.grid.as_ref()), wide_grid(l, note.grid.as_ref().is_some_and(|g| !g.cells.is_empty() || !g.row_labels.is_empty()))),
                    None => (format!("<div class=\"pic\"><img alt=\"{}\" src=\"{}\"></div>", esc(&name), data_uri(mime, &bytes)), size.is_some_and(|s| s.0 > 800)),
                }
            }
            _ => (format!("<img alt=\"{}\" src=\"{}\">", esc(&name), data_uri(mime, &bytes)), false),
        };
        out.push((reading_order(kind, &name), Figure { html: figure(&content, width, kind, &caption, Some(&name), note.colours.as_ref()), kind }));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|f| f.1).collect())
}

const STYLE: &str = "*,*::before,*::after{box-sizing:border-box}\
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;background:#fff;line-height:1.45;font-size:15px}\
a{color:#0b5cad}code{background:#f3f4f6;padding:1px 4px;border-radius:3px;font-size:12.5px;overflow-wrap:anywhere}\
.page{display:grid;grid-template-columns:16rem minmax(0,1fr);grid-template-areas:'nav main';max-width:1400px;margin:0 auto}\
main{grid-area:main;min-width:0;padding:0 32px 64px}\
.toc{grid-area:nav;position:sticky;top:0;align-self:start;max-height:100vh;overflow-y:auto;padding:18px 12px 24px 18px;border-right:1px solid #e5e7eb;background:#fafbfc;font-size:13.5px}\
.toc-toggle{position:absolute;opacity:0;width:1px;height:1px;pointer-events:none}\
.toc-bar{display:flex;align-items:center;gap:8px;margin-bottom:10px}.toc-title{font-weight:600;color:#1f2328;text-decoration:none;font-size:15px;overflow-wrap:anywhere}\
.toc-button{display:none;margin-left:auto;border:1px solid #c9ced6;border-radius:6px;padding:3px 10px;background:#fff;cursor:pointer;font-size:13px;white-space:nowrap}\
.toc-toggle:focus-visible+.toc-bar .toc-button{outline:2px solid #0b5cad}.toc-toggle:checked+.toc-bar .toc-button{background:#e6f0fb;border-color:#0b5cad}\
.toc ol{list-style:none;margin:0;padding:0}.toc-list>li{margin:0 0 8px}.toc-list>li>a{font-weight:600;color:#1f2328;text-decoration:none}\
.toc-list>li>a:hover,.toc-list li li a:hover{text-decoration:underline}.toc .count{color:#6b7280;font-size:12px;margin-left:4px}\
.toc-list li li a{display:block;padding:1px 0 1px 10px;border-left:2px solid #e5e7eb;color:#374151;text-decoration:none;overflow-wrap:anywhere}\
.top h1{margin:22px 0 4px;font-size:28px}.lead{color:#4b5563;margin:0 0 12px;max-width:60em}\
h2{font-size:22px;margin:0 0 10px;padding-top:8px}section.group{border-top:3px solid #e5e7eb;margin-top:34px;padding-top:10px}\
#overview h2{margin-top:18px}.ov-group{margin:14px 0 4px}.ov-group h3{font-size:14px;margin:0 0 6px;text-transform:uppercase;letter-spacing:.04em;color:#4b5563}.ov-group h3 a{color:inherit;text-decoration:none}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(14.5rem,1fr));gap:10px}\
.card{display:flex;flex-direction:column;gap:2px;border:1px solid #d8dde3;border-radius:8px;padding:9px 12px 10px;color:inherit;text-decoration:none;background:#fff;min-width:0}\
.card:hover{border-color:#0b5cad;box-shadow:0 1px 4px rgba(11,92,173,.18)}\
.card-kind{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#6b7280}.card-title{font-weight:600;color:#0b5cad;overflow-wrap:anywhere}\
.card-name{font-size:12px;color:#6b7280;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
.nums{display:flex;flex-wrap:wrap;gap:6px 18px;margin:6px 0 0}.nums div{min-width:0}.nums dt{font-size:11.5px;color:#6b7280;line-height:1.2}\
.nums dd{margin:0;font-size:17px;font-weight:600;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}\
.card .nums{display:grid;grid-template-columns:1fr 1fr;gap:6px 12px}.card .nums dd{font-size:15.5px}\
.howto{background:#f2f7fd;border:1px solid #d3e3f5;border-radius:8px;padding:10px 14px;margin:6px 0 12px;max-width:62em}\
.howto h3{margin:0 0 4px;font-size:14px;color:#174a7c}.howto p{margin:0 0 6px}.howto dl{margin:0}.howto dt{font-weight:600;font-size:13.5px;margin-top:4px}.howto dd{margin:0 0 2px;font-size:13.5px;color:#374151}\
section.run{border:1px solid #e5e7eb;border-radius:10px;padding:4px 18px 14px;margin:16px 0;scroll-margin-top:12px}\
.run-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px}.run-head h3{margin:10px 0 0;font-size:19px;overflow-wrap:anywhere}\
.badge{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#174a7c;background:#e6f0fb;border-radius:4px;padding:1px 6px}\
.run-name{margin:2px 0 0;color:#4b5563;overflow-wrap:anywhere}.cmd{margin:6px 0}.facts{font-size:12.5px;color:#6b7280;margin:4px 0}\
.note{max-width:62em;color:#4b5563;font-size:13.5px;border-left:3px solid #d1d5db;padding-left:10px;margin:8px 0}\
.numbers h4,.config summary{font-size:13px;font-weight:600;margin:12px 0 4px;color:#374151}.config summary{cursor:pointer}\
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:0 22px;margin:0;font-size:13px}\
.kv div{display:flex;justify-content:space-between;gap:12px;border-bottom:1px dotted #d1d5db;padding:1px 0;min-width:0}\
.kv dt{color:#4b5563;overflow-wrap:anywhere;min-width:0}.kv dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
table.checks{border-collapse:collapse;margin:8px 0;font-size:13px;max-width:100%}.checks td,.checks th{border:1px solid #e5e7eb;padding:2px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}\
.figs{display:flex;flex-wrap:wrap;gap:14px 18px;margin-top:12px;align-items:flex-start}\
figure.fig{margin:0;flex:1 1 22rem;max-width:100%;min-width:0}figure.fig.wide{flex-basis:100%}\
figure.fig>.chart svg,figure.fig>img,.pic img{display:block;max-width:100%;height:auto}.pic{max-width:100%}\
figcaption{font-size:13px;color:#4b5563;margin-top:4px;max-width:62em}.fig-kind{font-weight:600;color:#374151}\
.file{font-family:ui-monospace,monospace;font-size:11.5px;color:#6b7280;overflow-wrap:anywhere}\
.cbar{display:flex;flex-direction:column;width:min(19rem,100%);margin-top:6px}.cbar-ramp{height:11px;border:1px solid #9ca3af;border-radius:2px}\
.cbar-ticks{display:grid;grid-template-columns:1fr auto 1fr;gap:8px;font-size:11.5px;color:#374151}.cbar-ticks span:nth-child(2){text-align:center}.cbar-ticks span:last-child{text-align:right}\
.gridfig{display:grid;align-items:stretch;justify-content:start;gap:2px 6px;max-width:100%}\
.gridbox{position:relative;min-width:0}.gridbox img{display:block;width:100%;height:auto;image-rendering:pixelated}\
.labels{position:absolute;inset:0}.labels span{position:absolute;display:flex;align-items:flex-end;justify-content:flex-end;overflow:hidden;pointer-events:none}\
.labels b{font-weight:normal;font-size:10.5px;line-height:1.1;padding:0 2px;background:rgba(255,255,255,.85);color:#7a0000;text-align:right;max-width:100%}\
.collabels{position:relative;height:1.3em;font-size:11.5px;color:#374151}.collabels span{position:absolute;top:0;text-align:center;overflow:hidden;white-space:nowrap}\
.rowlabels{position:relative;font-size:11.5px;color:#374151;min-width:4.2em}.rowlabels span{position:absolute;right:0;display:flex;align-items:center;white-space:nowrap}\
.textcards{display:flex;flex-direction:column;gap:10px;margin-top:10px;overflow-x:auto}\
.textcard{border-collapse:collapse;font-size:13px}.textcard caption{text-align:left;font-weight:600;padding:2px 0}.textcard td,.textcard th{border:1px solid #e5e7eb;padding:2px 6px;vertical-align:top}\
.fd h3{font-size:16px;margin:16px 0 4px}\
@media (max-width:860px){.page{display:flex;flex-direction:column}\
.toc{order:-1;align-self:stretch;position:sticky;top:0;z-index:20;max-height:none;overflow:visible;border-right:0;border-bottom:1px solid #d8dde3;padding:8px 14px;background:rgba(250,251,252,.97)}\
.toc-bar{margin:0}.toc-button{display:block}.toc-list{display:none}\
.toc-toggle:checked~.toc-list{display:block;position:absolute;left:0;right:0;top:100%;max-height:70vh;overflow-y:auto;background:#fafbfc;border-bottom:1px solid #d8dde3;padding:8px 14px 12px;box-shadow:0 6px 12px rgba(0,0,0,.12)}\
main{padding:0 14px 48px}section.run{padding:2px 12px 12px;scroll-margin-top:56px}section.group,#overview{scroll-margin-top:48px}\
.kv{grid-template-columns:minmax(0,1fr)}}";

/// The page's name for each run: its folder name, with the parent folder's when two share one.
fn short_labels(runs: &[Run]) -> Vec<String> {
    let base = |r: &Run, depth: usize| -> String {
        let parts: Vec<String> = r.dir.components().rev().take(depth).map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
        let label: Vec<String> = parts.into_iter().rev().filter(|p| p != "." && p != "/").collect();
        if label.is_empty() { r.name() } else { label.join("/") }
    };
    let first: Vec<String> = runs.iter().map(|r| base(r, 1)).collect();
    first
        .iter()
        .zip(runs)
        .map(|(l, r)| if first.iter().filter(|x| *x == l).count() > 1 { base(r, 2) } else { l.clone() })
        .collect()
}

/// Seconds as a person reads a duration.
fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return fmt_num(s);
    }
    if s < 60.0 {
        return format!("{} s", short(s));
    }
    let m = (s / 60.0).floor();
    if m < 60.0 {
        return format!("{m:.0} min {:.0} s", s - 60.0 * m);
    }
    format!("{:.0} h {:.0} min", (m / 60.0).floor(), m % 60.0)
}

/// Seed, wall time and versions in one line.
fn facts(r: &Run) -> String {
    let mut parts = Vec::new();
    if let Some(seed) = r.json.get("seed").filter(|v| !v.is_null()) {
        parts.push(format!("seed {}", fmt_value(seed)));
    }
    if let Some(t) = r.json.get("wall_time_s").and_then(Value::as_f64) {
        parts.push(format!("wall time {}", duration(t)));
    }
    if let Some(Value::Object(v)) = r.json.get("versions") {
        for (k, v) in v {
            parts.push(format!("{k} {}", fmt_value(v)));
        }
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("<p class=\"facts\">{}</p>", esc(&parts.join(" · ")))
}

fn numbers_html(h: &[Headline]) -> String {
    let mut s = String::from("<dl class=\"nums\">");
    for n in h {
        let title = n.hint.as_ref().map(|t| format!(" title=\"{}\"", esc(t))).unwrap_or_default();
        let _ = write!(s, "<div{title}><dt>{}</dt><dd>{}</dd></div>", esc(&n.label), esc(&n.value));
    }
    s + "</dl>"
}

/// Named checks with their verdicts (reproductions).
fn checks_table(r: &Run) -> String {
    let checks: Vec<&Value> = r.json.get("checks").and_then(Value::as_array).into_iter().flatten().collect();
    if checks.is_empty() {
        return String::new();
    }
    let mut s = String::from("<table class=\"checks\"><tr><th>check</th><th>result</th><th>measured</th></tr>");
    for c in checks {
        let pass = c.get("pass").and_then(Value::as_bool);
        let (class, word) = match pass {
            Some(true) => ("pass", "pass"),
            Some(false) => ("fail", "fail"),
            None => ("", "?"),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            esc(c.get("name").and_then(Value::as_str).unwrap_or("")),
            esc(c.get("detail").and_then(Value::as_str).unwrap_or(""))
        );
    }
    s + "</table>"
}

/// A rendered run: its section, how many figures it has and their kinds.
struct Section {
    html: String,
    figures: usize,
    kinds: BTreeSet<FigureKind>,
}

fn run_section(pos: usize, r: &Run, kind: &Kind, label: &str, dashboards: &mut usize) -> Result<Section, ReportError> {
    let mut s = format!(
        "<section class=\"run\" id=\"run-{pos}\"><header class=\"run-head\"><h3>{}</h3><span class=\"badge\">{}</span></header>",
        esc(label),
        esc(&kind.what)
    );
    if let Some(sub) = subtitle(r, kind, label) {
        let _ = write!(s, "<p class=\"run-name\">{}</p>", esc(&sub));
    }
    if let Some(c) = r.json.get("command").and_then(Value::as_str) {
        let _ = write!(s, "<p class=\"cmd\"><code>{}</code></p>", esc(c));
    }
    // Free-text notes an analysis wants read with its numbers (e.g. how to interpret them).
    for note in r.json.get("notes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let _ = write!(s, "<p class=\"note\">{}</p>", esc(note));
    }
    s.push_str(&numbers_html(&headlines(r, kind)));
    s.push_str(&facts(r));
    s.push_str(&checks_table(r));
    let metrics = obj_rows(r, "metrics");
    if !metrics.is_empty() {
        let _ = write!(s, "<div class=\"numbers\"><h4>Metrics</h4>{}</div>", key_values(&metrics));
    }
    let config = obj_rows(r, "config");
    if !config.is_empty() {
        let _ = write!(
            s,
            "<details class=\"config\"><summary>Configuration ({} settings)</summary>{}</details>",
            config.len(),
            key_values(&config)
        );
    }
    let mut figs = history_charts(r)?;
    figs.extend(image_grids(r)?);
    figs.extend(folder_figures(&r.dir)?);
    let mut kinds: BTreeSet<FigureKind> = figs.iter().filter_map(|f| f.kind).collect();
    if !figs.is_empty() {
        s.push_str("<div class=\"figs\">");
        for f in &figs {
            s.push_str(&f.html);
        }
        s.push_str("</div>");
    }
    let cards = crate::text_cards::text_cards_html(r);
    if !cards.is_empty() {
        kinds.insert(FigureKind::TextCards);
        s.push_str(&cards);
    }
    let dash = crate::dashboard::section(*dashboards, r)?;
    if let Some((html, _)) = &dash {
        *dashboards += 1;
        kinds.insert(FigureKind::FeatureDashboards);
        s.push_str(html);
    }
    s.push_str("</section>");
    Ok(Section { html: s, figures: figs.len() + dash.map_or(0, |d| d.1), kinds })
}

fn obj_rows(r: &Run, key: &str) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    match r.json.get(key) {
        Some(Value::Object(m)) if m.is_empty() => {}
        Some(v @ Value::Object(_)) => flatten("", v, &mut rows),
        Some(v) => flatten(key, v, &mut rows),
        None => {}
    }
    rows
}

/// What a run is beyond its label: the model and data of a trained model, and its run.json
/// name when that says more than the label.
fn subtitle(r: &Run, kind: &Kind, label: &str) -> Option<String> {
    let name = r.name();
    let parts: Vec<String> = method::detail(r, kind).into_iter().chain((name != label).then_some(name)).collect();
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// One card of the overview: the run's kind (when its group has several), name and headline
/// numbers, linking to its section.
fn card(pos: usize, r: &Run, kind: &Kind, label: &str, show_kind: bool) -> String {
    let mut s = format!("<a class=\"card\" href=\"#run-{pos}\">");
    if show_kind {
        let _ = write!(s, "<span class=\"card-kind\">{}</span>", esc(&kind.what));
    }
    let _ = write!(s, "<span class=\"card-title\">{}</span>", esc(label));
    if let Some(sub) = subtitle(r, kind, label) {
        let _ = write!(s, "<span class=\"card-name\" title=\"{0}\">{0}</span>", esc(&sub));
    }
    let h = headlines(r, kind);
    if h.is_empty() {
        s.push_str("<span class=\"card-name\">no metrics</span>");
    } else {
        s.push_str(&numbers_html(&h));
    }
    s + "</a>"
}

/// "How to read this" for a group: what the method shows, then each kind of figure it has.
fn howto(method: Method, kinds: &BTreeSet<FigureKind>) -> String {
    let mut s = format!("<div class=\"howto\"><h3>How to read this</h3><p>{}</p>", esc(method.howto()));
    let present: Vec<FigureKind> = FigureKind::ALL.iter().copied().filter(|k| kinds.contains(k)).collect();
    if !present.is_empty() {
        s.push_str("<dl>");
        for k in present {
            let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k.title()), esc(k.howto()));
        }
        s.push_str("</dl>");
    }
    s + "</div>"
}

/// A method group on the page: its runs as (position on the page, run index, kind), their
/// sections and the kinds of figure they show.
type Group = (Method, Vec<(usize, usize, Kind)>, String, BTreeSet<FigureKind>);

/// Reads every run under `dirs` (see [`crate::find_runs`]) and writes one self-contained HTML page to `out`.
pub fn render_report(
    dirs: &[PathBuf],
    out: &Path,
    title: &str,
) -> Result<ReportSummary, ReportError> {
    let runs = find_runs(dirs)?;
    let ordered = method::order(&runs);
    let labels = short_labels(&runs);
    let mut figures = 0;
    let mut dashboards = 0;
    let mut groups: Vec<Group> = Vec::new();
    for (pos, (i, kind)) in ordered.iter().enumerate() {
        let section = run_section(pos, &runs[*i], kind, &labels[*i], &mut dashboards)?;
        figures += section.figures;
        if groups.last().is_none_or(|g| g.0 != kind.method) {
            groups.push((kind.method, Vec::new(), String::new(), BTreeSet::new()));
        }
        let g = groups.last_mut().expect("a group was just pushed");
        g.1.push((pos, *i, kind.clone()));
        g.2.push_str(&section.html);
        g.3.extend(section.kinds);
    }
    let mut nav = format!(
        "<nav class=\"toc\" aria-label=\"Contents\"><input type=\"checkbox\" id=\"toc-open\" class=\"toc-toggle\" aria-label=\"show the contents\">\
         <div class=\"toc-bar\"><a class=\"toc-title\" href=\"#top\">{}</a><label for=\"toc-open\" class=\"toc-button\">&#9776; Contents</label></div>\
         <ol class=\"toc-list\"><li><a href=\"#overview\">Overview</a></li>",
        esc(title)
    );
    let mut overview = format!(
        "<section id=\"overview\"><h2>Overview</h2><p class=\"lead\">{} runs in {} groups, in the order of the work: trained models, then what is read from them. \
         Each card gives a run's headline numbers; click it for the run's section.</p>",
        runs.len(),
        groups.len()
    );
    let mut body = String::new();
    for (method, members, sections, kinds) in &groups {
        let _ = write!(
            nav,
            "<li><a href=\"#group-{}\">{}</a><span class=\"count\">{}</span><ol>",
            method.slug(),
            esc(method.short()),
            members.len()
        );
        let _ = write!(overview, "<div class=\"ov-group\"><h3><a href=\"#group-{}\">{}</a></h3><div class=\"cards\">", method.slug(), esc(method.title()));
        let mixed = members.iter().any(|m| m.2.what != members[0].2.what);
        for (pos, i, kind) in members {
            let _ = write!(nav, "<li><a href=\"#run-{pos}\">{}</a></li>", esc(&labels[*i]));
            overview.push_str(&card(*pos, &runs[*i], kind, &labels[*i], mixed));
        }
        nav.push_str("</ol></li>");
        overview.push_str("</div></div>");
        let _ = write!(
            body,
            "<section class=\"group\" id=\"group-{}\"><h2>{}</h2>{}{sections}</section>",
            method.slug(),
            esc(method.title()),
            howto(*method, kinds)
        );
    }
    nav.push_str("</ol></nav>");
    overview.push_str("</section>");
    let (extra_style, script) = if dashboards > 0 {
        (crate::dashboard::STYLE, format!("<script>{}</script>", crate::dashboard::SCRIPT))
    } else {
        ("", String::new())
    };
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}{extra_style}</style></head><body id=\"top\"><div class=\"page\"><main>\
         <header class=\"top\"><h1>{t}</h1><p class=\"lead\">{} runs, {figures} figures. Written by glassbox report as one self-contained page.</p></header>\
         {overview}{body}</main>{nav}</div>{script}</body></html>\n",
        runs.len(),
        t = esc(title)
    );
    write_atomic(out, page.as_bytes())?;
    Ok(ReportSummary {
        runs: runs.len(),
        figures,
    })
}

/// Writes to a temporary name in the same folder, then renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ReportError::Io { path: p, source }
    };
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let file_name = path.file_name().ok_or_else(|| ReportError::Format {
        path: path.to_path_buf(),
        msg: "not a file name".into(),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = std::fs::write(&tmp, bytes)
        .map_err(io(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io(path)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
