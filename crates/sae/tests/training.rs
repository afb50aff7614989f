//! The SAELens-recipe trainer: gradients against finite differences (main loss, AuxK, L1) and
//! JumpReLU's straight-through threshold gradient against a brute-force f64 computation;
//! training that recovers a planted sparse code for every architecture; the saved SAE, input
//! scale folded in, reconstructs as the trainer does.

use glassbox_sae::training::{GradientPath, TrainArchitecture, TrainConfig, Trainer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(rows: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows * d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn total_loss(t: &Trainer, x: &[f32], rows: usize, dead: &[bool]) -> f64 {
    let (s, _, _) = t.loss_and_gradients(x, rows, dead);
    s.mse_loss + s.aux_loss + s.sparsity_loss
}

/// Central differences of `loss` over every parameter, against `analytic`.
fn check(t: &mut Trainer, analytic: &[Vec<f32>], loss: impl Fn(&Trainer) -> f64, what: &str) {
    let eps = 1e-3f32;
    let scale = analytic.iter().flatten().fold(0f32, |m, g| m.max(g.abs()));
    // The four weight tensors (a JumpReLU threshold has no true gradient).
    for (p, grads) in analytic.iter().enumerate().take(4) {
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
    let archs = [TrainArchitecture::TopK { k: 3 }, TrainArchitecture::BatchTopK { k: 3 }];
    for (arch, path) in archs.into_iter().flat_map(|a| [(a, GradientPath::Sparse), (a, GradientPath::Dense)]) {
        let mut cfg = TrainConfig::new(d, m, arch);
        cfg.seed = 3;
        cfg.gradient_path = path;
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
            _ => {
                let l0 = acts.iter().filter(|&&a| a != 0.0).count() as f64 / rows as f64;
                assert!(mse < 2.0 * s.mse_loss + 0.05 && (2.0..=6.0).contains(&l0), "JumpReLU mse {mse} vs training {}, l0 {l0}", s.mse_loss);
            }
        }
    }
}

fn spread_trainer(d: usize, m: usize, arch: TrainArchitecture, path: GradientPath) -> Trainer {
    let mut cfg = TrainConfig::new(d, m, arch);
    cfg.seed = 3;
    cfg.gradient_path = path;
    let mut t = Trainer::new(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for p in t.params.iter_mut().take(4) {
        p.iter_mut().for_each(|v| *v += rng.random_range(-0.5f32..0.5));
    }
    t
}

#[test]
fn standard_l1_gradients_match_finite_differences() {
    let (d, m, rows) = (4, 10, 6);
    for path in [GradientPath::Sparse, GradientPath::Dense] {
        let mut t = spread_trainer(d, m, TrainArchitecture::Standard { l1_coefficient: 0.7 }, path);
        let x = data(rows, d, 1);
        let alive = vec![false; m];
        let (s, g, active) = t.loss_and_gradients(&x, rows, &alive);
        assert!(s.sparsity_loss > 0.0 && s.aux_loss == 0.0);
        // ReLU: every positive pre-activation is active.
        assert!(active.iter().map(Vec::len).sum::<usize>() > rows, "too few active latents to test");
        check(&mut t, &g, |t| total_loss(t, &x, rows, &alive), &format!("standard {path:?}"));
    }
}

#[test]
fn jumprelu_gradients_match_finite_differences_and_the_threshold_estimator() {
    let (d, m, rows) = (4, 10, 6);
    let (c, bw) = (0.3f32, 0.4f32);
    let mut t = spread_trainer(d, m, TrainArchitecture::JumpRelu { l0_coefficient: c, bandwidth: bw, init_threshold: 0.0 }, GradientPath::Sparse);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    t.params[4].iter_mut().for_each(|v| *v = rng.random_range(0.0f32..0.6));
    let x = data(rows, d, 1);
    let alive = vec![false; m];
    let (s, g, active) = t.loss_and_gradients(&x, rows, &alive);
    let l0 = active.iter().map(Vec::len).sum::<usize>() as f64 / rows as f64;
    assert!((s.sparsity_loss - c as f64 * l0).abs() < 1e-9 && l0 > 0.5, "l0 {l0}, sparsity loss {}", s.sparsity_loss);
    check(&mut t, &g, |t| total_loss(t, &x, rows, &alive), "jumprelu");

    // The threshold's straight-through gradient, by brute force in f64.
    let (w_enc, b_enc, w_dec, b_dec, theta) = (&t.params[0], &t.params[1], &t.params[2], &t.params[3], &t.params[4]);
    let mut want = vec![0f64; m];
    let mut in_window = 0;
    for r in 0..rows {
        let pre: Vec<f64> = (0..m).map(|i| b_enc[i] as f64 + (0..d).map(|k| (x[r * d + k] - b_dec[k]) as f64 * w_enc[i * d + k] as f64).sum::<f64>()).collect();
        let out: Vec<f64> = (0..d).map(|k| b_dec[k] as f64 + (0..m).filter(|&i| pre[i] > theta[i] as f64).map(|i| pre[i] * w_dec[i * d + k] as f64).sum::<f64>()).collect();
        for i in 0..m {
            let u = (pre[i] - theta[i] as f64) / bw as f64;
            if u.abs() < 0.5 {
                in_window += 1;
                // ∂MSE/∂act_i = 2/rows · (x̂ − x)·W_dec[i]
                let g_act: f64 = (0..d).map(|k| 2.0 / rows as f64 * (out[k] - x[r * d + k] as f64) * w_dec[i * d + k] as f64).sum();
                want[i] += -(theta[i] as f64 / bw as f64) * g_act - c as f64 / (bw as f64 * rows as f64);
            }
        }
    }
    assert!(in_window >= 5, "only {in_window} pre-activations near a threshold");
    for i in 0..m {
        assert!((g[4][i] as f64 - want[i]).abs() < 1e-5 * (1.0 + want[i].abs()), "threshold {i}: {} vs {}", g[4][i], want[i]);
    }
}

#[test]
fn jumprelu_and_standard_learn_a_planted_code_and_save_it_with_the_input_scale_folded_in() {
    let (d, m, rows) = (16, 48, 256);
    for arch in [TrainArchitecture::jumprelu(0.05), TrainArchitecture::Standard { l1_coefficient: 1.0 }] {
        let mut cfg = TrainConfig::new(d, m, arch);
        cfg.lr = 3e-3;
        cfg.sparsity_warm_up_steps = 100;
        let mut t = Trainer::new(cfg);
        // Inputs seen at twice their size, as a normalisation would.
        t.input_scale = 2.0;
        let mut last = Default::default();
        for step in 0..800 {
            last = t.step(&planted(rows, step), rows);
        }
        assert!(last.explained_variance > 0.9, "{arch:?}: training explained variance {}", last.explained_variance);
        assert!(last.l0 < 12.0, "{arch:?}: l0 {}, explained variance {}", last.l0, last.explained_variance);
        // The saved SAE on the original units reconstructs as the trainer does on scaled ones.
        let sae = t.to_sae(Default::default());
        let x = planted(rows, 10_000);
        let scaled: Vec<f32> = x.iter().map(|v| v * 2.0).collect();
        let recon = sae.decode(&sae.encode(&x, rows), rows);
        let mse: f64 = x.iter().zip(&recon).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / rows as f64;
        let (s, _, _) = t.loss_and_gradients(&scaled, rows, &vec![false; m]);
        assert!((4.0 * mse - s.mse_loss).abs() <= 1e-4 * s.mse_loss.max(1e-3), "{arch:?}: saved {} vs training {}", 4.0 * mse, s.mse_loss);
    }
}

#[test]
fn topk_and_batchtopk_save_with_the_input_scale_folded_in() {
    let (d, m, rows) = (16, 48, 256);
    for arch in [TrainArchitecture::TopK { k: 4 }, TrainArchitecture::BatchTopK { k: 4 }] {
        let mut t = Trainer::new(TrainConfig::new(d, m, arch));
        t.input_scale = 0.5;
        for step in 0..200 {
            t.step(&planted(rows, step), rows);
        }
        let x = planted(rows, 10_000);
        let sae = t.to_sae(Default::default());
        let acts = sae.encode(&x, rows);
        let scaled: Vec<f32> = x.iter().map(|v| v * 0.5).collect();
        let (s, _, active) = t.loss_and_gradients(&scaled, rows, &vec![false; m]);
        if let TrainArchitecture::TopK { .. } = arch {
            let recon = sae.decode(&acts, rows);
            let mse: f64 = x.iter().zip(&recon).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / rows as f64;
            assert!((0.25 * mse - s.mse_loss).abs() <= 1e-4 * s.mse_loss.max(1e-3), "TopK: saved {} vs training {}", 0.25 * mse, s.mse_loss);
        }
        // The same latents fire (BatchTopK: those above the learned threshold, in the units
        // the trainer chose them in).
        let norms: Vec<f32> = t.params[2].chunks(d).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
        for r in 0..rows {
            let saved: Vec<usize> = (0..m).filter(|&i| acts[r * m + i] != 0.0).collect();
            let want: Vec<usize> = match arch {
                TrainArchitecture::TopK { .. } => {
                    let mut v: Vec<usize> = active[r].iter().map(|&(i, _)| i as usize).collect();
                    v.sort();
                    v
                }
                _ => {
                    let pre = pre_activations(&t, &scaled[r * d..(r + 1) * d]);
                    (0..m).filter(|&i| pre[i] * norms[i] as f64 > t.threshold).collect()
                }
            };
            assert_eq!(saved, want, "{arch:?} row {r}");
        }
    }
}

fn pre_activations(t: &Trainer, x: &[f32]) -> Vec<f64> {
    let (d, m) = (t.config.d_in, t.config.d_sae);
    let (w_enc, b_enc, b_dec) = (&t.params[0], &t.params[1], &t.params[3]);
    (0..m).map(|i| b_enc[i] as f64 + (0..d).map(|k| (x[k] - b_dec[k]) as f64 * w_enc[i * d + k] as f64).sum::<f64>()).collect()
}

#[test]
fn a_checkpointed_trainer_continues_exactly_as_an_uninterrupted_one() {
    let (d, m, rows) = (16, 48, 64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trainer.safetensors");
    for arch in [TrainArchitecture::BatchTopK { k: 4 }, TrainArchitecture::jumprelu(0.05)] {
        let mut cfg = TrainConfig::new(d, m, arch);
        cfg.dead_feature_window = 5;
        let mut straight = Trainer::new(cfg.clone());
        straight.input_scale = 0.7;
        for step in 0..20 {
            straight.step(&planted(rows, step), rows);
        }
        straight.save_checkpoint(&path, &serde_json::json!({"tokens": 1280})).unwrap();
        let (mut resumed, progress) = Trainer::load_checkpoint(cfg.clone(), &path).unwrap();
        assert_eq!(progress["tokens"], 1280);
        for step in 20..40 {
            let a = straight.step(&planted(rows, step), rows);
            let b = resumed.step(&planted(rows, step), rows);
            assert_eq!(a, b, "{arch:?} step {step}");
        }
        assert_eq!(straight.params, resumed.params);
        assert_eq!(straight.threshold, resumed.threshold);
        // Another configuration is refused, with the file named.
        let mut other = cfg.clone();
        other.lr = 1e-3;
        let err = Trainer::load_checkpoint(other, &path).err().expect("a different lr must be refused").to_string();
        assert!(err.contains("trainer.safetensors") && err.contains("different training configuration"), "{err}");
    }
}

/// The sparse and dense gradient paths agree at a realistic width, for every architecture,
/// dead latents included.
#[test]
fn sparse_and_dense_gradients_agree() {
    let (d, m, rows) = (32, 256, 64);
    let x = data(rows, d, 2);
    let archs = [TrainArchitecture::TopK { k: 8 }, TrainArchitecture::BatchTopK { k: 8 }, TrainArchitecture::jumprelu(0.1), TrainArchitecture::Standard { l1_coefficient: 0.1 }];
    for arch in archs {
        let sparse = spread_trainer(d, m, arch, GradientPath::Sparse);
        let dense = spread_trainer(d, m, arch, GradientPath::Dense);
        let dead: Vec<bool> = (0..m).map(|i| i % 5 == 0).collect();
        let (a, ga, _) = sparse.loss_and_gradients(&x, rows, &dead);
        let (b, gb, _) = dense.loss_and_gradients(&x, rows, &dead);
        for (u, v) in [(a.mse_loss, b.mse_loss), (a.aux_loss, b.aux_loss), (a.sparsity_loss, b.sparsity_loss), (a.l0, b.l0)] {
            assert!((u - v).abs() <= 1e-6 * u.abs().max(1.0), "{arch:?}: {a:?} vs {b:?}");
        }
        for (p, (u, v)) in ga.iter().zip(&gb).enumerate() {
            let scale = u.iter().fold(0f32, |s, g| s.max(g.abs()));
            for (j, (x, y)) in u.iter().zip(v).enumerate() {
                assert!((x - y).abs() <= 1e-4 * scale, "{arch:?} param {p}[{j}]: sparse {x} dense {y}");
            }
        }
    }
}
