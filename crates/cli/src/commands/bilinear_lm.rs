//! `glassbox bilinear` on a bilinear transformer: the MLP of one block read through SAEs at its
//! output (and optionally its input), over positions of a text.

use super::bilinear::BilinearArgs;
use crate::Cli;
use anyhow::{bail, Context, Result};
use glassbox_bilinear::layer::BilinearLayer;
use glassbox_bilinear::output_features::{feature_correlation, input_feature_interactions, FeatureCorrelation, LowRankMlp};
use glassbox_core::model::Model;
use glassbox_core::tensor::{from_vec, infer_device, to_vec};
use glassbox_lm::corpus::pack;
use glassbox_lm::score::split_documents;
use glassbox_lm::tokenizer::{read_utf8_text, Tokenizer};
use glassbox_sae::saelens::Sae;
use rayon::prelude::*;
use std::time::Instant;

/// The eigenvector counts of the paper's correlation figure.
const KS: [usize; 5] = [1, 2, 4, 8, 16];
/// Features firing at this many positions or fewer are left out, as in the paper.
const MIN_FIRES: usize = 10;
/// Eigenvectors kept per output direction by the low-rank MLP.
const LOW_RANK_KS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Contexts run through the language model at once.
const CONTEXTS_PER_RUN: usize = 8;
/// How to read the run, shown under it in the report.
const NOTES: [&str; 2] = [
    "Output features: for each output SAE latent, the correlation between its activation and the sum of the top-k eigenvector terms of its interaction matrix, over the positions where it fires. High values at small k mean the MLP computes that feature from a few directions of its input; the second figure shows how the latents spread at k = 2.",
    "Low-rank MLP: the MLP with each output direction's interaction matrix cut to its top-k eigenvectors, and the next-token loss that adds relative to the clean model. At k = d_model nothing is cut and the loss added is zero; zeroing the MLP gives the scale (loss_mlp_zeroed). The principal directions are those of the MLP's outputs on the same positions the loss is measured on.",
];

