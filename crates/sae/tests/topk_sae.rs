//! The single-model TopK SAE: gradients against finite differences, SAELens-format files both
//! ways (a folder built by hand from SAELens's field list loads), clear errors for bad files, and
//! training that reconstructs planted data.

use faer::Mat;
use glassbox_core::io::{write_f32, HostTensor};
use glassbox_sae::metrics::r2_per_dim;
use glassbox_sae::planted::{Planted, PlantedConfig};
use glassbox_sae::topk_sae::{TopKSae, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

fn random(rows: usize, cols: usize, seed: u64) -> Mat<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Mat::from_fn(rows, cols, |_, _| rng.random_range(-1.0f32..1.0))
}

fn finite_difference(sae: &TopKSae, x: &Mat<f32>, dead: &[bool], opts: &TrainOptions, slot: usize, idx: usize) -> f64 {
    let h = 1e-3f32;
    let (mut up, mut down) = (sae.clone(), sae.clone());
    let (d, m) = (sae.d_in, sae.d_sae);
    let nudge = |s: &mut TopKSae, by: f32| match slot {
        0 => s.w_enc[(idx / m, idx % m)] += by,
        1 => s.b_enc[idx] += by,
        2 => s.w_dec[(idx / d, idx % d)] += by,
        _ => s.b_dec[idx] += by,
    };
    nudge(&mut up, h);
    nudge(&mut down, -h);
    (up.loss_and_gradients(x, dead, opts).0 - down.loss_and_gradients(x, dead, opts).0) / (2.0 * h as f64)
}

#[test]
fn gradients_match_finite_differences() {
    let x = random(24, 6, 1);
    let mut sae = TopKSae::init(&x, 10, 3, 2).unwrap();
    sae.b_enc = (0..10).map(|l| 0.05 * l as f32).collect();
    let opts = TrainOptions { aux_k: 2, ..TrainOptions::new(6, 1) };
    let alive = vec![false; 10];
    let (_, grads) = sae.loss_and_gradients(&x, &alive, &opts);
    for (slot, idx) in [(0, 7), (0, 33), (1, 4), (2, 11), (2, 50), (3, 2)] {
        let fd = finite_difference(&sae, &x, &alive, &opts, slot, idx);
        let analytic = grads[slot][idx] as f64;
        assert!((fd - analytic).abs() < 1e-4 + 0.01 * analytic.abs(), "slot {slot}[{idx}]: fd {fd} vs {analytic}");
    }
}

#[test]
fn auxk_gradients_of_dead_latents_match_finite_differences() {
    // The AuxK target (the residual) is detached, so only parameters of dead latents the main
    // TopK never picks can be checked against the loss itself: they leave the residual alone.
    let x = random(24, 6, 5);
    let mut sae = TopKSae::init(&x, 16, 2, 6).unwrap();
    let dead: Vec<bool> = (0..16).map(|l| l >= 10).collect();
    sae.b_enc = (0..16).map(|l| if dead[l] { 0.3 } else { 2.0 }).collect();
    let opts = TrainOptions { aux_k: 3, ..TrainOptions::new(6, 1) };
    let picked: Vec<u32> = sae.encode(&x).rows.iter().flatten().map(|p| p.0).collect();
    // TopK jumps where the 3rd and 4th dead candidates of a row swap: skip latents in a near tie there.
    let pre = sae.pre_activations(&x);
    let clear = |l: usize| {
        (0..x.nrows()).all(|r| {
            let mut ranked: Vec<(usize, f32)> = (10..16).map(|o| (o, pre[(r, o)].max(0.0))).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let (third, fourth) = (ranked[2], ranked[3]);
            !((third.1 - fourth.1).abs() < 0.01 && third.1 > 0.0 && (third.0 == l || fourth.0 == l))
        })
    };
    let quiet: Vec<usize> = (10..16).filter(|&l| !picked.contains(&(l as u32)) && clear(l)).collect();
    assert!(quiet.len() >= 2, "{quiet:?}");
    let (_, grads) = sae.loss_and_gradients(&x, &dead, &opts);
    let mut nonzero = 0;
    for &l in &quiet {
        for (slot, idx) in [(0, 2 * 16 + l), (1, l), (2, l * 6 + 1)] {
            let fd = finite_difference(&sae, &x, &dead, &opts, slot, idx);
            let analytic = grads[slot][idx] as f64;
            assert!((fd - analytic).abs() < 1e-4 + 0.01 * analytic.abs(), "latent {l} slot {slot}[{idx}]: fd {fd} vs {analytic}");
            nonzero += (analytic.abs() > 1e-3) as usize;
        }
    }
    assert!(nonzero > 0, "the aux term never reached a dead latent");
}

