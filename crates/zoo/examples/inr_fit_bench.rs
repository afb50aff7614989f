//! Zoo-building throughput: fit N SIREN INRs as `glassbox zoo build` does (one model per rayon
//! task), for the comparison with bench/inr_fit.py. SIDE 8: the first N scikit-learn digits
//! (pixel/16); SIDE 28: the first N MNIST training images (pixel/255). 100 Adam steps at lr
//! 1e-3. Prints one JSON line.
//!
//!     cargo run --release -p glassbox-zoo --example inr_fit_bench -- N SIDE THREADS

use glassbox_zoo::inr::{fit, grid, FitOptions};
use glassbox_zoo::store::FitSummary;
use rayon::prelude::*;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("N SIDE THREADS")).collect();
    let [n, side, threads] = args[..] else { panic!("usage: inr_fit_bench N SIDE THREADS") };
    let data = glassbox_core::data::data_dir(None).unwrap_or_else(|e| panic!("{e}"));
    let set = match side {
        8 => glassbox_core::data::digits::load_digits(&data.join("sklearn-digits/digits.csv.gz")).unwrap(),
        28 => glassbox_core::data::idx::load_mnist_like(&data.join("mnist"), "mnist").unwrap().train,
        _ => panic!("SIDE must be 8 or 28"),
    };
    let images: Vec<Vec<f32>> = (0..n).map(|i| set.input(i).to_vec()).collect();
    let points = grid(side);
    let opts = FitOptions { steps: 100, lr: 1e-3 };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let start = Instant::now();
    let mse: Vec<f32> = pool.install(|| images.par_iter().enumerate().map(|(i, img)| fit(img, &points, i as u64, &opts).1 as f32).collect());
    let seconds = start.elapsed().as_secs_f64();
    let s = FitSummary::of(&mse);
    println!(
        "{}",
        serde_json::json!({ "bench": "inr_fit", "impl": "glassbox", "threads": threads, "n": n, "side": side, "steps": 100, "seconds": seconds, "per_s": n as f64 / seconds, "mean_mse": s.mean, "p90_mse": s.p90 })
    );
}
