//! Reader training speed: epochs of `train_reader` (ProbeGen's recipe) on MODELS synthetic
//! models, for the comparison with bench/probegen_epoch.py. FAMILY `inr` (default): SIREN INRs
//! (the init of ProbeGen's digits-INR reproduction R1) with 10 random classes. FAMILY `cnn`:
//! CNNs like those of the MNIST CNN accuracy zoo, `mnist-cnn-acc` (He-scaled normal weights,
//! every other one tanh) with a random accuracy in [0, 1] to regress, probed by 28×28 images
//! (ProbeGen's transposed-convolution generator). Weights only matter for their shape. Every
//! model is in the training split, so no epoch time goes to evaluation. Prints one JSON line
//! with the median of 3 epoch times.
//!
//!     cargo run --release -p glassbox-weightspace --example probegen_epoch_bench -- MODELS PROBES THREADS [probegen|vanilla] [inr|cnn]

use glassbox_weightspace::probes::{ProbeKind, ProbeSpace};
use glassbox_weightspace::reader::{train_reader, ReaderConfig, Task};
use glassbox_weightspace::targets::{ClassifierTargets, InrTargets, Targets};
use glassbox_zoo::cnn::Cnn;
use glassbox_zoo::inr;
use glassbox_zoo::mlp::Activation;
use glassbox_zoo::store::Splits;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

// As in the `glassbox` binary, whose reader this times.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "MODELS PROBES THREADS [probegen|vanilla] [inr|cnn]";
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok()).expect(usage);
    let (models, probes, threads) = (num(0), num(1), num(2));
    let kind = match args.get(3).map(String::as_str).unwrap_or("probegen") {
        "probegen" => ProbeKind::ProbeGen,
        "vanilla" => ProbeKind::Vanilla,
        other => panic!("unknown kind {other}; {usage}"),
    };
    let family = args.get(4).map(String::as_str).unwrap_or("inr");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let splits = Splits { train: (0..models).collect(), val: Vec::new(), test: Vec::new() };
    let epoch = |train: &(dyn Fn(&ReaderConfig) -> f64 + Sync)| -> f64 {
        let mut times: Vec<f64> = (0..3).map(|seed| pool.install(|| train(&ReaderConfig::new(kind, probes, 1, seed)))).collect();
        times.sort_by(f64::total_cmp);
        times[1]
    };
    let seconds = match family {
        "inr" => {
            let params: Vec<Vec<f32>> = (0..models).map(|m| inr::init(m as u64)).collect();
            let task = Task::Classes { labels: (0..models).map(|m| (m * 7919) % 10).collect(), n_classes: 10 };
            epoch(&|cfg| seconds(&InrTargets { params: &params }, &task, &splits, &ProbeSpace::inr(), cfg))
        }
        "cnn" => {
            let net = Cnn::mnist();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let params: Vec<Vec<f32>> = (0..models)
                .map(|_| {
                    let mut p = vec![0f32; net.n_params()];
                    for (range, fan_in) in net.weights() {
                        let std = (2.0 / fan_in as f32).sqrt();
                        p[range].iter_mut().for_each(|w| *w = std * rng.sample::<f32, _>(StandardNormal));
                    }
                    p
                })
                .collect();
            let activations = (0..models).map(|m| if m % 2 == 0 { Activation::Relu } else { Activation::Tanh }).collect();
            let task = Task::Regression { values: (0..models).map(|_| rng.random::<f32>()).collect() };
            let targets = ClassifierTargets { net, params: &params, activations };
            epoch(&|cfg| seconds(&targets, &task, &splits, &ProbeSpace::image28(), cfg))
        }
        other => panic!("unknown family {other}; {usage}"),
    };
    println!(
        "{}",
        serde_json::json!({ "bench": "probegen_epoch", "impl": "glassbox", "family": family, "kind": kind.name(), "threads": threads, "models": models, "probes": probes, "seconds_per_epoch": seconds })
    );
}

fn seconds<T: Targets>(targets: &T, task: &Task, splits: &Splits, space: &ProbeSpace, cfg: &ReaderConfig) -> f64 {
    train_reader(targets, task, splits, space, &[], cfg).unwrap().0.seconds
}
