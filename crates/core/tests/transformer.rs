//! glassbox's transformer against TransformerLens, for the three configurations it trains: the
//! fixtures hold random two-layer models with their hooks, logits and loss gradients, written
//! by bench/transformer_reference.py in float64.

use burn::tensor::{Int, TensorData};
use glassbox_core::io::SafetensorsFile;
use glassbox_core::model::{Architecture, MlpKind, Model, Norm, Params, Positions, Readout, TransformerConfig};
use glassbox_core::tensor::{from_vec, infer_device, to_vec, train_device, Tensor};
use glassbox_core::train::loss::{cross_entropy, fused_lm_cross_entropy};
use std::path::Path;

const BATCH: usize = 6;
const CTX: usize = 4;
const VOCAB: usize = 11;

fn fixture(kind: &str) -> SafetensorsFile {
    SafetensorsFile::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/transformer_{kind}.safetensors"))).unwrap()
}

fn config(kind: &str) -> TransformerConfig {
    let nanda = TransformerConfig { n_layers: 2, d_model: 16, n_heads: 2, d_head: 8, d_mlp: 24, d_vocab: VOCAB, d_vocab_out: VOCAB, n_ctx: CTX, ..TransformerConfig::modular_addition(VOCAB - 1) };
    match kind {
        "nanda" => nanda,
        "gpt" => TransformerConfig { readout: Readout::EveryPosition, norm: Norm::LayerNorm { eps: 1e-5 }, mlp: MlpKind::GeluTanh, attn_bias: true, tied_embeddings: true, ..nanda },
        _ => TransformerConfig {
            readout: Readout::EveryPosition,
            norm: Norm::RmsNorm { eps: 1e-8 },
            positions: Positions::Rotary { base: 10000.0 },
            mlp: MlpKind::Bilinear,
            mlp_bias: false,
            attn_residual_scale: 0.5,
            ..nanda
        },
    }
}

fn reference_model(kind: &str, device: &glassbox_core::tensor::Device) -> Model {
    let arch = Architecture::Transformer(config(kind));
    let file = fixture(kind);
    let specs = arch.param_specs();
    let host = specs.iter().map(|s| file.tensor_f32(&s.name).unwrap().data).collect();
    Model { arch, params: Params::from_host(specs, host, device) }
}

fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // Masked attention scores are -inf on both sides.
        if w.is_infinite() && g == w {
            continue;
        }
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{name}[{i}]: glassbox {g}, TransformerLens {w}");
    }
}

#[test]
fn hooks_and_logits_match_transformer_lens() {
    for kind in ["nanda", "gpt", "bilinear"] {
        let dev = infer_device();
        let model = reference_model(kind, &dev);
        let file = fixture(kind);
        let x = from_vec(file.tensor_f32("tokens").unwrap().data, [BATCH, CTX], &dev);
        let sites: Vec<String> = model.site_names().into_iter().filter(|s| s != "logits").collect();
        let (logits, found) = model.forward_sites(x, &sites).unwrap();
        assert_close(&format!("{kind} logits"), &to_vec(logits), &file.tensor_f32("logits").unwrap().data, 1e-5);
        assert_eq!(found.len(), sites.len());
        for site in found {
            let want = file.tensor_f32(&site.name).unwrap_or_else(|_| panic!("{kind}: no reference for {}", site.name));
            assert_eq!(site.shape, want.shape[1..], "{kind} {}: per-sample shape", site.name);
            assert_close(&format!("{kind} {}", site.name), &to_vec(site.value), &want.data, 1e-5);
        }
    }
}

#[test]
fn loss_gradients_match_transformer_lens() {
    for kind in ["nanda", "gpt", "bilinear"] {
        let dev = train_device();
        let model = reference_model(kind, &dev);
        let params = model.params.clone().require_grad();
        let model = Model { arch: model.arch.clone(), params };
        let file = fixture(kind);
        let x = from_vec(file.tensor_f32("tokens").unwrap().data, [BATCH, CTX], &dev);
        let labels: Vec<i64> = file.tensor_f32("labels").unwrap().data.iter().map(|&l| l as i64).collect();
        let loss = if kind == "nanda" {
            let logits = model.forward(x);
            let mut onehot = vec![0f32; BATCH * VOCAB];
            for (r, &l) in labels.iter().enumerate() {
                onehot[r * VOCAB + l as usize] = 1.0;
            }
            cross_entropy(logits, from_vec(onehot, [BATCH, VOCAB], &dev))
        } else {
            // The language-model trainer's loss: the unembedding fused with the cross-entropy.
            let targets = Tensor::<2, Int>::from_data(TensorData::new(labels, [BATCH, CTX]), &dev);
            let (hidden, w_u) = model.hidden_and_unembedding(x).unwrap();
            fused_lm_cross_entropy(hidden, w_u, targets)
        };
        let grads = loss.backward();
        let want: Vec<Vec<f32>> = model.params.specs.iter().map(|spec| file.tensor_f32(&format!("grad.{}", spec.name)).unwrap().data).collect();
        // Relative tolerance 1e-5 per parameter, plus f32's rounding (about 1e-7) of the model's
        // largest gradient as an absolute floor: the key bias's gradient vanishes in exact
        // arithmetic (softmax ignores a shift shared by all keys), so both sides are rounding.
        let largest = want.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        for ((spec, value), want) in model.params.specs.iter().zip(&model.params.values).zip(&want) {
            let g = to_vec(value.grad(&grads).unwrap());
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = g.iter().zip(want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err <= 1e-5 * scale + 1e-7 * largest, "{kind} {}: gradient differs by {err} (largest entry {scale}, model's {largest})", spec.name);
        }
    }
}
