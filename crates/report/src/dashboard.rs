//! The "Feature dashboards" part of a run's section, from the file run.json's
//! `feature_dashboards.file` names (written by `glassbox sae dashboard`). SAEDashboard's layout:
//! per latent a card with the activation-density histogram and the logit tables on the left, the
//! top activating contexts and samples from equal-width activation intervals on the right, every
//! token's background coloured by the latent's activation (hover shows token and value). A
//! browser above the cards finds latents by index or by text in their top contexts and steps
//! through them; without JavaScript every card is shown. All text from the corpus is escaped.

use crate::html::esc;
use crate::run::Run;
use crate::{fmt_num, ReportError};
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write;

#[derive(Deserialize)]
struct File {
    hook: String,
    d_sae: usize,
    contexts: usize,
    context_len: usize,
    tokens: u64,
    dead: usize,
    latents: Vec<Latent>,
}

#[derive(Deserialize)]
struct Latent {
    latent: usize,
    max: f64,
    fired: u64,
    frac_nonzero: f64,
    top: Vec<Window>,
    intervals: Vec<Interval>,
    activations: Histogram,
    logits: Option<Logits>,
}

#[derive(Deserialize)]
struct Window {
    qualifying: usize,
    tokens: Vec<String>,
    values: Vec<f64>,
}

#[derive(Deserialize)]
struct Interval {
    low: f64,
    high: f64,
    fraction: f64,
    samples: Vec<Window>,
}

