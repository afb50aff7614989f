//! ProbeX training speed: one epoch of `fit` (the ProbeX paper's setting: BCE over 100
//! classes, Adam 1e-3 with L2 1e-5, batches of 128, last partial batch kept) of a ProbeX with
//! r_U = r_V = r_T = 128 on MODELS synthetic SIDE × SIDE layers (entries N(0, 0.02²); only the
//! shape matters), each model with a random 50-of-100 multi-hot target, for the comparison with
//! bench/probex_epoch.py. Every model is in the training split and the validation split is
//! empty, so no epoch time goes to evaluation. One warm-up fit of one epoch, then three fits of
//! one epoch (different seeds); prints one JSON line with the median of their wall times.
//!
//!     cargo run --release -p glassbox-weightspace --example probex_epoch_bench -- MODELS SIDE THREADS

use glassbox_weightspace::fit::{fit, FitConfig};
use glassbox_weightspace::layers::{LayerSet, MultiHot};
use glassbox_weightspace::probex::{Probex, Ranks};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;
use rayon::prelude::*;

const RANK: usize = 128;
const CLASSES: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok()).expect("MODELS SIDE THREADS");
    let (models, side, threads) = (num(0), num(1), num(2));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let normal = Normal::new(0.0f32, 0.02).unwrap();
    let mats: Vec<Vec<f32>> = pool.install(|| {
        (0..models)
            .into_par_iter()
            .map(|m| {
                let mut rng = ChaCha8Rng::seed_from_u64(m as u64);
                (0..side * side).map(|_| rng.sample(normal)).collect()
            })
            .collect()
    });
    let data = LayerSet::dense("synthetic", side, side, mats).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0x7A7);
    let rows = (0..models)
        .map(|_| {
            let mut classes: Vec<usize> = (0..CLASSES).collect();
            classes.shuffle(&mut rng);
            let mut row = vec![0f32; CLASSES];
            classes[..CLASSES / 2].iter().for_each(|&c| row[c] = 1.0);
            row
        })
        .collect();
    let targets = MultiHot { classes: (0..CLASSES).map(|c| format!("class{c}")).collect(), rows };
    let train: Vec<usize> = (0..models).collect();
    let ranks = Ranks { probes: RANK, proj: RANK, rep: RANK };
    let epoch = |seed: u64| {
        let expert = Probex::new(side, side, CLASSES, ranks, true, seed);
        let cfg = FitConfig { lr: 1e-3, l2: 1e-5, batch: 128, epochs: 1, val_every: 1_000_000, seed };
        pool.install(|| fit(expert, &data, &targets, &train, &[], &cfg, |_, _| {})).seconds
    };
    epoch(0);
    let mut times: Vec<f64> = (1..=3).map(epoch).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({ "bench": "probex_epoch", "impl": "glassbox", "threads": threads, "models": models, "side": side, "rank": RANK, "seconds_per_epoch": times[1] })
    );
}
