//! Exact maths of LIB (the basis properties, the closed-form Jacobians and edges): invariants
//! to 1e-9 relative in f64, and the closed forms against brute-force per-sample Jacobians
//! (central finite differences).

// Index loops here mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use faer::Mat;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};
use glassbox_lib_basis::edges::edges;
use glassbox_lib_basis::linalg::relative_error;
use glassbox_lib_basis::network::{Gate, Input, Module, Section};
use glassbox_lib_basis::{build, BasisOptions, Integration, Network, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn mlp(dims: &[usize], activation: Activation, embed: Option<usize>, seed: u64) -> Model {
    let arch = Architecture::Mlp { dims: dims.to_vec(), activation, bias: true, embed };
    Model::init(arch, seed, &infer_device()).unwrap()
}

fn bilinear(seed: u64) -> Model {
    let arch = Architecture::Bilinear { d_in: 5, d_hidden: 6, d_out: 3, bias: true, embed: true };
    Model::init(arch, seed, &infer_device()).unwrap()
}

fn inputs(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn acts(net: &Network, n: usize, seed: u64) -> Vec<Mat<f64>> {
    let d = net.sections[0].in_width() - 1;
    net.node_activations(net.fold_input(&inputs(n, d, seed), n))
}

fn models() -> Vec<(&'static str, Model)> {
    vec![
        ("relu mlp", mlp(&[6, 9, 8, 3], Activation::Relu, None, 1)),
        ("gelu mlp", mlp(&[6, 9, 8, 3], Activation::Gelu, None, 2)),
        ("embedded relu mlp", mlp(&[7, 10, 4], Activation::Relu, Some(5), 3)),
        ("bilinear", bilinear(4)),
    ]
}

/// Central differences of g at each sample row of f, one column of the Jacobian per coordinate.
fn fd_jacobians(f: &Mat<f64>, g: impl Fn(&Mat<f64>) -> Mat<f64>) -> Vec<Mat<f64>> {
    let h = 1e-7;
    (0..f.nrows())
        .map(|r| {
            let row = Mat::from_fn(1, f.ncols(), |_, j| f[(r, j)]);
            let cols: Vec<Mat<f64>> = (0..f.ncols())
                .map(|j| {
                    let mut up = row.clone();
                    let mut down = row.clone();
                    up[(0, j)] += h;
                    down[(0, j)] -= h;
                    (g(&up) - g(&down)) * faer::Scale(0.5 / h)
                })
                .collect();
            Mat::from_fn(cols[0].ncols(), f.ncols(), |i, j| cols[j][(0, i)])
        })
        .collect()
}

#[test]
fn network_forward_equals_the_burn_model() {
    for (what, model) in models() {
        let net = Network::from_model(&model).unwrap();
        let d = model.arch.input_dim();
        let x = inputs(20, d, 9);
        let ours = net.node_activations(net.fold_input(&x, 20)).pop().unwrap();
        let theirs = to_vec(model.forward(from_vec(x, [20, d], &infer_device())));
        let theirs = Mat::from_fn(20, ours.ncols(), |r, c| theirs[r * ours.ncols() + c] as f64);
        assert!(relative_error(&ours, &theirs) < 1e-5, "{what}: {}", relative_error(&ours, &theirs));
    }
}

#[test]
fn hidden_node_layers_keep_their_constant_one() {
    for (what, model) in models() {
        let net = Network::from_model(&model).unwrap();
        let a = acts(&net, 30, 5);
        for f in &a[..a.len() - 1] {
            assert!((0..f.nrows()).all(|r| (f[(r, f.ncols() - 1)] - 1.0).abs() < 1e-12), "{what}");
        }
    }
}

#[test]
fn lib_features_have_second_moments_lambda_and_c_plus_inverts_c() {
    for (what, model) in models() {
        let net = Network::from_model(&model).unwrap();
        let a = acts(&net, 300, 6);
        let basis = build(&net, &a, &BasisOptions::new(Variant::Lib)).unwrap();
        for (l, b) in basis.layers[..a.len() - 1].iter().enumerate() {
            let f_hat = b.features(&a[l]);
            let moment = (f_hat.transpose() * &f_hat) * faer::Scale(1.0 / a[l].nrows() as f64);
            let diag = Mat::from_fn(b.width(), b.width(), |i, j| if i == j { b.lambda[i] } else { 0.0 });
            let err = relative_error(&moment, &diag);
            assert!(err < 1e-9, "{what} layer {l}: E[f̂ᵀf̂] vs diag(Λ) {err:e}");
            let eye = Mat::<f64>::identity(b.width(), b.width());
            let err = relative_error(&(&b.c_plus * &b.c), &eye);
            assert!(err < 1e-9, "{what} layer {l}: C⁺C vs I {err:e}");
        }
    }
}

#[test]
fn centred_bases_put_a_constant_first_and_zero_mean_features_after() {
    for variant in [Variant::Lib, Variant::Pca] {
        for (what, model) in models() {
            let net = Network::from_model(&model).unwrap();
            let a = acts(&net, 200, 7);
            let basis = build(&net, &a, &BasisOptions::new(variant)).unwrap();
            for (l, b) in basis.layers[..a.len() - 1].iter().enumerate() {
                assert!(b.const_first, "{what} {variant:?} layer {l}");
                let f_hat = b.features(&a[l]);
                let n = f_hat.nrows();
                let scale = (0..b.width()).map(|j| (0..n).map(|r| f_hat[(r, j)].abs()).fold(0.0, f64::max)).fold(0.0, f64::max);
                for r in 0..n {
                    assert!((f_hat[(r, 0)] - f_hat[(0, 0)]).abs() < 1e-12 * scale, "{what} {variant:?} layer {l}: feature 0 varies");
                }
                for j in 1..b.width() {
                    let mean = (0..n).map(|r| f_hat[(r, j)]).sum::<f64>() / n as f64;
                    assert!(mean.abs() < 1e-10 * scale, "{what} {variant:?} layer {l}: feature {j} has mean {mean}");
                }
                // C⁺ row 0 is ∝ the mean vector; no other row touches the constant coordinate.
                let d = a[l].ncols();
                let mu: Vec<f64> = (0..d).map(|j| (0..n).map(|r| a[l][(r, j)]).sum::<f64>() / n as f64).collect();
                let ratio = b.c_plus[(0, d - 1)] / mu[d - 1];
                for j in 0..d {
                    assert!((b.c_plus[(0, j)] - ratio * mu[j]).abs() < 1e-10 * ratio.abs(), "{what} {variant:?} layer {l}: C⁺ row 0");
                }
                for i in 1..b.width() {
                    assert!(b.c_plus[(i, d - 1)].abs() < 1e-10, "{what} {variant:?} layer {l}: C⁺ row {i} touches the bias");
                }
            }
        }
    }
}

#[test]
fn lib_widths_are_bounded_by_the_next_layers_jacobian_rank() {
    // 6-9-8-3: the last hidden layer feeds 3 logits, so at most 3 + 1 (constant) features; an
    // embedding of width 5 feeding the hidden layer keeps at most 5 + 1.
    let model = mlp(&[6, 9, 8, 3], Activation::Relu, None, 1);
    let net = Network::from_model(&model).unwrap();
    let basis = build(&net, &acts(&net, 300, 1), &BasisOptions::new(Variant::Lib)).unwrap();
    assert!(basis.layers[2].width() <= 4, "{}", basis.layers[2].width());
    let model = mlp(&[12, 10, 4], Activation::Relu, Some(5), 3);
    let net = Network::from_model(&model).unwrap();
    let basis = build(&net, &acts(&net, 300, 1), &BasisOptions::new(Variant::Lib)).unwrap();
    assert!(basis.layers[0].width() <= 6, "{}", basis.layers[0].width());
}

#[test]
fn closed_form_jacobian_moment_equals_brute_force() {
    for (what, model) in models() {
        let net = Network::from_model(&model).unwrap();
        let a = acts(&net, 40, 8);
        let basis = build(&net, &a, &BasisOptions::new(Variant::Lib)).unwrap();
        for l in 0..net.sections.len() {
            let c_next = &basis.layers[l + 1].c;
            let closed = glassbox_lib_basis::basis::jacobian_moment(&net, l, &a[l], c_next, &Integration::Gradient);
            let js = fd_jacobians(&a[l], |f| &net.sections[l].forward(f) * c_next);
            let mut brute = Mat::<f64>::zeros(a[l].ncols(), a[l].ncols());
            for j in &js {
                brute += j.transpose() * j;
            }
            let brute = brute * faer::Scale(1.0 / js.len() as f64);
            let err = relative_error(&closed, &brute);
            assert!(err < 1e-7, "{what} section {l}: M' closed form vs finite differences {err:e}");
        }
    }
}

#[test]
fn closed_form_edges_equal_brute_force() {
    for (what, model) in models() {
        let net = Network::from_model(&model).unwrap();
        let a = acts(&net, 40, 9);
        let basis = build(&net, &a, &BasisOptions::new(Variant::Lib)).unwrap();
        for l in 0..net.sections.len() {
            let (b_in, b_out) = (&basis.layers[l], &basis.layers[l + 1]);
            let ours = edges(&net, &basis, l, &a[l], &Integration::Gradient);
            let f_hat = b_in.features(&a[l]);
            let js = fd_jacobians(&f_hat, |g| &net.sections[l].forward(&(g * &b_in.c_plus)) * &b_out.c);
            let brute = Mat::from_fn(b_out.width(), b_in.width(), |i, j| {
                js.iter().enumerate().map(|(r, jac)| (jac[(i, j)] * f_hat[(r, j)]).powi(2)).sum::<f64>() / js.len() as f64
            });
            let err = relative_error(&ours, &brute);
            assert!(err < 1e-7, "{what} section {l}: edges vs finite differences {err:e}");
        }
    }
}

#[test]
fn a_linear_network_has_diagonal_lib_edges() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut layer = |d_in: usize, d_out: usize, constant: bool| {
        let cols = d_out + constant as usize;
        let weight = Mat::from_fn(d_in + 1, cols, |j, h| match (j < d_in, h < d_out) {
            (_, true) => rng.random_range(-1.0..1.0),
            (true, false) => 0.0,
            (false, false) => 1.0,
        });
        Module::Dense(Section { name: "linear".into(), weight, gate: Gate::Identity })
    };
    let net = Network { sections: vec![layer(6, 5, true), layer(5, 4, true), layer(4, 3, false)], node_names: vec!["input".into(), "a".into(), "b".into(), "logits".into()], input: Input::Features };
    let a = acts(&net, 400, 2);
    let basis = build(&net, &a, &BasisOptions::new(Variant::Lib)).unwrap();
    for l in 0..2 {
        let e = edges(&net, &basis, l, &a[l], &Integration::Gradient);
        let max = (0..e.nrows()).flat_map(|i| (0..e.ncols()).map(move |j| (i, j))).map(|ij| e[ij]).fold(0.0, f64::max);
        // Rows are output features, columns input features; the constants are paired too.
        for i in 0..e.nrows() {
            for j in 0..e.ncols() {
                if i != j {
                    assert!(e[(i, j)] < 1e-9 * max, "layer {l}: off-diagonal edge ({i}, {j}) = {:e} of max {max:e}", e[(i, j)]);
                }
            }
        }
    }
}

#[test]
fn edges_of_inner_layers_do_not_depend_on_rotating_the_logits() {
    for (what, model) in models() {
        let net = Network::from_model(&model).unwrap();
        let a = acts(&net, 200, 4);
        let plain = build(&net, &a, &BasisOptions::new(Variant::Lib)).unwrap();
        let rotated = build(&net, &a, &BasisOptions { rotate_final: true, ..BasisOptions::new(Variant::Lib) }).unwrap();
        for l in 0..net.sections.len() - 1 {
            let e0 = edges(&net, &plain, l, &a[l], &Integration::Gradient);
            let e1 = edges(&net, &rotated, l, &a[l], &Integration::Gradient);
            assert!(relative_error(&e1, &e0) < 1e-6, "{what} layer {l}: {:e}", relative_error(&e1, &e0));
        }
    }
}

#[test]
fn lib_is_invariant_to_an_invertible_reparametrisation_of_the_embedding() {
    // e' = A e with layers.0 weight W A⁻¹ computes the same function; the LIB features of the
    // embedding (and Λ) must not change, up to each feature's sign.
    let model = mlp(&[7, 10, 4], Activation::Relu, Some(3), 11);
    let mut twisted = model.clone();
    let a_mat = [[2.0f32, 0.5, 0.0], [0.0, 1.0, -1.0], [0.3, 0.0, 0.7]];
    let det = a_mat[0][0] * (a_mat[1][1] * a_mat[2][2] - a_mat[1][2] * a_mat[2][1]) - a_mat[0][1] * (a_mat[1][0] * a_mat[2][2] - a_mat[1][2] * a_mat[2][0]) + a_mat[0][2] * (a_mat[1][0] * a_mat[2][1] - a_mat[1][1] * a_mat[2][0]);
    let inv = |i: usize, j: usize| {
        let (r0, r1) = ([0, 1, 2].into_iter().filter(|&r| r != j).collect::<Vec<_>>(), [0, 1, 2].into_iter().filter(|&c| c != i).collect::<Vec<_>>());
        let minor = a_mat[r0[0]][r1[0]] * a_mat[r0[1]][r1[1]] - a_mat[r0[0]][r1[1]] * a_mat[r0[1]][r1[0]];
        if (i + j).is_multiple_of(2) { minor / det } else { -minor / det }
    };
    let mut host = model.params.to_host();
    let e = model.params.index("embed.weight").unwrap();
    let w = model.params.index("layers.0.weight").unwrap();
    let old_e = host[e].clone();
    for r in 0..3 {
        for c in 0..7 {
            host[e][r * 7 + c] = (0..3).map(|k| a_mat[r][k] * old_e[k * 7 + c]).sum();
        }
    }
    let old_w = host[w].clone();
    for r in 0..10 {
        for c in 0..3 {
            host[w][r * 3 + c] = (0..3).map(|k| old_w[r * 3 + k] * inv(k, c)).sum();
        }
    }
    twisted.params = glassbox_core::model::Params::from_host(model.params.specs.clone(), host, &infer_device());
    let (net0, net1) = (Network::from_model(&model).unwrap(), Network::from_model(&twisted).unwrap());
    let (a0, a1) = (acts(&net0, 300, 3), acts(&net1, 300, 3));
    let b0 = build(&net0, &a0, &BasisOptions::new(Variant::Lib)).unwrap();
    let b1 = build(&net1, &a1, &BasisOptions::new(Variant::Lib)).unwrap();
    let (f0, f1) = (b0.layers[1].features(&a0[1]), b1.layers[1].features(&a1[1]));
    assert_eq!(f0.ncols(), f1.ncols());
    for j in 0..f0.ncols() {
        let sign = if (0..f0.nrows()).map(|r| f0[(r, j)] * f1[(r, j)]).sum::<f64>() < 0.0 { -1.0 } else { 1.0 };
        let col0 = Mat::from_fn(f0.nrows(), 1, |r, _| f0[(r, j)]);
        let col1 = Mat::from_fn(f0.nrows(), 1, |r, _| sign * f1[(r, j)]);
        // The weights pass through f32, so agreement is to f32 precision, not 1e-9.
        assert!(relative_error(&col1, &col0) < 1e-4, "feature {j}: {:e}", relative_error(&col1, &col0));
    }
}

#[test]
fn integration_rules_have_unit_weight_and_agree_on_a_folded_relu_net() {
    for n in [0, 1, 4, 10] {
        let total: f64 = Integration::Trapezoid { intervals: n }.points().iter().map(|p| p.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
    // Folded ReLU sections are positively homogeneous: the gradient is constant along the ray.
    let model = mlp(&[6, 9, 8, 3], Activation::Relu, None, 1);
    let net = Network::from_model(&model).unwrap();
    let a = acts(&net, 100, 3);
    let basis = build(&net, &a, &BasisOptions::new(Variant::Lib)).unwrap();
    let trap = build(&net, &a, &BasisOptions { integration: Integration::Trapezoid { intervals: 5 }, ..BasisOptions::new(Variant::Lib) }).unwrap();
    for l in 0..net.sections.len() {
        assert!(relative_error(&trap.layers[l].c, &basis.layers[l].c) < 1e-6 || trap.layers[l].lambda.iter().zip(&basis.layers[l].lambda).all(|(x, y)| (x - y).abs() < 1e-9 * y.abs().max(1.0)));
        let e0 = edges(&net, &basis, l, &a[l], &Integration::Gradient);
        let e1 = edges(&net, &basis, l, &a[l], &Integration::Trapezoid { intervals: 5 });
        assert!(relative_error(&e1, &e0) < 1e-9, "section {l}");
    }
}

#[test]
fn pca_features_are_uncorrelated_with_the_gram_eigenvalues_as_variances() {
    let model = mlp(&[6, 9, 8, 3], Activation::Gelu, None, 5);
    let net = Network::from_model(&model).unwrap();
    let a = acts(&net, 300, 5);
    let basis = build(&net, &a, &BasisOptions::new(Variant::Pca)).unwrap();
    for l in 0..net.sections.len() {
        let b = &basis.layers[l];
        let f_hat = b.features(&a[l]);
        let centred = Mat::from_fn(f_hat.nrows(), b.width(), |r, j| if j == 0 { f_hat[(r, 0)] } else { f_hat[(r, j)] });
        let moment = (centred.transpose() * &centred) * faer::Scale(1.0 / f_hat.nrows() as f64);
        let diag = Mat::from_fn(b.width(), b.width(), |i, j| if i == j { b.lambda[i] } else { 0.0 });
        assert!(relative_error(&moment, &diag) < 1e-9, "layer {l}");
        assert!(relative_error(&(&b.c_plus * &b.c), &Mat::identity(b.width(), b.width())) < 1e-9);
    }
}

#[test]
fn fourier_purity_finds_single_frequencies() {
    use glassbox_lib_basis::fourier::purity;
    let p = 13;
    let tau = 2.0 * std::f64::consts::PI / p as f64;
    let sum = Mat::from_fn(p, p, |a, b| (tau * 3.0 * (a + b) as f64).cos());
    let separate = Mat::from_fn(p, p, |a, b| (tau * 5.0 * a as f64).cos() + (tau * 5.0 * b as f64).sin() + 2.0);
    assert_eq!(purity(&sum).1, 3);
    assert!((purity(&sum).0 - 1.0).abs() < 1e-12);
    assert_eq!(purity(&separate).1, 5);
    assert!((purity(&separate).0 - 1.0).abs() < 1e-12);
    // Two equal-power frequencies: half the power at either.
    let mixed = Mat::from_fn(p, p, |a, b| (tau * 2.0 * a as f64).cos() + (tau * 4.0 * b as f64).cos());
    assert!((purity(&mixed).0 - 0.5).abs() < 1e-12);
}
