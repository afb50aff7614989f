//! `glassbox sae dashboard` end to end on the tiny GPT-2 fixture: the run folder, the Neuronpedia
//! files, the report's section (with markup from the corpus escaped), and the bad inputs.

mod common;

use common::{fails, ok, split_sign_sae, tiny};
use std::path::Path;

fn read(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Latents relu(x_i − 0.2) and relu(−x_i − 0.2) of the residual stream before block 1.
fn save_sae(dir: &Path) {
    let sae = split_sign_sae("blocks.1.hook_resid_pre", -0.2, false);
    sae.save(dir).unwrap();
}

#[test]
fn dashboard_writes_a_run_the_report_renders_and_neuronpedia_files() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "The cat sat on the <script>alert(1)</script> mat & looked at the \"dog\".\n\nA bird sang in the old tree by the river.\n\n".repeat(6)).unwrap();
    let sae = dir.path().join("sae");
    save_sae(&sae);
    let (run, np) = (dir.path().join("run"), dir.path().join("np"));
    let (s, c, r, n) = (sae.to_str().unwrap(), corpus.to_str().unwrap(), run.to_str().unwrap(), np.to_str().unwrap());
    let said = ok(&["--quiet", "sae", "dashboard", s, "--model", &tiny, "--text", c, "--context", "16", "--latents", "70,3", "--out", r, "--neuronpedia", n]);
    assert!(said.contains("dashboards of 2 latents") && said.contains("2 Neuronpedia feature files"), "{said}");
    let run_json = read(&run.join("run.json"));
    assert_eq!(run_json["feature_dashboards"]["file"], "feature_dashboards.json");
    assert_eq!(run_json["config"]["hook"], "blocks.1.hook_resid_pre");
    let dash = read(&run.join("feature_dashboards.json"));
    let latents = dash["latents"].as_array().unwrap();
    assert_eq!(latents.iter().map(|l| l["latent"].as_u64().unwrap()).collect::<Vec<_>>(), vec![70, 3]);
    let contexts = dash["contexts"].as_u64().unwrap();
    // Each context of 16 tokens counts 15 (the first position is left out), less the end-of-text
    // tokens between the 12 documents (special tokens are left out too).
    let tokens = dash["tokens"].as_u64().unwrap();
    assert!(contexts >= 4 && (contexts * 15 - 11..contexts * 15).contains(&tokens), "{tokens} tokens in {contexts} contexts");
    for l in latents {
        let top = l["top"].as_array().unwrap();
        assert!(!top.is_empty() && top.len() <= 20);
        // Best first, and the first one holds the maximum.
        let vals: Vec<f64> = top.iter().map(|w| w["value"].as_f64().unwrap()).collect();
        assert!(vals.windows(2).all(|p| p[0] >= p[1]) && vals[0] == l["max"].as_f64().unwrap());
        let in_intervals: u64 = l["intervals"].as_array().unwrap().iter().map(|i| i["count"].as_u64().unwrap()).sum();
        assert_eq!(in_intervals, l["fired"].as_u64().unwrap());
    }
    let batch = read(&np.join("batch-1.json"));
    assert_eq!(batch["layer"], 1);
    assert_eq!(batch["model_id"], "tiny-gpt2");
    let feature = &batch["features"][0];
    assert_eq!(feature["feature_index"], 3);
    for key in ["neg_str", "neg_values", "pos_str", "pos_values", "frac_nonzero", "freq_hist_data_bar_values", "freq_hist_data_bar_heights", "logits_hist_data_bar_values", "logits_hist_data_bar_heights", "n_prompts_total", "n_tokens_in_prompt", "dataset", "activations"] {
        assert!(!feature[key].is_null(), "no {key} in {feature}");
    }
    let record = &feature["activations"][0];
    for key in ["bin_min", "bin_max", "bin_contains", "tokens", "values", "qualifying_token_index"] {
        assert!(!record[key].is_null(), "no {key} in {record}");
    }

    let html_path = dir.path().join("report.html");
    ok(&["report", r, "--out", html_path.to_str().unwrap()]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<h3>Feature dashboards</h3>"));
    assert_eq!(html.matches("<article class=\"fd-card\"").count(), 2);
    assert_eq!(html.matches("<script>").count(), 1, "markup from the corpus must be escaped");
    assert!(html.contains("&lt;"));
}

#[test]
fn dashboard_refuses_bad_latents_and_choices() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny();
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/lm_prompts.txt").display().to_string();
    let sae = dir.path().join("sae");
    save_sae(&sae);
    let (s, out) = (sae.to_str().unwrap(), dir.path().join("o"));
    let e = fails(&["sae", "dashboard", s, "--model", &tiny, "--text", &prompts, "--context", "8", "--latents", "500", "--out", out.to_str().unwrap()]);
    assert!(e.contains("latent 500 does not exist") && e.contains("128 latents"), "{e}");
    let e = fails(&["sae", "dashboard", s, "--model", &tiny, "--text", &prompts, "--latents", "1", "--top-latents", "3", "--out", out.to_str().unwrap()]);
    assert!(e.contains("cannot be used with"), "{e}");
}
