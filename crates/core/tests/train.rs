//! Losses, gradients, optimiser steps, resume and divergence handling.

mod common;
use common::{random_classes, random_split};
use glassbox_core::checkpoint;
use glassbox_core::data::Split;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec, train_device};
use glassbox_core::train::loss::{bce_with_logits, cross_entropy};
use glassbox_core::train::optim::{clip_grad_norm, weighted_sum, Adam, OptimConfig, OptimKind, Weighted};
use glassbox_core::train::{self, RunOptions, TrainConfig};

#[test]
fn cross_entropy_and_bce_match_hand_computation() {
    let dev = infer_device();
    let logits = vec![1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0];
    let onehot = vec![0.0f32, 1.0, 0.0, 1.0, 0.0, 0.0];
    let ce = to_vec(cross_entropy(from_vec(logits.clone(), [2, 3], &dev), from_vec(onehot, [2, 3], &dev)))[0] as f64;
    let lse = |a: &[f64]| a.iter().map(|v| v.exp()).sum::<f64>().ln();
    let want = ((lse(&[1.0, 2.0, 0.5]) - 2.0) + (lse(&[-1.0, 0.0, 3.0]) + 1.0)) / 2.0;
    assert!((ce - want).abs() < 1e-6, "{ce} vs {want}");
    let y = vec![1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0];
    let bce = to_vec(bce_with_logits(from_vec(logits.clone(), [2, 3], &dev), from_vec(y.clone(), [2, 3], &dev)))[0] as f64;
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want: f64 = logits.iter().zip(&y).map(|(&x, &t)| {
        let p = sig(x as f64);
        -(t as f64 * p.ln() + (1.0 - t as f64) * (1.0 - p).ln())
    }).sum::<f64>() / 6.0;
    assert!((bce - want).abs() < 1e-6, "{bce} vs {want}");
}

/// Two Adam/AdamW steps on a 2-vector against the PyTorch update written out by hand.
#[test]
fn adam_and_adamw_follow_pytorch_updates() {
    for kind in [OptimKind::Adam, OptimKind::AdamW] {
        let cfg = OptimConfig { kind, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
        let mut adam = Adam::new(cfg, &[2]);
        let mut p = [0.5f64, -1.0];
        let grads = [[0.2f64, -0.4], [0.1, 0.3]];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        let lr = 0.01;
        let mut pt = vec![p.iter().map(|&x| x as f32).collect::<Vec<f32>>()];
        for (t, g) in grads.iter().enumerate() {
            adam.update(&mut pt, &[g.iter().map(|&x| x as f32).collect()], lr);
            let t = t as i32 + 1;
            for i in 0..2 {
                let mut gi = g[i];
                match kind {
                    OptimKind::Adam => gi += 0.1 * p[i],
                    OptimKind::AdamW => p[i] *= 1.0 - lr * 0.1,
                }
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.999 * v[i] + 0.001 * gi * gi;
                let denom = v[i].sqrt() / (1.0 - 0.999f64.powi(t)).sqrt() + 1e-8;
                p[i] -= lr / (1.0 - 0.9f64.powi(t)) * m[i] / denom;
            }
        }
        let got = &pt[0];
        for i in 0..2 {
            assert!((got[i] as f64 - p[i]).abs() < 1e-6, "{kind:?}: {} vs {}", got[i], p[i]);
        }
    }
}

#[test]
fn clipping_scales_to_the_max_norm() {
    let mut g = vec![vec![3.0f32, 0.0], vec![0.0f32, 4.0]];
    let norm = clip_grad_norm(&mut g, 1.0);
    assert!((norm - 5.0).abs() < 1e-9);
    let c = 1.0 / (5.0 + 1e-6);
    assert!((g[0][0] as f64 - 3.0 * c).abs() < 1e-6);
    assert!((g[1][1] as f64 - 4.0 * c).abs() < 1e-6);
    // Below the limit nothing changes.
    let norm = clip_grad_norm(&mut g, 10.0);
    assert!((norm - 1.0).abs() < 1e-5 && (g[0][0] as f64 - 3.0 * c).abs() < 1e-6);
}

/// The row blocks' weighted gradients sum to the gradient of the whole batch, for any number of
/// shards, and their weighted losses to its mean loss.
#[test]
fn sharded_gradients_sum_to_the_batch_gradient() {
    let dev = train_device();
    let data = random_classes(200, 12, 3, 5);
    let idx: Vec<usize> = (0..200).collect();
    let arch = Architecture::Mlp { dims: vec![12, 16, 3], activation: Activation::Relu, bias: true, embed: None };
    let model = Model::init(arch, 1, &dev).unwrap();
    let (x, y) = train::batch(&data, &idx, &dev);
    let (loss, whole) = train::block_gradients(&model, &data, x.clone(), y.clone(), 1, false);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].weight, 1.0);
    let whole = weighted_sum(&whole);
    for shards in [2, 3, 4] {
        let (l, blocks) = train::block_gradients(&model, &data, x.clone(), y.clone(), shards, false);
        assert_eq!(blocks.len(), shards);
        assert!((blocks.iter().map(|b| b.weight as f64).sum::<f64>() - 1.0).abs() < 1e-6);
        assert!((l - loss).abs() < 1e-6 * loss, "{shards} shards: loss {l} vs {loss}");
        for (a, b) in weighted_sum(&blocks).iter().zip(&whole) {
            common::assert_close(a, b, 1e-5, &format!("{shards} shards"));
        }
    }
}

