//! The single HTML page: summary table, then one section per run with its figures inlined.

use crate::chart::Series;
use crate::grid::GridLayout;
use crate::run::{find_runs, Run};
use crate::{fmt_num, image_grid_png, line_chart_svg, ReportError, ReportSummary};
use base64::Engine;
use serde_json::Value;
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

fn table(caption: &str, rows: &[(String, String)]) -> String {
    let mut s = format!("<table><caption>{}</caption>", esc(caption));
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    s + "</table>"
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

/// Charts from history: losses together, accuracies together, anything else alone (in that order).
fn history_charts(run: &Run) -> Result<Vec<String>, ReportError> {
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
    groups
        .iter()
        .map(|(g, s)| {
            let svg = line_chart_svg(g, "epoch", g, s).map_err(|e| ReportError::Format {
                path: run.dir.join("run.json"),
                msg: format!("run '{}': {e}", run.name()),
            })?;
            Ok(format!("<figure class=\"chart\">{svg}</figure>"))
        })
        .collect()
}

fn image_grids(run: &Run) -> Result<Vec<String>, ReportError> {
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
        out.push(grid_figure(
            &png,
            &title,
            &labels,
            GridLayout::new(images.len(), h, w, cols),
        ));
    }
    Ok(out)
}

/// The grid PNG at its natural size, each label drawn on the lower right of its image by a CSS grid of the same geometry.
fn grid_figure(png: &[u8], title: &str, labels: &[String], l: GridLayout) -> String {
    let (w, h) = l.size();
    let mut s = format!(
        "<figure class=\"grid\"><div class=\"gridbox\" style=\"width:{w}px;height:{h}px\"><img alt=\"{}\" width=\"{w}\" height=\"{h}\" src=\"{}\">",
        esc(title),
        data_uri("image/png", png)
    );
    if !labels.is_empty() {
        let _ = write!(
            s,
            "<div class=\"labels\" style=\"padding:{g}px;gap:{g}px;grid-template-columns:repeat({},{}px);grid-auto-rows:{}px\">",
            l.cols,
            l.cell_w,
            l.cell_h,
            g = l.gap
        );
        for label in labels.iter().take(l.cols * l.rows) {
            let _ = write!(s, "<span>{}</span>", esc(label));
        }
        s.push_str("</div>");
    }
    let _ = write!(s, "</div><figcaption>{}</figcaption></figure>", esc(title));
    s
}

/// Files in `figures/` (PNG, SVG, JPEG, GIF, WebP), sorted by name, as data URIs.
fn folder_figures(dir: &Path) -> Result<Vec<String>, ReportError> {
    let figs = dir.join("figures");
    let Ok(entries) = std::fs::read_dir(&figs) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut out = Vec::new();
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
        let name = esc(&p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default());
        out.push(format!(
            "<figure><img alt=\"{name}\" src=\"{}\"><figcaption>{name}</figcaption></figure>",
            data_uri(mime, &bytes)
        ));
    }
    Ok(out)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 1.5em .5em 0}caption{text-align:left;font-weight:bold;padding:2px 0}\
th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}th{background:#f4f4f4;font-weight:normal}\
td.num{text-align:right;font-variant-numeric:tabular-nums}.tables{display:flex;flex-wrap:wrap;align-items:flex-start}\
figure{display:inline-block;margin:6px;vertical-align:top}figcaption{font-size:13px;color:#555}\
.chart svg{display:block}.gridbox{position:relative}.gridbox img{display:block;image-rendering:pixelated}\
.labels{position:absolute;inset:0;display:grid;box-sizing:border-box}\
.labels span{align-self:end;justify-self:end;font-size:11px;line-height:1;padding:1px 2px;background:rgba(255,255,255,.85);color:#b00}\
section{border-top:2px solid #ddd;margin-top:2em}.note{max-width:60em;color:#444;font-style:italic}code{background:#f4f4f4;padding:2px 4px;word-break:break-all}";

fn summary_table(runs: &[Run]) -> String {
    let mut metrics: Vec<String> = Vec::new();
    for r in runs {
        for k in r
            .json
            .get("metrics")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            if !metrics.contains(k) {
                metrics.push(k.clone());
            }
        }
    }
    let mut s = String::from("<table><tr><th>run</th>");
    for m in &metrics {
        let _ = write!(s, "<th>{}</th>", esc(m));
    }
    let timed = runs.iter().any(|r| r.json.contains_key("wall_time_s"));
    s.push_str(if timed {
        "<th>wall time (s)</th></tr>"
    } else {
        "</tr>"
    });
    for (i, r) in runs.iter().enumerate() {
        let _ = write!(
            s,
            "<tr><td><a href=\"#run-{i}\">{}</a></td>",
            esc(&r.name())
        );
        let cells = metrics
            .iter()
            .map(|m| r.json.get("metrics").and_then(|x| x.get(m)))
            .chain(timed.then(|| r.json.get("wall_time_s")));
        for v in cells {
            let _ = write!(
                s,
                "<td class=\"num\">{}</td>",
                esc(&v.map(fmt_value).unwrap_or_default())
            );
        }
        s.push_str("</tr>");
    }
    s + "</table>"
}

fn run_section(i: usize, r: &Run) -> Result<(String, usize), ReportError> {
    let mut s = format!("<section id=\"run-{i}\"><h2>{}</h2>", esc(&r.name()));
    if let Some(c) = r.json.get("command").and_then(Value::as_str) {
        let _ = write!(s, "<p><code>{}</code></p>", esc(c));
    }
    // Free-text notes an analysis wants read with its numbers (e.g. how to interpret them).
    for note in r.json.get("notes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let _ = write!(s, "<p class=\"note\">{}</p>", esc(note));
    }
    let mut facts = Vec::new();
    for k in ["seed", "wall_time_s", "versions"] {
        if let Some(v) = r.json.get(k) {
            flatten(k, v, &mut facts);
        }
    }
    s.push_str("<div class=\"tables\">");
    for (caption, rows) in [
        ("run", facts),
        ("metrics", obj_rows(r, "metrics")),
        ("config", obj_rows(r, "config")),
    ] {
        if !rows.is_empty() {
            s.push_str(&table(caption, &rows));
        }
    }
    s.push_str("</div>");
    let mut figs = history_charts(r)?;
    figs.extend(image_grids(r)?);
    figs.extend(folder_figures(&r.dir)?);
    for f in &figs {
        s.push_str(f);
    }
    s.push_str(&crate::text_cards::text_cards_html(r));
    let dashboards = crate::dashboard::section(i, r)?;
    if let Some((html, _)) = &dashboards {
        s.push_str(html);
    }
    s.push_str("</section>");
    Ok((s, figs.len() + dashboards.map_or(0, |d| d.1)))
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

/// Reads every run under `dirs` (see [`crate::find_runs`]) and writes one self-contained HTML page to `out`.
pub fn render_report(
    dirs: &[PathBuf],
    out: &Path,
    title: &str,
) -> Result<ReportSummary, ReportError> {
    let runs = find_runs(dirs)?;
    let mut figures = 0;
    let mut body = format!("<h1>{}</h1>{}", esc(title), summary_table(&runs));
    for (i, r) in runs.iter().enumerate() {
        let (section, n) = run_section(i, r)?;
        body.push_str(&section);
        figures += n;
    }
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(title)
    );
    write_atomic(out, page.as_bytes())?;
    Ok(ReportSummary {
        runs: runs.len(),
        figures,
    })
}

/// Writes to a temporary name in the same folder, then renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
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
