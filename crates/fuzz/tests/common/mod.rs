//! Seed builders shared by the fuzz targets and the regression tests: small valid files made
//! with glassbox's own writers, a GGUF writer, and headers of the real data and models rebuilt
//! small.
#![allow(dead_code)]

use glassbox_lm::gguf::{GgmlType, GgufFile, GgufTensorInfo, GgufValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The real data folder (`GLASSBOX_DATA`), when set.
pub fn data_dir() -> Option<PathBuf> {
    glassbox_core::experiment::test_data_dir()
}

/// A real model file or folder, when present (`glassbox data fetch minilm smollm2`).
pub fn real_model(name: &str) -> Option<PathBuf> {
    let path = glassbox_fetch::default_models_dir()?.join(name);
    path.exists().then_some(path)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// The first `n` bytes of a gzipped file's content.
pub fn gunzip_prefix(path: &Path, n: usize) -> Option<Vec<u8>> {
    let raw = std::fs::read(path).ok()?;
    let mut out = vec![0u8; n];
    flate2::read::GzDecoder::new(&raw[..]).read_exact(&mut out).ok()?;
    Some(out)
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn small_values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

// ---------------------------------------------------------------------------------------------
// IDX and digits

pub fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0803u32, count, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b.extend_from_slice(pixels);
    b
}

pub fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0x0801u32.to_be_bytes());
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

/// One line of the digits CSV: 64 pixel counts then the label.
pub fn digits_line(rng: &mut ChaCha8Rng) -> String {
    let mut fields: Vec<String> = (0..64).map(|_| rng.random_range(0..=16u32).to_string()).collect();
    fields.push(rng.random_range(0..10u32).to_string());
    fields.join(",")
}

// ---------------------------------------------------------------------------------------------
// GGUF

pub use glassbox_lm::gguf_writer::GgufWriter as Gguf;

/// Valid data for a tensor of `dims` and type `ty` (finite scales, small values).
pub fn tensor_data(rng: &mut ChaCha8Rng, dims: &[u64], ty: u32) -> Vec<u8> {
    let info = GgufTensorInfo { name: String::new(), dims: dims.to_vec(), ggml_type: GgmlType::from_id(ty), offset: 0 };
    let n = info.n_elements() as usize;
    let Some(bytes) = info.n_bytes() else { return Vec::new() };
    match ty {
        0 => f32_bytes(&small_values(rng, n)),
        1 => small_values(rng, n).iter().flat_map(|&x| f16_bytes(x)).collect(),
        30 => small_values(rng, n).iter().flat_map(|&x| ((x.to_bits() >> 16) as u16).to_le_bytes()).collect(),
        _ => {
            let (_, block_bytes) = GgmlType::from_id(ty).block_layout().expect("known layout");
            let mut out: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
            // Every f16 scale of a block set to a small finite value.
            let scale_at: &[usize] = match ty {
                8 | 2 => &[0],
                3 => &[0, 2],
                12 => &[0, 2],
                14 => &[208],
                _ => &[],
            };
            for block in out.chunks_mut(block_bytes as usize) {
                for &at in scale_at {
                    block[at..at + 2].copy_from_slice(&f16_bytes(0.01));
                }
            }
            out
        }
    }
}

/// Every value type, nested arrays, and one tensor of each dequantisable type plus one of a
/// type glassbox cannot decode and one of an unknown id.
pub fn gguf_all_types() -> Vec<u8> {
    let mut r = rng(1);
    let mut g = Gguf::new()
        .kv("general.architecture", GgufValue::String("llama".into()))
        .kv("general.alignment", GgufValue::U32(64))
        .kv("a.u8", GgufValue::U8(200))
        .kv("a.i8", GgufValue::I8(-5))
        .kv("a.u16", GgufValue::U16(60000))
        .kv("a.i16", GgufValue::I16(-30000))
        .kv("a.u32", GgufValue::U32(4_000_000_000))
        .kv("a.i32", GgufValue::I32(-7))
        .kv("a.f32", GgufValue::F32(1e-5))
        .kv("a.bool", GgufValue::Bool(true))
        .kv("a.u64", GgufValue::U64(1 << 40))
        .kv("a.i64", GgufValue::I64(-(1 << 40)))
        .kv("a.f64", GgufValue::F64(0.1))
        .kv("a.strings", GgufValue::Array(vec![GgufValue::String("<s>".into()), GgufValue::String("héllo".into())]))
        .kv("a.nested", GgufValue::Array(vec![GgufValue::Array(vec![GgufValue::U8(1)]), GgufValue::Array(vec![])]));
    for (name, dims, ty) in [
        ("f32", vec![3u64, 2], 0u32),
        ("f16", vec![4], 1),
        ("bf16", vec![2, 2], 30),
        ("q8_0", vec![32, 2], 8),
        ("q4_0", vec![32], 2),
        ("q4_1", vec![64], 3),
        ("q4_k", vec![256], 12),
        ("q6_k", vec![256], 14),
        ("q5_k", vec![256], 13),
        ("odd", vec![4], 77),
    ] {
        let data = if ty == 77 { vec![0; 4] } else { tensor_data(&mut r, &dims, ty) };
        g = g.tensor(name, &dims, ty, data);
    }
    g.build()
}

/// GPT-2's printable spelling of the 256 byte values.
pub fn byte_alphabet() -> Vec<char> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shifted = 0u32;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).expect("byte char")
            } else {
                shifted += 1;
                char::from_u32(255 + shifted).expect("shifted char")
            }
        })
        .collect()
}

