//! Every file parser of glassbox under the mutation fuzzer of `glassbox-fuzz`, one test per
//! target. Each execution writes the (mutated) files and calls the parser's public entry
//! point, then whatever reads the parsed result (tensors, tokenization, the loaded model's
//! shapes); the parser must return Ok or an error, never panic, allocate by a size the file
//! only claims, or hang. The default run is a fixed, seeded number of executions per target
//! (a few seconds each); GLASSBOX_FUZZ_EXECS=N runs N per target.

mod common;

use common::*;
use glassbox_core::checkpoint::{self, ModelCard};
use glassbox_core::io::{write_f32, HostTensor, SafetensorsFile};
use glassbox_core::model::{Activation, Architecture, MlpKind, Model, TransformerConfig};
use glassbox_fuzz::{run, Folder, GuardAlloc, Input, Kind, Part, Seed, Target};
use glassbox_lm::gguf::GgufFile;
use glassbox_lm::tokenizer::{GgufTokenizerMeta, Tokenizer};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Texts every loaded tokenizer encodes and decodes.
const TEXTS: [&str; 5] = ["Hello world, 123 héllo 🦀!", "", "  \n\t", "<|endoftext|>[CLS] the  12", "a\u{0}b\u{fffd}"];

/// Encodes, decodes and looks up with a loaded tokenizer; tokenizer errors are fine.
fn exercise_tokenizer(tok: &Tokenizer) {
    for text in TEXTS {
        if let Ok(ids) = tok.encode(text) {
            let _ = tok.decode(&ids);
        }
        let _ = tok.encode_plain(text);
        let _ = tok.encode_with_offsets(text);
    }
    let n = tok.vocab_size() as u32;
    let _ = tok.decode(&[0, n.saturating_sub(1), n]);
    let _ = tok.token_str(n.saturating_sub(1));
    let _ = (tok.bos_id(), tok.eos_id(), tok.special_ids(), tok.adds_bos());
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bytes of a safetensors file written by glassbox's writer.
fn safetensors_bytes(tensors: &[HostTensor], meta: HashMap<String, String>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    write_f32(&path, tensors, meta).unwrap();
    read(&path)
}

fn host(name: &str, shape: &[usize], seed: u64) -> HostTensor {
    let n = shape.iter().product();
    HostTensor { name: name.into(), shape: shape.to_vec(), data: small_values(&mut rng(seed), n) }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn idx() {
    let target = Target::new(
        "idx",
        vec![Part::new("train-images-idx3-ubyte", Kind::Binary).weight(2), Part::new("train-labels-idx1-ubyte", Kind::Binary)],
        20_000,
    );
    let mut r = rng(10);
    let pixels: Vec<u8> = (0..60).map(|_| r.random()).collect();
    let (images, labels) = (idx_images(3, 4, 5, &pixels), idx_labels(&[0, 7, 9]));
    let mut seeds = vec![
        Seed::valid("generated", vec![images.clone(), labels.clone()]),
        Seed::valid("gzipped", vec![gzip(&images), gzip(&labels)]),
        Seed::valid("empty", vec![idx_images(0, 1, 1, &[]), idx_labels(&[])]),
    ];
    if let Some(dir) = data_dir() {
        for set in ["mnist", "fashion-mnist"] {
            let d = dir.join(set);
            let images = gunzip_prefix(&d.join("train-images-idx3-ubyte.gz"), 16 + 2 * 784);
            let labels = gunzip_prefix(&d.join("train-labels-idx1-ubyte.gz"), 8 + 2);
            if let (Some(mut i), Some(mut l)) = (images, labels) {
                // The real header with its count cut to the two images kept.
                i[4..8].copy_from_slice(&2u32.to_be_bytes());
                l[4..8].copy_from_slice(&2u32.to_be_bytes());
                seeds.push(Seed::valid(format!("{set} header"), vec![gzip(&i), l]));
                seeds.push(Seed::valid(format!("{set} header, plain"), vec![i, gzip(&idx_labels(&[1, 2]))]));
            }
        }
    }
    let folder = Folder::new();
    std::fs::write(folder.file("t10k-images-idx3-ubyte"), idx_images(1, 4, 5, &pixels[..20])).unwrap();
    std::fs::write(folder.file("t10k-labels-idx1-ubyte"), idx_labels(&[3])).unwrap();
    use glassbox_core::data::idx;
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let (ipath, lpath) = (folder.file(target.parts[0].name), folder.file(target.parts[1].name));
        let images = idx::read_images(&ipath);
        let labels = idx::read_labels(&lpath);
        let _ = idx::read_labels(&ipath);
        let _ = idx::read_images(&lpath);
        let _ = idx::load_mnist_like(folder.path(), "fuzz");
        images.map_err(s)?;
        labels.map_err(s)?;
        Ok(())
    });
    report.assert_no_crashes();
}

