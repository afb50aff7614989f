//! `glassbox bilinear` on a bilinear transformer: the MLP of one block read through SAEs at its
//! output (and optionally its input), over positions of a text.

use super::bilinear::BilinearArgs;
use crate::Cli;
use anyhow::{bail, Context, Result};
use glassbox_bilinear::output_features::{feature_correlation, input_feature_interactions, FeatureCorrelation};
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
    // The strongest input-feature interactions of the most active output features.
    let interactions = sae_in.as_ref().map(|s| {
        let dirs: Vec<Vec<f64>> = (0..s.d_sae)
            .map(|f| {
                let row: Vec<f64> = s.w_dec[f * s.d_in..(f + 1) * s.d_in].iter().map(|&v| v as f64).collect();
                let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
                row.into_iter().map(|v| v / norm).collect()
            })
            .collect();
        let mut busiest: Vec<&FeatureCorrelation> = results.iter().collect();
        busiest.sort_by_key(|r| std::cmp::Reverse(r.fires));
        busiest
            .iter()
            .take(20)
            .map(|r| {
                let top = input_feature_interactions(&layer, &encoder(r.feature), &dirs, 5);
                serde_json::json!({ "output_feature": r.feature, "fires": r.fires, "top_input_pairs": top.iter().map(|(i, j, v)| serde_json::json!([i, j, v])).collect::<Vec<_>>() })
            })
            .collect::<Vec<_>>()
    });
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
    let run = serde_json::json!({
        "name": format!("bilinear MLP of block {block}"),
        "command": super::command_line(),
        "wall_time_s": start.elapsed().as_secs_f64(),
        "metrics": { "features_evaluated": results.len(), "positions": n },
        "correlation_by_k": summary,
        "features": results,
        "input_feature_interactions": interactions,
    });
    glassbox_core::io::write_json(&a.out.join("run.json"), &run)?;
    if !cli.quiet {
        println!("{} output features firing at more than {MIN_FIRES} of {n} positions", results.len());
        for s in &summary {
            println!("k = {:>2}: mean correlation {:.3}, share above 0.75 {:.3}", s["k"], s["mean_correlation"].as_f64().unwrap(), s["share_above_0.75"].as_f64().unwrap());
        }
        println!("wrote {}", a.out.display());
    }
    Ok(())
}
