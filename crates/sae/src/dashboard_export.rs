//! Feature dashboards written out: the run folder's `feature_dashboards.json` that the HTML report
//! renders, and Neuronpedia's feature upload format (SAEDashboard's `batch-N.json`: `model_id`,
//! `layer`, `sae_set` and `features`, each with `activations` records of `bin_min`, `bin_max`,
//! `bin_contains`, `tokens`, `values`, `qualifying_token_index`, and the feature's `pos_str` /
//! `pos_values`, `neg_str` / `neg_values`, `frac_nonzero`, `freq_hist_data_bar_*`,
//! `logits_hist_data_bar_*`, `n_prompts_total`, `n_tokens_in_prompt`, `dataset`). Tokens are
//! written as their decoded text.

use crate::dashboard::{Dashboards, Histogram, LatentDashboard, Window};
use crate::{Error, Result};
use glassbox_core::io::write_json;
use glassbox_lm::Tokenizer;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The report's file name in a run folder, named by run.json's `feature_dashboards.file`.
pub const REPORT_FILE: &str = "feature_dashboards.json";

/// Decoded text of one token (special tokens included, so nothing the model saw is hidden).
fn token_text(tok: &Tokenizer, id: u32) -> String {
    tok.decode(&[id]).unwrap_or_else(|_| format!("<{id}>"))
}

fn window_json(tok: &Tokenizer, w: &Window) -> Value {
    json!({
        "context": w.context, "position": w.position, "value": w.value, "qualifying": w.qualifying,
        "tokens": w.tokens.iter().map(|&t| token_text(tok, t)).collect::<Vec<_>>(), "values": w.values,
    })
}

fn histogram_json(h: &Histogram) -> Value {
    json!({ "low": h.low, "high": h.high, "counts": h.counts })
}