#[test]
fn digits_csv() {
    let target = Target::new("digits-csv", vec![Part::new("digits.csv", Kind::Text)], 20_000);
    let mut r = rng(11);
    let text: String = (0..5).map(|_| digits_line(&mut r) + "\n").collect();
    let mut seeds = vec![
        Seed::valid("generated", vec![text.clone().into_bytes()]),
        Seed::valid("gzipped", vec![gzip(text.as_bytes())]),
        Seed::valid("blank lines, CRLF", vec![format!("\n{}\r\n\n{}", digits_line(&mut r), digits_line(&mut r)).into_bytes()]),
    ];
    if let Some(dir) = data_dir() {
        if let Some(all) = gunzip_prefix(&dir.join("sklearn-digits/digits.csv.gz"), 4000) {
            let text = String::from_utf8_lossy(&all);
            let head: String = text.lines().take(12).map(|l| format!("{l}\n")).collect();
            seeds.push(Seed::valid("real first lines", vec![head.clone().into_bytes()]));
            seeds.push(Seed::valid("real first lines, gzipped", vec![gzip(head.as_bytes())]));
        }
    }
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        glassbox_core::data::digits::load_digits(&folder.file("digits.csv")).map(|_| ()).map_err(s)
    });
    report.assert_no_crashes();
}

/// A safetensors file of every dtype the format has (little-endian data of the right size).
fn safetensors_all_dtypes() -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let mut r = rng(12);
    let dtypes = [
        (Dtype::F64, 8),
        (Dtype::F32, 4),
        (Dtype::F16, 2),
        (Dtype::BF16, 2),
        (Dtype::I64, 8),
        (Dtype::I32, 4),
        (Dtype::I16, 2),
        (Dtype::I8, 1),
        (Dtype::U64, 8),
        (Dtype::U32, 4),
        (Dtype::U16, 2),
        (Dtype::U8, 1),
        (Dtype::BOOL, 1),
    ];
    let buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = dtypes
        .iter()
        .map(|&(dt, size)| {
            let shape = vec![2, 3];
            let bytes = (0..6 * size).map(|_| if dt == Dtype::BOOL { r.random_range(0..2) } else { r.random_range(0..0x3f) }).collect();
            (format!("{dt:?}").to_lowercase(), dt, shape, bytes)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> =
        buffers.iter().map(|(n, dt, shape, b)| (n.clone(), TensorView::new(*dt, shape.clone(), b).unwrap())).collect();
    safetensors::serialize(views, Some(HashMap::from([("format".to_string(), "pt".to_string())]))).unwrap()
}

/// The header of a real safetensors file with every tensor's dims cut to at most 2 and the
/// data laid out again.
fn safetensors_real_small(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    f.read_exact(&mut header).ok()?;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&header).ok()?;
    let mut out = serde_json::Map::new();
    let mut offset = 0usize;
    let mut r = rng(13);
    let mut data = Vec::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            out.insert(name, entry);
            continue;
        }
        let dtype = entry["dtype"].as_str()?.to_string();
        let size = match dtype.as_str() {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            _ => 1,
        };
        let shape: Vec<usize> = entry["shape"].as_array()?.iter().map(|d| d.as_u64().unwrap_or(1).min(2) as usize).collect();
        let n = shape.iter().product::<usize>() * size;
        data.extend((0..n).map(|_| r.random_range(0..0x3fu8)));
        out.insert(name, json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}));
        offset += n;
    }
    let mut json = serde_json::to_vec(&out).ok()?;
    while (8 + json.len()) % 8 != 0 {
        json.push(b' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    bytes.extend(data);
    Some(bytes)
}

#[test]
fn safetensors_header() {
    let target = Target::new("safetensors", vec![Part::new("model.safetensors", Kind::Safetensors)], 20_000);
    let meta = HashMap::from([("format".to_string(), "glassbox".to_string()), ("architecture".to_string(), "mlp".to_string())]);
    let mut seeds = vec![
        Seed::valid("glassbox writer", vec![safetensors_bytes(&[host("a", &[2, 3], 1), host("b", &[4], 2), host("scalar", &[], 3)], meta)]),
        Seed::valid("every dtype", vec![safetensors_all_dtypes()]),
        Seed::valid("empty and zero-size", vec![safetensors_bytes(&[host("z", &[0, 3], 4)], HashMap::new())]),
    ];
    if let Some(b) = real_model("all-MiniLM-L6-v2/model.safetensors").and_then(|p| safetensors_real_small(&p)) {
        seeds.push(Seed::valid("MiniLM header, small", vec![b]));
    }
    let folder = Folder::new();
    let path = folder.file("model.safetensors");
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let file = SafetensorsFile::open(&path).map_err(s)?;
        let entries = file.entries().map_err(s)?;
        file.metadata().map_err(s)?;
        for (name, _, _) in &entries {
            let _ = file.tensor_f32(name);
        }
        let _ = glassbox_core::inspect::summarize(&path);
        let _ = glassbox_core::inspect::summarize(folder.path());
        if let Ok(mut src) = glassbox_lm::weights::SafetensorsSource::open(std::slice::from_ref(&path)) {
            use glassbox_lm::weights::TensorSource;
            let _ = src.dtype_counts();
            let names: Vec<String> = src.names().cloned().collect();
            for name in names {
                let _ = (src.shape(&name), src.read(&name));
            }
        }
        if let Some((name, _, _)) = entries.first() {
            let _ = glassbox_sae::store::read_site(&path, name);
        }
        Ok(())
    });
    report.assert_no_crashes();
}

