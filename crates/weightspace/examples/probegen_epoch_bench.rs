//! Reader training speed: epochs of `train_reader` (spec/probegen.md 2.3-2.5) on MODELS
//! synthetic INRs (spec R1's init; weights only matter for their shape) with 10 random classes,
//! for the comparison with bench/probegen_epoch.py. Every model is in the training split, so no
//! epoch time goes to evaluation. Prints one JSON line with the median of 3 epoch times.
//!
//!     cargo run --release -p glassbox-weightspace --example probegen_epoch_bench -- MODELS PROBES THREADS [probegen|vanilla]

use glassbox_weightspace::probes::{ProbeKind, ProbeSpace};
use glassbox_weightspace::reader::{train_reader, ReaderConfig, Task};
use glassbox_weightspace::targets::InrTargets;
use glassbox_zoo::inr;
use glassbox_zoo::store::Splits;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok()).expect("MODELS PROBES THREADS [KIND]");
    let (models, probes, threads) = (num(0), num(1), num(2));
    let kind = match args.get(3).map(String::as_str).unwrap_or("probegen") {
        "probegen" => ProbeKind::ProbeGen,
        "vanilla" => ProbeKind::Vanilla,
        other => panic!("unknown kind {other}"),
    };
    let params: Vec<Vec<f32>> = (0..models).map(|m| inr::init(m as u64)).collect();
    let task = Task::Classes { labels: (0..models).map(|m| (m * 7919) % 10).collect(), n_classes: 10 };
    let splits = Splits { train: (0..models).collect(), val: Vec::new(), test: Vec::new() };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let times: Vec<f64> = (0..3)
        .map(|seed| {
            let cfg = ReaderConfig::new(kind, probes, 1, seed);
            pool.install(|| train_reader(&InrTargets { params: &params }, &task, &splits, &ProbeSpace::inr(), &[], &cfg)).unwrap().0.seconds
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({ "bench": "probegen_epoch", "impl": "glassbox", "kind": kind.name(), "threads": threads, "models": models, "probes": probes, "seconds_per_epoch": sorted[1] })
    );
}
