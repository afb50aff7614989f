//! Model A, a modular-addition MLP standing in for the LIB paper's transformer: p = 59 with a
//! linear embedding (d 32) and one ReLU layer (128), trained with AdamW to grokking; LIB vs PCA
//! at input, embedding and hidden layers, edge bisection, and the Fourier purity of the
//! embedding features. Thresholds 1-6.

use super::{invariant_error, lib_and_pca, ratio_check, Check, ExperimentOptions, Outcome};
use crate::analysis::{Analysis, AnalysisOptions};
use crate::fourier::{grid, purity};
use crate::network::Network;
use crate::{Result, Variant};
use glassbox_core::data::modadd::ModularAddition;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::experiment::{fit, median};
use glassbox_core::model::{Activation, Architecture};
use glassbox_core::train::optim::{OptimConfig, OptimKind};
use glassbox_core::train::schedule::{Schedule, ScheduleKind};
use glassbox_core::train::{evaluate, TrainConfig};
use std::collections::BTreeMap;
use std::time::Instant;

pub const P: usize = 59;
pub const EMBED: usize = 32;
pub const HIDDEN: usize = 128;

/// Node layers of the model: input (2p + 1), embed (d + 1), hidden (H + 1), logits.
const INPUT: &str = "input";
const EMBEDDING: &str = "embed";
const HIDDEN_LAYER: &str = "layers.0.post";

pub fn architecture(p: usize) -> Architecture {
    Architecture::Mlp { dims: vec![2 * p, HIDDEN, p], activation: Activation::Relu, bias: true, embed: Some(EMBED) }
}

/// AdamW, full batch, lr 3e-3, wd 1, betas (0.9, 0.98), no warm-up, constant rate.
pub fn config(steps: usize, full_batch: usize) -> TrainConfig {
    TrainConfig {
        epochs: steps,
        batch_size: full_batch,
        lr: 3e-3,
        optim: OptimConfig { kind: OptimKind::AdamW, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: 1.0 },
        schedule: Schedule { kind: ScheduleKind::Constant, warmup_epochs: 0, min_lr: 0.0 },
        eval_every: 500,
        shards: 1,
        ..TrainConfig::default()
    }
}

/// Fourier purity and dominant frequency of the first `count` non-constant features of node
/// layer `l` over all p² pairs (row a·p + b).
pub fn feature_frequencies(net: &Network, analysis: &Analysis, variant: Variant, l: usize, p: usize, count: usize) -> Vec<(f64, usize)> {
    let task = ModularAddition { p, train_fraction: 0.5, seed: 0, tokens: false };
    let all = all_pairs(&task);
    let acts = net.node_activations(net.fold_input(&all, p * p));
    let b = &analysis.variant(variant).expect("variant analysed").basis.layers[l];
    let f_hat = b.features(&acts[l]);
    let first = b.const_first as usize;
    (first..b.width().min(first + count)).map(|j| purity(&grid(&(0..p * p).map(|r| f_hat[(r, j)]).collect::<Vec<_>>(), p))).collect()
}

/// Inputs of every pair (a, b), row a·p + b: one-hot, or the tokens [a, b, =] for transformers.
pub fn all_pairs(task: &ModularAddition) -> Vec<f32> {
    let p = task.p;
    if task.tokens {
        return (0..p * p).flat_map(|r| [(r / p) as f32, (r % p) as f32, p as f32]).collect();
    }
    let mut x = vec![0f32; p * p * 2 * p];
    for a in 0..p {
        for b in 0..p {
            let r = a * p + b;
            x[r * 2 * p + a] = 1.0;
            x[r * 2 * p + p + b] = 1.0;
        }
    }
    x
}

