//! Benchmark half of bench/lib_basis.sh: the LIB basis build (forward pass, Gram and Jacobian
//! moments, both eigendecompositions, for every layer) and the edges of every layer pair of an
//! MLP checkpoint on the first N MNIST test images, in f64 with the closed-form Jacobians.
//! Prints one JSON line like bench/lib_basis.py and writes PREFIX.safetensors (lambda.l,
//! edges.l) for the agreement check.
//!
//!     lib_bench CHECKPOINT --out PREFIX [--samples N] [--threads T] [--reps R]

use glassbox_core::checkpoint;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::experiment::median;
use glassbox_core::io::{write_f32, HostTensor};
use glassbox_core::tensor::infer_device;
use glassbox_lib_basis::edges::edges;
use glassbox_lib_basis::{build, BasisOptions, Integration, Network, Variant};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).map(|i| args[i + 1].clone())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(&args[1]);
    let out = PathBuf::from(format!("{}.safetensors", flag(&args, "--out").expect("--out PREFIX")));
    let samples: usize = flag(&args, "--samples").map_or(10_000, |s| s.parse().unwrap());
    let threads: usize = flag(&args, "--threads").map_or(1, |s| s.parse().unwrap());
    let reps: usize = flag(&args, "--reps").map_or(3, |s| s.parse().unwrap());
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    let (model, _) = checkpoint::load(&dir, &infer_device()).expect("checkpoint");
    let net = Network::from_model(&model).expect("an MLP checkpoint");
    let data_dir = std::env::var_os("GLASSBOX_DATA").map(PathBuf::from);
    let test = DataSpec::Mnist.load(data_dir.as_deref()).expect("MNIST (set GLASSBOX_DATA)").test;
    let n = samples.min(test.len());
    let x = net.fold_input(&test.inputs[..n * test.input_dim], n);
    let options = BasisOptions::new(Variant::Lib);
    let run = || {
        let t = Instant::now();
        let acts = net.node_activations(x.clone());
        let basis = build(&net, &acts, &options).unwrap();
        let basis_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let graphs: Vec<_> = (0..net.sections.len()).map(|l| edges(&net, &basis, l, &acts[l], &Integration::Gradient)).collect();
        (basis_s, t.elapsed().as_secs_f64(), basis, graphs)
    };
    run(); // warm-up
    let (mut basis_times, mut edge_times, mut last) = (Vec::new(), Vec::new(), None);
    for _ in 0..reps {
        let (b, e, basis, graphs) = run();
        basis_times.push(b);
        edge_times.push(e);
        last = Some((basis, graphs));
    }
    let (basis, graphs) = last.expect("--reps at least 1");
    let widths: Vec<usize> = basis.layers[..graphs.len()].iter().map(|b| b.width()).collect();
    let line = serde_json::json!({ "impl": "glassbox", "threads": threads, "samples": n, "basis_s": median(basis_times), "edges_s": median(edge_times), "widths": widths });
    println!("{line}");
    let mut tensors = Vec::new();
    for (l, b) in basis.layers[..graphs.len()].iter().enumerate() {
        tensors.push(HostTensor { name: format!("lambda.{l}"), shape: vec![b.lambda.len()], data: b.lambda.iter().map(|&v| v as f32).collect() });
        let e = &graphs[l];
        tensors.push(HostTensor { name: format!("edges.{l}"), shape: vec![e.nrows(), e.ncols()], data: (0..e.nrows()).flat_map(|i| (0..e.ncols()).map(move |j| e[(i, j)] as f32)).collect() });
    }
    write_f32(&out, &tensors, HashMap::new()).unwrap();
}
