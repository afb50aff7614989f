//! Text concept cards of a run (run.json `text_cards`): per latent, one column per model with
//! the words that drive it most, each in its surrounding text with the word highlighted.

use crate::html::esc;
use crate::run::Run;
use serde_json::Value;
use std::fmt::Write;

/// The cards as HTML (empty when the run has none); every text is escaped.
pub(crate) fn text_cards_html(run: &Run) -> String {
    let Some(cards) = run.json.get("text_cards").and_then(Value::as_array) else {
        return String::new();
    };
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let mut s = String::from("<div class=\"textcards\">");
    for card in cards {
        let models = card.get("models").and_then(Value::as_array).cloned().unwrap_or_default();
        let _ = write!(s, "<table class=\"textcard\"><caption>latent {}", num(card, "latent").map_or("?".into(), |l| l.to_string()));
        if let Some(c) = num(card, "cofire") {
            let _ = write!(s, " · co-fires on {c} words");
        }
        if let Some(fe) = num(card, "firing_entropy") {
            let _ = write!(s, " · firing entropy {fe:.2}");
        }
        s.push_str("</caption><tr>");
        for m in &models {
            let _ = write!(s, "<th>{}</th>", esc(&str_of(m, "model")));
        }
        s.push_str("</tr>");
        let examples: Vec<Vec<Value>> = models.iter().map(|m| m.get("examples").and_then(Value::as_array).cloned().unwrap_or_default()).collect();
        let rows = examples.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rows {
            s.push_str("<tr>");
            for ex in &examples {
                match ex.get(r) {
                    Some(e) => {
                        let _ = write!(
                            s,
                            "<td>{}<mark>{}</mark>{} <small>{}</small></td>",
                            esc(&str_of(e, "left")),
                            esc(&str_of(e, "word")),
                            esc(&str_of(e, "right")),
                            num(e, "pre_activation").map_or(String::new(), |v| format!("{v:.2}"))
                        );
                    }
                    None => s.push_str("<td></td>"),
                }
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
    }
    s + "</div>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_escape_the_text_and_highlight_the_word() {
        let json = serde_json::json!({ "text_cards": [{ "latent": 7, "cofire": 3, "firing_entropy": 0.9, "models": [
            { "model": "a<b", "examples": [{ "left": "x & ", "word": "<w>", "right": " y", "pre_activation": 1.5 }] },
            { "model": "c", "examples": [] },
        ]}]});
        let run = Run { dir: std::path::PathBuf::from("."), json: json.as_object().unwrap().clone() };
        let html = text_cards_html(&run);
        assert!(html.contains("<caption>latent 7 · co-fires on 3 words · firing entropy 0.90</caption>"), "{html}");
        assert!(html.contains("<th>a&lt;b</th><th>c</th>"), "{html}");
        assert!(html.contains("<td>x &amp; <mark>&lt;w&gt;</mark> y <small>1.50</small></td><td></td>"), "{html}");
        let none = Run { dir: std::path::PathBuf::from("."), json: serde_json::Map::new() };
        assert_eq!(text_cards_html(&none), "");
    }
}