fn tiny_transformer() -> TransformerConfig {
    TransformerConfig { n_layers: 1, d_model: 8, n_heads: 2, d_head: 4, d_mlp: 16, d_vocab: 7, d_vocab_out: 7, n_ctx: 3, ..TransformerConfig::modular_addition(6) }
}

/// Checkpoint folders of every architecture, saved by glassbox: (model.json, model.safetensors,
/// config.json if any).
fn checkpoints() -> Vec<(String, Vec<u8>, Vec<u8>, Vec<u8>)> {
    let device = glassbox_core::tensor::infer_device();
    let archs = vec![
        ("mlp", Architecture::Mlp { dims: vec![4, 6, 3], activation: Activation::Relu, bias: true, embed: None }),
        ("mlp-embed", Architecture::Mlp { dims: vec![4, 5, 3], activation: Activation::Gelu, bias: false, embed: Some(6) }),
        ("bilinear", Architecture::Bilinear { d_in: 4, d_hidden: 5, d_out: 3, bias: true, embed: true }),
        ("cnn", Architecture::Cnn { image: [1, 8, 8], channels: vec![2], kernel: 3, hidden: 4, d_out: 3 }),
        ("siren", Architecture::Siren { dims: vec![2, 8, 1], w0: 30.0 }),
        ("transformer", Architecture::Transformer(tiny_transformer())),
        ("gpt-style", Architecture::Transformer(TransformerConfig::gpt_style(1, 8, 2, 16, 11, 6))),
        ("bilinear-lm", Architecture::Transformer(TransformerConfig::bilinear_lm(1, 8, 2, 16, 11, 6, MlpKind::Bilinear))),
        ("swiglu-lm", Architecture::Transformer(TransformerConfig::bilinear_lm(2, 8, 2, 8, 9, 4, MlpKind::SwiGlu))),
    ];
    archs
        .into_iter()
        .map(|(label, arch)| {
            let model = Model::init(arch.clone(), 1, &device).unwrap();
            let mut card = ModelCard::new(arch, 1);
            card.training = Some(json!({"epochs": 2, "lr": 0.001, "data": {"eos_token_id": 3}}));
            card.metrics.insert("test_accuracy".into(), 0.5);
            card.epochs_done = 2;
            let dir = tempfile::tempdir().unwrap();
            checkpoint::save(dir.path(), &model, &card).unwrap();
            let config = std::fs::read(dir.path().join(checkpoint::HF_CONFIG_FILE)).unwrap_or_default();
            (label.to_string(), read(&dir.path().join(checkpoint::CARD_FILE)), read(&dir.path().join(checkpoint::WEIGHTS_FILE)), config)
        })
        .collect()
}

#[test]
fn checkpoint_model_json() {
    let target = Target::new(
        "checkpoint",
        vec![Part::new(checkpoint::CARD_FILE, Kind::Json).weight(3), Part::new(checkpoint::WEIGHTS_FILE, Kind::Safetensors)],
        6_000,
    );
    let seeds = checkpoints().into_iter().map(|(label, card, weights, _)| Seed::valid(label, vec![card, weights])).collect();
    let device = glassbox_core::tensor::infer_device();
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let (model, card) = checkpoint::load(folder.path(), &device).map_err(s)?;
        let _ = (model.site_names(), card.architecture.input_dim(), card.architecture.output_dim());
        Ok(())
    });
    report.assert_no_crashes();
}