/// Adam on blocks summed as it reads them is bit for bit Adam on the summed gradient, for two
/// blocks (the fused pair kernel) and three (the general path), on tensors above and below the
/// parallel chunk size.
#[test]
fn weighted_update_equals_the_update_on_the_summed_gradient() {
    let sizes = [40_000, 7];
    let values = |seed: u32| -> Vec<Vec<f32>> {
        sizes.iter().map(|&n| (0..n).map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0).collect()).collect()
    };
    for count in [2, 3] {
        let blocks: Vec<Weighted<Vec<f32>>> = (0..count).map(|b| Weighted { weight: [0.3, 0.5, 0.2][b], grads: values(b as u32 + 1) }).collect();
        let cfg = OptimConfig { kind: OptimKind::AdamW, weight_decay: 0.1, ..Default::default() };
        let (mut fused, mut plain) = (Adam::new(cfg.clone(), &sizes), Adam::new(cfg, &sizes));
        let (mut p_fused, mut p_plain) = (values(0), values(0));
        for _ in 0..3 {
            fused.update_weighted(&mut p_fused, &blocks, 1e-2);
            plain.update(&mut p_plain, &weighted_sum(&blocks), 1e-2);
        }
        assert_eq!(p_fused, p_plain, "{count} blocks");
        assert_eq!((fused.m, fused.v), (plain.m, plain.v), "{count} blocks");
    }
}

/// Autodiff gradients of the bilinear model against central finite differences in f64.
#[test]
fn bilinear_gradients_match_finite_differences() {
    let dev = train_device();
    let arch = Architecture::Bilinear { d_in: 3, d_hidden: 2, d_out: 2, bias: true, embed: true };
    let m = Model::init(arch.clone(), 4, &dev).unwrap();
    let x = vec![0.3f32, -0.7, 0.9, 0.1, 0.5, -0.2];
    let y = vec![1.0f32, 0.0, 0.0, 1.0];
    let loss = cross_entropy(m.forward(from_vec(x.clone(), [2, 3], &dev)), from_vec(y.clone(), [2, 2], &dev));
    let grads = loss.backward();
    let host = m.params.to_host();
    // naive f64 loss of flat host parameters
    let f = |p: &[Vec<f64>]| -> f64 {
        let (e, w, wb, v, vb, u) = (&p[0], &p[1], &p[2], &p[3], &p[4], &p[5]);
        let mut total = 0.0;
        for r in 0..2 {
            let h: Vec<f64> = (0..2).map(|j| (0..3).map(|i| e[j * 3 + i] * x[r * 3 + i] as f64).sum()).collect();
            let g: Vec<f64> = (0..2).map(|k| {
                let l: f64 = wb[k] + (0..2).map(|j| w[k * 2 + j] * h[j]).sum::<f64>();
                let rr: f64 = vb[k] + (0..2).map(|j| v[k * 2 + j] * h[j]).sum::<f64>();
                l * rr
            }).collect();
            let z: Vec<f64> = (0..2).map(|c| (0..2).map(|k| u[c * 2 + k] * g[k]).sum()).collect();
            let lse = z.iter().map(|a| a.exp()).sum::<f64>().ln();
            total += lse - z[if y[r * 2] == 1.0 { 0 } else { 1 }];
        }
        total / 2.0
    };
    let p64: Vec<Vec<f64>> = host.iter().map(|v| v.iter().map(|&a| a as f64).collect()).collect();
    let names: Vec<&str> = m.params.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["embed.weight", "layers.0.w.weight", "layers.0.w.bias", "layers.0.v.weight", "layers.0.v.bias", "head.weight"]);
    for (pi, value) in m.params.values.iter().enumerate() {
        let g = to_vec(value.grad(&grads).unwrap());
        for k in 0..g.len() {
            let (mut a, mut b) = (p64.clone(), p64.clone());
            a[pi][k] += 1e-6;
            b[pi][k] -= 1e-6;
            let fd = (f(&a) - f(&b)) / 2e-6;
            assert!((g[k] as f64 - fd).abs() < 1e-4 * (1.0 + fd.abs()), "{}[{k}]: {} vs {fd}", names[pi], g[k]);
        }
    }
}

fn small_config(epochs: usize) -> TrainConfig {
    TrainConfig { epochs, batch_size: 16, lr: 5e-3, input_noise: 0.1, clip_grad_norm: Some(1.0), ..Default::default() }
}

