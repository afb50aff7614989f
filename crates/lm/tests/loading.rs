//! Loading models: bad files give errors that name the file and the problem (never a panic),
//! and the load-time option of folding the norms.

mod common;

use common::{fixture, real_model};
use std::path::Path;

/// A copy of the tiny GPT-2 folder to break.
fn tiny_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("tiny-gpt2").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn load_err(path: &Path) -> String {
    match glassbox_lm::load(path.to_str().unwrap()) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_config(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn unknown_architecture_is_named_with_the_supported_ones() {
    let dir = tiny_copy();
    edit_config(dir.path(), |c| {
        c["architectures"] = serde_json::json!(["MambaForCausalLM"]);
        c["model_type"] = serde_json::json!("mamba");
    });
    let err = load_err(dir.path());
    assert!(err.contains("config.json") && err.contains("MambaForCausalLM") && err.contains("LlamaForCausalLM"), "{err}");
}

#[test]
fn a_weight_of_the_wrong_shape_or_missing_is_named() {
    let dir = tiny_copy();
    edit_config(dir.path(), |c| c["n_inner"] = serde_json::json!(100));
    let err = load_err(dir.path());
    assert!(err.contains("model.safetensors") && err.contains("mlp.c_fc.weight") && err.contains("[64, 100]"), "{err}");

    let dir = tiny_copy();
    edit_config(dir.path(), |c| c["n_layer"] = serde_json::json!(3));
    let err = load_err(dir.path());
    assert!(err.contains("h.2.ln_1.weight is missing"), "{err}");
}

#[test]
fn missing_or_corrupt_tokenizer_json_is_named() {
    let dir = tiny_copy();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("no tokenizer.json"), "{err}");
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": 12").unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn missing_weights_and_bad_ids_are_explained() {
    let dir = tiny_copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(load_err(dir.path()).contains("no model.safetensors"));
    let err = load_err(Path::new("nobody/nothing-here"));
    assert!(err.contains("not in the local Hugging Face cache") && err.contains("never downloads"), "{err}");
}

#[test]
fn gguf_with_a_wrong_magic_or_truncated_data_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGML\x03\x00\x00\x00 and then some bytes").unwrap();
    let err = load_err(&bad);
    assert!(err.contains("bad.gguf") && err.contains("not a GGUF file"), "{err}");

    let Some(real) = real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else { return };
    let bytes = std::fs::read(real).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&cut);
    assert!(err.contains("cut.gguf") && err.contains("tensor") && err.contains("bytes"), "{err}");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    let m = glassbox_lm::load(fixture("tiny-gpt2").to_str().unwrap()).unwrap();
    let long = vec![1u32; m.model.config.max_positions + 1];
    let err = m
        .model
        .forward(&glassbox_lm::Batch::new(&[vec![1], long]), &mut glassbox_lm::Hooks::new(), glassbox_lm::Logits::None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("prompt 2") && err.contains("context of 64"), "{err}");
}

/// Not bad input, but a load-time option: folding the norms keeps the logits and turns
/// LayerNorm's hook_normalized into the bare normalised stream.
#[test]
fn folding_layer_norms_keeps_the_logits() {
    use glassbox_lm::{Batch, Hooks, Logits};
    let plain = glassbox_lm::load(fixture("tiny-gpt2").to_str().unwrap()).unwrap();
    let mut folded = glassbox_lm::load(fixture("tiny-gpt2").to_str().unwrap()).unwrap();
    glassbox_lm::weights::fold_layer_norms(&folded.model.config.clone(), &mut folded.model.weights).unwrap();
    let batch = Batch::new(&[vec![5, 17, 300, 2], vec![9, 9]]);
    let name = "blocks.1.ln2.hook_normalized";
    let mut h1 = Hooks::capture(&plain.model.config, [name, "blocks.1.ln2.hook_scale", "blocks.1.hook_resid_mid"]).unwrap();
    let mut h2 = Hooks::capture(&plain.model.config, [name]).unwrap();
    let a = plain.model.forward(&batch, &mut h1, Logits::All).unwrap().logits.unwrap();
    let b = folded.model.forward(&batch, &mut h2, Logits::All).unwrap().logits.unwrap();
    let max = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= 1e-5 * max, "logits moved by {diff} (max {max})");
    // Folded hook_normalized = (x - mean) / scale.
    let (x, s) = (&h1.cache["blocks.1.hook_resid_mid"].data, &h1.cache["blocks.1.ln2.hook_scale"].data);
    let d = plain.model.config.d_model;
    let row = &x[..d];
    let mean = row.iter().sum::<f32>() / d as f32;
    let got = &h2.cache[name].data[..d];
    for (g, v) in got.iter().zip(row) {
        assert!((g - (v - mean) / s[0]).abs() < 1e-4, "{g} vs {}", (v - mean) / s[0]);
    }
}