#[test]
fn saves_and_loads_bit_exactly() {
    let x = random(50, 5, 3);
    let mut sae = TopKSae::init(&x, 12, 2, 4).unwrap();
    sae.hook_name = "layers.0.post".into();
    let dir = tempfile::tempdir().unwrap();
    sae.save(dir.path()).unwrap();
    assert_eq!(TopKSae::load(dir.path()).unwrap(), sae);
}

#[test]
fn loads_a_saelens_folder_built_from_its_field_list() {
    // SAELens (v3-v5) cfg.json fields for a TopK SAE; weights in sae_weights.safetensors.
    let dir = tempfile::tempdir().unwrap();
    let cfg = serde_json::json!({
        "architecture": "standard", "d_in": 4, "d_sae": 6, "dtype": "float32", "device": "cpu",
        "model_name": "gpt2", "hook_name": "blocks.0.hook_resid_pre", "hook_layer": 0, "hook_head_index": null,
        "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 2}, "apply_b_dec_to_input": true,
        "finetuning_scaling_factor": false, "sae_lens_training_version": "5.0.0", "prepend_bos": true,
        "dataset_path": "x", "context_size": 128, "normalize_activations": "none", "neuronpedia_id": null,
    });
    std::fs::write(dir.path().join("cfg.json"), cfg.to_string()).unwrap();
    let t = |name: &str, shape: Vec<usize>| HostTensor { name: name.into(), data: (0..shape.iter().product::<usize>()).map(|i| i as f32 * 0.1).collect(), shape };
    let tensors = vec![t("W_enc", vec![4, 6]), t("b_enc", vec![6]), t("W_dec", vec![6, 4]), t("b_dec", vec![4])];
    write_f32(&dir.path().join("sae_weights.safetensors"), &tensors, HashMap::new()).unwrap();
    let sae = TopKSae::load(dir.path()).unwrap();
    assert_eq!((sae.d_in, sae.d_sae, sae.k, sae.hook_name.as_str()), (4, 6, 2, "blocks.0.hook_resid_pre"));
    assert!((sae.w_enc[(1, 2)] - 0.8).abs() < 1e-6 && (sae.w_dec[(2, 1)] - 0.9).abs() < 1e-6);
    // x = b_dec: pre = b_enc, so the two largest b_enc entries fire.
    let x = Mat::from_fn(1, 4, |_, c| sae.b_dec[c]);
    assert_eq!(sae.encode(&x).rows[0].iter().map(|p| p.0).collect::<Vec<_>>(), vec![5, 4]);

    // A wrong shape, a missing tensor and a non-TopK SAE are named.
    write_f32(&dir.path().join("sae_weights.safetensors"), &[tensors[0].clone(), t("b_enc", vec![5]), tensors[2].clone(), tensors[3].clone()], HashMap::new()).unwrap();
    let e = TopKSae::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("b_enc") && e.contains("[5]") && e.contains("sae_weights.safetensors"), "{e}");
    write_f32(&dir.path().join("sae_weights.safetensors"), &tensors[..3], HashMap::new()).unwrap();
    let e = TopKSae::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("no tensor named 'b_dec'"), "{e}");
    let mut relu = cfg.clone();
    relu["activation_fn_str"] = "relu".into();
    std::fs::write(dir.path().join("cfg.json"), relu.to_string()).unwrap();
    assert!(TopKSae::load(dir.path()).unwrap_err().to_string().contains("not a TopK SAE"));
}

#[test]
fn training_reconstructs_planted_sparse_data() {
    let planted = Planted::new(&PlantedConfig { dims: vec![32], shared: 48, private: 0, ..PlantedConfig::default() });
    let data = planted.sample(8000, 1).remove(0);
    let test = planted.sample(2000, 2).remove(0);
    let mut sae = TopKSae::init(&data, 128, 6, 0).unwrap();
    let before = r2_per_dim(&test, &sae.decode(&sae.encode(&test)));
    let report = sae.train(&data, &TrainOptions { lr: 2e-3, dead_after: 20_000, ..TrainOptions::new(32, 1500) });
    let after = r2_per_dim(&test, &sae.decode(&sae.encode(&test)));
    assert!(after >= 0.8 && after > before + 0.2, "explained variance {before:.3} -> {after:.3}");
    assert!(report.dead_fraction <= 0.3, "{report:?}");
    for l in 0..sae.d_sae {
        let n: f32 = (0..sae.d_in).map(|c| sae.w_dec[(l, c)].powi(2)).sum();
        assert!((n - 1.0).abs() < 1e-4);
    }
}
