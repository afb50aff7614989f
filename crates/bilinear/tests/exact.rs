//! Exact-math tests of the bilinear-MLP identities (tensor form, eigen identity, bias trick,
//! truncation, HOSVD, pinv keys, gradients), in f64 to 1e-10 unless stated.

// Index loops here mirror the formulas they check.
#![allow(clippy::needless_range_loop)]

use faer::Mat;
use glassbox_bilinear::decompose::{decompose, model_logits};
use glassbox_bilinear::eigen::{effective_count, eigh, lanczos_top_k};
use glassbox_bilinear::hosvd::{gram, hosvd};
use glassbox_bilinear::interaction::{bias_parts, chain_two, residual_fold, symmetrise, unit};
use glassbox_bilinear::{BilinearLayer, BilinearModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f64 = 1e-10;

fn rand_mat(rng: &mut ChaCha8Rng, r: usize, c: usize) -> Mat<f64> {
    Mat::from_fn(r, c, |_, _| rng.random::<f64>() * 2.0 - 1.0)
}

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect()
}

fn layer(rng: &mut ChaCha8Rng, d: usize, h: usize, o: usize, bias: bool) -> BilinearLayer {
    BilinearLayer {
        w: rand_mat(rng, h, d),
        v: rand_mat(rng, h, d),
        p: rand_mat(rng, o, h),
        b1: bias.then(|| rand_vec(rng, h)),
        b2: bias.then(|| rand_vec(rng, h)),
    }
}

/// (d, h, o): a case with h < d and one with h > d.
const SHAPES: [(usize, usize, usize); 2] = [(7, 5, 3), (4, 9, 3)];

fn quad(q: &Mat<f64>, x: &[f64]) -> f64 {
    (0..x.len()).map(|i| (0..x.len()).map(|j| x[i] * q[(i, j)] * x[j]).sum::<f64>()).sum()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn max_diff(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
    (0..a.nrows()).flat_map(|i| (0..a.ncols()).map(move |j| (i, j))).map(|(i, j)| (a[(i, j)] - b[(i, j)]).abs()).fold(0.0, f64::max)
}

/// Naive B_c = Σ_h P_ch w_h v_h^T, unsymmetrised, by loops.
fn naive_tensor(l: &BilinearLayer) -> Vec<Mat<f64>> {
    (0..l.d_out())
        .map(|c| Mat::from_fn(l.d_in(), l.d_in(), |i, j| (0..l.d_hidden()).map(|h| l.p[(c, h)] * l.w[(h, i)] * l.v[(h, j)]).sum()))
        .collect()
}

#[test]
fn t1_tensor_form_matches_the_layer() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (d, h, o) in SHAPES {
        let l = layer(&mut rng, d, h, o, false);
        let raw = naive_tensor(&l);
        let sym = l.output_tensor();
        for _ in 0..5 {
            let x = rand_vec(&mut rng, d);
            let y = l.forward(&x);
            for c in 0..o {
                assert!(close(y[c], quad(&raw[c], &x), TOL), "raw B_{c}");
                assert!(close(y[c], quad(&sym[c], &x), TOL), "symmetrised B_{c}");
            }
        }
        for c in 0..o {
            assert!(max_diff(&sym[c], &symmetrise(&raw[c])) < TOL);
        }
    }
}

#[test]
fn t2_antisymmetric_part_contributes_nothing() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let l = layer(&mut rng, 7, 5, 3, false);
    for b in naive_tensor(&l) {
        let anti = Mat::from_fn(7, 7, |i, j| 0.5 * (b[(i, j)] - b[(j, i)]));
        assert!(max_diff(&anti, &Mat::zeros(7, 7)) > 1e-3, "the test needs a non-trivial antisymmetric part");
        for _ in 0..5 {
            assert!(quad(&anti, &rand_vec(&mut rng, 7)).abs() < TOL);
        }
    }
}

