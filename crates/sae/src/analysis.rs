//! The universality analysis of a trained USAE on aligned evaluation activations (the metrics
//! of the USAE paper, Thasarathan et al. 2025): R² matrices in both forms, firing entropy,
//! co-firing, dead latents, energy, and figures.

use crate::metrics::{cofire_counts, cofire_energy_correlation, cofire_iou, cofire_proportion, dead_fraction, energy, firing_counts, firing_entropy, r2_per_dim, r2_scalar};
use crate::usae::Usae;
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::io::write_json;
use serde::Serialize;
use std::path::Path;

/// Firing threshold on codes (the USAE paper's tau).
pub const TAU: f32 = 0.1;

#[derive(Clone, Debug, Serialize)]
pub struct Universality {
    pub models: Vec<String>,
    /// Entry (i, j): decode model i's codes with model j's dictionary; per-dimension R² (the
    /// form every threshold uses).
    pub r2: Vec<Vec<f64>>,
    /// The paper's scalar-mean R², for comparison with its numbers only.
    pub r2_scalar: Vec<Vec<f64>>,
    pub dead_fraction: Vec<f64>,
    /// Latents that fire (z > τ) in no model.
    pub dead_everywhere: f64,
    pub firing_entropy: Vec<f64>,
    pub mean_cofire_proportion: Vec<f64>,
    /// Mean co-fire IoU (|C_k| / Σ_i |F_k^(i)|, the code's variant) over the alive latents.
    pub mean_cofire_iou: f64,
    /// Σ over models of ‖mean z_k D_k‖ (the code's un-squared energy).
    pub energy: Vec<f64>,
    pub cofire: Vec<usize>,
    /// Pearson r and slope of log10 energy vs log10 co-fire count.
    pub cofire_energy: Option<(f64, f64)>,
}

impl Universality {
    /// Indices of the `n` most energetic latents.
    pub fn top_energy(&self, n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.energy.len()).collect();
        idx.sort_by(|&a, &b| self.energy[b].total_cmp(&self.energy[a]));
        idx.truncate(n);
        idx
    }
}

/// `data[i]`: model i's standardised activations of the same inputs, row for row.
pub fn universality(usae: &Usae, data: &[Mat<f32>]) -> Result<Universality> {
    if data.len() != usae.models.len() || data.iter().any(|a| a.nrows() != data[0].nrows()) {
        return Err(Error::invalid("universality needs every model's activations of the same inputs"));
    }
    let codes: Vec<_> = (0..data.len()).map(|i| usae.encode(i, &data[i])).collect();
    let decoded = |i: usize, j: usize| usae.decode(j, &codes[i]);
    let pairs: Vec<Vec<Mat<f32>>> = (0..data.len()).map(|i| (0..data.len()).map(|j| decoded(i, j)).collect()).collect();
    let r2 = (0..data.len()).map(|i| (0..data.len()).map(|j| r2_per_dim(&data[j], &pairs[i][j])).collect()).collect();
    let r2s = (0..data.len()).map(|i| (0..data.len()).map(|j| r2_scalar(&data[j], &pairs[i][j])).collect()).collect();
    let dense: Vec<Mat<f32>> = codes.iter().map(|c| c.to_dense()).collect();
    let counts: Vec<Vec<usize>> = dense.iter().map(|z| firing_counts(z, TAU)).collect();
    let refs: Vec<&Mat<f32>> = dense.iter().collect();
    let cofire = cofire_counts(&refs, TAU);
    let cfp = cofire_proportion(&cofire, &counts);
    let m = usae.config.m;
    let alive: Vec<usize> = (0..m).filter(|&l| counts.iter().any(|c| c[l] > 0)).collect();
    let mut total_energy = vec![0.0; m];
    for (z, s) in dense.iter().zip(&usae.models) {
        for (t, e) in total_energy.iter_mut().zip(energy(z, &s.dictionary())) {
            *t += e;
        }
    }
    let mean_cfp = cfp.iter().map(|per| alive.iter().map(|&l| per[l]).sum::<f64>() / alive.len().max(1) as f64).collect();
    Ok(Universality {
        models: usae.models.iter().map(|s| s.name.clone()).collect(),
        r2,
        r2_scalar: r2s,
        dead_fraction: dense.iter().map(|z| dead_fraction(z, TAU)).collect(),
        dead_everywhere: 1.0 - alive.len() as f64 / m as f64,
        firing_entropy: firing_entropy(&counts),
        mean_cofire_proportion: mean_cfp,
        mean_cofire_iou: {
            let iou = cofire_iou(&cofire, &counts);
            alive.iter().map(|&l| iou[l]).sum::<f64>() / alive.len().max(1) as f64
        },
        cofire_energy: cofire_energy_correlation(&cofire, &total_energy),
        energy: total_energy,
        cofire,
    })
}

