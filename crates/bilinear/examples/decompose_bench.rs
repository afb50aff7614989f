//! Benchmark: decompose all 10 classes of a d_h 512 MNIST bilinear model (form B_c, symmetric
//! eigendecomposition in f64, pixel pull-back E^T v) and compute the truncation curve on the
//! 10k test images. bench/bilinear_decompose.py does the same in numpy and PyTorch from the
//! weights and inputs this program writes; bench/bilinear_decompose.sh runs both.
//!
//! cargo run --release -p glassbox-bilinear --example decompose_bench -- THREADS OUT.safetensors [CHECKPOINT]
//! Without a checkpoint, random weights of the same shapes are used (the cost does not depend
//! on the values). Test inputs come from $GLASSBOX_DATA/mnist. Prints one JSON line.

use faer::Mat;
use glassbox_bilinear::decompose::decompose;
use glassbox_bilinear::load::from_checkpoint;
use glassbox_bilinear::{BilinearLayer, BilinearModel};
use glassbox_core::data;
use glassbox_core::data::Targets;
use glassbox_core::io::{write_f32, HostTensor};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KS: [usize; 12] = [0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30];
const REPEATS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn host(name: &str, m: &Mat<f64>) -> HostTensor {
    HostTensor {
        name: name.into(),
        shape: vec![m.nrows(), m.ncols()],
        data: (0..m.nrows()).flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32)).collect(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: decompose_bench THREADS OUT.safetensors [CHECKPOINT]";
    let threads: usize = args.first().expect(usage).parse().expect(usage);
    let out = std::path::PathBuf::from(args.get(1).expect(usage));
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("first pool");
    let model = match args.get(2) {
        Some(dir) => from_checkpoint(std::path::Path::new(dir)).expect("a bilinear checkpoint").0,
        None => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let mut m = |r: usize, c: usize| {
                let b = 1.0 / (c as f64).sqrt();
                Mat::from_fn(r, c, |_, _| rng.random_range(-b..b))
            };
            let embed = m(512, 784);
            let layer = BilinearLayer { w: m(512, 512), v: m(512, 512), p: m(10, 512), b1: None, b2: None };
            BilinearModel { embed: Some(embed), layer }
        }
    };
    let test = data::load_named("mnist", None, 0).expect("MNIST under $GLASSBOX_DATA").test;
    let Targets::Classes { labels, .. } = &test.targets else { unreachable!() };
    let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let x = Mat::from_fn(test.len(), 784, |r, j| test.input(r)[j] as f64);
    // Inputs for the reference: the same weights and images, f32 (both sides compute in f64).
    let e = model.embed.clone().expect("image model");
    let tensors = vec![host("E", &e), host("W", &model.layer.w), host("V", &model.layer.v), host("U", &model.layer.p), host("X", &x)];
    let mut tensors = tensors;
    tensors.push(HostTensor { name: "labels".into(), shape: vec![labels.len()], data: labels.iter().map(|&l| l as f32).collect() });
    write_f32(&out, &tensors, HashMap::new()).expect("writable output");
    // Round the weights through f32 exactly as the reference will read them.
    let r32 = |m: &Mat<f64>| Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f32 as f64);
    let model = BilinearModel {
        embed: Some(r32(&e)),
        layer: BilinearLayer { w: r32(&model.layer.w), v: r32(&model.layer.v), p: r32(&model.layer.p), b1: None, b2: None },
    };
    let (mut t_dec, mut t_curve) = (Vec::new(), Vec::new());
    let mut curve = Vec::new();
    for _ in 0..REPEATS {
        let t0 = Instant::now();
        let dec = decompose(&model).expect("finite weights");
        t_dec.push(t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        curve = dec.truncation_curve(&x, &labels, &KS);
        t_curve.push(t1.elapsed().as_secs_f64());
    }
    println!(
        "{}",
        serde_json::json!({
            "impl": "glassbox", "threads": threads, "decompose_s": median(t_dec), "truncation_curve_s": median(t_curve),
            "curve": curve.iter().map(|c| c.1).collect::<Vec<_>>(),
        })
    );
}