#[test]
fn t3_direction_linearity_and_matrix_free_products() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for (d, h, o) in SHAPES {
        let l = layer(&mut rng, d, h, o, false);
        let u = rand_vec(&mut rng, o);
        let q = l.interaction(&u);
        let tensor = l.output_tensor();
        let combo = Mat::from_fn(d, d, |i, j| (0..o).map(|c| u[c] * tensor[c][(i, j)]).sum::<f64>());
        assert!(max_diff(&q, &combo) < TOL, "Q(u) = Σ u_c B_c");
        let x = rand_vec(&mut rng, d);
        assert!(close(dot(&u, &l.forward(&x)), quad(&q, &x), TOL), "u·y = x^T Q x");
        let mv = l.interaction_matvec(&l.hidden_weights(&u), &x);
        for i in 0..d {
            let want: f64 = (0..d).map(|j| q[(i, j)] * x[j]).sum();
            assert!(close(mv[i], want, TOL), "matrix-free Q x");
        }
    }
}

#[test]
fn t4_eigen_identity_orthonormality_and_rank_bound() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for (d, h, o) in [(7, 2, 3), (7, 5, 3), (4, 9, 3)] {
        let l = layer(&mut rng, d, h, o, false);
        let q = l.interaction(&rand_vec(&mut rng, o));
        let s = eigh(&q).unwrap();
        let x = rand_vec(&mut rng, d);
        let sum: f64 = (0..d).map(|i| s.values[i] * dot(&s.vector(i), &x).powi(2)).sum();
        assert!(close(sum, quad(&q, &x), TOL));
        let vtv = s.vectors.transpose() * &s.vectors;
        assert!(max_diff(&vtv, &Mat::identity(d, d)) < TOL, "V^T V = I");
        let lam = Mat::from_fn(d, d, |i, j| if i == j { s.values[i] } else { 0.0 });
        assert!(max_diff(&(&s.vectors * &lam * s.vectors.transpose()), &q) < TOL, "Q = V Λ V^T");
        let scale = s.values[0].abs();
        let rank = s.values.iter().filter(|v| v.abs() > 1e-9 * scale).count();
        assert!(rank <= d.min(2 * h), "rank {rank} > min(d, 2h) = {}", d.min(2 * h));
        if 2 * h < d {
            assert_eq!(rank, 2 * h, "random weights reach the bound");
        }
        for w in s.values.windows(2) {
            assert!(w[0].abs() >= w[1].abs(), "sorted by |λ|");
        }
    }
}

#[test]
fn t5_embedding_pullback_reproduces_logits_at_full_rank() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (d_raw, h, o) = (11, 6, 4);
    for bias in [false, true] {
        let model = BilinearModel { embed: Some(rand_mat(&mut rng, h, d_raw)), layer: layer(&mut rng, h, h, o, bias) };
        let dec = decompose(&model).unwrap();
        assert_eq!(dec.bias_folded, bias);
        let x = rand_mat(&mut rng, 8, d_raw);
        let full = dec.truncated_logits(&x, usize::MAX);
        assert!(max_diff(&full, &model_logits(&model, &x)) < TOL, "full rank = model (bias {bias})");
        assert!(max_diff(&dec.truncated_logits(&x, 0), &Mat::zeros(8, o)) == 0.0, "k = 0 gives zeros");
    }
}