fn zoo_seed(count: usize, shard_size: usize) -> Input {
    use glassbox_zoo::store::{self, Splits, ZooSpec};
    let spec = ZooSpec {
        family: "mlp".into(),
        generation: json!({"preset": "fuzz", "seed": 1, "hidden": 2}),
        tensors: vec![("layers.0.weight".into(), vec![2, 3]), ("layers.0.bias".into(), vec![2])],
        count,
        shard_size,
        splits: Splits { train: (0..count.saturating_sub(2)).collect(), val: vec![count - 2], test: vec![count - 1] },
        target: "class".into(),
        measured: vec!["fit_mse".into(), "test_accuracy".into()],
    };
    let labels: Vec<Value> = (0..count)
        .map(|i| {
            let activation = ["relu", "tanh"][i % 2];
            json!({"class": i % 3, "activation": activation, "width": 2.5})
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    store::create(dir.path(), &spec, &labels).unwrap();
    let mut r = rng(14);
    for sh in 0..spec.n_shards() {
        let n = spec.shard_range(sh).len();
        let params: Vec<Vec<f32>> = (0..n).map(|_| small_values(&mut r, spec.n_params())).collect();
        let measured: Vec<Vec<f32>> = (0..n).map(|_| small_values(&mut r, 2)).collect();
        store::write_shard(dir.path(), &spec, sh, &params, &measured).unwrap();
    }
    let shard = |i| std::fs::read(store::shard_path(dir.path(), i)).unwrap_or_default();
    vec![read(&dir.path().join("zoo.json")), read(&dir.path().join("labels.json")), shard(0), shard(1)]
}

#[test]
fn zoo_json() {
    let target = Target::new(
        "zoo",
        vec![
            Part::new("zoo.json", Kind::Json).weight(4),
            Part::new("labels.json", Kind::Json),
            Part::new("models-00000.safetensors", Kind::Safetensors),
            Part::new("models-00001.safetensors", Kind::Safetensors).optional(),
        ],
        15_000,
    );
    let seeds = vec![Seed::valid("two shards", zoo_seed(3, 2)), Seed::valid("one shard", zoo_seed(2, 2)), Seed::valid("single models", zoo_seed(4, 3))];
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let zoo = glassbox_zoo::store::load(folder.path()).map_err(s)?;
        let _ = (zoo.targets(), zoo.values("width"), zoo.label_strings("activation"));
        for m in &zoo.spec.measured {
            if let Ok(v) = zoo.measured(m) {
                let _ = glassbox_zoo::store::FitSummary::of(v);
            }
        }
        let _ = (zoo.spec.n_params(), zoo.spec.tensor_sizes(), zoo.spec.n_shards());
        Ok(())
    });
    report.assert_no_crashes();
}

fn sae_seed(architecture: glassbox_sae::saelens::Architecture) -> Input {
    use glassbox_sae::saelens::Sae;
    let (d_in, d_sae) = (4, 6);
    let mut r = rng(15);
    let mut metadata = serde_json::Map::new();
    metadata.insert("hook_name".into(), json!("blocks.0.hook_resid_pre"));
    metadata.insert("model_name".into(), json!("tiny"));
    metadata.insert("context_size".into(), json!(8));
    let sae = Sae {
        architecture,
        d_in,
        d_sae,
        w_enc: small_values(&mut r, d_in * d_sae),
        b_enc: small_values(&mut r, d_sae),
        w_dec: small_values(&mut r, d_sae * d_in),
        b_dec: small_values(&mut r, d_in),
        apply_b_dec_to_input: true,
        metadata,
    };
    let dir = tempfile::tempdir().unwrap();
    sae.save(dir.path()).unwrap();
    vec![read(&dir.path().join("cfg.json")), read(&dir.path().join("sae_weights.safetensors"))]
}