pub fn run(cli: &Cli, a: &BilinearArgs, model: &Model) -> Result<()> {
    let start = Instant::now();
    let block = a.block.context("a transformer needs --block, the block whose MLP to read")?;
    let layer = glassbox_bilinear::load::transformer_mlp(model, block)?;
    let (Some(sae_path), Some(text_path)) = (&a.sae_out, &a.text) else { bail!("a transformer needs --sae-out (an SAE at the MLP's output) and --text") };
    let sae = Sae::load(sae_path)?;
    let d = layer.d_in();
    if sae.d_in != d {
        bail!("{}: the SAE reads {} values, block {block}'s MLP writes {d}", sae_path.display(), sae.d_in);
    }
    let sae_in = a.sae_in.as_ref().map(|p| Sae::load(p)).transpose()?;
    // Positions of the text: contexts of the model's length, the MLP's input and output there.
    let tokenizer = Tokenizer::from_file(&a.model.join("tokenizer.json"))?;
    let text = read_utf8_text(text_path)?;
    let n_ctx = match &model.arch {
        glassbox_core::model::Architecture::Transformer(t) => t.n_ctx,
        _ => unreachable!("transformer_mlp accepted the model"),
    };
    let docs = split_documents(&text);
    let contexts = pack(&tokenizer, &docs.iter().map(String::as_str).collect::<Vec<_>>(), n_ctx - 1)?;
    let rows = contexts.len().min(a.max_tokens / n_ctx);
    if rows == 0 {
        bail!("{}: fewer than one context of {n_ctx} tokens (in the text, or allowed by --max-tokens)", text_path.display());
    }
    let sites = [format!("blocks.{block}.ln2.hook_normalized"), format!("blocks.{block}.hook_mlp_out")];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let dev = infer_device();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(16) {
        let ids: Vec<f32> = chunk.iter().flat_map(|&r| contexts.tokens[r * n_ctx..(r + 1) * n_ctx].iter().map(|&t| t as f32)).collect();
        let (_, found) = model.forward_sites(from_vec(ids, [chunk.len(), n_ctx], &dev), &sites)?;
        x.extend(to_vec(found[0].value.clone()));
        y.extend(to_vec(found[1].value.clone()));
    }
    let n = x.len() / d;
    let acts = sae.encode(&y, n);
    let m = sae.d_sae;
    // Feature f's encoder direction: column f of W_enc [d_in, d_sae].
    let encoder = |f: usize| -> Vec<f64> { (0..d).map(|j| sae.w_enc[j * m + f] as f64).collect() };
    let results: Vec<FeatureCorrelation> = (0..m)
        .into_par_iter()
        .map(|f| {
            let u = encoder(f);
            let ya: Vec<f32> = (0..n).map(|r| acts[r * m + f]).collect();
            feature_correlation(&layer, f, &u, &x, &ya, &KS, MIN_FIRES)
        })
        .collect::<glassbox_core::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    if results.is_empty() {
        bail!("no output feature fires at more than {MIN_FIRES} of the {n} positions");
    }
    let summary: Vec<serde_json::Value> = KS
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let c: Vec<f64> = results.iter().map(|r| r.correlation[i]).collect();
            let mean = c.iter().sum::<f64>() / c.len() as f64;
            let above = c.iter().filter(|&&v| v > 0.75).count() as f64 / c.len() as f64;
            // Beyond d_model eigenvectors the approximation is exact and stays there.
            serde_json::json!({ "k": k, "eigenvectors": (*k).min(d), "mean_correlation": mean, "share_above_0.75": above })
        })
        .collect();
    // The strongest input-feature interactions of the most active non-dense output features.
    let interactions = sae_in.as_ref().map(|s| {
        let dirs: Vec<Vec<f64>> = (0..s.d_sae)
            .map(|f| {
                let row: Vec<f64> = s.w_dec[f * s.d_in..(f + 1) * s.d_in].iter().map(|&v| v as f64).collect();
                let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                row.into_iter().map(|v| v / norm).collect()
            })
            .collect();
        // Dense latents (firing at more than a tenth of the positions) mix many contexts: the
        // busiest of the others read best, then the least dense if there are too few.
        let dense = |r: &FeatureCorrelation| r.fires as f64 > glassbox_sae::lm_eval::DENSE_SHARE * n as f64;
        let mut busiest: Vec<&FeatureCorrelation> = results.iter().collect();
        busiest.sort_by_key(|r| if dense(r) { (1, r.fires as i64) } else { (0, -(r.fires as i64)) });
        busiest
            .iter()
            .take(20)
            .map(|r| {
                let top = input_feature_interactions(&layer, &encoder(r.feature), &dirs, 5);
                serde_json::json!({ "output_feature": r.feature, "fires": r.fires, "top_input_pairs": top.iter().map(|(i, j, v)| serde_json::json!([i, j, v])).collect::<Vec<_>>() })
            })
            .collect::<Vec<_>>()
    });
    let sequences: Vec<Vec<u32>> = (0..rows).map(|r| contexts.tokens[r * n_ctx..(r + 1) * n_ctx].to_vec()).collect();
    let low_rank = low_rank_losses(cli, &a.model, block, &layer, &sequences, &y)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    write_figures(&a.out, &results, &summary, &low_rank)?;
    let run = serde_json::json!({
        "name": format!("bilinear MLP of block {block}"),
        "command": super::command_line(),
        "wall_time_s": start.elapsed().as_secs_f64(),
        "metrics": { "features_evaluated": results.len(), "positions": n },
        "correlation_by_k": summary,
        "features": results,
        "input_feature_interactions": interactions,
        "low_rank_mlp": low_rank,
        "notes": NOTES,
    });
    glassbox_core::io::write_json(&a.out.join("run.json"), &run)?;
    if !cli.quiet {
        println!("{} output features firing at more than {MIN_FIRES} of {n} positions", results.len());
        for s in &summary {
            println!("k = {:>2}: mean correlation {:.3}, share above 0.75 {:.3}", s["k"], s["mean_correlation"].as_f64().unwrap(), s["share_above_0.75"].as_f64().unwrap());
        }
        let number = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        println!("low-rank MLP: next-token loss {:.4} clean, {:.4} with the MLP zeroed", number(&low_rank["loss_clean"]), number(&low_rank["loss_mlp_zeroed"]));
        for basis in low_rank["bases"].as_array().into_iter().flatten() {
            let added: Vec<String> = basis["by_k"].as_array().into_iter().flatten().map(|r| format!("k {} {:+.2}%", r["k"], 100.0 * number(&r["loss_added"]))).collect();
            println!("  {}: loss added {}", basis["basis"].as_str().unwrap_or("basis"), added.join(", "));
        }
        println!("wrote {}", a.out.display());
    }
    Ok(())
}

