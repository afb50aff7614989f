//! The SAELens-recipe trainer: gradients against finite differences (main loss and AuxK), and
//! training that recovers a planted sparse code, for TopK and BatchTopK; the saved SAE
//! reconstructs as the trainer does.

use glassbox_sae::training::{TrainArchitecture, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(rows: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn total_loss(t: &Trainer, x: &[f32], rows: usize, dead: &[bool]) -> f64 {
    let (s, _, _) = t.loss_and_gradients(x, rows, dead);
    s.mse_loss + s.aux_loss
}

/// Central differences of `loss` over every parameter, against `analytic`.
fn check(t: &mut Trainer, analytic: &[Vec<f32>], loss: impl Fn(&Trainer) -> f64, what: &str) {
    let eps = 1e-3f32;
    let scale = analytic.iter().flatten().fold(0f32, |m, g| m.max(g.abs()));
    for (p, grads) in analytic.iter().enumerate() {
        for (i, &want) in grads.iter().enumerate() {
            let keep = t.params[p][i];
            t.params[p][i] = keep + eps;
            let up = loss(t);
            t.params[p][i] = keep - eps;
            let down = loss(t);
            t.params[p][i] = keep;
            let numeric = ((up - down) / (2.0 * eps as f64)) as f32;
            let err = (numeric - want).abs();
            assert!(err <= 2e-2 * scale + 2e-4, "{what}: param {p}[{i}]: numeric {numeric} vs analytic {want}");
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let (d, m, rows) = (4, 10, 6);
    for arch in [TrainArchitecture::TopK { k: 3 }, TrainArchitecture::BatchTopK { k: 3 }] {
        let mut cfg = TrainConfig::new(d, m, arch);
        cfg.seed = 3;
        let mut t = Trainer::new(cfg);
        // Spread the weights so that pre-activations are well separated.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for p in t.params.iter_mut() {
            p.iter_mut().for_each(|v| *v += rng.random_range(-0.5f32..0.5));
        }
        let x = data(rows, d, 1);
        let alive = vec![false; m];
        let (_, g_main, _) = t.loss_and_gradients(&x, rows, &alive);
        check(&mut t, &g_main, |t| total_loss(t, &x, rows, &alive), &format!("{arch:?} main"));

        // AuxK: its gradient is the difference made by marking latents dead; the residual it
        // fits is detached, so the reference holds it at the unperturbed value.
        // Four dead latents (k_aux = d/2 = 2 of them per row, weight 1), and one (weight 1/2).
        for dead in [(0..m).map(|i| i % 3 == 0).collect::<Vec<bool>>(), (0..m).map(|i| i == 4).collect()] {
            let (_, g_all, _) = t.loss_and_gradients(&x, rows, &dead);
            let g_aux: Vec<Vec<f32>> = g_all.iter().zip(&g_main).map(|(a, b)| a.iter().zip(b).map(|(a, b)| a - b).collect()).collect();
            let residual = reconstruction_error(&t, &x, rows);
            check(&mut t, &g_aux, |t| aux_loss_fixed_residual(t, &x, rows, &dead, &residual), &format!("{arch:?} aux"));
        }
    }
}

/// x̂ − x of every row, from the trainer's own loss (mse = mean of its squared norms).
fn reconstruction_error(t: &Trainer, x: &[f32], rows: usize) -> Vec<f64> {
    let d = t.config.d_in;
    let (w_dec, b_dec) = (&t.params[2], &t.params[3]);
    let (_, _, active) = t.loss_and_gradients(x, rows, &vec![false; t.config.d_sae]);
    let mut out = Vec::new();
    for r in 0..rows {
        for c in 0..d {
            let mut v = b_dec[c] as f64;
            for &(i, a) in &active[r] {
                v += a as f64 * w_dec[i as usize * d + c] as f64;
            }
            out.push(v - x[r * d + c] as f64);
        }
    }
    out
}

/// AuxK computed by brute force in f64: per row the top d/2 dead latents by pre·‖W_dec[i]‖
/// reconstruct −residual (no ReLU, no b_dec).
fn aux_loss_fixed_residual(t: &Trainer, x: &[f32], rows: usize, dead: &[bool], error: &[f64]) -> f64 {
    let (d, m) = (t.config.d_in, t.config.d_sae);
    let (w_enc, b_enc, w_dec, b_dec) = (&t.params[0], &t.params[1], &t.params[2], &t.params[3]);
    let n_dead = dead.iter().filter(|&&v| v).count();
    let k_aux = (d / 2).min(n_dead);
    let weight = (n_dead as f64 / (d / 2) as f64).min(1.0);
    let norm = |i: usize| (0..d).map(|c| (w_dec[i * d + c] as f64).powi(2)).sum::<f64>().sqrt();
    let mut total = 0.0;
    for r in 0..rows {
        let pre: Vec<f64> = (0..m).map(|i| b_enc[i] as f64 + (0..d).map(|c| (x[r * d + c] - b_dec[c]) as f64 * w_enc[i * d + c] as f64).sum::<f64>()).collect();
        let mut cand: Vec<usize> = (0..m).filter(|&i| dead[i]).collect();
        cand.sort_by(|&a, &b| (pre[b] * norm(b)).total_cmp(&(pre[a] * norm(a))));
        for c in 0..d {
            let aux: f64 = cand[..k_aux].iter().map(|&i| pre[i] * w_dec[i * d + c] as f64).sum();
            total += (aux + error[r * d + c]).powi(2);
        }
    }
    weight * total / rows as f64
}

/// x = a sparse positive mix of 3 of 24 unit atoms in 16 dimensions.
fn planted(rows: usize, seed: u64) -> Vec<f32> {
    let (d, atoms) = (16, 24);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let dict: Vec<Vec<f32>> = (0..atoms)
        .map(|_| {
            let v: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.into_iter().map(|a| a / n).collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = vec![0f32; rows * d];
    for r in 0..rows {
        for _ in 0..3 {
            let (a, c) = (rng.random_range(0..atoms), rng.random_range(0.5f32..2.0));
            x[r * d..(r + 1) * d].iter_mut().zip(&dict[a]).for_each(|(o, v)| *o += c * v);
        }
    }
    x
}

#[test]
fn training_recovers_a_planted_sparse_code_and_saves_what_it_learned() {
    let (d, m, rows) = (16, 48, 256);
    for arch in [TrainArchitecture::TopK { k: 4 }, TrainArchitecture::BatchTopK { k: 4 }] {
        let mut cfg = TrainConfig::new(d, m, arch);
        cfg.lr = 3e-3;
        cfg.dead_feature_window = 50;
        let mut t = Trainer::new(cfg);
        let mut last = Default::default();
        for step in 0..600 {
            last = t.step(&planted(rows, step), rows);
        }
        assert!(last.explained_variance > 0.9, "{arch:?}: training explained variance {}", last.explained_variance);
        assert!(last.l0 <= 4.0 + 1e-9, "{arch:?}: l0 {}", last.l0);
        // The saved SAE on fresh data.
        let sae = t.to_sae(Default::default());
        let x = planted(rows, 10_000);
        let acts = sae.encode(&x, rows);
        let recon = sae.decode(&acts, rows);
        let mse: f64 = x.iter().zip(&recon).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / rows as f64;
        let (s, _, _) = t.loss_and_gradients(&x, rows, &vec![false; m]);
        match arch {
            // Same choice and output as training: the norms are folded, not changed.
            TrainArchitecture::TopK { .. } => assert!((mse - s.mse_loss).abs() <= 1e-4 * s.mse_loss.max(1e-3), "{mse} vs {}", s.mse_loss),
            // The learned threshold stands in for the batch-wide choice.
            TrainArchitecture::BatchTopK { .. } => {
                let l0 = acts.iter().filter(|&&a| a != 0.0).count() as f64 / rows as f64;
                assert!(mse < 2.0 * s.mse_loss + 0.05 && (2.0..=6.0).contains(&l0), "JumpReLU mse {mse} vs training {}, l0 {l0}", s.mse_loss);
            }
        }
    }
}