#[test]
fn sae_cfg_json() {
    use glassbox_sae::saelens::{Architecture as SaeArch, Sae};
    let target = Target::new(
        "sae-cfg",
        vec![Part::new("cfg.json", Kind::Json).weight(3), Part::new("sae_weights.safetensors", Kind::Safetensors)],
        15_000,
    );
    let standard = sae_seed(SaeArch::Standard);
    let flat = json!({
        "d_in": 4, "d_sae": 6, "hook_point": "blocks.0.hook_resid_pre", "hook_point_head_index": null,
        "model_name": "tiny", "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 2},
        "apply_b_dec_to_input": false, "normalize_activations": "expected_average_only_in",
        "context_size": 8, "sae_lens_training_version": "3.0.0", "dtype": "float32"
    });
    let seeds = vec![
        Seed::valid("standard", standard.clone()),
        Seed::valid("topk", sae_seed(SaeArch::TopK { k: 2, rescale_acts_by_decoder_norm: true })),
        Seed::valid("jumprelu", sae_seed(SaeArch::JumpRelu { threshold: vec![0.1, 0.0, -0.2, 0.3, 0.05, 0.0] })),
        Seed::valid("flat pre-6 config", vec![to_bytes(&flat), standard[1].clone()]),
    ];
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let _ = glassbox_sae::topk_sae::TopKSae::load(folder.path());
        let sae = Sae::load(folder.path()).map_err(s)?;
        let x = vec![0.5f32; 2 * sae.d_in];
        let z = sae.encode(&x, 2);
        let _ = (sae.decode(&z, 2), sae.hook_name(), sae.architecture.name());
        Ok(())
    });
    report.assert_no_crashes();
}

#[test]
fn usae_cfg_json() {
    use glassbox_sae::usae::{Usae, UsaeConfig};
    let target = Target::new("usae-cfg", vec![Part::new("cfg.json", Kind::Json).weight(3), Part::new("usae.safetensors", Kind::Safetensors)], 10_000);
    let seed = |m: usize, k: usize, models: &[(&str, usize)]| {
        let u = Usae::new(UsaeConfig::new(m, k, 10), models, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        glassbox_sae::store::save_usae(&u, dir.path()).unwrap();
        vec![read(&dir.path().join("cfg.json")), read(&dir.path().join("usae.safetensors"))]
    };
    let seeds = vec![Seed::valid("two models", seed(6, 2, &[("a", 4), ("b", 3)])), Seed::valid("one model", seed(4, 1, &[("mlp.0", 2)]))];
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        glassbox_sae::store::load_usae(folder.path()).map(|_| ()).map_err(s)
    });
    report.assert_no_crashes();
}

fn real_gguf() -> Option<GgufFile> {
    real_model("SmolLM2-135M-Instruct.Q4_1.gguf").and_then(|p| GgufFile::open(p).ok())
}

#[test]
fn gguf() {
    let target = Target::new("gguf", vec![Part::new("model.gguf", Kind::Binary).custom(Box::new(mutate_gguf))], 20_000);
    let mut seeds = vec![
        Seed::valid("every type", vec![gguf_all_types()]),
        Seed::valid("tiny llama", vec![gguf_tiny_llama(None, true)]),
    ];
    if let Some(real) = real_gguf() {
        seeds.push(Seed::valid("SmolLM2 header, small", vec![real_gguf_small(&real)]));
    }
    let folder = Folder::new();
    let path = folder.file("model.gguf");
    let report = run(&target, seeds, |input| {
        let file = GgufFile::from_bytes(&path, input[0].clone()).map_err(s)?;
        for (_, v) in &file.metadata {
            let _ = (v.as_u64(), v.as_f64(), v.as_str(), v.as_strings(), v.type_name());
        }
        for t in &file.tensors {
            let _ = (t.shape(), t.n_elements(), t.n_bytes(), t.ggml_type.name(), t.ggml_type.can_dequantize());
            let _ = file.raw_bytes(&t.name);
            let _ = file.dequantize(&t.name);
        }
        let _ = glassbox_lm::loader::gguf_config(&file);
        // `glassbox inspect` of the same bytes, through the file.
        folder.write(&target, input);
        let _ = glassbox_lm::loader::summarize_gguf(&path);
        Ok(())
    });
    report.assert_no_crashes();
}

#[test]
fn gguf_model() {
    let target = Target::new("gguf-model", vec![Part::new("model.gguf", Kind::Binary).custom(Box::new(mutate_gguf))], 4_000);
    let mut seeds = vec![
        Seed::valid("tiny llama, f32", vec![gguf_tiny_llama(None, false)]),
        Seed::valid("tiny llama, quantised", vec![gguf_tiny_llama(None, true)]),
    ];
    if let Some(real) = real_gguf() {
        seeds.push(Seed::valid("tiny llama, SmolLM2 vocabulary", vec![gguf_tiny_llama(Some(real_gguf_tokenizer_kv(&real, 400)), true)]));
    }
    let folder = Folder::new();
    let path = folder.file("model.gguf");
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let mut loaded = glassbox_lm::loader::load_gguf(&path).map_err(s)?;
        exercise_tokenizer(&loaded.tokenizer);
        let _ = loaded.model.n_params();
        loaded.fold_layer_norms().map_err(s)?;
        Ok(())
    });
    report.assert_no_crashes();
}

