//! The single HTML page: summary table, then one section per run with its figures inlined.

use crate::run::{find_runs, Run};
use crate::{image_grid_png, line_chart_svg, ReportError, ReportSummary};
use base64::Engine;
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or(n.to_string(), |f| if f.fract() == 0.0 && f.abs() < 1e15 { format!("{f}") } else { format!("{f:.6}") }),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Nested objects flattened to dotted keys.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        other => out.push((prefix.to_string(), fmt_value(other))),
    }
}

fn table(rows: &[(String, String)]) -> String {
    let mut s = String::from("<table>");
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    s + "</table>"
}

fn png_img(bytes: &[u8], alt: &str) -> String {
    format!("<img alt=\"{}\" src=\"data:image/png;base64,{}\">", esc(alt), base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Charts from history: losses together, accuracies together, anything else alone.
fn history_charts(run: &Run) -> Result<Vec<String>, ReportError> {
    let series = run.history();
    let mut groups: Vec<(String, Vec<(String, Vec<(f64, f64)>)>)> = Vec::new();
    for s in series {
        let group = if s.0.contains("loss") { "loss".to_string() } else if s.0.contains("acc") { "accuracy".to_string() } else { s.0.clone() };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, v)) => v.push(s),
            None => groups.push((group, vec![s])),
        }
    }
    groups.iter().map(|(g, s)| line_chart_svg(&format!("{} — {g}", run.name()), "epoch", g, s)).collect()
}

fn image_grids(run: &Run) -> Result<Vec<String>, ReportError> {
    let Some(grids) = run.json.get("image_grids").and_then(Value::as_array) else { return Ok(Vec::new()) };
    let path = run.dir.join("run.json");
    let bad = |msg: String| ReportError::Format { path: path.clone(), msg };
    let mut out = Vec::new();
    for (i, g) in grids.iter().enumerate() {
        let title = g.get("title").and_then(Value::as_str).unwrap_or("images").to_string();
        let dim = |k: &str| g.get(k).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| bad(format!("image grid {i} ('{title}') lacks '{k}'")));
        let (h, w) = (dim("height")?, dim("width")?);
        let cols = g.get("cols").and_then(Value::as_u64).unwrap_or(8) as usize;
        let images: Vec<Vec<f32>> = g.get("images").and_then(Value::as_array).ok_or_else(|| bad(format!("image grid {i} ('{title}') lacks 'images'")))?
            .iter()
            .map(|im| im.as_array().map(|a| a.iter().map(|v| v.as_f64().unwrap_or(f64::NAN) as f32).collect()).unwrap_or_default())
            .collect();
        let png = image_grid_png(&images, h, w, cols).map_err(|e| bad(format!("image grid {i} ('{title}'): {e}")))?;
        let labels = g.get("labels").and_then(Value::as_array).map(|l| l.iter().map(fmt_value).collect::<Vec<_>>().join(" · ")).unwrap_or_default();
        out.push(format!("<figure>{}<figcaption>{}<br><small>{}</small></figcaption></figure>", png_img(&png, &title), esc(&title), esc(&labels)));
    }
    Ok(out)
}

/// Files in `figures/`: SVG inlined, PNG as data URIs.
fn folder_figures(dir: &Path) -> Result<Vec<String>, ReportError> {
    let figs = dir.join("figures");
    let Ok(entries) = std::fs::read_dir(&figs) else { return Ok(Vec::new()) };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let read_err = |source| ReportError::Io { path: p.clone(), source };
        match p.extension().and_then(|e| e.to_str()) {
            Some("svg") => out.push(format!("<figure>{}<figcaption>{}</figcaption></figure>", std::fs::read_to_string(&p).map_err(read_err)?, esc(&name))),
            Some("png") => out.push(format!("<figure>{}<figcaption>{}</figcaption></figure>", png_img(&std::fs::read(&p).map_err(read_err)?, &name), esc(&name))),
            _ => {}
        }
    }
    Ok(out)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}\
th{background:#f4f4f4}figure{display:inline-block;margin:6px;vertical-align:top}section{border-top:2px solid #ddd;margin-top:2em}\
details{margin:.5em 0}code{background:#f4f4f4}";

pub fn render_report(dirs: &[PathBuf], out: &Path, title: &str) -> Result<ReportSummary, ReportError> {
    let runs = find_runs(dirs)?;
    let mut figures = 0;
    let mut body = String::new();
    let metric_names: Vec<String> = {
        let mut v: Vec<String> = runs.iter().flat_map(|r| r.json.get("metrics").and_then(Value::as_object).map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()).collect();
        v.sort();
        v.dedup();
        v
    };
    let _ = write!(body, "<h1>{}</h1><table><tr><th>run</th>", esc(title));
    for m in &metric_names {
        let _ = write!(body, "<th>{}</th>", esc(m));
    }
    body.push_str("</tr>");
    for r in &runs {
        let _ = write!(body, "<tr><td><a href=\"#run-{0}\">{0}</a></td>", esc(&r.name()));
        for m in &metric_names {
            let v = r.json.get("metrics").and_then(|x| x.get(m)).map(fmt_value).unwrap_or_default();
            let _ = write!(body, "<td>{}</td>", esc(&v));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    for r in &runs {
        let _ = write!(body, "<section id=\"run-{0}\"><h2>{0}</h2>", esc(&r.name()));
        if let Some(c) = r.json.get("command").and_then(Value::as_str) {
            let _ = write!(body, "<p><code>{}</code></p>", esc(c));
        }
        let mut facts = Vec::new();
        for k in ["seed", "wall_time_s"] {
            if let Some(v) = r.json.get(k) {
                facts.push((k.to_string(), fmt_value(v)));
            }
        }
        if let Some(m) = r.json.get("metrics") {
            flatten("", m, &mut facts);
        }
        body.push_str(&table(&facts));
        let mut figs = history_charts(r)?;
        figs.extend(image_grids(r)?);
        figs.extend(folder_figures(&r.dir)?);
        figures += figs.len();
        for f in figs {
            if f.starts_with("<figure") { body.push_str(&f) } else { let _ = write!(body, "<figure>{f}</figure>"); }
        }
        let mut config = Vec::new();
        for k in ["config", "versions"] {
            if let Some(v) = r.json.get(k) {
                flatten(k, v, &mut config);
            }
        }
        if !config.is_empty() {
            let _ = write!(body, "<details><summary>configuration</summary>{}</details>", table(&config));
        }
        body.push_str("</section>");
    }
    let page = format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>", esc(title));
    write_atomic(out, page.as_bytes())?;
    Ok(ReportSummary { runs: runs.len(), figures })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |p: &Path| { let p = p.to_path_buf(); move |source| ReportError::Io { path: p, source } };
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