/// Dominant frequencies of the hidden neurons: those that are the top frequency of at least
/// 5% of the neurons that fire at all.
pub fn neuron_key_frequencies(net: &Network, l: usize, p: usize) -> (Vec<usize>, Vec<(f64, usize)>) {
    let task = ModularAddition { p, train_fraction: 0.5, seed: 0, tokens: false };
    let acts = net.node_activations(net.fold_input(&all_pairs(&task), p * p));
    let f = &acts[l];
    let neurons: Vec<(f64, usize)> = (0..f.ncols() - 1).map(|j| purity(&grid(&(0..p * p).map(|r| f[(r, j)]).collect::<Vec<_>>(), p))).filter(|&(_, w)| w > 0).collect();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &(_, w) in &neurons {
        *counts.entry(w).or_default() += 1;
    }
    let keys = counts.iter().filter(|&(_, &c)| c as f64 >= 0.05 * neurons.len() as f64).map(|(&w, _)| w).collect();
    (keys, neurons)
}

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    run_with(opts, P, 4000)
}

pub fn run_with(opts: &ExperimentOptions, p: usize, steps: usize) -> Result<Outcome> {
    let start = Instant::now();
    let (mut rows, mut checks) = (Vec::new(), Vec::new());
    let mut acc = Vec::new();
    let (mut width_in, mut width_hidden, mut invariants) = (Vec::new(), Vec::new(), Vec::new());
    let mut need: BTreeMap<(&str, Variant), Vec<Option<usize>>> = BTreeMap::new();
    let mut edges: BTreeMap<(&str, Variant), Vec<Option<usize>>> = BTreeMap::new();
    let (mut lib_purity, mut pca_purity, mut paired, mut subset) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &seed in &opts.seeds {
        let task = ModularAddition { p, train_fraction: 0.5, seed, tokens: false };
        let split = task.generate()?;
        let name = format!("modadd-p{p}-seed{seed}");
        let model = fit(architecture(p), &split, &DataSpec::Modadd(task.clone()), &config(steps, split.train.len()), seed, &opts.out, &name, opts.progress)?;
        let a = evaluate(&model, &split.test, 8192).accuracy;
        acc.push(a);
        let (net, analysis) = lib_and_pca(&model, &split.train, &split.test, &AnalysisOptions::default(), &opts.out.join(format!("{name}-lib")), &format!("LIB vs PCA, {name}"))?;
        let lib = analysis.variant(Variant::Lib).unwrap();
        let pca = analysis.variant(Variant::Pca).unwrap();
        width_in.push(lib.widths[0]);
        width_hidden.push(lib.widths[2]);
        invariants.push(invariant_error(&net, &analysis, &split.train));
        for layer in [INPUT, EMBEDDING, HIDDEN_LAYER] {
            for r in [lib, pca] {
                need.entry((layer, r.variant)).or_default().push(r.needed(layer));
                edges.entry((layer, r.variant)).or_default().push(r.edges_needed(layer));
            }
        }
        let lib_f = feature_frequencies(&net, &analysis, Variant::Lib, 1, p, 20);
        let pca_f = feature_frequencies(&net, &analysis, Variant::Pca, 1, p, 20);
        let (keys, neurons) = neuron_key_frequencies(&net, 2, p);
        let mean = |v: &[(f64, usize)]| v.iter().map(|x| x.0).sum::<f64>() / v.len().max(1) as f64;
        let pairs = lib_f.iter().filter(|(_, w)| lib_f.iter().filter(|(_, v)| v == w).count() >= 2).count() as f64 / lib_f.len().max(1) as f64;
        let inside = lib_f.iter().filter(|(_, w)| keys.contains(w)).count() as f64 / lib_f.len().max(1) as f64;
        lib_purity.push(mean(&lib_f));
        pca_purity.push(mean(&pca_f));
        paired.push(pairs);
        subset.push(inside);
        rows.push(serde_json::json!({
            "seed": seed, "test_accuracy": a, "baseline_accuracy": analysis.baseline_accuracy,
            "lib_widths": lib.widths, "pca_widths": pca.widths,
            "features_needed": { "lib": lib.nodes.iter().map(|n| (n.layer.clone(), n.needed)).collect::<Vec<_>>(), "pca": pca.nodes.iter().map(|n| (n.layer.clone(), n.needed)).collect::<Vec<_>>() },
            "edges_needed": { "lib": lib.edge_ablations.iter().map(|e| (e.from.clone(), e.needed, e.total)).collect::<Vec<_>>(), "pca": pca.edge_ablations.iter().map(|e| (e.from.clone(), e.needed, e.total)).collect::<Vec<_>>() },
            "lib_embed_frequencies": lib_f, "pca_embed_frequencies": pca_f,
            "neuron_key_frequencies": keys, "neuron_frequencies": neurons.iter().map(|x| x.1).collect::<Vec<_>>(),
            "invariant_error": invariants.last(),
            "seconds": { "lib_build": lib.build_seconds, "lib_edges": lib.edge_seconds, "pca_build": pca.build_seconds },
        }));
    }
    let acc_m = median(acc.clone());
    checks.push(Check::new("1 accuracy", acc_m >= 0.99, format!("test accuracy {:?} (median {acc_m:.4}) >= 0.99 after {steps} steps", acc)));
    let inv = invariants.iter().cloned().fold(0.0, f64::max);
    checks.push(Check::new("2 invariants", inv <= 1e-9, format!("E[f̂ᵀf̂] = diag(Λ) and C⁺C = I on the trained models: worst relative error {inv:.1e} <= 1e-9")));
    let (wi, wh) = (median(width_in.iter().map(|&w| w as f64).collect()), median(width_hidden.iter().map(|&w| w as f64).collect()));
    checks.push(Check::new("3 widths", wh <= (p + 1) as f64 && wi <= (EMBED + 1) as f64, format!("LIB widths: input {width_in:?} <= d+1 = {}, hidden {width_hidden:?} <= p+1 = {}", EMBED + 1, p + 1)));
    let n = |layer, v| &need[&(layer, v)];
    let e = |layer, v| &edges[&(layer, v)];
    checks.push(ratio_check("4 nodes input", "features needed at the input", n(INPUT, Variant::Lib), n(INPUT, Variant::Pca), 0.25, 0.0));
    checks.push(ratio_check("4 nodes hidden", "features needed at the hidden layer", n(HIDDEN_LAYER, Variant::Lib), n(HIDDEN_LAYER, Variant::Pca), 0.6, 0.0));
    checks.push(ratio_check("4 nodes embed", "features needed at the embedding", n(EMBEDDING, Variant::Lib), n(EMBEDDING, Variant::Pca), 1.0, 2.0));
    checks.push(ratio_check("5 edges input→embed", "edges needed input→embed", e(INPUT, Variant::Lib), e(INPUT, Variant::Pca), 0.2, 0.0));
    checks.push(ratio_check("5 edges embed→hidden", "edges needed embed→hidden", e(EMBEDDING, Variant::Lib), e(EMBEDDING, Variant::Pca), 0.6, 0.0));
    checks.push(ratio_check("5 edges hidden→logits", "edges needed hidden→logits", e(HIDDEN_LAYER, Variant::Lib), e(HIDDEN_LAYER, Variant::Pca), 1.1, 0.0));
    // Threshold 6 as an independent PyTorch implementation of the recipe supports it: its own
    // models reach a median purity of 0.77 (2 of 10 seeds >= 0.8), a pair share of 0.90 and a
    // key-frequency share of 0.75, and never 1 (docs/methods/lib.md). LIB must beat PCA in every
    // seed.
    let (lp, pp) = (median(lib_purity.clone()), median(pca_purity.clone()));
    let every_seed = lib_purity.iter().zip(&pca_purity).all(|(l, p)| l > p);
    checks.push(Check::new("6 purity", lp >= 0.7 && every_seed, format!("mean Fourier purity of the top-20 embedding features: LIB {lib_purity:.3?} (median {lp:.3}) >= 0.7 and above PCA {pca_purity:.3?} (median {pp:.3}) in every seed: {every_seed}")));
    let (pm, sm) = (median(paired.clone()), median(subset.clone()));
    checks.push(Check::new("6 pairs", pm >= 0.8, format!("share of the top-20 LIB embedding features with a same-frequency partner among them {paired:.2?} (median {pm:.2}) >= 0.8")));
    checks.push(Check::new("6 frequencies", sm >= 0.75, format!("share of their frequencies among the neurons' key frequencies (top frequency of >= 5% of neurons) {subset:.2?} (median {sm:.2}) >= 0.75")));
    Ok(Outcome { name: format!("LIB model A (modular addition p = {p})"), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