/// A JSON rendering of the tokenizer metadata of a GGUF file, read back leniently the way the
/// loader reads GGUF metadata (numbers as ids and types, strings as tokens).
fn meta_json(tokens: &[String], merges: &[String], pre: &str) -> Value {
    let mut types = vec![1; tokens.len()];
    types[0] = 3;
    if tokens.len() > 5 {
        types[5] = 4;
    }
    json!({"model": "gpt2", "pre": pre, "tokens": tokens, "merges": merges, "token_types": types,
           "bos": 0, "eos": 0, "unk": null, "add_bos": true, "add_eos": false})
}

fn meta_from_json(v: &Value) -> GgufTokenizerMeta {
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array().map(|a| a.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect()).unwrap_or_default()
    };
    GgufTokenizerMeta {
        model: v["model"].as_str().unwrap_or_default().to_string(),
        pre: v["pre"].as_str().map(str::to_string),
        tokens: strings("tokens"),
        merges: strings("merges"),
        token_types: v["token_types"].as_array().map(|a| a.iter().map(|x| x.as_f64().map_or(0, |f| f as i32)).collect()).unwrap_or_default(),
        bos: v["bos"].as_u64().map(|x| x as u32),
        eos: v["eos"].as_u64().map(|x| x as u32),
        unk: v["unk"].as_u64().map(|x| x as u32),
        add_bos: v["add_bos"].as_bool(),
        add_eos: v["add_eos"].as_bool(),
    }
}

#[test]
fn gguf_tokenizer() {
    let target = Target::new("gguf-tokenizer", vec![Part::new("tokenizer.json", Kind::Json)], 4_000);
    let (tokens, merges) = byte_level_vocab();
    let mut seeds: Vec<Seed> = ["smollm", "gpt2", "llama3", "qwen2", "tekken", "gpt-4o"]
        .iter()
        .map(|pre| Seed::valid(format!("byte-level, {pre}"), vec![to_bytes(&meta_json(&tokens, &merges, pre))]))
        .collect();
    if let Some(real) = real_gguf() {
        let kv = real_gguf_tokenizer_kv(&real, 600);
        let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let strings = |k: &str| get(k).and_then(|v| v.as_strings().map(|s| s.into_iter().map(str::to_string).collect::<Vec<_>>())).unwrap_or_default();
        let mut v = meta_json(&strings("tokenizer.ggml.tokens"), &strings("tokenizer.ggml.merges"), "smollm");
        v["token_types"] = json!(get("tokenizer.ggml.token_type").and_then(|t| t.as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap_or(0.0) as i32).collect::<Vec<_>>())));
        v["bos"] = json!(get("tokenizer.ggml.bos_token_id").and_then(|x| x.as_u64()));
        v["eos"] = json!(get("tokenizer.ggml.eos_token_id").and_then(|x| x.as_u64()));
        seeds.push(Seed::valid("SmolLM2 vocabulary", vec![to_bytes(&v)]));
    }
    let report = run(&target, seeds, |input| {
        let v: Value = serde_json::from_slice(&input[0]).map_err(s)?;
        let tok = Tokenizer::from_gguf(&meta_from_json(&v)).map_err(s)?;
        exercise_tokenizer(&tok);
        Ok(())
    });
    report.assert_no_crashes();
}

#[test]
fn tokenizer_json() {
    let target = Target::new(
        "tokenizer-json",
        vec![Part::new("tokenizer.json", Kind::Json).weight(4), Part::new("tokenizer_config.json", Kind::Json).optional()],
        4_000,
    );
    let config = to_bytes(&json!({"bos_token": {"content": "[SEP]"}, "eos_token": "[CLS]", "model_max_length": 512}));
    let mut seeds = vec![
        Seed::valid("word-level", vec![to_bytes(&tokenizer_wordlevel()), Vec::new()]),
        Seed::valid("word-level with config", vec![to_bytes(&tokenizer_wordlevel()), config]),
        Seed::valid("byte-level BPE", vec![to_bytes(&tokenizer_byte_bpe()), Vec::new()]),
        Seed::valid("unigram", vec![to_bytes(&tokenizer_unigram()), Vec::new()]),
    ];
    if let Some(dir) = real_model("all-MiniLM-L6-v2") {
        if let Some(v) = tokenizer_real_minilm(&dir.join("tokenizer.json"), 400) {
            let config = std::fs::read(dir.join("tokenizer_config.json")).unwrap_or_default();
            seeds.push(Seed::valid("MiniLM, vocabulary cut", vec![to_bytes(&v), config]));
        }
    }
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let tok = Tokenizer::from_file(&folder.file("tokenizer.json")).map_err(s)?;
        exercise_tokenizer(&tok);
        Ok(())
    });
    report.assert_no_crashes();
}

