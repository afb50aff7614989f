//! LIB on a one-layer transformer: the folded network against the trained model's forward pass,
//! the per-sample Jacobians of attention and of the residual MLP against central finite
//! differences, and the basis invariants (E[f̂ᵀf̂] = diag(Λ), C⁺C = I) to 1e-9 relative.

// Index loops here mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use faer::Mat;
use glassbox_core::model::{Architecture, Model, Params, TransformerConfig};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};
use glassbox_lib_basis::basis::jacobian_moment;
use glassbox_lib_basis::edges::edges;
use glassbox_lib_basis::linalg::relative_error;
use glassbox_lib_basis::transformer::{finite_difference_jacobians, sample_jacobians};
use glassbox_lib_basis::{build, BasisOptions, Integration, Network, Variant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 9;
const CTX: usize = 3;

/// A small random one-layer transformer with non-zero MLP biases.
fn model(d_mlp: usize, seed: u64) -> Model {
    let config = TransformerConfig { n_layers: 1, d_model: 10, n_heads: 3, d_head: 4, d_mlp, d_vocab: VOCAB, d_vocab_out: VOCAB, n_ctx: CTX, ..TransformerConfig::modular_addition(VOCAB - 1) };
    let arch = Architecture::Transformer(config);
    let init = Model::init(arch.clone(), seed, &infer_device()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    let host = init.params.to_host().into_iter().map(|v| v.into_iter().map(|x| x + rng.random_range(-0.3f32..0.3)).collect()).collect();
    Model { arch, params: Params::from_host(init.params.specs.clone(), host, &infer_device()) }
}

fn tokens(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * CTX).map(|_| rng.random_range(0..VOCAB) as f32).collect()
}

#[test]
fn the_folded_network_computes_the_models_logits() {
    for d_mlp in [0, 16] {
        let model = model(d_mlp, 1);
        let net = Network::from_model(&model).unwrap();
        let x = tokens(50, 2);
        let logits = net.run_from(0, net.fold_input(&x, 50));
        let want = to_vec(model.forward(from_vec(x, [50, CTX], &infer_device())));
        let err = (0..50 * VOCAB).map(|i| (logits[(i / VOCAB, i % VOCAB)] - want[i] as f64).abs()).fold(0.0, f64::max);
        assert!(err < 1e-4, "d_mlp {d_mlp}: folded f64 network vs f32 model differ by {err}");
        assert_eq!(net.node_names.len(), if d_mlp > 0 { 4 } else { 3 });
    }
}

#[test]
fn attention_and_mlp_jacobians_equal_finite_differences() {
    let model = model(16, 3);
    let net = Network::from_model(&model).unwrap();
    let n = 12;
    let acts = net.node_activations(net.fold_input(&tokens(n, 4), n));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for l in 0..2 {
        let (module, f) = (&net.sections[l], &acts[l]);
        let c = Mat::from_fn(f.ncols(), 6, |_, _| rng.random_range(-1.0..1.0));
        let p = module.positions_in();
        // Brute-force E[JᵀJ] from the finite-difference Jacobians, against the closed form.
        let mut brute = Mat::<f64>::zeros(f.ncols(), f.ncols());
        for r in 0..n {
            let x = f.subrows(r * p, p).to_owned();
            let fd = finite_difference_jacobians(module, &x, &c, 1e-6);
            let exact = sample_jacobians(module, &x, &c);
            for (s, (e, want)) in exact.iter().zip(&fd).enumerate() {
                let err = relative_error(e, want);
                assert!(err < 1e-6, "section {l}, sample {r}, position {s}: Jacobian vs finite differences {err:e}");
                brute += want * want.transpose();
            }
        }
        let brute = brute * faer::Scale(1.0 / f.nrows() as f64);
        let moment = jacobian_moment(&net, l, f, &c, &Integration::Gradient);
        let err = relative_error(&moment, &brute);
        assert!(err < 1e-6, "section {l}: M' vs finite differences {err:e}");
    }
}

#[test]
fn lib_invariants_hold_on_a_transformer() {
    let model = model(16, 6);
    let net = Network::from_model(&model).unwrap();
    let n = 300;
    let acts = net.node_activations(net.fold_input(&tokens(n, 7), n));
    let basis = build(&net, &acts, &BasisOptions::new(Variant::Lib)).unwrap();
    for (l, b) in basis.layers[..acts.len() - 1].iter().enumerate() {
        let f_hat = b.features(&acts[l]);
        // Positions count as samples: the first node layer has 3 rows per sample.
        let moment = (f_hat.transpose() * &f_hat) * faer::Scale(1.0 / f_hat.nrows() as f64);
        let diag = Mat::from_fn(b.width(), b.width(), |i, j| if i == j { b.lambda[i] } else { 0.0 });
        let err = relative_error(&moment, &diag);
        assert!(err < 1e-9, "{}: E[f̂ᵀf̂] vs diag(Λ) {err:e}", b.name);
        let err = relative_error(&(&b.c_plus * &b.c), &Mat::identity(b.width(), b.width()));
        assert!(err < 1e-9, "{}: C⁺C vs I {err:e}", b.name);
        assert!(b.const_first, "{}: the constant feature comes first", b.name);
        assert!((1..b.width()).all(|j| (0..f_hat.nrows()).map(|r| f_hat[(r, j)]).sum::<f64>().abs() / (f_hat.nrows() as f64) < 1e-9 * b.lambda[j].sqrt().max(1.0)));
    }
    assert_eq!(acts[0].nrows(), n * CTX);
}

#[test]
fn transformer_edges_equal_finite_differences_in_feature_coordinates() {
    let model = model(16, 8);
    let net = Network::from_model(&model).unwrap();
    let n = 10;
    let acts = net.node_activations(net.fold_input(&tokens(n, 9), n));
    let basis = build(&net, &acts, &BasisOptions::new(Variant::Lib)).unwrap();
    for l in 0..2 {
        let (b_in, b_out) = (&basis.layers[l], &basis.layers[l + 1]);
        let ours = edges(&net, &basis, l, &acts[l], &Integration::Gradient);
        let f_hat = b_in.features(&acts[l]);
        let p = net.sections[l].positions_in();
        // The module in feature coordinates: f̂ ↦ section(f̂ C⁺) C_out.
        let mut brute = Mat::<f64>::zeros(b_out.width(), b_in.width());
        for r in 0..n {
            let g = f_hat.subrows(r * p, p).to_owned();
            let h = 1e-6;
            let mut a = Mat::<f64>::zeros(b_out.width(), b_in.width());
            for s in 0..p {
                for j in 0..b_in.width() {
                    let (mut up, mut down) = (g.clone(), g.clone());
                    up[(s, j)] += h;
                    down[(s, j)] -= h;
                    let run = |x: &Mat<f64>| &net.sections[l].forward(&(x * &b_in.c_plus)) * &b_out.c;
                    let d = (run(&up) - run(&down)) * faer::Scale(0.5 / h);
                    for i in 0..b_out.width() {
                        a[(i, j)] += d[(0, i)] * g[(s, j)];
                    }
                }
            }
            for i in 0..b_out.width() {
                for j in 0..b_in.width() {
                    brute[(i, j)] += a[(i, j)].powi(2) / f_hat.nrows() as f64;
                }
            }
        }
        let err = relative_error(&ours, &brute);
        assert!(err < 1e-6, "section {l}: edges vs finite differences {err:e}");
    }
}