#[test]
fn t6_truncation_is_the_best_rank_k_approximation() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let l = layer(&mut rng, 7, 5, 3, false);
    let q = l.interaction(&rand_vec(&mut rng, 3));
    let s = eigh(&q).unwrap();
    let fro2 = |m: &Mat<f64>| (0..7).flat_map(|i| (0..7).map(move |j| (i, j))).map(|(i, j)| m[(i, j)].powi(2)).sum::<f64>();
    for k in 0..=7 {
        let qk = Mat::from_fn(7, 7, |i, j| (0..k).map(|t| s.values[t] * s.vectors[(i, t)] * s.vectors[(j, t)]).sum::<f64>());
        let err = fro2(&(&q - &qk));
        let dropped: f64 = s.values[k..].iter().map(|v| v * v).sum();
        assert!(close(err, dropped, TOL), "k {k}: {err} vs {dropped}");
        // Other rank-k symmetric matrices: any k eigenpairs, and random projections of Q.
        for _ in 0..20 {
            let mut idx: Vec<usize> = (0..7).collect();
            for i in 0..7 {
                idx.swap(i, rng.random_range(i..7));
            }
            let other = Mat::from_fn(7, 7, |i, j| idx[..k].iter().map(|&t| s.values[t] * s.vectors[(i, t)] * s.vectors[(j, t)]).sum::<f64>());
            assert!(fro2(&(&q - &other)) >= err - TOL);
            let b = rand_mat(&mut rng, 7, k);
            let random = symmetrise(&(&b * b.transpose() * &q));
            let rs = eigh(&random).unwrap();
            let proj = Mat::from_fn(7, 7, |i, j| (0..k).map(|t| rs.values[t] * rs.vectors[(i, t)] * rs.vectors[(j, t)]).sum::<f64>());
            assert!(fro2(&(&q - &proj)) >= err - TOL);
        }
    }
}

#[test]
fn t7_bias_trick_parts() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (d, h, o) = (7, 5, 3);
    let l = layer(&mut rng, d, h, o, true);
    let folded = l.with_bias_folded();
    let (b1, b2) = (l.b1.clone().unwrap(), l.b2.clone().unwrap());
    let u = rand_vec(&mut rng, o);
    let c = l.hidden_weights(&u);
    let parts = bias_parts(&folded.interaction(&u));
    for _ in 0..5 {
        let x = rand_vec(&mut rng, d);
        let mut x1 = x.clone();
        x1.push(1.0);
        let biased = l.hidden(&x);
        let aug = folded.hidden(&x1);
        for k in 0..h {
            assert!(close(biased[k], aug[k], TOL), "(Wx+b1)⊙(Vx+b2) = (W'x')⊙(V'x')");
        }
        let wx: Vec<f64> = (0..h).map(|k| (0..d).map(|j| l.w[(k, j)] * x[j]).sum()).collect();
        let vx: Vec<f64> = (0..h).map(|k| (0..d).map(|j| l.v[(k, j)] * x[j]).sum()).collect();
        let want_quad: f64 = (0..h).map(|k| c[k] * wx[k] * vx[k]).sum();
        let want_lin: f64 = (0..h).map(|k| c[k] * (b2[k] * wx[k] + b1[k] * vx[k])).sum();
        let want_const: f64 = (0..h).map(|k| c[k] * b1[k] * b2[k]).sum();
        assert!(close(quad(&parts.quadratic, &x), want_quad, TOL), "quadratic part");
        assert!(close(dot(&parts.linear, &x), want_lin, TOL), "linear part");
        assert!(close(parts.constant, want_const, TOL), "constant part");
        assert!(close(dot(&u, &l.forward(&x)), want_quad + want_lin + want_const, TOL));
    }
}

#[test]
fn t8_residual_fold() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (d, o) = (6, 3);
    // Residual block with d_h = d_model: logits = U z + U g(z), so P = U.
    let l = layer(&mut rng, d, d, o, false);
    let z = rand_vec(&mut rng, d);
    let mut z1 = z.clone();
    z1.push(1.0);
    let g = l.hidden(&z);
    for c in 0..o {
        let uc: Vec<f64> = (0..d).map(|k| l.p[(c, k)]).collect();
        let want = dot(&uc, &z) + dot(&uc, &g);
        let folded = residual_fold(&l.interaction(&unit(o, c)), &uc);
        assert!(close(quad(&folded, &z1), want, TOL));
    }
}

#[test]
fn t9_two_layer_chain() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (d, h1, h2, o) = (5, 4, 3, 2);
    let lower = layer(&mut rng, d, h1, h1, false);
    let upper = layer(&mut rng, h1, h2, o, false);
    let x = rand_vec(&mut rng, d);
    let y = upper.forward(&lower.hidden(&x));
    for c in 0..o {
        let terms = chain_two(&lower, &upper, &unit(o, c), usize::MAX).unwrap();
        assert_eq!(terms.len(), h1);
        let sum: f64 = terms.iter().map(|t| t.eigenvalue * quad(&t.lower, &x).powi(2)).sum();
        assert!(close(sum, y[c], TOL), "{sum} vs {}", y[c]);
    }
}