/// run.json with the metrics and figures/: the R² heat map, the firing-entropy histogram and
/// the co-fire vs energy scatter (log-log).
pub fn write_run(dir: &Path, name: &str, command: &str, u: &Universality, wall: f64) -> Result<()> {
    let figs = dir.join("figures");
    std::fs::create_dir_all(&figs).map_err(|e| Error::io(&figs, e))?;
    let mut metrics = serde_json::Map::new();
    for (i, a) in u.models.iter().enumerate() {
        for (j, b) in u.models.iter().enumerate() {
            metrics.insert(format!("r2.{a}->{b}"), u.r2[i][j].into());
        }
        metrics.insert(format!("dead_fraction.{a}"), u.dead_fraction[i].into());
        metrics.insert(format!("mean_cofire_proportion.{a}"), u.mean_cofire_proportion[i].into());
    }
    let fe: Vec<f64> = u.firing_entropy.iter().copied().filter(|v| v.is_finite()).collect();
    metrics.insert("latents_alive".into(), fe.len().into());
    metrics.insert("mean_cofire_iou".into(), u.mean_cofire_iou.into());
    metrics.insert("share_fe_above_0.9".into(), (fe.iter().filter(|&&v| v >= 0.9).count() as f64 / fe.len().max(1) as f64).into());
    let bins = 20;
    let mut hist = vec![0usize; bins];
    for v in &fe {
        hist[((v * bins as f64) as usize).min(bins - 1)] += 1;
    }
    let series = vec![("latents".to_string(), hist.iter().enumerate().map(|(b, &c)| ((b as f64 + 0.5) / bins as f64, c as f64)).collect())];
    let chart = |title: &str, x: &str, y: &str, s: &[(String, Vec<(f64, f64)>)]| glassbox_report::line_chart_svg(title, x, y, s).map_err(|e| Error::invalid(format!("figure: {e}")));
    std::fs::write(figs.join("firing-entropy.svg"), chart("Firing entropy of the alive latents (1: fires equally in every model)", "firing entropy", "latents", &series)?).map_err(|e| Error::io(&figs, e))?;
    let points: Vec<(f64, f64)> = (0..u.energy.len()).filter(|&l| u.cofire[l] > 0 && u.energy[l] > 0.0).map(|l| ((u.cofire[l] as f64).log10(), u.energy[l].log10())).collect();
    let scatter = glassbox_report::scatter_chart_svg("Co-firing vs energy per latent", "log10 co-fire count", "log10 energy", &points).map_err(|e| Error::invalid(format!("figure: {e}")))?;
    std::fs::write(figs.join("cofire-energy.svg"), scatter).map_err(|e| Error::io(&figs, e))?;
    let heat = glassbox_report::heatmap_svg("R² (per-dim): the row's model encodes, the column's decodes", &u.models, &u.models, &u.r2).map_err(|e| Error::invalid(format!("figure: {e}")))?;
    std::fs::write(figs.join("r2-matrix.svg"), heat).map_err(|e| Error::io(&figs, e))?;
    let run = serde_json::json!({
        "name": name, "command": command, "wall_time_s": wall,
        "versions": { "glassbox": env!("CARGO_PKG_VERSION") },
        "metrics": metrics, "universality": u,
        "notes": ["R² is the per-dimension form (1 − SSE / Σ per-channel variance); the paper's scalar-mean form is in universality.r2_scalar and is more lenient."],
    });
    write_json(&dir.join("run.json"), &run)
}

/// What a concept card shows, for the run's notes.
pub const CARD_NOTE: &str = "Concept cards (figures/concept-RR-latent-L.png, RR = universality rank by co-fire count): one row per model in the USAE's order; the first image is that model's coordinated activation-maximised input for latent L (maximising L's pre-activation, before ReLU and TopK, which is affine in the model's activations), the others are the test inputs with the largest pre-activation of L in that model. Each image is scaled to its own range.";

/// Merge `extra` into a run.json written by [`write_run`]; a `notes` array is appended to the
/// existing notes (once each).
pub fn extend_run(dir: &Path, extra: serde_json::Value) -> Result<()> {
    let path = dir.join("run.json");
    let mut run: serde_json::Value = glassbox_core::io::read_json(&path)?;
    let (Some(obj), serde_json::Value::Object(add)) = (run.as_object_mut(), extra) else {
        return Err(Error::format(&path, "run.json and the addition must both be objects"));
    };
    for (key, value) in add {
        match (obj.get_mut(&key), value) {
            (Some(serde_json::Value::Array(old)), serde_json::Value::Array(new)) if key == "notes" => {
                for note in new {
                    if !old.contains(&note) {
                        old.push(note);
                    }
                }
            }
            (_, value) => {
                obj.insert(key, value);
            }
        }
    }
    write_json(&path, &run)
}
