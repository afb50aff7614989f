//! `glassbox sae universal` end to end on the tiny GPT-2 fixture read at two hooks (as if two
//! models), on tiny settings: the run folder, its controls and text cards, and bad input.

mod common;

use common::{glassbox, text, tiny};
use std::path::Path;

const STORY: &str = "Once upon a time there was a little girl called Lily. She loved to play outside in the garden with her dog.";

#[test]
fn a_tiny_universal_run_writes_metrics_controls_and_text_cards() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.txt");
    let eval = dir.path().join("eval.txt");
    std::fs::write(&train, (0..30).map(|i| format!("{STORY} Day {i} was <sunny> & warm.")).collect::<Vec<_>>().join("\n\n")).unwrap();
    std::fs::write(&eval, "The dog & the girl played in the <garden> all day long.\n\nLily saw a big red ball near the tree.").unwrap();
    let out = dir.path().join("run");
    let (m, train, eval, out) = (tiny(), train.to_str().unwrap().to_string(), eval.to_str().unwrap().to_string(), out.to_str().unwrap().to_string());
    let args = ["--quiet", "sae", "universal", "--model", &m, "--model", &m, "--hook", "blocks.0.hook_resid_post,blocks.1.hook_resid_post", "--text", &train, "--eval-text", &eval,
        "--context", "64", "--m", "32", "--k", "4", "--steps", "40", "--batch", "32", "--cards", "3", "--top", "2", "--out", &out];
    let o = glassbox(&args);
    assert!(o.status.success(), "{}", text(&o));
    let printed = text(&o);
    assert!(printed.contains("R² on") && printed.contains("shuffled-pairing cross R²") && printed.contains("0.7 × ridge"), "{printed}");
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(Path::new(&out).join("run.json")).unwrap()).unwrap();
    let metrics = &run["metrics"];
    for key in ["r2.tiny-gpt2-1->tiny-gpt2-2", "ridge_r2.tiny-gpt2-2->tiny-gpt2-1", "shuffled_r2.tiny-gpt2-1->tiny-gpt2-2", "share_alive_firing_in_every_model", "heldout_words"] {
        assert!(metrics.get(key).is_some(), "metrics lack {key}: {metrics}");
    }
    // 2 held-out paragraphs of 12 and 9 words, each context losing its first word (no BOS).
    assert_eq!(metrics["heldout_words"], 11 + 8);
    // The same model at two hooks: a linear map predicts one from the other well.
    assert!(run["ridge_r2"][0][1].as_f64().unwrap() > 0.5, "{}", run["ridge_r2"]);
    let cards = run["text_cards"].as_array().unwrap();
    assert!(!cards.is_empty() && cards.len() <= 3);
    let ex = &cards[0]["models"][0]["examples"][0];
    let (left, word, right) = (ex["left"].as_str().unwrap(), ex["word"].as_str().unwrap(), ex["right"].as_str().unwrap());
    assert!(std::fs::read_to_string(&eval).unwrap().contains(&format!("{left}{word}{right}")), "{ex}");
    assert!(Path::new(&out).join("usae.safetensors").exists() && Path::new(&out).join("figures/r2-matrix.svg").exists());
    // The report shows the cards, escaped.
    let html = dir.path().join("report.html");
    let o = glassbox(&["report", &out, "--out", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<table class=\"textcard\">") && page.contains("<mark>") && !page.contains("<garden>"), "cards missing or unescaped");
}

#[test]
fn bad_input_is_named() {
    let m = tiny();
    let t = text(&glassbox(&["sae", "universal", "--model", &m, "--text", "x.txt"]));
    assert!(t.contains("at least two --model"), "{t}");
    let t = text(&glassbox(&["sae", "universal", "--model", &m, "--model", &m, "--hook", "blocks.9.hook_resid_post,blocks.0.hook_resid_post", "--text", "x.txt"]));
    assert!(t.contains("unknown hook 'blocks.9.hook_resid_post'"), "{t}");
    let t = text(&glassbox(&["sae", "universal", "--model", &m, "--model", &m, "--text", "/nonexistent/x.txt"]));
    assert!(t.contains("/nonexistent/x.txt"), "{t}");
}
