//! SAELens's evals of an SAE at a language model's hook, on SAEs whose answers are known: one
//! that reconstructs exactly (every score 1) and one that outputs zero (the ablation, score 0).

use glassbox_sae::lm_eval::evaluate;
use glassbox_sae::saelens::{Architecture, Sae};
use serde_json::Map;
use std::path::Path;

fn tiny_gpt2() -> glassbox_lm::LoadedModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures/tiny-gpt2");
    glassbox_lm::load(dir.to_str().unwrap()).unwrap()
}

/// d_sae = 2·d: latents relu(x) and relu(−x), decoded back to x exactly (b_dec = 0).
fn exact_sae(d: usize, scale_out: f32) -> Sae {
    let m = 2 * d;
    let mut w_enc = vec![0f32; d * m];
    let mut w_dec = vec![0f32; m * d];
    for i in 0..d {
        w_enc[i * m + i] = 1.0;
        w_enc[i * m + d + i] = -1.0;
        w_dec[i * d + i] = scale_out;
        w_dec[(d + i) * d + i] = -scale_out;
    }
    Sae {
        architecture: Architecture::Standard,
        d_in: d,
        d_sae: m,
        w_enc,
        b_enc: vec![0.0; m],
        w_dec,
        b_dec: vec![0.0; d],
        apply_b_dec_to_input: true,
        metadata: Map::new(),
    }
}

fn contexts() -> Vec<Vec<u32>> {
    (0..3).map(|c| (0..16).map(|i| ((c * 37 + i * 11) % 200 + 3) as u32).collect()).collect()
}

#[test]
fn an_exact_sae_scores_one_and_a_zero_sae_scores_zero() {
    let m = tiny_gpt2();
    let d = m.model.config.d_model;
    let hook = "blocks.0.hook_resid_post";
    let exact = evaluate(&m, &exact_sae(d, 1.0), hook, &contexts(), 2, 0, |_| {}).unwrap();
    let p = exact.predictions.as_ref().unwrap();
    assert!(exact.explained_variance > 1.0 - 1e-9 && exact.mse < 1e-9, "{exact:?}");
    assert!((exact.cossim - 1.0).abs() < 1e-6 && (exact.l2_ratio - 1.0).abs() < 1e-6);
    assert!((p.ce_loss_score - 1.0).abs() < 1e-6 && (p.kl_div_score - 1.0).abs() < 1e-6, "{p:?}");
    assert!(p.kl_div_with_sae.abs() < 1e-9 && p.ce_loss_with_ablation > p.ce_loss_without_sae);
    // Exactly one latent of each pair (x_i, −x_i) fires (x_i is never exactly 0): l0 = d.
    assert!((exact.l0 - d as f64).abs() < 1e-9, "l0 {}", exact.l0);
    assert_eq!(exact.tokens, 48);
    // 3 contexts of 16 tokens predict 15 next tokens each.
    assert_eq!(p.predicted_tokens, 45);

    let zero = evaluate(&m, &exact_sae(d, 0.0), hook, &contexts(), 2, 0, |_| {}).unwrap();
    let p = zero.predictions.as_ref().unwrap();
    assert!(p.ce_loss_score.abs() < 1e-9 && p.kl_div_score.abs() < 1e-9, "{p:?}");
    assert!((zero.explained_variance - exact.explained_variance).abs() > 0.5);
}

#[test]
fn an_sae_of_another_width_is_refused() {
    let m = tiny_gpt2();
    let d = m.model.config.d_model;
    let err = evaluate(&m, &exact_sae(d + 1, 1.0), "blocks.0.hook_resid_post", &contexts(), 2, 0, |_| {}).unwrap_err().to_string();
    assert!(err.contains(&format!("reads {} values per token", d + 1)) && err.contains(&format!("has {d}")), "{err}");
    let err = evaluate(&m, &exact_sae(d, 1.0), "blocks.9.hook_resid_post", &contexts(), 2, 0, |_| {}).unwrap_err().to_string();
    assert!(err.contains("blocks.9.hook_resid_post"), "{err}");
}