#[test]
fn t10_hosvd_reconstructs_the_tensor_and_matches_the_gram() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    for (d, h, o) in SHAPES {
        let l = layer(&mut rng, d, h, o, false);
        let b = l.output_tensor();
        let brute = Mat::from_fn(o, o, |c, e| (0..d).flat_map(|i| (0..d).map(move |j| (i, j))).map(|(i, j)| b[c][(i, j)] * b[e][(i, j)]).sum::<f64>());
        assert!(max_diff(&gram(&l), &brute) < TOL, "Gram from W, V, P = tr(B_c B_c')");
        let svd = hosvd(&l, o).unwrap();
        let gram_eigs = eigh(&brute).unwrap();
        for s in 0..o {
            assert!(close(svd.singular_values[s].powi(2), gram_eigs.values[s], TOL));
        }
        for c in 0..o {
            let rec = Mat::from_fn(d, d, |i, j| (0..o).map(|s| svd.singular_values[s] * svd.output_vectors[(c, s)] * svd.interactions[s][(i, j)]).sum::<f64>());
            assert!(max_diff(&rec, &b[c]) < TOL, "B_c from the HOSVD factors");
        }
        // Cross-check against a plain SVD of B reshaped to (d_out, d_in²).
        let flat = Mat::from_fn(o, d * d, |c, k| b[c][(k / d, k % d)]);
        let sv = flat.thin_svd().unwrap();
        for s in 0..o {
            assert!(close(sv.S().column_vector()[s], svd.singular_values[s], 1e-9));
        }
    }
}

#[test]
fn t11_pinv_keys_are_dual_to_their_eigenvectors() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let d = rand_mat(&mut rng, 100, 128);
    let k = d.thin_svd().unwrap().pseudoinverse();
    assert!(max_diff(&(&d * &k), &Mat::identity(100, 100)) < 1e-10, "D K = I");
}

/// Test 12, the gradient check: glassbox trains with burn's autodiff, so that is the backward
/// pass checked here, in f32, against central finite differences of this crate's independent
/// f64 forward.
#[test]
fn t12_training_gradients_match_finite_differences() {
    use glassbox_core::data::{Dataset, Targets};
    use glassbox_core::model::{Architecture, Model};
    use glassbox_core::tensor::train_device;
    use glassbox_core::train::{batch, loss_and_grads};
    let (d_raw, h, o, n) = (6, 4, 3, 5);
    let arch = Architecture::Bilinear { d_in: d_raw, d_hidden: h, d_out: o, bias: false, embed: true };
    let model = Model::init(arch, 12, &train_device()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let data = Dataset {
        name: "t12".into(),
        inputs: (0..n * d_raw).map(|_| rng.random::<f32>()).collect(),
        input_dim: d_raw,
        image_shape: None,
        targets: Targets::Classes { labels: (0..n).map(|i| (i % o) as u32).collect(), n_classes: o },
    };
    let idx: Vec<usize> = (0..n).collect();
    let (x, y) = batch(&data, &idx, &train_device());
    let (_, grads) = loss_and_grads(&model, &data, x, y, 1, false);
    let host: Vec<Vec<f64>> = model.params.to_host().iter().map(|v| v.iter().map(|&a| a as f64).collect()).collect();
    let loss = |p: &[Vec<f64>]| -> f64 {
        let m = |v: &Vec<f64>, r: usize, c: usize| Mat::from_fn(r, c, |i, j| v[i * c + j]);
        let bm = BilinearModel {
            embed: Some(m(&p[0], h, d_raw)),
            layer: BilinearLayer { w: m(&p[1], h, h), v: m(&p[2], h, h), p: m(&p[3], o, h), b1: None, b2: None },
        };
        (0..n)
            .map(|r| {
                let xr: Vec<f64> = data.input(r).iter().map(|&a| a as f64).collect();
                let z = bm.logits(&xr);
                let lse = z.iter().map(|a| a.exp()).sum::<f64>().ln();
                lse - z[r % o]
            })
            .sum::<f64>()
            / n as f64
    };
    let names: Vec<&str> = model.params.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["embed.weight", "layers.0.w.weight", "layers.0.v.weight", "head.weight"]);
    for (pi, g) in grads.iter().enumerate() {
        for k in 0..g.len() {
            let (mut a, mut b) = (host.clone(), host.clone());
            a[pi][k] += 1e-6;
            b[pi][k] -= 1e-6;
            let fd = (loss(&a) - loss(&b)) / 2e-6;
            assert!((g[k] as f64 - fd).abs() <= 1e-4 * (1.0 + fd.abs()), "{}[{k}]: {} vs {fd}", names[pi], g[k]);
        }
    }
}

