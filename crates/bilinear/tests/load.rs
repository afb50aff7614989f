//! Loading bilinear layers from safetensors + weight map, and the errors for bad input.

use glassbox_bilinear::load::{from_checkpoint, from_safetensors};
use glassbox_core::io::{write_f32, write_json, HostTensor};
use std::collections::HashMap;
use std::path::Path;

fn t(name: &str, shape: &[usize], f: impl Fn(usize) -> f32) -> HostTensor {
    let n = shape.iter().product();
    HostTensor { name: name.into(), shape: shape.to_vec(), data: (0..n).map(f).collect() }
}

fn write(dir: &Path, tensors: &[HostTensor], map: serde_json::Value) -> (std::path::PathBuf, std::path::PathBuf) {
    let (w, m) = (dir.join("layer.safetensors"), dir.join("map.json"));
    write_f32(&w, tensors, HashMap::new()).unwrap();
    write_json(&m, &map).unwrap();
    (w, m)
}

#[test]
fn stacked_reference_layout_splits_into_w_and_v() {
    let dir = tempfile::tempdir().unwrap();
    // PyTorch reference: one Linear(d_in = 3, 2 d_h = 4); rows 0..2 are W, rows 2..4 are V.
    let (w, m) = write(
        dir.path(),
        &[t("mlp.W.weight", &[4, 3], |i| i as f32), t("head.weight", &[2, 2], |i| 1.0 + i as f32), t("mlp.W.bias", &[4], |i| 10.0 + i as f32)],
        serde_json::json!({"wv": "mlp.W.weight", "p": "head.weight", "wv_bias": "mlp.W.bias"}),
    );
    let model = from_safetensors(&w, &m).unwrap();
    assert!(model.embed.is_none());
    let l = &model.layer;
    assert_eq!((l.w[(0, 0)], l.w[(1, 2)], l.v[(0, 0)], l.v[(1, 2)]), (0.0, 5.0, 6.0, 11.0));
    assert_eq!((l.b1.clone().unwrap(), l.b2.clone().unwrap()), (vec![10.0, 11.0], vec![12.0, 13.0]));
    // The layer computes what the reference computes: P((W x + b1) ⊙ (V x + b2)).
    let x = [1.0, -1.0, 2.0];
    let y = l.forward(&x);
    let left = [0.0 - 1.0 + 4.0 + 10.0, 3.0 - 4.0 + 10.0 + 11.0];
    let right = [6.0 - 7.0 + 16.0 + 12.0, 9.0 - 10.0 + 22.0 + 13.0];
    let g = [left[0] * right[0], left[1] * right[1]];
    assert_eq!(y, vec![g[0] + 2.0 * g[1], 3.0 * g[0] + 4.0 * g[1]]);
}

#[test]
fn bad_weight_maps_and_shapes_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = [t("w", &[2, 3], |_| 0.5), t("v", &[2, 3], |_| 0.5), t("p", &[4, 2], |_| 1.0), t("v_bad", &[3, 3], |_| 1.0)];
    let cases = [
        (serde_json::json!({"w": "w", "p": "p"}), "either both 'w' and 'v' or 'wv'"),
        (serde_json::json!({"w": "w", "v": "v", "wv": "w", "p": "p"}), "either both 'w' and 'v' or 'wv'"),
        (serde_json::json!({"w": "w", "v": "nope", "p": "p"}), "nope"),
        (serde_json::json!({"w": "w", "v": "v_bad", "p": "p"}), "W is 2x3 but V is 3x3"),
        (serde_json::json!({"w": "w", "v": "v", "p": "v_bad"}), "P has 3 columns but the layer has 2 hidden units"),
        (serde_json::json!({"w": "w", "v": "v", "p": "p", "b1": "p"}), "a vector is needed"),
        (serde_json::json!({"w": "w", "v": "v", "p": "p", "embed": "p"}), "embedding has 4 rows but the layer reads 3 inputs"),
        (serde_json::json!({"w": "w", "v": "v", "p": "p", "typo": "x"}), "unknown field"),
    ];
    for (map, want) in cases {
        let (w, m) = write(dir.path(), &base, map.clone());
        let err = from_safetensors(&w, &m).unwrap_err().to_string();
        assert!(err.contains(want), "{map}: {err}");
        assert!(err.contains("layer.safetensors") || err.contains("map.json"), "names the file: {err}");
    }
    let (w, m) = write(dir.path(), &[t("w", &[2, 3], |_| f32::NAN), t("v", &[2, 3], |_| 0.5), t("p", &[4, 2], |_| 1.0)], serde_json::json!({"w": "w", "v": "v", "p": "p"}));
    assert!(from_safetensors(&w, &m).unwrap_err().to_string().contains("NaN or Inf"));
}

#[test]
fn a_non_bilinear_checkpoint_is_refused_by_name() {
    use glassbox_core::checkpoint::{save, ModelCard};
    use glassbox_core::model::{Activation, Architecture, Model};
    use glassbox_core::tensor::infer_device;
    let dir = tempfile::tempdir().unwrap();
    let arch = Architecture::Mlp { dims: vec![3, 4, 2], activation: Activation::Relu, bias: true, embed: None };
    let model = Model::init(arch.clone(), 0, &infer_device()).unwrap();
    save(dir.path(), &model, &ModelCard::new(arch, 0)).unwrap();
    let err = from_checkpoint(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.json") && err.contains("mlp model") && err.contains("bilinear"), "{err}");
}

#[test]
fn a_bilinear_transformers_mlp_is_read_as_a_bilinear_layer() {
    use glassbox_core::model::{Architecture, MlpKind, Model, Norm, Positions, Readout, TransformerConfig};
    use glassbox_core::tensor::infer_device;
    let config = TransformerConfig {
        n_layers: 2, d_model: 8, n_heads: 2, d_head: 4, d_mlp: 12, d_vocab: 10, d_vocab_out: 10, n_ctx: 5, readout: Readout::EveryPosition,
        norm: Norm::RmsNorm { eps: 1e-8 }, positions: Positions::Rotary { base: 10000.0 }, mlp: MlpKind::Bilinear, mlp_bias: false,
        ..TransformerConfig::modular_addition(9)
    };
    let model = Model::init(Architecture::Transformer(config), 3, &infer_device()).unwrap();
    let layer = glassbox_bilinear::load::transformer_mlp(&model, 1).unwrap();
    // The transformer's own MLP output at hook_mlp_out from its input at ln2.hook_normalized.
    let x = glassbox_core::tensor::from_vec(vec![1.0, 4.0, 2.0, 7.0, 3.0], [1, 5], &infer_device());
    let sites = ["blocks.1.ln2.hook_normalized".to_string(), "blocks.1.hook_mlp_out".to_string()];
    let (_, found) = model.forward_sites(x, &sites).unwrap();
    let (input, output) = (glassbox_core::tensor::to_vec(found[0].value.clone()), glassbox_core::tensor::to_vec(found[1].value.clone()));
    for pos in 0..5 {
        let y = layer.forward(&input[pos * 8..(pos + 1) * 8].iter().map(|&v| v as f64).collect::<Vec<_>>());
        for c in 0..8 {
            assert!((y[c] - output[pos * 8 + c] as f64).abs() < 1e-5, "position {pos}, output {c}: {} vs {}", y[c], output[pos * 8 + c]);
        }
    }
    assert!(glassbox_bilinear::load::transformer_mlp(&model, 2).is_err());
}