/// The report's view of the dashboards (token ids replaced by text).
pub fn report_json(d: &Dashboards, tok: &Tokenizer, source: Value) -> Value {
    let latent = |l: &LatentDashboard| {
        let logits = l.logits.as_ref().map(|e| {
            let table = |rows: &[(u32, f32)]| rows.iter().map(|&(t, v)| json!({ "token": token_text(tok, t), "value": v })).collect::<Vec<_>>();
            json!({ "top": table(&e.top), "bottom": table(&e.bottom), "histogram": histogram_json(&e.histogram) })
        });
        json!({
            "latent": l.latent, "max": l.max, "fired": l.fired, "frac_nonzero": l.frac_nonzero,
            "top": l.top.iter().map(|w| window_json(tok, w)).collect::<Vec<_>>(),
            "intervals": l.intervals.iter().map(|i| json!({
                "low": i.low, "high": i.high, "count": i.count, "fraction": i.fraction,
                "samples": i.samples.iter().map(|w| window_json(tok, w)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "activations": histogram_json(&l.activations),
            "logits": logits,
        })
    };
    json!({
        "hook": d.hook, "d_sae": d.d_sae, "contexts": d.contexts, "context_len": d.context_len, "tokens": d.tokens,
        "dead": d.dead, "source": source, "latents": d.latents.iter().map(latent).collect::<Vec<_>>(),
    })
}

/// Bin centres and counts, as Neuronpedia's parallel `*_bar_values` / `*_bar_heights`.
fn bars(h: &Histogram) -> (Vec<f64>, Vec<u64>) {
    let n = h.counts.len().max(1) as f64;
    let width = (h.high - h.low) as f64 / n;
    ((0..h.counts.len()).map(|i| round3(h.low as f64 + (i as f64 + 0.5) * width)).collect(), h.counts.clone())
}

/// Three decimals, as SAEDashboard rounds what it exports.
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Where the dashboards come from, for Neuronpedia's batch header and per-feature fields.
#[derive(Clone, Debug)]
pub struct NeuronpediaSource {
    pub model_id: String,
    pub layer: usize,
    pub sae_set: String,
    pub dataset: String,
}

/// One Neuronpedia feature.
pub fn neuronpedia_feature(l: &LatentDashboard, d: &Dashboards, tok: &Tokenizer, source: &NeuronpediaSource) -> Value {
    let record = |w: &Window, bin_min: f64, bin_max: f64, bin_contains: f64| {
        json!({
            "bin_min": bin_min, "bin_max": bin_max, "bin_contains": bin_contains,
            "tokens": w.tokens.iter().map(|&t| token_text(tok, t)).collect::<Vec<_>>(),
            "values": w.values.iter().map(|&v| round3(v as f64)).collect::<Vec<_>>(),
            "qualifying_token_index": w.qualifying, "maxValue": round3(w.value as f64), "maxValueTokenIndex": w.qualifying,
        })
    };
    // SAEDashboard marks top activations with bin_min -1, bin_max the maximum, bin_contains -1.
    let mut activations: Vec<Value> = l.top.iter().map(|w| record(w, -1.0, round3(l.max as f64), -1.0)).collect();
    for i in &l.intervals {
        activations.extend(i.samples.iter().map(|w| record(w, round3(i.low as f64), round3(i.high as f64), round3(i.fraction))));
    }
    let (freq_values, freq_heights) = bars(&l.activations);
    let empty = Histogram { low: 0.0, high: 0.0, counts: Vec::new() };
    let logits = l.logits.as_ref();
    let (logit_values, logit_heights) = bars(logits.map_or(&empty, |e| &e.histogram));
    let strs = |rows: Option<&Vec<(u32, f32)>>| rows.map_or(Vec::new(), |r| r.iter().map(|&(t, _)| token_text(tok, t)).collect::<Vec<_>>());
    let vals = |rows: Option<&Vec<(u32, f32)>>| rows.map_or(Vec::new(), |r| r.iter().map(|&(_, v)| round3(v as f64)).collect::<Vec<_>>());
    json!({
        "feature_index": l.latent,
        "neg_str": strs(logits.map(|e| &e.bottom)), "neg_values": vals(logits.map(|e| &e.bottom)),
        "pos_str": strs(logits.map(|e| &e.top)), "pos_values": vals(logits.map(|e| &e.top)),
        "frac_nonzero": l.frac_nonzero,
        "freq_hist_data_bar_values": freq_values, "freq_hist_data_bar_heights": freq_heights,
        "logits_hist_data_bar_values": logit_values, "logits_hist_data_bar_heights": logit_heights,
        "n_prompts_total": d.contexts, "n_tokens_in_prompt": d.context_len, "dataset": source.dataset,
        "maxActApprox": round3(l.max as f64),
        "neuron_alignment_indices": [], "neuron_alignment_values": [], "neuron_alignment_l1": [],
        "correlated_neurons_indices": [], "correlated_neurons_l1": [], "correlated_neurons_pearson": [],
        "correlated_features_indices": [], "correlated_features_l1": [], "correlated_features_pearson": [],
        "decoder_weights_dist": [],
        "activations": activations,
    })
}

/// Write one `batch-N.json` per latent into `dir` (SAEDashboard's batch layout with one feature
/// each); returns the files written.
pub fn write_neuronpedia(dir: &Path, d: &Dashboards, tok: &Tokenizer, source: &NeuronpediaSource) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    d.latents
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let path = dir.join(format!("batch-{i}.json"));
            let batch = json!({
                "model_id": source.model_id, "layer": source.layer, "sae_set": source.sae_set,
                "features": [neuronpedia_feature(l, d, tok, source)],
            });
            write_json(&path, &batch)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_bin_centres_parallel_to_counts() {
        let (v, h) = bars(&Histogram { low: 0.0, high: 2.0, counts: vec![3, 0, 1, 1] });
        assert_eq!(v, vec![0.25, 0.75, 1.25, 1.75]);
        assert_eq!(h, vec![3, 0, 1, 1]);
    }
}
