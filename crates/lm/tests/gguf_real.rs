//! The GGUF reader on a real llama.cpp file: SmolLM2-135M-Instruct quantised to Q4_1 (Q4_1
//! matrices, a Q8_0 token embedding, F32 norms), looked for in $GLASSBOX_MODELS (default
//! ~/.cache/glassbox/models).
//!
//! The bit-for-bit comparison with gguf-py is ignored by default because it needs a reference
//! written by Python:
//!   python bench/gguf_dequant_reference.py MODEL.gguf /tmp/ref.safetensors
//!   GLASSBOX_GGUF_REFERENCE=/tmp/ref.safetensors cargo test --release -p glassbox-lm --test gguf_real -- --ignored

mod common;

use glassbox_lm::gguf::{GgmlType, GgufFile};
use std::path::PathBuf;

const MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model, or None (with a note) when it is absent; absence fails under GLASSBOX_REQUIRE_DATA=1.
fn open_model() -> Option<GgufFile> {
    let path = common::real_model(MODEL)?;
    Some(GgufFile::open(&path).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn smollm2_q4_1_metadata_and_embedding() {
    let Some(f) = open_model() else { return };
    assert_eq!(f.meta("general.architecture").and_then(|v| v.as_str()), Some("llama"));
    assert_eq!(f.meta("llama.block_count").and_then(|v| v.as_u64()), Some(30));
    assert_eq!(f.meta("llama.embedding_length").and_then(|v| v.as_u64()), Some(576));
    let tokens = f.meta("tokenizer.ggml.tokens").and_then(|v| v.as_strings()).expect("tokenizer.ggml.tokens");
    assert_eq!(tokens.len(), 49152);

    // 30 blocks x 9 tensors + token_embd + output_norm; the output projection is tied.
    assert_eq!(f.tensors.len(), 272);
    let count = |ty: GgmlType| f.tensors.iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!((count(GgmlType::Q4_1), count(GgmlType::Q8_0), count(GgmlType::F32)), (210, 1, 61));

    let embd = f.tensor_info("token_embd.weight").expect("token_embd.weight");
    assert_eq!(embd.ggml_type, GgmlType::Q8_0);
    assert_eq!(embd.dims, vec![576, 49152]);
    assert_eq!(embd.shape(), vec![49152, 576]);
    let q = f.tensor_info("blk.0.attn_q.weight").expect("blk.0.attn_q.weight");
    assert_eq!((q.ggml_type, q.shape()), (GgmlType::Q4_1, vec![576, 576]));

    let w = f.dequantize("token_embd.weight").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(w.len(), 49152 * 576);
    assert!(w.iter().all(|x| x.is_finite()));
    let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
    let rms = (w.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / w.len() as f64).sqrt();
    assert!((0.5..50.0).contains(&max), "max |w| = {max}");
    assert!((0.01..1.0).contains(&rms), "rms = {rms}");
}

#[test]
#[ignore = "needs a reference from bench/gguf_dequant_reference.py (Python gguf) at GLASSBOX_GGUF_REFERENCE"]
fn smollm2_dequantisation_is_bit_identical_to_gguf_py() {
    let Some(f) = open_model() else { return };
    let ref_path = std::env::var_os("GLASSBOX_GGUF_REFERENCE").map(PathBuf::from).expect(
        "set GLASSBOX_GGUF_REFERENCE to the output of python bench/gguf_dequant_reference.py MODEL.gguf OUT.safetensors",
    );
    let bytes = std::fs::read(&ref_path).unwrap_or_else(|e| panic!("{}: {e}", ref_path.display()));
    let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reference.len(), f.tensors.len(), "tensor count: reference vs GGUF");

    let mut differing = Vec::new();
    for info in &f.tensors {
        let want = reference.tensor(&info.name).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        assert_eq!(want.dtype(), safetensors::Dtype::F32, "{}", info.name);
        assert_eq!(want.shape(), info.shape().as_slice(), "{}: shape", info.name);
        let got = f.dequantize(&info.name).unwrap_or_else(|e| panic!("{e}"));
        let mismatches = want
            .data()
            .chunks_exact(4)
            .zip(&got)
            .filter(|(w, g)| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) != g.to_bits())
            .count();
        if mismatches > 0 {
            differing.push(format!("{} ({}): {mismatches} of {} values differ", info.name, info.ggml_type, got.len()));
        }
    }
    assert!(differing.is_empty(), "{} tensors differ from gguf-py:\n{}", differing.len(), differing.join("\n"));
}