fn hf_configs() -> Vec<(&'static str, Value)> {
    vec![
        ("gpt2", json!({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2,
            "n_positions": 64, "vocab_size": 500, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "n_inner": null})),
        ("llama", json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "num_attention_heads": 9,
            "num_key_value_heads": 3, "num_hidden_layers": 30, "intermediate_size": 1536, "vocab_size": 49152, "head_dim": 64,
            "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "max_position_embeddings": 8192,
            "hidden_act": "silu", "rope_scaling": null})),
        ("qwen2", json!({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4,
            "num_key_value_heads": 2, "num_hidden_layers": 1, "intermediate_size": 96, "vocab_size": 10,
            "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}})),
        ("mistral", json!({"model_type": "mistral", "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 1,
            "intermediate_size": 64, "vocab_size": 100, "rope_scaling": {"type": "default"}, "attention_bias": true})),
        ("bert", json!({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "num_attention_heads": 12,
            "num_hidden_layers": 6, "intermediate_size": 1536, "vocab_size": 30522, "max_position_embeddings": 512,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "position_embedding_type": "absolute"})),
    ]
}

#[test]
fn hf_config_json() {
    let target = Target::new("hf-config", vec![Part::new("config.json", Kind::Json)], 20_000);
    let mut seeds: Vec<Seed> = hf_configs().into_iter().map(|(label, v)| Seed::valid(label, vec![to_bytes(&v)])).collect();
    if let Some(p) = real_model("all-MiniLM-L6-v2/config.json") {
        seeds.push(Seed::valid("MiniLM", vec![read(&p)]));
    }
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let c = glassbox_lm::config::ModelConfig::from_hf_file(&folder.file("config.json")).map_err(s)?;
        let _ = (c.causal(), c.has_unembed(), c.validate());
        Ok(())
    });
    report.assert_no_crashes();
}

/// BERT weights under Hugging Face's names for `config` (d_model 8, 2 heads, 1 layer).
fn bert_folder() -> (Value, Vec<u8>) {
    let (d, ff, vocab, pos) = (8usize, 16usize, 11usize, 6usize);
    let config = json!({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": d, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": ff, "vocab_size": vocab, "max_position_embeddings": pos, "type_vocab_size": 2});
    let mut t = vec![
        host("embeddings.word_embeddings.weight", &[vocab, d], 1),
        host("embeddings.position_embeddings.weight", &[pos, d], 2),
        host("embeddings.token_type_embeddings.weight", &[2, d], 3),
        host("embeddings.LayerNorm.weight", &[d], 4),
        host("embeddings.LayerNorm.bias", &[d], 5),
    ];
    let b = "encoder.layer.0";
    for (i, (name, shape)) in [
        ("attention.self.query", [d, d]),
        ("attention.self.key", [d, d]),
        ("attention.self.value", [d, d]),
        ("attention.output.dense", [d, d]),
        ("intermediate.dense", [ff, d]),
        ("output.dense", [d, ff]),
    ]
    .iter()
    .enumerate()
    {
        t.push(host(&format!("{b}.{name}.weight"), shape, 10 + i as u64));
        t.push(host(&format!("{b}.{name}.bias"), &shape[..1], 20 + i as u64));
    }
    for (i, name) in ["attention.output.LayerNorm", "output.LayerNorm"].iter().enumerate() {
        t.push(host(&format!("{b}.{name}.weight"), &[d], 30 + i as u64));
        t.push(host(&format!("{b}.{name}.bias"), &[d], 40 + i as u64));
    }
    (config, safetensors_bytes(&t, HashMap::new()))
}

