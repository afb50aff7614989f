//! ProbeX's zero-shot reproduction (threshold A8): zero-shot reading of what a model was
//! trained on. One tree of denoising autoencoders fine-tuned on one class each (12 per class, 5
//! of 20 classes held out), synthetic class "text" embeddings t_c = G · mean prototype;
//! text-aligned ProbeX (r 32/32/64, cosine logits, CE over the 15 seen classes, Adam 2e-3, 200
//! epochs) on each of the trunk's layers; the layer is picked by held-out validation accuracy
//! (the reference code's second checkpoint). A8: in-distribution top-1 ≥ 0.90 and zero-shot
//! top-1 ≥ 2 × chance (0.40) on that layer, mean over seeds.

use super::{Check, ExperimentOptions, Outcome};
use crate::collection::Collection;
use crate::probex::Ranks;
use crate::zeroshot::{fit_zeroshot, read_class_embeddings, ZeroShot, ZeroShotConfig, ZeroShotData, ZeroShotProblem};
use crate::{Error, Result};
use glassbox_zoo::build::{build, ShardJob};
use glassbox_zoo::tree_world::{TreeWorldConfig, ZeroShotWorld};
use std::time::Instant;

/// The layers swept: the trunk's weights, the output layer and its bias (the numpy prototype
/// reported W2, W3, W4 and b4).
pub const LAYERS: [&str; 5] = ["layers.0.weight", "layers.1.weight", "layers.2.weight", "head.weight", "head.bias"];

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let world = ZeroShotWorld::new(TreeWorldConfig { trees: 1, ..TreeWorldConfig::spec(0) });
    let zoo_dir = opts.out.join("zeroshot-zoo");
    let t = Instant::now();
    build(&zoo_dir, &world, ShardJob::ALL, |_, _| {})?;
    let build_seconds = t.elapsed().as_secs_f64();
    let mse = glassbox_zoo::store::load(&zoo_dir)?.measured("denoising_mse")?.to_vec();
    let worst = mse.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let ranks = Ranks { probes: 32, proj: 32, rep: 64 };
    let mut rows = Vec::new();
    // Per layer, per seed: (held-out val, in-dist test, zero-shot test).
    let mut per_layer: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); LAYERS.len()];
    for (l, layer) in LAYERS.iter().enumerate() {
        let models = Collection::open(&zoo_dir, layer, false, 0)?;
        let problem = ZeroShotProblem::new(&models, "dataset_chosen_targets")?;
        let texts = read_class_embeddings(&zoo_dir.join("class-embeddings.safetensors"), &problem.classes)?;
        for &seed in &opts.seeds {
            let data = ZeroShotData { data: &models.data, class_of: &problem.class_of, texts: &texts, seen: &problem.seen, held_out: &problem.held_out };
            let model = ZeroShot::new(models.data.d_h, models.data.d_w, texts.ncols(), ranks, true, seed);
            let (scores, _, _) = fit_zeroshot(model, &data, &problem.split(), &ZeroShotConfig::spec(seed));
            if opts.progress {
                eprintln!("seed {seed}: {layer}: in-dist test {:.3} (train {:.3}), zero-shot test {:.3} at best held-out val {:.3} (epoch {}); {:.1} s", scores.in_dist_test, scores.train_top1, scores.zero_shot_test, scores.best_holdout_val, scores.best_holdout_epoch, scores.seconds);
            }
            per_layer[l].push((scores.best_holdout_val, scores.in_dist_test, scores.zero_shot_test));
            rows.push(serde_json::json!({ "seed": seed, "layer": layer, "scores": scores }));
        }
    }
    if opts.seeds.is_empty() {
        return Err(Error::invalid("the zero-shot experiment needs at least one seed"));
    }
    let mean = |v: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let summary: Vec<(f64, f64, f64)> = per_layer.iter().map(|v| (mean(v, |x| x.0), mean(v, |x| x.1), mean(v, |x| x.2))).collect();
    let picked = (0..LAYERS.len()).fold(0, |b, l| if summary[l].0 > summary[b].0 { l } else { b });
    let chance = 1.0 / glassbox_zoo::tree_world::HELD_OUT as f64;
    let table = LAYERS.iter().zip(&summary).map(|(n, s)| format!("{n}: held-out val {:.3}, in-dist {:.3}, zero-shot {:.3}", s.0, s.1, s.2)).collect::<Vec<_>>().join("; ");
    let (_, in_dist, zero) = summary[picked];
    let checks = vec![
        // Returning the noisy input unchanged would score the noise variance, 0.3² = 0.09.
        Check::new("zoo", worst < 0.09, format!("{} denoising autoencoders (20 classes × 12, 5 classes held out) built in {build_seconds:.1} s; worst denoising MSE on their class's test images {worst:.4} < 0.09 (the noise's)", world.count())),
        Check::new("A8", in_dist >= 0.90 && zero >= 2.0 * chance, format!("layer picked by held-out validation: {}; in-distribution top-1 {in_dist:.3} >= 0.90 (chance {:.3}); zero-shot top-1 {zero:.3} >= 2 × chance {chance:.2}. All layers: {table}", LAYERS[picked], 1.0 / 15.0)),
    ];
    let bars: Vec<(String, f64)> = LAYERS.iter().zip(&summary).map(|(n, s)| (format!("{n} zero-shot"), s.2)).collect();
    rows.push(serde_json::json!({ "methods": { "metric": "zero-shot top-1 (5 held-out classes)", "bars": bars } }));
    Ok(Outcome { name: "ProbeX zero-shot (tree world, denoising autoencoders)".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