/// The next-token loss of the model with block `block`'s MLP replaced by its low-rank version
/// ([`LowRankMlp`]) for each k of [`LOW_RANK_KS`] below d_model and d_model itself, in two
/// output bases: the residual stream's axes and the principal directions of the MLP's outputs
/// `mlp_out` (row-major, d values per position). `loss_added` = (L_k − L_clean) / L_clean, the
/// paper's measure for SAEs; `loss_recovered` = (L_zeroed − L_k) / (L_zeroed − L_clean),
/// against the MLP's output zeroed.
fn low_rank_losses(cli: &Cli, model_dir: &std::path::Path, block: usize, layer: &BilinearLayer, sequences: &[Vec<u32>], mlp_out: &[f32]) -> Result<serde_json::Value> {
    use glassbox_lm::{Batch, HookTensor, Hooks, Intervention, Logits};
    let lm = glassbox_lm::loader::load_hf_folder(model_dir)?;
    let config = &lm.model.config;
    let (mlp_in, mlp_out_hook) = (format!("blocks.{block}.ln2.hook_normalized"), format!("blocks.{block}.hook_mlp_out"));
    let d = layer.d_out();
    let ks: Vec<usize> = LOW_RANK_KS.iter().copied().filter(|&k| k < layer.d_in()).chain([layer.d_in()]).collect();
    let bases = [("residual axes", LowRankMlp::standard(layer)?), ("principal directions of the MLP output", LowRankMlp::new(layer, principal_directions(mlp_out, d)?)?)];
    // Summed losses: clean, MLP zeroed, then per basis and k.
    let (mut clean, mut zeroed, mut low) = (0.0, 0.0, vec![vec![0.0; ks.len()]; bases.len()]);
    let (mut predicted, mut worst_read) = (0usize, 0f64);
    let progress = glassbox_core::train::progress_bar(!cli.quiet, sequences.len() as u64, 0);
    progress.set_message("contexts through the low-rank MLPs");
    for group in sequences.chunks(CONTEXTS_PER_RUN) {
        let batch = Batch::new(group);
        // Summed next-token loss of the batch, and the positions it sums over.
        let run = |hooks: &mut Hooks| -> Result<(f64, usize)> {
            let out = lm.model.forward(&batch, hooks, Logits::None)?;
            let nll = glassbox_lm::score::next_token_nll(&lm.model, &batch, &out.hidden);
            Ok((nll.iter().sum(), nll.len()))
        };
        let mut hooks = Hooks::capture(config, [&mlp_in, &mlp_out_hook])?;
        let (loss, count) = run(&mut hooks)?;
        let mut cache = hooks.take_cache();
        let (x, y) = (cache.remove(&mlp_in).expect("captured"), cache.remove(&mlp_out_hook).expect("captured"));
        // The MLP read from the checkpoint must be the one the model runs.
        for (xr, yr) in x.data.chunks(layer.d_in()).zip(y.data.chunks(d)) {
            let f = layer.forward(&xr.iter().map(|&v| v as f64).collect::<Vec<_>>());
            let norm = yr.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt().max(1e-6);
            worst_read = worst_read.max(f.iter().zip(yr).map(|(a, &b)| (a - b as f64).powi(2)).sum::<f64>().sqrt() / norm);
        }
        clean += loss;
        predicted += count;
        let mut ablated = Hooks::new();
        ablated.intervene(config, &mlp_out_hook, Intervention::Zero)?;
        zeroed += run(&mut ablated)?.0;
        for (b, (_, basis)) in bases.iter().enumerate() {
            for (j, out) in basis.outputs(&x.data, &ks)?.into_iter().enumerate() {
                let mut patched = Hooks::new();
                patched.intervene(config, &mlp_out_hook, Intervention::Replace(HookTensor { shape: y.shape.clone(), data: out }))?;
                low[b][j] += run(&mut patched)?.0;
            }
        }
        progress.inc(group.len() as u64);
    }
    progress.finish_and_clear();
    if worst_read > 1e-3 {
        bail!("{}: block {block}'s MLP read from the weights differs from the model's hook_mlp_out by {worst_read:.2e} (relative)", model_dir.display());
    }
    let n = predicted.max(1) as f64;
    let (clean, zeroed) = (clean / n, zeroed / n);
    Ok(serde_json::json!({
        "predicted_tokens": predicted,
        "loss_clean": clean,
        "loss_mlp_zeroed": zeroed,
        "mlp_read_error": worst_read,
        "bases": bases.iter().zip(&low).map(|((name, _), sums)| serde_json::json!({
            "basis": name,
            "by_k": ks.iter().zip(sums).map(|(&k, &s)| {
                let loss = s / n;
                serde_json::json!({ "k": k, "loss": loss, "loss_added": (loss - clean) / clean, "loss_recovered": (zeroed - loss) / (zeroed - clean) })
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}

/// The eigenvectors of the covariance of `rows` (d values each), as the rows of a d × d matrix,
/// by decreasing variance.
fn principal_directions(rows: &[f32], d: usize) -> Result<faer::Mat<f64>> {
    let n = (rows.len() / d).max(1) as f64;
    let mean: Vec<f64> = (0..d).map(|c| rows.iter().skip(c).step_by(d).map(|&v| v as f64).sum::<f64>() / n).collect();
    let centred = faer::Mat::from_fn(rows.len() / d, d, |r, c| rows[r * d + c] as f64 - mean[c]);
    let covariance = centred.transpose() * &centred;
    let spectrum = glassbox_bilinear::eigen::eigh(&covariance).context("principal directions of the MLP's outputs")?;
    Ok(spectrum.vectors.transpose().to_owned())
}

/// The run's figures: correlation against k, the spread of the correlations at k = 2, and the
/// loss the low-rank MLP adds against k.
fn write_figures(out: &std::path::Path, results: &[FeatureCorrelation], summary: &[serde_json::Value], low_rank: &serde_json::Value) -> Result<()> {
    let figures = out.join("figures");
    std::fs::create_dir_all(&figures).with_context(|| format!("cannot create {}", figures.display()))?;
    let series = |key: &str| -> Vec<(f64, f64)> { summary.iter().map(|s| (s["k"].as_f64().unwrap_or(f64::NAN), s[key].as_f64().unwrap_or(f64::NAN))).collect() };
    let by_k = glassbox_report::line_chart_svg(
        "Output features: top-k eigenvectors against the feature's activation",
        "eigenvectors kept (k)",
        "over features firing > 10 times",
        &[("mean correlation".into(), series("mean_correlation")), ("share above 0.75".into(), series("share_above_0.75"))],
    )?;
    glassbox_core::io::write_atomic(&figures.join("01-correlation-by-k.svg"), by_k.as_bytes())?;
    // Twelve bins of width 0.1 from -0.2 to 1; a few features correlate negatively at small k,
    // and those below -0.2 are counted in the first bin.
    let k2 = KS.iter().position(|&k| k == 2).expect("k = 2 is measured");
    let mut counts = [0usize; 12];
    for r in results {
        let bin = ((r.correlation[k2].clamp(-0.2, 1.0) + 0.2) / 0.1).floor() as usize;
        counts[bin.min(11)] += 1;
    }
    let bars: Vec<(String, f64)> = counts.iter().enumerate().map(|(i, &c)| (format!("{:.1}", -0.2 + 0.1 * i as f64), c as f64)).collect();
    let histogram = glassbox_report::bar_chart_svg("Output features by correlation at k = 2 (bins of 0.1)", "output features", &bars)?;
    glassbox_core::io::write_atomic(&figures.join("02-correlation-k2.svg"), histogram.as_bytes())?;
    let curves: Vec<(String, Vec<(f64, f64)>)> = low_rank["bases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let points = b["by_k"].as_array().into_iter().flatten().map(|r| (r["k"].as_f64().unwrap_or(f64::NAN), 100.0 * r["loss_added"].as_f64().unwrap_or(f64::NAN))).collect();
            (b["basis"].as_str().unwrap_or("basis").to_string(), points)
        })
        .collect();
    let loss = glassbox_report::line_chart_svg("Low-rank MLP: top-k eigenvectors per output direction", "eigenvectors kept (k)", "loss added (%)", &curves)?;
    glassbox_core::io::write_atomic(&figures.join("03-low-rank-loss.svg"), loss.as_bytes())?;
    Ok(())
}
