//! The metric, resampling and planted-generator unit tests of the USAE, on tiny hand-checkable
//! inputs: both R² forms, FE at its three canonical levels, CFP/IoU, energy, the antialiased
//! 16->14 weights, Hungarian matching of a permuted identity, the Test A generator and its
//! recovery score, and the ridge cross-predictor on an exactly linear relation.

use faer::Mat;
use glassbox_sae::metrics::{
    cofire_counts, cofire_energy_correlation, cofire_iou, cofire_proportion, dead_fraction, energy, energy_squared,
    firing_counts, firing_entropy, hungarian_match, r2_per_dim, r2_scalar, ridge_cross_predictor,
};
use glassbox_sae::planted::{index_consistent_recovery, mmcs, private_latents, Planted, PlantedConfig};
use glassbox_sae::resample::{resample_grid, resample_weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn mat(rows: &[&[f32]]) -> Mat<f32> {
    Mat::from_fn(rows.len(), rows[0].len(), |r, c| rows[r][c])
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn gaussian(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(rows, cols, |_, _| rng.sample::<f32, _>(rand_distr::StandardNormal))
}

#[test]
fn r2_both_forms_on_a_hand_example() {
    let a = mat(&[&[1.0, 0.0], &[3.0, 0.0], &[5.0, 6.0]]);
    let a_hat = mat(&[&[1.0, 0.0], &[3.0, 1.0], &[4.0, 6.0]]);
    // SSE = 2; per-channel SST = 8 (mean 3) + 24 (mean 2) = 32.
    assert!(close(r2_per_dim(&a, &a_hat), 1.0 - 2.0 / 32.0, 1e-12));
    // Scalar mean 2.5: Σ (a - 2.5)² = 33.5 over 6 entries; MSE = 2/6.
    let expect = 1.0 - (2.0 / 6.0) / (33.5 / 6.0 + 1e-6);
    assert!(close(r2_scalar(&a, &a_hat), expect, 1e-12));
    // The per-channel mean predictor scores 0 per-dim but well above 0 in the scalar form.
    let means = mat(&[&[3.0, 2.0], &[3.0, 2.0], &[3.0, 2.0]]);
    assert!(close(r2_per_dim(&a, &means), 0.0, 1e-12));
    assert!(r2_scalar(&a, &means) > 0.0);
    assert!(r2_per_dim(&a, &mat(&[&[1.0, 0.0]])).is_nan()); // shapes differ
}

#[test]
fn firing_entropy_has_the_three_canonical_levels_for_three_models() {
    // Latent 0 fires in one model, 1 equally in two, 2 equally in three, 3 never.
    let counts = vec![vec![10, 5, 7, 0], vec![0, 5, 7, 0], vec![0, 0, 7, 0]];
    let fe = firing_entropy(&counts);
    assert!(close(fe[0], 0.0, 1e-12));
    assert!(close(fe[1], 2f64.ln() / 3f64.ln(), 1e-12) && close(fe[1], 0.631, 1e-3));
    assert!(close(fe[2], 1.0, 1e-12));
    assert!(fe[3].is_nan());
    // A model without a count for latent 1, and a single model: NaN, not a panic.
    let short = firing_entropy(&[vec![1, 2], vec![1]]);
    assert!(close(short[0], 1.0, 1e-12) && short[1].is_nan()); // M = 2, equal counts
    assert!(firing_entropy(&[vec![1, 2]]).iter().all(|x| x.is_nan()));
}

#[test]
fn cofire_proportion_iou_and_dead_fraction_on_a_hand_built_code_tensor() {
    // 3 models, 4 tokens, 3 latents, tau = 0.1 (0.1 itself does not fire).
    let z0 = mat(&[&[0.5, 0.0, 0.0], &[0.2, 0.3, 0.0], &[0.0, 0.1, 0.0], &[0.9, 0.0, 0.0]]);
    let z1 = mat(&[&[0.4, 0.0, 0.0], &[0.3, 0.0, 0.0], &[0.2, 0.0, 0.0], &[0.0, 0.0, 0.0]]);
    let z2 = mat(&[&[0.7, 0.0, 0.0], &[0.6, 0.0, 0.0], &[0.0, 0.0, 0.0], &[0.8, 0.0, 0.0]]);
    let counts: Vec<Vec<usize>> = [&z0, &z1, &z2].iter().map(|z| firing_counts(z, 0.1)).collect();
    assert_eq!(counts, vec![vec![3, 1, 0], vec![3, 0, 0], vec![3, 0, 0]]);
    let cofire = cofire_counts(&[&z0, &z1, &z2], 0.1);
    assert_eq!(cofire, vec![2, 0, 0]); // tokens 0 and 1 fire latent 0 in all three models
    let cfp = cofire_proportion(&cofire, &counts);
    assert_eq!(cfp, vec![vec![2.0 / 3.0, 0.0, 0.0]; 3]);
    let iou = cofire_iou(&cofire, &counts);
    assert_eq!(iou, vec![2.0 / 9.0, 0.0, 0.0]);
    assert!(close(dead_fraction(&z0, 0.1), 1.0 / 3.0, 1e-12));
    assert!(close(dead_fraction(&z1, 0.1), 2.0 / 3.0, 1e-12));
    assert!(close(dead_fraction(&z0, 0.0), 1.0 / 3.0, 1e-12));
    assert!(cofire_counts(&[&z0, &mat(&[&[1.0]])], 0.1).is_empty()); // shapes differ
}

#[test]
fn energy_is_the_unsquared_norm_of_mean_code_times_row() {
    let z = mat(&[&[1.0, 0.0], &[3.0, 0.5]]);
    let d = mat(&[&[3.0, 4.0], &[0.0, 2.0]]); // row norms 5 and 2
    let e = energy(&z, &d);
    assert!(close(e[0], 2.0 * 5.0, 1e-12) && close(e[1], 0.25 * 2.0, 1e-12));
    let e2 = energy_squared(&z, &d);
    assert!(close(e2[0], 100.0, 1e-9) && close(e2[1], 0.25, 1e-12));
    assert!(energy(&z, &mat(&[&[1.0, 0.0]])).iter().all(|e| e.is_nan())); // 2 latents, 1 row
}

#[test]
fn cofire_energy_correlation_recovers_an_exact_power_law() {
    // energy = 2 · cofire^0.5 on the kept points; zeros are dropped.
    let cofire = vec![1, 10, 100, 1000, 0, 5];
    let energy: Vec<f64> = cofire.iter().map(|&c| 2.0 * (c as f64).sqrt()).collect();
    let mut energy = energy;
    energy[5] = 0.0;
    let (r, slope) = cofire_energy_correlation(&cofire, &energy).unwrap();
    assert!(close(r, 1.0, 1e-12) && close(slope, 0.5, 1e-12));
    assert_eq!(cofire_energy_correlation(&[1, 2, 0], &[1.0, 2.0, 3.0]), None);
}

#[test]
fn antialiased_16_to_14_weights_sum_to_one_and_match_hand_rows() {
    let w = resample_weights(16, 14);
    assert_eq!(w.len(), 14);
    for row in &w {
        assert!(close(row.iter().map(|t| t.1 as f64).sum(), 1.0, 1e-6));
    }
    // s = 8/7. o = 0: c = 4/7, taps 0, 1 with raw weights 15/16, 3/16 -> 5/6, 1/6.
    let expect = |row: &[(usize, f32)], hand: &[(usize, f64)]| {
        assert_eq!(row.len(), hand.len(), "{row:?} vs {hand:?}");
        for (t, h) in row.iter().zip(hand) {
            assert!(t.0 == h.0 && close(t.1 as f64, h.1, 1e-6), "{row:?} vs {hand:?}");
        }
    };
    expect(&w[0], &[(0, 5.0 / 6.0), (1, 1.0 / 6.0)]);
    // o = 1: c = 12/7, taps 1, 2 with raw weights 13/16, 5/16 -> 13/18, 5/18.
    expect(&w[1], &[(1, 13.0 / 18.0), (2, 5.0 / 18.0)]);
    // o = 3: c = 4, taps 3, 4 equally.
    expect(&w[3], &[(3, 0.5), (4, 0.5)]);
    // The last row mirrors the first.
    expect(&w[13], &[(14, 1.0 / 6.0), (15, 5.0 / 6.0)]);
    // Upsampling 2 -> 4 is plain bilinear (support 1): 1, then 0.75/0.25.
    let up = resample_weights(2, 4);
    expect(&up[0], &[(0, 1.0)]);
    expect(&up[1], &[(0, 0.75), (1, 0.25)]);
    // Same size is the identity.
    assert!(resample_weights(5, 5).iter().enumerate().all(|(o, r)| r == &vec![(o, 1.0)]));
}

#[test]
fn resample_grid_goes_rows_then_columns_in_row_major_order() {
    // Channel 0 = grid row, channel 1 = grid column, channel 2 = constant.
    let tokens = Mat::from_fn(16 * 16, 3, |t, k| [(t / 16) as f32, (t % 16) as f32, 7.0][k]);
    let out = resample_grid(&tokens, (16, 16), (14, 14)).unwrap();
    assert_eq!((out.nrows(), out.ncols()), (196, 3));
    let w = resample_weights(16, 14);
    let centre = |o: usize| w[o].iter().map(|&(j, x)| j as f32 * x).sum::<f32>();
    for t in 0..196 {
        let (y, x) = (t / 14, t % 14);
        assert!((out[(t, 0)] - centre(y)).abs() < 1e-4);
        assert!((out[(t, 1)] - centre(x)).abs() < 1e-4);
        assert!((out[(t, 2)] - 7.0).abs() < 1e-5);
    }
    // A non-square grid and the identity resample.
    let g = gaussian(6 * 4, 2, 1);
    let same = resample_grid(&g, (6, 4), (6, 4)).unwrap();
    assert!((0..24).all(|t| (0..2).all(|k| (same[(t, k)] - g[(t, k)]).abs() < 1e-6)));
    assert!(resample_grid(&g, (5, 4), (3, 3)).is_err());
}

#[test]
fn hungarian_matching_of_a_permuted_identity_returns_the_permutation_with_cosine_one() {
    let perm = [3usize, 0, 4, 1, 2];
    let a = Mat::from_fn(5, 5, |r, c| if r == c { 1.0f32 } else { 0.0 });
    // Row perm[i] of b is e_i, scaled to check that cosines ignore norms.
    let b = Mat::from_fn(5, 5, |r, c| if perm[c] == r { 2.0f32 } else { 0.0 });
    let pairs = hungarian_match(&a, &b).unwrap();
    assert_eq!(pairs.len(), 5);
    for (i, &(ia, jb, cos)) in pairs.iter().enumerate() {
        assert_eq!((ia, jb), (i, perm[i]));
        assert!(close(cos, 1.0, 1e-12));
    }
    // More rows in a than in b: every row of b is matched once, pairs reported as (a, b).
    let b3 = Mat::from_fn(3, 5, |r, c| b[(r, c)]);
    let pairs = hungarian_match(&a, &b3).unwrap();
    assert_eq!(pairs.len(), 3);
    for &(ia, jb, cos) in &pairs {
        assert_eq!(perm[ia], jb);
        assert!(close(cos, 1.0, 1e-12));
    }
    // Fewer rows in the first dictionary.
    let pairs = hungarian_match(&b3, &a).unwrap();
    assert_eq!(pairs.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(pairs.iter().all(|&(ib, ja, cos)| perm[ja] == ib && close(cos, 1.0, 1e-12)));
    assert!(hungarian_match(&a, &Mat::zeros(2, 4)).is_err());
}

#[test]
fn planted_generator_shapes_unit_rows_and_activity() {
    let cfg = PlantedConfig { seed: 7, ..PlantedConfig::default() };
    let planted = Planted::new(&cfg);
    assert_eq!(planted.n_models(), 3);
    for (i, &d) in [64usize, 48, 32].iter().enumerate() {
        let (sh, pr) = (&planted.shared_dirs[i], &planted.private_dirs[i]);
        assert_eq!((sh.nrows(), sh.ncols(), pr.nrows(), pr.ncols()), (96, d, 16, d));
        for g in [sh, pr] {
            for r in 0..g.nrows() {
                let n: f64 = (0..d).map(|c| (g[(r, c)] as f64).powi(2)).sum();
                assert!(close(n, 1.0, 1e-5));
            }
        }
    }
    let n = 20_000;
    let s = planted.sample_with_codes(n, 1);
    assert_eq!(s.acts.iter().map(|a| (a.nrows(), a.ncols())).collect::<Vec<_>>(), vec![(n, 64), (n, 48), (n, 32)]);
    let active = |z: &Mat<f32>| firing_counts(z, 0.0).iter().sum::<usize>() as f64 / n as f64;
    assert!(close(active(&s.shared_codes), 96.0 * 0.04, 0.1 * 96.0 * 0.04), "{}", active(&s.shared_codes));
    for q in &s.private_codes {
        assert!(close(active(q), 16.0 * 0.04, 0.1 * 16.0 * 0.04), "{}", active(q));
    }
    // A_i minus its clean part is the noise: std ≈ 0.05.
    let clean = &s.shared_codes * &planted.shared_dirs[2] + &s.private_codes[2] * &planted.private_dirs[2];
    let entries = (0..32).flat_map(|c| (0..n).map(move |t| (t, c)));
    let var = entries.map(|tc| ((s.acts[2][tc] - clean[tc]) as f64).powi(2)).sum::<f64>() / (n * 32) as f64;
    assert!(close(var.sqrt(), 0.05, 0.002));
    // Same seeds, same data; `sample` is the activations of `sample_with_codes`.
    assert_eq!(planted.sample(10, 3), planted.sample_with_codes(10, 3).acts);
    assert!(PlantedConfig { p_active: 1.5, ..PlantedConfig::default() }.validate().is_err());
    assert!(cfg.validate().is_ok());
}

#[test]
fn index_consistent_recovery_is_one_for_the_planted_directions_and_zero_for_random_ones() {
    let planted = Planted::new(&PlantedConfig::default());
    let m = 128;
    // Latent perm[c] holds shared concept c in every model; latents 96..112 hold model i's private
    // concepts; the rest are random.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut perm: Vec<usize> = (0..96).collect();
    for i in (1..96).rev() {
        perm.swap(i, rng.random_range(0..=i));
    }
    let dicts: Vec<Mat<f32>> = (0..3)
        .map(|i| {
            let (sh, pr) = (&planted.shared_dirs[i], &planted.private_dirs[i]);
            let noise = gaussian(m, sh.ncols(), 10 + i as u64);
            let mut d = noise.clone();
            for c in 0..96 {
                (0..sh.ncols()).for_each(|x| d[(perm[c], x)] = sh[(c, x)]);
            }
            for p in 0..16 {
                (0..pr.ncols()).for_each(|x| d[(96 + p, x)] = pr[(p, x)]);
            }
            d
        })
        .collect();
    let refs: Vec<&Mat<f32>> = dicts.iter().collect();
    let (frac, matched) = index_consistent_recovery(&planted, &refs, 0.9);
    assert_eq!(frac, 1.0);
    assert_eq!(matched, perm.iter().map(|&l| Some(l)).collect::<Vec<_>>());
    assert_eq!(private_latents(&planted, &refs, 0.9), vec![(96..112).collect::<Vec<_>>(); 3]);
    assert!(mmcs(&planted, &refs).iter().all(|&x| close(x, 1.0, 1e-6)));

    let random: Vec<Mat<f32>> =
        [64, 48, 32].iter().enumerate().map(|(i, &d)| gaussian(256, d, 20 + i as u64)).collect();
    let refs: Vec<&Mat<f32>> = random.iter().collect();
    let (frac, _) = index_consistent_recovery(&planted, &refs, 0.9);
    assert!(frac <= 0.01, "{frac}");
    assert!(private_latents(&planted, &refs, 0.9).iter().all(|p| p.is_empty()));
    assert!(mmcs(&planted, &refs).iter().all(|&x| x < 0.9));
    assert!(index_consistent_recovery(&planted, &refs[..2], 0.9).0.is_nan()); // two dictionaries, three models
}

#[test]
fn ridge_cross_predictor_is_one_for_an_exactly_linear_relation() {
    let w = gaussian(6, 4, 2);
    let target = |x: &Mat<f32>| {
        let mut y = x * &w;
        (0..y.nrows()).for_each(|t| (0..4).for_each(|c| y[(t, c)] += 0.5 * c as f32 - 1.0));
        y
    };
    let (x_train, x_test) = (gaussian(200, 6, 3), gaussian(100, 6, 4));
    let (y_train, y_test) = (target(&x_train), target(&x_test));
    let r2 = ridge_cross_predictor(&x_train, &y_train, &x_test, &y_test, 1e-6);
    assert!(r2 > 0.99999, "{r2}");
    // Unrelated targets: about zero or below.
    let r2 = ridge_cross_predictor(&x_train, &gaussian(200, 4, 5), &x_test, &gaussian(100, 4, 6), 1.0);
    assert!(r2 < 0.1, "{r2}");
    assert!(ridge_cross_predictor(&x_train, &y_test, &x_test, &y_test, 1.0).is_nan()); // 200 vs 100 rows
    assert!(ridge_cross_predictor(&x_train, &y_train, &x_test, &y_test, -1.0).is_nan());
}
