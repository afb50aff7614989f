//! Test B, a small-scale reproduction of the Universal SAE paper: three MLPs of different
//! widths trained on the glyph world; a USAE over one hidden layer of each, against a ridge
//! cross-predictor, a shuffled-pairing USAE and independent SAEs; universality of the most
//! energetic latents and of type-selective latents.

use super::{fit_usae, matched_share, off_diagonal, r2_matrix, standardised, Check, ExperimentOptions, Outcome};
use crate::analysis::universality;
use crate::metrics::ridge_cross_predictor;
use crate::usae::{ScheduleTick, Usae, UsaeConfig};
use crate::Result;
use faer::Mat;
use glassbox_core::data::glyphs::GlyphWorld;
use glassbox_core::data::{Dataset, Targets};
use glassbox_core::dataspec::DataSpec;
use glassbox_core::experiment::fit;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};
use glassbox_core::train::TrainConfig;
use std::time::Instant;

/// (hidden widths, seed) of nets A, B, C; the USAE reads their second hidden layer.
pub const NETS: [([usize; 2], u64); 3] = [([128, 64], 11), ([96, 96], 12), ([256, 32], 13)];
const M: usize = 384;
const K: usize = 8;
const STEPS: usize = 4000;
const BATCH: usize = 256;
const TAU: f32 = 0.1;

fn activations(model: &Model, data: &Dataset) -> Mat<f32> {
    let dev = infer_device();
    let x = from_vec(data.inputs.clone(), [data.len(), data.input_dim], &dev);
    let (_, sites) = model.forward_sites(x, &["layers.1.post".to_string()]).expect("an MLP with two hidden layers");
    let v = to_vec(sites[0].value.clone());
    let d = v.len() / data.len();
    Mat::from_fn(data.len(), d, |r, c| v[r * d + c])
}

/// Test B's USAE (m 384, k 8, lr 2e-3 with 5% warm-up) with the prototype's
/// deviations (no BN, tied init, no clipping, one global cosine); `universal` off gives the
/// independent-SAE control.
fn config(universal: bool) -> UsaeConfig {
    UsaeConfig { lr: 2e-3, warmup_ticks: STEPS / 20, batch_norm: false, universal, tied_init: true, clip: None, tick: ScheduleTick::Global, ..UsaeConfig::new(M, K, STEPS) }
}