fn opts(dir: &std::path::Path, resume: bool, stop: Option<usize>) -> RunOptions {
    RunOptions { out_dir: dir.to_path_buf(), name: "t".into(), command: "test".into(), seed: 3, resume, progress: false, stop_after_epochs: stop, save_every: 1 }
}

fn spec() -> DataSpec {
    DataSpec::Digits { seed: 0 }
}

#[test]
fn training_learns_and_writes_a_loadable_checkpoint() {
    let data = random_split(200, 5, 2, 1);
    // a learnable rule: class = (x0 > 0)
    let data = relabel(data);
    let dir = tempfile::tempdir().unwrap();
    let arch = Architecture::Mlp { dims: vec![5, 16, 2], activation: glassbox_core::model::Activation::Relu, bias: true, embed: None };
    let t = train::train(arch, &data, &spec(), &small_config(15), &opts(dir.path(), false, None)).unwrap();
    assert_eq!(t.history.len(), 15);
    let acc = t.history.last().unwrap().test_accuracy.unwrap();
    assert!(acc > 0.9, "test accuracy {acc}");
    assert!(t.history.last().unwrap().train_loss < t.history[0].train_loss);
    let (back, card) = checkpoint::load(dir.path(), &infer_device()).unwrap();
    assert_eq!(card.epochs_done, 15);
    assert_eq!(back.params.to_host(), t.model.params.to_host());
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap()).unwrap();
    assert_eq!(run["history"].as_array().unwrap().len(), 15);
}

fn relabel(mut s: Split) -> Split {
    for set in [&mut s.train, &mut s.test] {
        if let glassbox_core::data::Targets::Classes { labels, .. } = &mut set.targets {
            for (i, l) in labels.iter_mut().enumerate() {
                *l = (set.inputs[i * set.input_dim] > 0.0) as u32;
            }
        }
    }
    s
}

#[test]
fn a_resumed_run_ends_with_the_same_weights_as_an_unbroken_one() {
    let data = relabel(random_split(100, 5, 2, 2));
    let arch = Architecture::Bilinear { d_in: 5, d_hidden: 8, d_out: 2, bias: false, embed: true };
    let whole = tempfile::tempdir().unwrap();
    let a = train::train(arch.clone(), &data, &spec(), &small_config(5), &opts(whole.path(), false, None)).unwrap();
    let parts = tempfile::tempdir().unwrap();
    let first = train::train(arch.clone(), &data, &spec(), &small_config(5), &opts(parts.path(), false, Some(2))).unwrap();
    assert_eq!(first.card.epochs_done, 2);
    let b = train::train(arch.clone(), &data, &spec(), &small_config(5), &opts(parts.path(), true, None)).unwrap();
    assert_eq!(b.card.epochs_done, 5);
    assert_eq!(b.history, {
        let mut h = a.history.clone();
        for (x, y) in h.iter_mut().zip(&b.history) {
            x.seconds = y.seconds;
        }
        h
    });
    let (wa, wb) = (a.model.params.to_host(), b.model.params.to_host());
    assert!(wa.iter().flatten().zip(wb.iter().flatten()).all(|(x, y)| x.to_bits() == y.to_bits()));
    // resuming with another configuration is refused
    let err = train::train(arch, &data, &spec(), &small_config(6), &opts(parts.path(), true, None)).err().unwrap().to_string();
    assert!(err.contains("cannot resume"), "{err}");
}

#[test]
fn nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint() {
    let data = relabel(random_split(64, 5, 2, 3));
    let arch = Architecture::Mlp { dims: vec![5, 8, 2], activation: glassbox_core::model::Activation::Relu, bias: true, embed: None };
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig { input_noise: 0.0, clip_grad_norm: None, ..small_config(3) };
    let good = train::train(arch.clone(), &data, &spec(), &cfg, &opts(dir.path(), false, Some(1))).unwrap();
    // poison one training input: the second epoch meets a NaN loss
    let mut bad = data.clone();
    bad.train.inputs[7] = f32::NAN;
    let err = train::train(arch, &bad, &spec(), &cfg, &opts(dir.path(), true, None)).err().unwrap().to_string();
    assert!(err.contains("training loss became NaN at step"), "{err}");
    assert!(err.contains("(epoch 2, batch"), "{err}");
    assert!(err.contains("after epoch 1"), "{err}");
    let (kept, card) = checkpoint::load(dir.path(), &infer_device()).unwrap();
    assert_eq!(card.epochs_done, 1);
    assert_eq!(kept.params.to_host(), good.model.params.to_host());
}

#[test]
fn a_model_that_does_not_fit_the_data_is_refused() {
    let data = random_split(20, 5, 2, 1);
    let arch = Architecture::Mlp { dims: vec![4, 8, 2], activation: glassbox_core::model::Activation::Relu, bias: true, embed: None };
    let dir = tempfile::tempdir().unwrap();
    let err = train::train(arch, &data, &spec(), &small_config(1), &opts(dir.path(), false, None)).err().unwrap().to_string();
    assert!(err.contains("maps 4 -> 2") && err.contains("5 inputs"), "{err}");
}