#[derive(Deserialize)]
struct Histogram {
    low: f64,
    high: f64,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
struct Logits {
    top: Vec<TokenValue>,
    bottom: Vec<TokenValue>,
    histogram: Histogram,
}

#[derive(Deserialize)]
struct TokenValue {
    token: String,
    value: f64,
}

pub(crate) const STYLE: &str = ".fd-browser{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:.5em 0}\
.fd-browser input{flex:1 1 16em;min-width:0;font-size:14px;padding:3px 6px}.fd-status{color:#b00;font-size:13px}\
.fd-body{display:grid;grid-template-columns:minmax(0,11em) minmax(0,1fr);gap:12px;align-items:start}\
.fd-list{max-height:80vh;overflow-y:auto;border:1px solid #ddd;font-size:13px}\
.fd-list a{display:block;padding:2px 6px;color:#225;text-decoration:none;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
.fd-list a.on{background:#fde3c8;font-weight:bold}.fd-list a small{color:#777}\
.fd-card{border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin-bottom:12px;min-width:0}.fd-card h4{margin:.2em 0}\
.fd-stats{font-size:13px;color:#444;margin:.2em 0 .6em}\
.fd-cols{display:grid;grid-template-columns:minmax(0,300px) minmax(0,1fr);gap:16px;align-items:start}\
@media (max-width:800px){.fd-cols,.fd-body{grid-template-columns:minmax(0,1fr)}.fd-list{display:flex;flex-wrap:wrap;max-height:8em}.fd-list a{flex:0 0 auto}}\
.fd-cols h5{font-size:12px;letter-spacing:.03em;color:#333;margin:.8em 0 .2em;font-weight:bold}.fd-cols h5 span{font-weight:normal;color:#666}\
.fd-hist svg{display:block;width:100%;max-width:320px;height:auto}\
.fd-logits{display:flex;gap:8px}.fd-logits table{margin:0;flex:1 1 0;min-width:0;table-layout:fixed;width:100%}\
.fd-logits td{font-size:12px;padding:1px 4px;overflow:hidden;text-overflow:ellipsis;white-space:pre}.fd-logits td.v{text-align:right;width:4.2em}\
.fd-seq{font-family:monospace;font-size:12.5px;line-height:1.7;white-space:pre-wrap;overflow-wrap:anywhere;border-bottom:1px solid #eee;padding:1px 0}\
.fd-seq .t{border-radius:2px}.fd-seq .q{outline:1.5px solid #c50;font-weight:bold}.fd-seq .t:hover{outline:1px solid #333}\
.fd-none{color:#777;font-style:italic;font-size:13px}";

/// Wires every dashboard browser on the page once, however many runs carry one.
pub(crate) const SCRIPT: &str = r#"(function(){if(window.gbFd)return;window.gbFd=1;
document.addEventListener('DOMContentLoaded',function(){document.querySelectorAll('.fd').forEach(function(root){
var cards=[].slice.call(root.querySelectorAll('.fd-card')),links=[].slice.call(root.querySelectorAll('.fd-list a'));
var search=root.querySelector('.fd-search'),pos=root.querySelector('.fd-pos'),status=root.querySelector('.fd-status');
if(!cards.length)return;var visible=cards.map(function(_,i){return i}),cur=0;
function show(i){cur=i;cards.forEach(function(c,j){c.hidden=j!==i});links.forEach(function(a,j){a.classList.toggle('on',j===i)});
pos.textContent=(visible.indexOf(i)+1)+' / '+visible.length;}
function filter(){var q=search.value.trim().toLowerCase(),exact=-1;visible=[];
cards.forEach(function(c,j){var hit=!q||c.dataset.latent===q||c.dataset.text.indexOf(q)>=0;if(q&&c.dataset.latent===q)exact=j;links[j].hidden=!hit;if(hit)visible.push(j);});
status.textContent=visible.length?'':'no latent matches';if(!visible.length){pos.textContent='0 / 0';return;}
show(exact>=0?exact:(visible.indexOf(cur)>=0?cur:visible[0]));}
function step(d){if(!visible.length)return;var k=visible.indexOf(cur);k=k<0?0:(k+d+visible.length)%visible.length;show(visible[k]);}
search.addEventListener('input',filter);root.querySelector('.fd-prev').addEventListener('click',function(){step(-1)});
root.querySelector('.fd-next').addEventListener('click',function(){step(1)});
links.forEach(function(a,j){a.addEventListener('click',function(e){e.preventDefault();show(j);})});
root.addEventListener('keydown',function(e){if(e.target===search)return;if(e.key==='ArrowLeft')step(-1);if(e.key==='ArrowRight')step(1);});
var start=cards.findIndex(function(c){return '#'+c.id===location.hash});show(start>=0?start:0);});});})();"#;

/// The dashboards of a run, or nothing when it has none; also the number of latents shown.
/// `i` numbers the dashboards of the page (element ids `fd-{i}` and `fd-{i}-{latent}`).
pub(crate) fn section(i: usize, run: &Run) -> Result<Option<(String, usize)>, ReportError> {
    let Some(entry) = run.json.get("feature_dashboards") else {
        return Ok(None);
    };
    let json_path = run.dir.join("run.json");
    let file = entry.get("file").and_then(Value::as_str).ok_or_else(|| ReportError::Format {
        path: json_path.clone(),
        msg: "'feature_dashboards' has no 'file' naming the dashboards' JSON".into(),
    })?;
    let path = run.dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Io { path: path.clone(), source })?;
    let d: File = serde_json::from_str(&text).map_err(|e| ReportError::Format { path: path.clone(), msg: format!("not a feature dashboards file: {e}") })?;
    Ok(Some((render(i, &d), d.latents.len())))
}

fn render(run: usize, d: &File) -> String {
    let mut s = format!(
        "<div class=\"fd\" id=\"fd-{run}\"><h3>Feature dashboards</h3><p class=\"fd-stats\">SAE of {} latents at <code>{}</code>: {} tokens evaluated in {} contexts of {} tokens \
         (special tokens and skipped positions left out); {} latents never fired. Token backgrounds show the latent's activation (darkest at its maximum); \
         hover a token for its text and value. Logit effects: the decoder direction through the final norm's weight and the unembedding, centred over the vocabulary.</p>",
        d.d_sae,
        esc(&d.hook),
        d.tokens,
        d.contexts,
        d.context_len,
        d.dead
    );
    s.push_str(
        "<div class=\"fd-browser\"><input type=\"search\" class=\"fd-search\" placeholder=\"find a latent: its index, or text in its top contexts\" aria-label=\"find a latent\">\
         <button type=\"button\" class=\"fd-prev\">&#9664; prev</button><span class=\"fd-pos\"></span><button type=\"button\" class=\"fd-next\">next &#9654;</button>\
         <span class=\"fd-status\"></span></div><div class=\"fd-body\"><nav class=\"fd-list\">",
    );
    for l in &d.latents {
        let label = l.top.first().and_then(|w| w.tokens.get(w.qualifying)).map(|t| shown(t)).unwrap_or_default();
        let _ = write!(s, "<a href=\"#fd-{run}-{}\">#{} <small>{}</small></a>", l.latent, l.latent, esc(&label));
    }
    s.push_str("</nav><div class=\"fd-cards\">");
    for l in &d.latents {
        card(&mut s, run, l);
    }
    // The page adds STYLE and SCRIPT once, however many dashboards it shows.
    s.push_str("</div></div></div>");
    s
}

/// A token as displayed: line breaks and tabs made visible.
fn shown(t: &str) -> String {
    t.replace('\n', "↵").replace('\t', "→").replace('\r', "")
}

/// A token shown out of its text (logit tables): one made only of spaces would be blank, so its
/// spaces are shown as ␣.
fn shown_alone(t: &str) -> String {
    if !t.is_empty() && t.chars().all(|c| c == ' ' || c == '\u{a0}') {
        t.chars().map(|_| '␣').collect()
    } else {
        shown(t)
    }
}

fn card(s: &mut String, run: usize, l: &Latent) {
    let text: String = l.top.iter().flat_map(|w| w.tokens.iter().map(String::as_str)).collect::<String>().to_lowercase();
    let _ = write!(
        s,
        "<article class=\"fd-card\" id=\"fd-{run}-{0}\" data-latent=\"{0}\" data-text=\"{1}\"><h4>Latent {0}</h4>\
         <p class=\"fd-stats\">max activation {2} · fires on {3} % of tokens ({4} tokens)</p><div class=\"fd-cols\"><div>",
        l.latent,
        esc(&text),
        fmt_num(l.max),
        fmt_num(l.frac_nonzero * 100.0),
        l.fired
    );
    let _ = write!(s, "<h5>ACTIVATIONS DENSITY <span>{} %</span></h5>", fmt_num(l.frac_nonzero * 100.0));
    s.push_str(&histogram_svg(&l.activations, "#f0883e", "non-zero activations"));
    match &l.logits {
        Some(lg) => {
            s.push_str("<h5>LOGIT EFFECTS</h5><div class=\"fd-logits\">");
            let scale = lg.top.iter().chain(&lg.bottom).map(|t| t.value.abs()).fold(0.0, f64::max).max(1e-12);
            for (title, rows, rgb) in [("NEGATIVE", &lg.bottom, "220,60,60"), ("POSITIVE", &lg.top, "50,100,220")] {
                let _ = write!(s, "<table><caption>{title}</caption>");
                for r in rows {
                    let _ = write!(
                        s,
                        "<tr style=\"background:rgba({rgb},{:.2})\"><td title=\"{}\">{}</td><td class=\"v\">{:+.3}</td></tr>",
                        (r.value.abs() / scale * 0.6),
                        esc(&format!("{:?}", r.token)),
                        esc(&shown_alone(&r.token)),
                        r.value
                    );
                }
                s.push_str("</table>");
            }
            s.push_str("</div><h5>LOGITS HISTOGRAM</h5>");
            s.push_str(&histogram_svg(&lg.histogram, "#7a9cd6", "logit effects over the vocabulary"));
        }
        None => s.push_str("<p class=\"fd-none\">no logit effects: the model has no unembedding, or the SAE does not read the residual stream</p>"),
    }
    s.push_str("</div><div>");
    if l.top.is_empty() {
        s.push_str("<p class=\"fd-none\">this latent never fired on the evaluated tokens</p>");
    } else {
        let _ = write!(s, "<h5>TOP ACTIVATIONS <span>max = {}</span></h5>", fmt_num(l.max));
        for w in &l.top {
            sequence(s, w, l.max);
        }
    }
    for iv in l.intervals.iter().rev().filter(|iv| !iv.samples.is_empty()) {
        let _ = write!(s, "<h5>INTERVAL {:.3} - {:.3} <span>CONTAINS {:.3} %</span></h5>", iv.low, iv.high, iv.fraction * 100.0);
        for w in &iv.samples {
            sequence(s, w, l.max);
        }
    }
    s.push_str("</div></div></article>");
}

/// One window of tokens, each with its activation as background and tooltip.
fn sequence(s: &mut String, w: &Window, max: f64) {
    s.push_str("<div class=\"fd-seq\">");
    for (k, (t, &v)) in w.tokens.iter().zip(&w.values).enumerate() {
        let alpha = if max > 0.0 { (v / max).clamp(0.0, 1.0) } else { 0.0 };
        let class = if k == w.qualifying { "t q" } else { "t" };
        let _ = write!(
            s,
            "<span class=\"{class}\" style=\"background:rgba(255,120,0,{alpha:.2})\" title=\"{} : {:.3}\">{}</span>",
            esc(&format!("{t:?}")),
            v,
            esc(&shown(t))
        );
    }
    s.push_str("</div>");
}

/// Bars of a histogram, scaled to the card's column; the range under it.
fn histogram_svg(h: &Histogram, colour: &str, what: &str) -> String {
    let (w, plot_h) = (300.0, 80.0);
    let peak = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = h.counts.len().max(1) as f64;
    let mut s = format!("<div class=\"fd-hist\"><svg viewBox=\"0 0 {w} 100\" role=\"img\" aria-label=\"{}\">", esc(what));
    for (i, &c) in h.counts.iter().enumerate() {
        let bh = c as f64 / peak * plot_h;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{colour}\"><title>{} to {}: {c}</title></rect>",
            i as f64 * w / n,
            plot_h - bh,
            (w / n - 0.6).max(0.5),
            fmt_num(h.low + (h.high - h.low) * i as f64 / n),
            fmt_num(h.low + (h.high - h.low) * (i + 1) as f64 / n)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"0\" y1=\"{plot_h}\" x2=\"{w}\" y2=\"{plot_h}\" stroke=\"#999\"/><text x=\"0\" y=\"95\" font-size=\"11\" fill=\"#444\">{}</text>\
         <text x=\"{w}\" y=\"95\" font-size=\"11\" fill=\"#444\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"95\" font-size=\"11\" fill=\"#777\" text-anchor=\"middle\">peak {}</text></svg></div>",
        fmt_num(h.low),
        fmt_num(h.high),
        w / 2.0,
        peak
    );
    s
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn window(tokens: &[&str], values: &[f64], q: usize) -> serde_json::Value {
        json!({ "context": 0, "position": q, "value": values[q], "qualifying": q, "tokens": tokens, "values": values })
    }

    /// A run folder with two latents, one of whose contexts tries to inject markup.
    fn run_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let evil = window(&["<script>alert(1)</script>", " \"quoted\" & 'single'", "\n"], &[0.5, 2.0, 0.0], 1);
        let plain = window(&[" the", " cat"], &[1.0, 0.25], 0);
        let hist = json!({ "low": 0.0, "high": 2.0, "counts": [3, 0, 1] });
        let latent = |index: usize, top: Vec<serde_json::Value>| {
            json!({
                "latent": index, "max": 2.0, "fired": 4, "frac_nonzero": 0.04, "top": top, "activations": hist,
                "intervals": [{ "low": 0.0, "high": 1.0, "count": 3, "fraction": 0.75, "samples": [plain] },
                              { "low": 1.0, "high": 2.0, "count": 1, "fraction": 0.25, "samples": [] }],
                "logits": { "top": [{ "token": "<b>", "value": 1.5 }], "bottom": [{ "token": " dog", "value": -0.5 }], "histogram": hist },
            })
        };
        let file = json!({
            "hook": "blocks.0.hook_resid_post", "d_sae": 8, "contexts": 2, "context_len": 3, "tokens": 100, "dead": 1, "source": {},
            "latents": [latent(3, vec![evil, plain.clone()]), latent(7, vec![plain.clone()])],
        });
        std::fs::write(dir.path().join("fd.json"), file.to_string()).unwrap();
        let run = json!({ "name": "dash", "feature_dashboards": { "file": "fd.json" } });
        std::fs::write(dir.path().join("run.json"), run.to_string()).unwrap();
        dir
    }

    #[test]
    fn dashboards_render_escaped_with_one_card_per_latent_and_a_browser() {
        let dir = run_dir();
        let out = dir.path().join("report.html");
        let summary = crate::render_report(&[dir.path().to_path_buf()], &out, "t").unwrap();
        assert_eq!(summary.figures, 2);
        let html = std::fs::read_to_string(&out).unwrap();
        assert_eq!(html.matches("<article class=\"fd-card\"").count(), 2);
        assert!(html.contains("id=\"fd-0-3\" data-latent=\"3\"") && html.contains("id=\"fd-0-7\" data-latent=\"7\""));
        assert!(html.contains("class=\"fd-search\"") && html.contains("class=\"fd-prev\"") && html.contains("class=\"fd-next\"") && html.contains("href=\"#fd-0-7\""));
        // Corpus text never becomes markup: the only <script> elements are the browser's own.
        assert_eq!(html.matches("<script>").count(), 1);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;quoted&quot; &amp; &#39;single&#39;"));
        assert!(!html.contains("<b>") && html.contains("&lt;b&gt;"));
        // The line break is shown as a mark; the qualifying token is outlined, coloured at its max.
        assert!(html.contains(">↵</span>"));
        // Hovering a token shows its text (quoted, escapes visible) and value.
        assert!(html.contains("title=\"&quot; the&quot; : 1.000\"> the</span>"), "{html}");
        assert!(html.contains("class=\"t q\" style=\"background:rgba(255,120,0,1.00)\""));
        // The interval with samples is listed, the empty one not.
        assert!(html.contains("INTERVAL 0.000 - 1.000 <span>CONTAINS 75.000 %</span>") && !html.contains("INTERVAL 1.000 - 2.000"));
    }

    #[test]
    fn a_missing_dashboards_file_is_named() {
        let dir = run_dir();
        std::fs::remove_file(dir.path().join("fd.json")).unwrap();
        let err = crate::render_report(&[dir.path().to_path_buf()], &dir.path().join("r.html"), "t").unwrap_err().to_string();
        assert!(err.contains("fd.json"), "{err}");
    }
}
