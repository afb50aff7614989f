//! The SAE building blocks against hand values and finite differences (the USAE unit tests:
//! TopK ties and short rows, dictionary normalisation backward, BN in train and eval mode, the
//! AuxK mask, the L1 sign at zero, the per-model scheduler ticks) and a whole training step's
//! gradients against finite differences of its loss.

use faer::Mat;
use glassbox_sae::dictionary;
use glassbox_sae::encoder;
use glassbox_sae::topk::{topk, topk_and_rest, topk_row};
use glassbox_sae::usae::{Loss, ScheduleTick, Usae, UsaeConfig, B, BETA, GAMMA, V, W};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(rows, cols, |_, _| rng.random_range(-1.0f32..1.0))
}

#[test]
fn topk_keeps_the_k_largest_positives_ties_to_the_lower_index() {
    assert_eq!(topk_row([0.5, 2.0, 0.5, 0.5, -3.0].into_iter(), 2, &[]), vec![(1, 2.0), (0, 0.5)]);
    // Fewer positives than k: all of them, nothing negative or zero.
    assert_eq!(topk_row([0.0, -1.0, 0.3].into_iter(), 3, &[]), vec![(2, 0.3)]);
    // Skipped entries (the already selected ones, for AuxK) are never chosen.
    assert_eq!(topk_row([3.0, 2.0, 1.0].into_iter(), 2, &[(0, 3.0)]), vec![(1, 2.0), (2, 1.0)]);
    let x = Mat::from_fn(2, 4, |r, c| if r == 0 { c as f32 } else { -(c as f32) });
    let z = topk(&x, 2);
    assert_eq!(z.rows[0], vec![(3, 3.0), (2, 2.0)]);
    assert!(z.rows[1].is_empty());
    assert_eq!(z.to_dense()[(0, 3)], 3.0);
}

#[test]
fn auxk_takes_exactly_half_of_m_among_the_unselected() {
    let m = 10;
    let row: Vec<f32> = (0..m).map(|l| 1.0 + l as f32).collect();
    let (selected, mut aux) = topk_and_rest(&row, 3, m / 2);
    assert_eq!(selected, topk_row(row.iter().copied(), 3, &[]));
    aux.sort_by_key(|a| std::cmp::Reverse(a.0));
    assert_eq!(aux.iter().map(|a| a.0).collect::<Vec<_>>(), vec![6, 5, 4, 3, 2]);
    // Ties go to the lower index; negative and zero entries are never auxiliary; with fewer
    // positives than k + m/2 every unselected positive one is.
    let row = [1.0, 2.0, 1.0, 1.0, 0.0, -1.0, 1.0, 0.5];
    let (selected, mut aux) = topk_and_rest(&row, 2, 2);
    assert_eq!(selected, vec![(1, 2.0), (0, 1.0)]);
    aux.sort_by_key(|a| a.0);
    assert_eq!(aux, vec![(2, 1.0), (3, 1.0)]);
    let (_, mut aux) = topk_and_rest(&row, 2, 4);
    aux.sort_by_key(|a| a.0);
    assert_eq!(aux, vec![(2, 1.0), (3, 1.0), (6, 1.0), (7, 0.5)]);
}