/// A model id resolves in a Hugging Face hub cache laid out as transformers leaves it
/// (`models--ORG--NAME/refs/main` naming a snapshot whose files link into `blobs/`).
#[test]
fn a_model_id_is_found_in_the_hugging_face_cache() {
    let hub = tempfile::tempdir().unwrap();
    let repo = hub.path().join("models--test-org--tiny-gpt2");
    let snapshot = repo.join("snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd\n").unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        let blob = repo.join("blobs").join(format!("blob-{f}"));
        std::fs::copy(fixture("tiny-gpt2").join(f), &blob).unwrap();
        std::os::unix::fs::symlink(&blob, snapshot.join(f)).unwrap();
    }
    let found = glassbox_lm::loader::hf_cache_snapshot(hub.path(), "test-org", "tiny-gpt2").unwrap();
    assert_eq!(found, snapshot);
    // Through the environment, as a user who has used transformers would name it.
    std::env::set_var("HF_HUB_CACHE", hub.path());
    let m = glassbox_lm::load("test-org/tiny-gpt2").unwrap();
    assert_eq!(m.model.config.n_layers, 2);
    let err = glassbox_lm::load("test-org/absent").err().unwrap().to_string();
    assert!(err.contains("models--test-org--absent") && err.contains("never downloads"), "{err}");
    std::env::remove_var("HF_HUB_CACHE");
}

/// Write the tiny model's tensors as two shards with an index, the second shard in BF16 and
/// the first in F16, as a sharded half-precision checkpoint comes.
#[test]
fn sharded_half_precision_checkpoints_load() {
    use safetensors::tensor::{Dtype, TensorView};
    let src = tiny_copy();
    let bytes = std::fs::read(src.path().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let dir = tiny_copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    let mut expected = std::collections::HashMap::new();
    for (file, part, dtype) in [("model-00001-of-00002.safetensors", first, Dtype::F16), ("model-00002-of-00002.safetensors", second, Dtype::BF16)] {
        let mut buffers = Vec::new();
        for name in part {
            let view = st.tensor(name).unwrap();
            let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            let (raw, back): (Vec<u8>, Vec<f32>) = match dtype {
                Dtype::F16 => {
                    let h: Vec<half::f16> = values.iter().map(|&v| half::f16::from_f32(v)).collect();
                    (h.iter().flat_map(|v| v.to_le_bytes()).collect(), h.iter().map(|v| v.to_f32()).collect())
                }
                _ => {
                    let h: Vec<half::bf16> = values.iter().map(|&v| half::bf16::from_f32(v)).collect();
                    (h.iter().flat_map(|v| v.to_le_bytes()).collect(), h.iter().map(|v| v.to_f32()).collect())
                }
            };
            expected.insert(name.clone(), back);
            buffers.push((name.clone(), view.shape().to_vec(), raw));
            weight_map.insert(name.clone(), serde_json::json!(file));
        }
        let views: Vec<(String, TensorView)> =
            buffers.iter().map(|(n, s, r)| (n.clone(), TensorView::new(dtype, s.clone(), r).unwrap())).collect();
        std::fs::write(dir.path().join(file), safetensors::serialize(views, None).unwrap()).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    let m = glassbox_lm::load(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(m.dtypes.get("F16").copied().unwrap_or(0) + m.dtypes.get("BF16").copied().unwrap_or(0), names.len());
    let wte = names.iter().find(|n| n.ends_with("wte.weight")).unwrap();
    assert_eq!(m.model.weights.token_embed, expected[wte], "token embedding widened exactly");
}