#[test]
fn hf_model_folder() {
    let target = Target::new(
        "hf-folder",
        vec![
            Part::new("config.json", Kind::Json).weight(3),
            Part::new("tokenizer.json", Kind::Json),
            Part::new("model.safetensors", Kind::Safetensors).weight(2).optional(),
            Part::new("model.safetensors.index.json", Kind::Json).optional(),
            Part::new("model-00001-of-00001.safetensors", Kind::Safetensors).optional(),
        ],
        4_000,
    );
    let tokenizer = to_bytes(&tokenizer_byte_bpe());
    let mut seeds = Vec::new();
    for (label, _, weights, config) in checkpoints() {
        if !config.is_empty() {
            seeds.push(Seed::valid(label.clone(), vec![config.clone(), tokenizer.clone(), weights.clone(), Vec::new(), Vec::new()]));
            if label == "gpt-style" {
                let st = glassbox_core::io::SafetensorsFile::open(&{
                    let dir = tempfile::tempdir().unwrap().keep();
                    let p = dir.join("w.safetensors");
                    std::fs::write(&p, &weights).unwrap();
                    p
                })
                .unwrap();
                let map: serde_json::Map<String, Value> =
                    st.entries().unwrap().into_iter().map(|(n, _, _)| (n, json!("model-00001-of-00001.safetensors"))).collect();
                let index = to_bytes(&json!({"metadata": {"total_size": weights.len()}, "weight_map": map}));
                seeds.push(Seed::valid("gpt-style, sharded", vec![config, tokenizer.clone(), Vec::new(), index, weights]));
            }
        }
    }
    let (bert_config, bert_weights) = bert_folder();
    let wordlevel = to_bytes(&tokenizer_wordlevel());
    seeds.push(Seed::valid("bert", vec![to_bytes(&bert_config), wordlevel, bert_weights, Vec::new(), Vec::new()]));
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        folder.write(&target, input);
        let mut loaded = glassbox_lm::loader::load_hf_folder(folder.path()).map_err(s)?;
        exercise_tokenizer(&loaded.tokenizer);
        let _ = loaded.fold_layer_norms();
        Ok(())
    });
    report.assert_no_crashes();
}

fn store_seed(dtype: glassbox_lm::store::StoreDtype) -> (Input, glassbox_lm::store::StoreSpec) {
    use glassbox_lm::store::{Context, StoreSpec, StoreWriter};
    let spec = StoreSpec {
        model: "tiny".into(),
        hooks: vec![("blocks.0.hook_resid_post".into(), vec![4]), ("blocks.0.attn.hook_z".into(), vec![2, 3])],
        dtype,
        context: 3,
        contexts_per_shard: 2,
        source: json!({"corpus": "fuzz.txt", "bytes": 123, "separator": 0}),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut w = StoreWriter::create_or_resume(dir.path(), spec.clone()).unwrap();
    let mut r = rng(16);
    for c in 0..3u32 {
        let ctx = Context { tokens: vec![c, c + 1, c + 2], doc: vec![0, 0, 1], pos: vec![c, c + 1, 0] };
        let a = small_values(&mut r, 3 * 4);
        let b = small_values(&mut r, 3 * 6);
        w.push(c as usize, &ctx, &[("blocks.0.hook_resid_post", &a), ("blocks.0.attn.hook_z", &b)]).unwrap();
    }
    w.finish().unwrap();
    let p = |n: &str| read(&dir.path().join(n));
    (vec![p("index.json"), p("shard-00000.safetensors"), p("shard-00001.safetensors")], spec)
}

#[test]
fn activation_store_index() {
    use glassbox_lm::store::{ActivationStore, StoreDtype, StoreWriter};
    let target = Target::new(
        "activation-store",
        vec![
            Part::new("index.json", Kind::Json).weight(3),
            Part::new("shard-00000.safetensors", Kind::Safetensors).weight(2),
            Part::new("shard-00001.safetensors", Kind::Safetensors).optional(),
        ],
        6_000,
    );
    let (f32_input, spec) = store_seed(StoreDtype::F32);
    let (bf16_input, _) = store_seed(StoreDtype::Bf16);
    let seeds = vec![Seed::valid("f32", f32_input), Seed::valid("bf16", bf16_input)];
    let folder = Folder::new();
    let report = run(&target, seeds, |input| {
        // Files a resume may leave behind are cleared first.
        for entry in std::fs::read_dir(folder.path()).unwrap().flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        folder.write(&target, input);
        let store = ActivationStore::open(folder.path()).map_err(s)?;
        let hooks: Vec<String> = store.index().hooks.iter().map(|h| h.name.clone()).collect();
        for i in 0..store.num_shards() {
            for h in &hooks {
                store.read_shard(i, h).map_err(s)?;
                let _ = store.read_shard_rows(i, h, 1..2);
            }
            store.read_tokens(i).map_err(s)?;
            store.read_context_ids(i).map_err(s)?;
        }
        if let Some(h) = hooks.first() {
            for batch in store.shuffled(h, 2, 1, 7).take(8) {
                batch.map_err(s)?;
            }
            let _ = store.shuffled(h, 3, 2, 1).excluding_tokens(&[1]).skipping_first_positions(1).take(4).count();
        }
        let _ = (store.total_tokens(), store.index().contexts());
        drop(store);
        let _ = StoreWriter::create_or_resume(folder.path(), spec.clone()).map(|w| w.contexts_done());
        Ok(())
    });
    report.assert_no_crashes();
}