#[test]
fn dictionary_rows_are_unit_and_the_backward_matches_finite_differences() {
    let raw = random(4, 3, 1);
    let (d, norms) = dictionary::normalise(&raw);
    for l in 0..4 {
        let n: f32 = (0..3).map(|c| d[(l, c)] * d[(l, c)]).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
    // L = Σ D ⊙ R for a random R: dL/dD = R.
    let r = random(4, 3, 2);
    let grad = dictionary::backward(&raw, &norms, &r);
    let loss = |v: &Mat<f32>| {
        let d = dictionary::normalise(v).0;
        (0..4).flat_map(|l| (0..3).map(move |c| (l, c))).map(|lc| (d[lc] * r[lc]) as f64).sum::<f64>()
    };
    for (l, c) in [(0, 0), (1, 2), (3, 1)] {
        let h = 1e-3;
        let (mut up, mut down) = (raw.clone(), raw.clone());
        up[(l, c)] += h;
        down[(l, c)] -= h;
        let fd = (loss(&up) - loss(&down)) / (2.0 * h as f64);
        assert!((fd - grad[(l, c)] as f64).abs() < 1e-3, "({l}, {c}): {fd} vs {}", grad[(l, c)]);
    }
}

#[test]
fn batch_norm_standardises_in_training_and_uses_running_statistics_in_evaluation() {
    let h = Mat::from_fn(4, 2, |r, c| (r as f32) * (c as f32 + 1.0) + 1.0);
    let (mut rm, mut rv) = (vec![0.0; 2], vec![1.0; 2]);
    // Training takes h = x Wᵀ without the bias, row-major; the bias reaches only the running mean.
    let mut x_hat = glassbox_core::matrix::row_major(&h);
    let mut pre = vec![0.0; 8];
    let bn = encoder::BatchNormTrain { gamma: &[1.0, 2.0], beta: &[0.0, 0.5], running_mean: &mut rm, running_var: &mut rv };
    let inv_std = encoder::forward_train(&mut x_hat, &mut pre, &[0.5, 0.0], Some(bn));
    // Channel 0 is 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
    let x0 = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
    assert!((inv_std[0] - 1.0 / (1.25f32 + 1e-5).sqrt()).abs() < 1e-6);
    assert!((x_hat[0] - x0).abs() < 1e-5 && (pre[0] - x0).abs() < 1e-5);
    assert!((pre[1] - (2.0 * x0 + 0.5)).abs() < 1e-5);
    assert!((rm[0] - 0.1 * (2.5 + 0.5)).abs() < 1e-6 && (rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-5);
    let (mut x_hat, mut pre) = (glassbox_core::matrix::row_major(&h), vec![0.0; 8]);
    encoder::forward_train(&mut x_hat, &mut pre, &[0.5, 0.0], None);
    assert_eq!(pre[0], 1.5);
    let eval = encoder::batch_norm_eval(&h, &[1.0, 1.0], &[0.0, 0.0], &rm, &rv);
    assert!((eval[(0, 0)] - (1.0 - rm[0]) / (rv[0] + 1e-5).sqrt()).abs() < 1e-5);
}

#[test]
fn the_schedule_starts_at_the_base_rate_warms_up_and_ticks_per_sampled_model() {
    let cfg = UsaeConfig { warmup_ticks: 10, lr: 1e-3, ..UsaeConfig::new(8, 2, 100) };
    assert_eq!(cfg.lr_at(0), 1e-3);
    assert!((cfg.lr_at(5) - (1e-6 + (1e-3 - 1e-6) * 0.5)).abs() < 1e-12);
    assert!((cfg.lr_at(10) - 1e-3).abs() < 1e-12);
    assert!((cfg.lr_at(100) - 1e-6).abs() < 1e-12);
    let mut usae = Usae::new(cfg, &[("a", 3), ("b", 2)], 0).unwrap();
    let batch = vec![random(16, 3, 3), random(16, 2, 4)];
    for i in [0, 0, 1, 0] {
        usae.train_step(i, &batch).unwrap();
    }
    assert_eq!((usae.models[0].ticks, usae.models[1].ticks, usae.steps), (3, 1, 4));
    assert_eq!(usae.config.tick, ScheduleTick::PerModel);
}

/// The loss of a training-mode step as a function of the parameters (for finite differences).
fn step_loss(usae: &Usae, i: usize, batch: &[Mat<f32>]) -> f64 {
    let mut copy = Usae::new(usae.config.clone(), &usae.models.iter().map(|s| (s.name.as_str(), s.d)).collect::<Vec<_>>(), 0).unwrap();
    for (c, s) in copy.models.iter_mut().zip(&usae.models) {
        c.params = s.params.clone();
    }
    copy.loss_and_gradients(i, batch).unwrap().0
}

#[test]
fn a_training_step_has_the_gradients_of_its_loss() {
    for (batch_norm, loss) in [(true, Loss::L1), (false, Loss::L1), (true, Loss::L2)] {
        let cfg = UsaeConfig { batch_norm, loss, ..UsaeConfig::new(12, 3, 100) };
        let mut usae = Usae::new(cfg, &[("a", 5), ("b", 4)], 7).unwrap();
        let batch = vec![random(32, 5, 8), random(32, 4, 9)];
        let i = 0;
        let (_, grads) = usae.loss_and_gradients(i, &batch).unwrap();
        let dv = &grads.decoders.iter().find(|(j, _)| *j == i).unwrap().1;
        assert_eq!(grads.decoders.len(), 1, "only decoder i moves under the code's rule");
        let mut checked = 0;
        for (slot, idx) in [(W, 3), (W, 17), (B, 2), (GAMMA, 4), (BETA, 1), (V, 6), (V, 40)] {
            if !batch_norm && (slot == GAMMA || slot == BETA) {
                continue;
            }
            let analytic = if slot == V { dv[idx] } else { grads.encoder[slot][idx] } as f64;
            let h = 1e-3f32;
            let mut up = Usae::new(usae.config.clone(), &[("a", 5), ("b", 4)], 7).unwrap();
            let mut down = Usae::new(usae.config.clone(), &[("a", 5), ("b", 4)], 7).unwrap();
            up.models[i].params[slot][idx] += h;
            down.models[i].params[slot][idx] -= h;
            let fd = (step_loss(&up, i, &batch) - step_loss(&down, i, &batch)) / (2.0 * h as f64);
            // TopK switches and L1 kinks make the loss piecewise smooth; a small step stays in a piece.
            assert!((fd - analytic).abs() < 5e-4 + 0.02 * analytic.abs(), "bn {batch_norm} {loss:?} slot {slot}[{idx}]: fd {fd} vs {analytic}");
            checked += 1;
        }
        assert!(checked >= 5);
    }
}

#[test]
fn an_empty_usae_batch_is_an_error_not_a_panic() {
    let mut usae = Usae::new(UsaeConfig::new(8, 2, 10), &[("a", 3), ("b", 2)], 5).unwrap();
    let e = usae.train_step(0, &[Mat::zeros(0, 3), Mat::zeros(0, 2)]).err().unwrap().to_string();
    assert!(e.contains("at least one row"), "{e}");
}

#[test]
fn a_usae_saves_and_loads_exactly_and_names_a_wrong_tensor() {
    let mut usae = Usae::new(UsaeConfig::new(8, 2, 10), &[("a", 3), ("b", 2)], 5).unwrap();
    usae.train_step(1, &[random(16, 3, 1), random(16, 2, 2)]).unwrap();
    usae.models[0].mean = 0.25;
    let dir = tempfile::tempdir().unwrap();
    glassbox_sae::store::save_usae(&usae, dir.path()).unwrap();
    let back = glassbox_sae::store::load_usae(dir.path()).unwrap();
    for (x, y) in back.models.iter().zip(&usae.models) {
        assert_eq!((x.params.clone(), x.running_var.clone(), x.mean, x.std), (y.params.clone(), y.running_var.clone(), y.mean, y.std));
    }
    let x = random(5, 3, 9);
    assert_eq!(back.encode(0, &x), usae.encode(0, &x));
    let cfg = std::fs::read_to_string(dir.path().join("cfg.json")).unwrap().replace("\"d\": 2", "\"d\": 4");
    std::fs::write(dir.path().join("cfg.json"), cfg).unwrap();
    let e = glassbox_sae::store::load_usae(dir.path()).err().unwrap().to_string();
    assert!(e.contains("b.W_enc") && e.contains("[8, 2]"), "{e}");
}