/// A byte-level vocabulary: `<|endoftext|>`, the 256 byte symbols, and merged tokens.
pub fn byte_level_vocab() -> (Vec<String>, Vec<String>) {
    let mut tokens = vec!["<|endoftext|>".to_string()];
    tokens.extend(byte_alphabet().into_iter().map(String::from));
    let merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "1 2", "Ġ Ġ", "o n", "Ġ w"];
    tokens.extend(merges.iter().map(|m| m.replace(' ', "")));
    (tokens, merges.iter().map(|m| m.to_string()).collect())
}

/// The tokenizer metadata of a byte-level GGUF vocabulary.
pub fn gguf_tokenizer_kv(tokens: &[String], merges: &[String], pre: &str) -> Vec<(String, GgufValue)> {
    let mut types = vec![GgufValue::I32(1); tokens.len()];
    types[0] = GgufValue::I32(3);
    vec![
        ("tokenizer.ggml.model".into(), GgufValue::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), GgufValue::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), GgufValue::Array(tokens.iter().map(|t| GgufValue::String(t.clone())).collect())),
        ("tokenizer.ggml.merges".into(), GgufValue::Array(merges.iter().map(|t| GgufValue::String(t.clone())).collect())),
        ("tokenizer.ggml.token_type".into(), GgufValue::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), GgufValue::U32(0)),
        ("tokenizer.ggml.eos_token_id".into(), GgufValue::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), GgufValue::Bool(false)),
    ]
}

/// A complete tiny Llama GGUF (d_model 32, 2 heads, 1 key/value head, 1 block, tied
/// embeddings) with a byte-level tokenizer; `tokenizer` replaces the tokenizer metadata.
pub fn gguf_tiny_llama(tokenizer: Option<Vec<(String, GgufValue)>>, quantised: bool) -> Vec<u8> {
    let (tokens, merges) = byte_level_vocab();
    let tok = tokenizer.unwrap_or_else(|| gguf_tokenizer_kv(&tokens, &merges, "smollm"));
    let vocab = tok
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.as_array().map(<[GgufValue]>::len))
        .unwrap_or(tokens.len()) as u64;
    let (d, heads, kv_heads, dh, ff) = (32u64, 2u64, 1u64, 16u64, 64u64);
    let mut g = Gguf::new()
        .kv("general.architecture", GgufValue::String("llama".into()))
        .kv("general.name", GgufValue::String("fuzz-tiny".into()))
        .kv("llama.embedding_length", GgufValue::U32(d as u32))
        .kv("llama.attention.head_count", GgufValue::U32(heads as u32))
        .kv("llama.attention.head_count_kv", GgufValue::U32(kv_heads as u32))
        .kv("llama.block_count", GgufValue::U32(1))
        .kv("llama.feed_forward_length", GgufValue::U32(ff as u32))
        .kv("llama.context_length", GgufValue::U32(64))
        .kv("llama.rope.dimension_count", GgufValue::U32(dh as u32))
        .kv("llama.rope.freq_base", GgufValue::F32(10000.0))
        .kv("llama.attention.layer_norm_rms_epsilon", GgufValue::F32(1e-5));
    for (k, v) in tok {
        g = g.kv(&k, v);
    }
    let mut r = rng(2);
    let q = |t: u32| if quantised { t } else { 0 };
    let tensors: Vec<(&str, Vec<u64>, u32)> = vec![
        ("token_embd.weight", vec![d, vocab], q(8)),
        ("blk.0.attn_norm.weight", vec![d], 0),
        ("blk.0.attn_q.weight", vec![d, heads * dh], q(2)),
        ("blk.0.attn_k.weight", vec![d, kv_heads * dh], q(3)),
        ("blk.0.attn_v.weight", vec![d, kv_heads * dh], 1),
        ("blk.0.attn_output.weight", vec![heads * dh, d], 30),
        ("blk.0.ffn_norm.weight", vec![d], 0),
        ("blk.0.ffn_gate.weight", vec![d, ff], q(8)),
        ("blk.0.ffn_up.weight", vec![d, ff], 0),
        ("blk.0.ffn_down.weight", vec![ff, d], q(8)),
        ("output_norm.weight", vec![d], 0),
    ];
    for (name, dims, ty) in tensors {
        let data = tensor_data(&mut r, &dims, ty);
        g = g.tensor(name, &dims, ty, data);
    }
    g.build()
}