#[test]
fn lanczos_finds_the_top_eigenpairs_matrix_free() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let l = layer(&mut rng, 60, 40, 5, false);
    let u = rand_vec(&mut rng, 5);
    let full = eigh(&l.interaction(&u)).unwrap();
    let c = l.hidden_weights(&u);
    let top = lanczos_top_k(60, 6, |x| l.interaction_matvec(&c, x), 1e-12, 0).unwrap();
    for i in 0..6 {
        assert!(close(top.values[i], full.values[i], 1e-8), "λ_{i}: {} vs {}", top.values[i], full.values[i]);
        let cos = dot(&top.vector(i), &full.vector(i)).abs();
        assert!((cos - 1.0).abs() < 1e-6, "eigenvector {i}: |cos| {cos}");
    }
}

#[test]
fn effective_count_of_flat_and_one_hot_vectors() {
    assert!(close(effective_count(&[1.0, -1.0, 1.0, 1.0]), 4.0, TOL));
    assert!(close(effective_count(&[0.0, 3.0, 0.0]), 1.0, TOL));
    assert_eq!(effective_count(&[0.0, 0.0]), 0.0);
}

#[test]
fn truncation_curve_agrees_with_truncated_logits() {
    use glassbox_bilinear::decompose::accuracy;
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let model = BilinearModel { embed: Some(rand_mat(&mut rng, 8, 12)), layer: layer(&mut rng, 8, 8, 4, false) };
    let dec = decompose(&model).unwrap();
    let x = rand_mat(&mut rng, 200, 12);
    let full = model_logits(&model, &x);
    let labels: Vec<usize> = (0..200).map(|r| glassbox_bilinear::decompose::argmax_row(&full, r)).collect();
    let ks = [5, 0, 1, 2, 3, 8, 100];
    let curve = dec.truncation_curve(&x, &labels, &ks);
    for (k, acc) in curve {
        assert!((acc - accuracy(&dec.truncated_logits(&x, k), &labels)).abs() < 1e-12, "k {k}");
    }
    assert_eq!(dec.truncation_curve(&x, &labels, &[100])[0].1, 1.0, "full rank reproduces the model's labels");
}

#[test]
fn top_k_decomposition_matches_the_full_one() {
    use glassbox_bilinear::decompose::decompose_top_k;
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let model = BilinearModel { embed: Some(rand_mat(&mut rng, 40, 30)), layer: layer(&mut rng, 40, 40, 3, false) };
    let (full, top) = (decompose(&model).unwrap(), decompose_top_k(&model, 5).unwrap());
    for c in 0..3 {
        for i in 0..5 {
            assert!(close(top.classes[c].values[i], full.classes[c].values[i], 1e-8));
            let (a, b) = (top.pixel_vectors[c].col(i), full.pixel_vectors[c].col(i));
            let cos = (a.transpose() * b).abs() / (a.norm_l2() * b.norm_l2());
            assert!((cos - 1.0).abs() < 1e-6, "class {c} vector {i}: |cos| {cos}");
        }
    }
    let x = rand_mat(&mut rng, 6, 30);
    assert!(max_diff(&top.truncated_logits(&x, 5), &full.truncated_logits(&x, 5)) < 1e-6);
}