/// Per primitive type, per net: the latent whose firing rate differs most between test images
/// with and without that type.
fn selective_latents(usae: &Usae, data: &[Mat<f32>], labels: &[f32], n_types: usize) -> Vec<Vec<usize>> {
    let n = data[0].nrows();
    (0..data.len())
        .map(|i| {
            let z = usae.encode(i, &data[i]).to_dense();
            (0..n_types)
                .map(|t| {
                    let with: Vec<usize> = (0..n).filter(|&r| labels[r * n_types + t] > 0.5).collect();
                    let without: Vec<usize> = (0..n).filter(|&r| labels[r * n_types + t] <= 0.5).collect();
                    let rate = |rows: &[usize], l: usize| rows.iter().filter(|&&r| z[(r, l)] > TAU).count() as f64 / rows.len().max(1) as f64;
                    (0..usae.config.m).max_by(|&a, &b| (rate(&with, a) - rate(&without, a)).total_cmp(&(rate(&with, b) - rate(&without, b)))).unwrap()
                })
                .collect()
        })
        .collect()
}

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let seed = opts.seeds.first().copied().unwrap_or(0);
    let world = GlyphWorld { n_train: 20_000, n_test: 4_000, seed };
    let split = world.generate();
    let spec = DataSpec::Glyphs(world.clone());
    // Adam lr 2e-3, BCE, 3000 steps of 128 (19.2 epochs of 20,000).
    let cfg = TrainConfig { epochs: 19, batch_size: 128, lr: 2e-3, eval_every: 19, shards: 1, ..TrainConfig::default() };
    let (mut train_acts, mut test_acts, mut accuracy) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (hidden, net_seed)) in NETS.iter().enumerate() {
        let arch = Architecture::Mlp { dims: vec![144, hidden[0], hidden[1], 8], activation: Activation::Relu, bias: true, embed: None };
        let model = fit(arch, &split, &spec, &cfg, *net_seed, &opts.out, &format!("net{}", ["A", "B", "C"][i]), opts.progress)?;
        accuracy.push(glassbox_core::train::evaluate(&model, &split.test, 4096).accuracy);
        train_acts.push(activations(&model, &split.train));
        test_acts.push(activations(&model, &split.test));
    }
    // The three fits share nothing: let the cores take them.
    let names = ["netA", "netB", "netC"];
    let fit = |universal: bool, shuffle: bool| fit_usae(&train_acts, &names, config(universal), BATCH, shuffle, seed);
    let (usae, (shuffled, independent)) = rayon::join(|| fit(true, false), || rayon::join(|| fit(true, true), || fit(false, false)));
    let (usae, shuffled, independent) = (usae?, shuffled?, independent?);
    let test_std = |u: &Usae| standardised(u, &test_acts);
    let u = universality(&usae, &test_std(&usae))?;
    let r2 = &u.r2;
    let r2_shuffled = r2_matrix(&shuffled, &test_std(&shuffled));
    let r2_independent = r2_matrix(&independent, &test_std(&independent));
    let ridge: Vec<Vec<f64>> = (0..3).map(|i| (0..3).map(|j| if i == j { 1.0 } else { ridge_cross_predictor(&train_acts[i], &train_acts[j], &test_acts[i], &test_acts[j], 1e-3) }).collect()).collect();
    let ui = universality(&independent, &test_std(&independent))?;
    let Targets::MultiLabel { values, n_labels } = &split.test.targets else { unreachable!("the glyph world is multi-label") };
    let sel = selective_latents(&usae, &test_std(&usae), values, *n_labels);
    let sel_ind = selective_latents(&independent, &test_std(&independent), values, *n_labels);
    let shared = |s: &[Vec<usize>]| (0..*n_labels).filter(|&t| s[0][t] == s[1][t] && s[1][t] == s[2][t]).count();
    let top50 = u.top_energy(50);
    let fe_top = top50.iter().filter(|&&l| u.firing_entropy[l] >= 0.9).count() as f64 / 50.0;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (cfp, cfp_ind) = (mean(&u.mean_cofire_proportion), mean(&ui.mean_cofire_proportion));
    let alive = 1.0 - u.dead_everywhere;
    let mut checks = Vec::new();
    let selfs: Vec<f64> = (0..3).map(|i| r2[i][i]).collect();
    checks.push(Check::new("self R²", selfs.iter().all(|&s| s >= 0.70), format!("per-dim self R² {selfs:.3?} >= 0.70")));
    let cross = off_diagonal(r2);
    let ok = cross.iter().all(|&(i, j, v)| v >= 0.60 && v >= 0.8 * ridge[i][j] && v >= 0.8 * r2[j][j]);
    let detail: Vec<String> = cross.iter().map(|&(i, j, v)| format!("{i}→{j} {v:.3} (ridge {:.3}, self {:.3})", ridge[i][j], r2[j][j])).collect();
    checks.push(Check::new("cross R²", ok, format!("every cross R² >= 0.60, >= 0.8×ridge, >= 0.8×decoded self: {}", detail.join("; "))));
    let sh: Vec<f64> = off_diagonal(&r2_shuffled).iter().map(|x| x.2).collect();
    checks.push(Check::new("shuffled control", sh.iter().all(|&v| v <= 0.10), format!("shuffled-pairing cross R² {sh:.3?} <= 0.10")));
    let ind: Vec<f64> = off_diagonal(&r2_independent).iter().map(|x| x.2).collect();
    checks.push(Check::new("independent control", ind.iter().all(|&v| v < 0.0), format!("independent-SAE cross R² {ind:.3?} < 0")));
    checks.push(Check::new("universal top latents", fe_top >= 0.5, format!("share of the 50 most energetic latents with FE >= 0.9: {fe_top:.2} >= 0.5")));
    checks.push(Check::new("co-firing", cfp >= 10.0 * cfp_ind, format!("mean CFP over alive latents {cfp:.4} >= 10 × independent {cfp_ind:.4}")));
    checks.push(Check::new("selective latents", shared(&sel) >= 4, format!("primitive types whose most selective latent is shared by all three nets: {} of 8 >= 4 (independent: {})", shared(&sel), shared(&sel_ind))));
    checks.push(Check::new("alive", alive >= 0.5, format!("latents firing in some net on the test set {alive:.3} >= 0.5")));
    // The USAE paper's consistency check: each net's USAE dictionary against its independently
    // trained SAE.
    let hungarian: Vec<f64> = (0..3).map(|i| matched_share(&usae.models[i].dictionary(), &independent.models[i].dictionary())).collect::<Result<_>>()?;
    let rows = vec![serde_json::json!({
        "hungarian_share_cos_above_0.5": hungarian,
        "net_accuracy": accuracy, "r2": r2, "r2_scalar": u.r2_scalar, "ridge": ridge, "r2_shuffled": r2_shuffled, "r2_independent": r2_independent,
        "fe_top50_share": fe_top, "mean_cfp": cfp, "mean_cfp_independent": cfp_ind, "selective": sel, "selective_independent": sel_ind, "alive": alive,
    })];
    Ok(Outcome { name: "USAE test B (three networks on the glyph world)".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
