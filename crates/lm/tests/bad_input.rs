//! Bad model files give errors that name the file and the problem, never a panic.

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
