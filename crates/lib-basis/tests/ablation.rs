//! Node and edge ablation against naive computations.

// Index loops here mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use faer::Mat;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::infer_device;
use glassbox_lib_basis::ablation::{keep_edges, keep_features, schedule};
use glassbox_lib_basis::edges::edges;
use glassbox_lib_basis::network::accuracy;
use glassbox_lib_basis::{build, BasisOptions, Integration, Network, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn setup(variant: Variant) -> (Network, Vec<Mat<f64>>, Vec<usize>, glassbox_lib_basis::Basis) {
    let arch = Architecture::Mlp { dims: vec![6, 12, 9, 4], activation: Activation::Relu, bias: true, embed: None };
    let model = Model::init(arch, 7, &infer_device()).unwrap();
    let net = Network::from_model(&model).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 300;
    let x: Vec<f32> = (0..n * 6).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let acts = net.node_activations(net.fold_input(&x, n));
    // Labels: the model's own predictions, perturbed, so accuracy is neither 0 nor 1.
    let logits = acts.last().unwrap();
    let labels = (0..n)
        .map(|r| {
            let best = (0..4).max_by(|&a, &b| logits[(r, a)].total_cmp(&logits[(r, b)])).unwrap();
            if r % 5 == 0 { (best + 1) % 4 } else { best }
        })
        .collect();
    let basis = build(&net, &acts, &BasisOptions::new(variant)).unwrap();
    (net, acts, labels, basis)
}

#[test]
fn the_schedule_takes_every_k_to_ten_then_growing_steps_to_the_width() {
    assert_eq!(schedule(4), vec![0, 1, 2, 3, 4]);
    let s = schedule(200);
    assert_eq!(&s[..11], &(0..=10).collect::<Vec<_>>()[..]);
    assert_eq!(*s.last().unwrap(), 200);
    assert!(s.windows(2).all(|w| w[0] < w[1]));
    // Step sizes follow 1.05^x (floored; the last is clipped to the width).
    assert!(s[..s.len() - 1].windows(3).skip(10).all(|w| w[2] - w[1] + 1 >= w[1] - w[0]), "{s:?}");
    assert!(s.windows(2).map(|w| w[1] - w[0]).max().unwrap() >= 8, "{s:?}");
}

#[test]
fn keeping_every_neuron_is_the_unablated_model_and_keeping_none_mean_ablates() {
    let (net, acts, labels, basis) = setup(Variant::Neuron);
    let base = accuracy(acts.last().unwrap(), &labels);
    for l in 0..net.sections.len() {
        assert_eq!(keep_features(&net, &basis, l, &acts[l], acts[l].ncols(), &labels), base);
    }
    // PCA with k = 1 keeps only the constant: every sample gets the mean activation.
    let (net, acts, labels, basis) = setup(Variant::Pca);
    for l in 0..net.sections.len() {
        let n = acts[l].nrows();
        let mean = Mat::from_fn(n, acts[l].ncols(), |_, j| (0..n).map(|r| acts[l][(r, j)]).sum::<f64>() / n as f64);
        let naive = accuracy(&net.run_from(l, mean), &labels);
        assert_eq!(keep_features(&net, &basis, l, &acts[l], 1, &labels), naive, "layer {l}");
    }
}

#[test]
fn edge_ablation_agrees_with_naive_reconstructions_at_both_ends() {
    let (net, acts, labels, basis) = setup(Variant::Lib);
    for l in 0..net.sections.len() {
        let e = edges(&net, &basis, l, &acts[l], &Integration::Gradient);
        let (b_in, b_out) = (&basis.layers[l], &basis.layers[l + 1]);
        let total = e.nrows() * (e.ncols() - 1);
        // Every edge kept: the layer's features all present, i.e. keeping every feature.
        let all = keep_edges(&net, &basis, l, &acts[l], &e, total, &labels);
        assert_eq!(all, keep_features(&net, &basis, l, &acts[l], b_in.width(), &labels), "layer {l}");
        // No edge kept: every output feature sees only the constant input feature.
        let f_hat = b_in.features(&acts[l]);
        let only_const = Mat::from_fn(f_hat.nrows(), f_hat.ncols(), |r, j| if j == 0 { f_hat[(r, 0)] } else { 0.0 });
        let out = &net.sections[l].forward(&(&only_const * &b_in.c_plus)) * &b_out.c;
        let naive = accuracy(&net.run_from(l + 1, &out * &b_out.c_plus), &labels);
        assert_eq!(keep_edges(&net, &basis, l, &acts[l], &e, 0, &labels), naive, "layer {l}");
    }
}