/// The real SmolLM2 GGUF's tokenizer metadata with the vocabulary cut to its first `n` tokens
/// (merges kept where both halves and the result are in it).
pub fn real_gguf_tokenizer_kv(f: &GgufFile, n: usize) -> Vec<(String, GgufValue)> {
    let tokens: Vec<String> = f
        .meta("tokenizer.ggml.tokens")
        .and_then(GgufValue::as_strings)
        .map(|t| t.into_iter().take(n).map(str::to_string).collect())
        .unwrap_or_default();
    let known: std::collections::HashSet<&str> = tokens.iter().map(String::as_str).collect();
    let merges: Vec<String> = f
        .meta("tokenizer.ggml.merges")
        .and_then(GgufValue::as_strings)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m.split_once(' ').is_some_and(|(a, b)| known.contains(a) && known.contains(b) && known.contains(format!("{a}{b}").as_str()))
        })
        .map(str::to_string)
        .collect();
    f.metadata
        .iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .map(|(k, v)| {
            let v = match k.as_str() {
                "tokenizer.ggml.tokens" => GgufValue::Array(tokens.iter().map(|t| GgufValue::String(t.clone())).collect()),
                "tokenizer.ggml.merges" => GgufValue::Array(merges.iter().map(|t| GgufValue::String(t.clone())).collect()),
                "tokenizer.ggml.token_type" => GgufValue::Array(v.as_array().unwrap_or_default().iter().take(n).cloned().collect()),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .filter(|(k, _)| k != "tokenizer.chat_template" || n > 0)
        .collect()
}

/// The real SmolLM2 GGUF header rebuilt small: every metadata key (long arrays cut to their
/// first 300 entries) and the first 24 tensors with their real names and types but tiny dims.
pub fn real_gguf_small(f: &GgufFile) -> Vec<u8> {
    let mut r = rng(3);
    let mut g = Gguf::new();
    for (k, v) in &f.metadata {
        let v = match v {
            GgufValue::Array(a) if a.len() > 300 => GgufValue::Array(a[..300].to_vec()),
            other => other.clone(),
        };
        g = g.kv(k, v);
    }
    for t in f.tensors.iter().take(24) {
        let block = t.ggml_type.block_size().unwrap_or(1);
        let dims: Vec<u64> = if t.dims.len() == 1 { vec![block.max(4)] } else { vec![block.max(4), 2] };
        let data = tensor_data(&mut r, &dims, t.ggml_type.id());
        g = g.tensor(&t.name, &dims, t.ggml_type.id(), data);
    }
    g.build()
}

/// Structure-aware GGUF mutations: parse, change one metadata value, array, tensor dimension,
/// type, name or data, and write the file again (tensor data resized to fit most of the time).
pub fn mutate_gguf(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Option<Vec<u8>> {
    let f = GgufFile::from_bytes("m.gguf", bytes.to_vec()).ok()?;
    let mut g = Gguf::from_file(&f);
    const INTS: [u64; 12] = [0, 1, 2, 3, 31, 32, 255, 1 << 16, u32::MAX as u64, 1 << 32, 1 << 62, u64::MAX];
    let int = |rng: &mut ChaCha8Rng| INTS[rng.random_range(0..INTS.len())];
    match rng.random_range(0..10) {
        0..=3 if !g.kv.is_empty() => {
            let i = rng.random_range(0..g.kv.len());
            let v = g.kv[i].1.clone();
            g.kv[i].1 = match rng.random_range(0..12) {
                0 => GgufValue::U32(int(rng) as u32),
                1 => GgufValue::U64(int(rng)),
                2 => GgufValue::I32(-(rng.random_range(1..3))),
                3 => GgufValue::I64(i64::MIN),
                4 => GgufValue::F32(f32::NAN),
                5 => GgufValue::F64(f64::INFINITY),
                6 => GgufValue::F32(-1.0),
                7 => GgufValue::String(String::new()),
                8 => GgufValue::Bool(rng.random()),
                9 => GgufValue::Array(Vec::new()),
                10 => match v {
                    GgufValue::Array(a) if !a.is_empty() => {
                        let keep = rng.random_range(0..a.len());
                        GgufValue::Array(a[..keep].to_vec())
                    }
                    other => GgufValue::Array(vec![other; 3]),
                },
                _ => match v {
                    GgufValue::Array(mut a) if !a.is_empty() => {
                        let j = rng.random_range(0..a.len());
                        a[j] = match rng.random_range(0..4) {
                            0 => GgufValue::String(String::new()),
                            1 => GgufValue::String("a b c".into()),
                            2 => GgufValue::I32(4),
                            _ => GgufValue::I32(3),
                        };
                        GgufValue::Array(a)
                    }
                    other => other,
                },
            };
        }
        4 if !g.kv.is_empty() => {
            let i = rng.random_range(0..g.kv.len());
            g.kv.remove(i);
        }
        5..=7 if !g.tensors.is_empty() => {
            let i = rng.random_range(0..g.tensors.len());
            let t = &mut g.tensors[i];
            match rng.random_range(0..5) {
                0 if !t.1.is_empty() => {
                    let j = rng.random_range(0..t.1.len());
                    t.1[j] = int(rng);
                }
                1 => t.1.push(rng.random_range(0..3)),
                2 => t.1.reverse(),
                3 => t.2 = [0, 1, 2, 3, 6, 8, 12, 14, 15, 24, 30, 39, 99][rng.random_range(0..13)],
                _ => t.0 = ["", "blk.0.attn_q.weight", "token_embd.weight", "output.weight", "blk.1.attn_k.weight"][rng.random_range(0..5)].to_string(),
            }
            if rng.random_bool(0.7) {
                let info = GgufTensorInfo { name: String::new(), dims: t.1.clone(), ggml_type: GgmlType::from_id(t.2), offset: 0 };
                if let Some(n) = info.n_bytes().filter(|&n| n <= 1 << 20) {
                    t.3.resize(n as usize, 0);
                }
            }
        }
        8 if !g.tensors.is_empty() => {
            let i = rng.random_range(0..g.tensors.len());
            if rng.random_bool(0.5) {
                g.tensors.remove(i);
            } else {
                let t = g.tensors[i].clone();
                g.tensors.push(t);
            }
        }
        _ => g.version = [2, 3][rng.random_range(0..2)],
    }
    Some(g.build())
}

// ---------------------------------------------------------------------------------------------
// Tokenizers

/// A BERT-like WordLevel tokenizer.json with padding and truncation, as MiniLM ships.
pub fn tokenizer_wordlevel() -> Value {
    let added = |id: u32, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
    };
    json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 6, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 8}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": [added(0, "[PAD]"), added(1, "[UNK]"), added(2, "[CLS]"), added(3, "[SEP]")],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordLevel", "unk_token": "[UNK]", "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5}}
    })
}

/// A GPT-2-style byte-level BPE tokenizer.json over [`byte_level_vocab`].
pub fn tokenizer_byte_bpe() -> Value {
    let (tokens, merges) = byte_level_vocab();
    let vocab: serde_json::Map<String, Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
    })
}

/// A small SentencePiece-style Unigram tokenizer.json.
pub fn tokenizer_unigram() -> Value {
    let pieces = ["<unk>", "<s>", "</s>", "▁", "▁the", "▁a", "t", "h", "e", "a", "s", "▁w", "o", "r", "l", "d", "1", "2"];
    let vocab: Vec<Value> = pieces.iter().enumerate().map(|(i, p)| json!([p, -(i as f64) / 2.0])).collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {
                "<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}
            }
        },
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": false}
    })
}

/// The real MiniLM tokenizer.json with its WordPiece vocabulary cut to ids below `n` (its
/// special tokens are among them).
pub fn tokenizer_real_minilm(path: &Path, n: u64) -> Option<Value> {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let vocab = v.pointer_mut("/model/vocab")?.as_object_mut()?;
    vocab.retain(|_, id| id.as_u64().is_some_and(|i| i < n));
    Some(v)
}

pub fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("JSON")
}
