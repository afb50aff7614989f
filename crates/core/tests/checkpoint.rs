//! Checkpoint round trips and every way a checkpoint file can be wrong.

use glassbox_core::checkpoint::{self, ModelCard};
use glassbox_core::inspect;
use glassbox_core::model::{Activation, Architecture, Model};
use glassbox_core::tensor::{from_vec, infer_device, to_vec};

fn archs() -> Vec<Architecture> {
    vec![
        Architecture::Mlp { dims: vec![6, 9, 3], activation: Activation::Relu, bias: true, embed: None },
        Architecture::Bilinear { d_in: 6, d_hidden: 5, d_out: 3, bias: true, embed: true },
        Architecture::Cnn { image: [1, 8, 8], channels: vec![2, 3], kernel: 3, hidden: 4, d_out: 3 },
        Architecture::Siren { dims: vec![2, 8, 8, 1], w0: 30.0 },
    ]
}

#[test]
fn round_trip_is_bit_exact_for_every_architecture() {
    let dev = infer_device();
    for arch in archs() {
        let dir = tempfile::tempdir().unwrap();
        let m = Model::init(arch.clone(), 7, &dev).unwrap();
        checkpoint::save(dir.path(), &m, &ModelCard::new(arch.clone(), 7)).unwrap();
        let (back, card) = checkpoint::load(dir.path(), &dev).unwrap();
        assert_eq!(card.architecture, arch);
        let (a, b) = (m.params.to_host(), back.params.to_host());
        for (x, y) in a.iter().zip(&b) {
            assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()), "{}", arch.kind_name());
        }
        let d = arch.input_dim();
        let x: Vec<f32> = (0..3 * d).map(|i| (i as f32).sin()).collect();
        let (ya, yb) = (m.forward(from_vec(x.clone(), [3, d], &dev)), back.forward(from_vec(x, [3, d], &dev)));
        assert_eq!(to_vec(ya), to_vec(yb));
        // no temporary files are left behind
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}

fn saved_mlp() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let arch = archs().remove(0);
    let m = Model::init(arch.clone(), 1, &infer_device()).unwrap();
    checkpoint::save(dir.path(), &m, &ModelCard::new(arch, 1)).unwrap();
    dir
}

fn load_err(dir: &std::path::Path) -> String {
    checkpoint::load(dir, &infer_device()).unwrap_err().to_string()
}

#[test]
fn shapes_that_do_not_match_model_json_are_named() {
    let dir = saved_mlp();
    let card_path = dir.path().join("model.json");
    let text = std::fs::read_to_string(&card_path).unwrap().replacen("9", "10", 1);
    std::fs::write(&card_path, text).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("tensor 'layers.0.weight' has shape [9, 6] but the architecture needs [10, 6]"), "{err}");
}

#[test]
fn missing_and_unexpected_tensors_are_named() {
    let dir = saved_mlp();
    let card_path = dir.path().join("model.json");
    let text = std::fs::read_to_string(&card_path).unwrap().replace("\"bias\": true", "\"bias\": false");
    std::fs::write(&card_path, text).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("unexpected tensor(s)") && err.contains("layers.0.bias") && err.contains("head.bias"), "{err}");
}

#[test]
fn corrupt_and_oversized_headers_are_clear_errors() {
    let dir = saved_mlp();
    let weights = dir.path().join("model.safetensors");
    // header length claims far more than the file holds
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&weights, &bytes).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("model.safetensors") && err.contains("header claims 1099511627776 bytes"), "{err}");
    // header that is not JSON
    let mut bad = 16u64.to_le_bytes().to_vec();
    bad.extend_from_slice(b"{not json at all");
    std::fs::write(&weights, &bad).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("corrupt safetensors header"), "{err}");
    // truncated data section
    std::fs::write(&weights, &bytes[..3]).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("shorter than the 8-byte header length"), "{err}");
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_err(&dir.path().join("nope"));
    assert!(err.contains("nope") && err.contains("not a checkpoint folder"), "{err}");
    let err = load_err(dir.path());
    assert!(err.contains("model.json"), "{err}");
}

#[test]
fn inspect_reports_stats_and_non_finite_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let t = glassbox_core::io::HostTensor { name: "x".into(), shape: vec![2, 3], data: vec![1.0, 2.0, 3.0, f32::NAN, f32::INFINITY, -2.0] };
    glassbox_core::io::write_f32(&path, &[t], Default::default()).unwrap();
    let s = inspect::summarize(&path).unwrap();
    let x = &s.tensors[0];
    assert_eq!((x.nan, x.inf, x.numel), (1, 1, 6));
    assert_eq!((x.min, x.max, x.mean), (Some(-2.0), Some(3.0), Some(1.0)));
    let want_std = ((1.0 + 4.0 + 9.0 + 4.0) / 4.0f64 - 1.0).sqrt();
    assert!((x.std.unwrap() - want_std).abs() < 1e-12);
}

/// Same tensors and metadata give the same bytes (metadata keys are sorted, not HashMap-ordered),
/// and the file reads back through the safetensors crate.
#[test]
fn safetensors_files_are_byte_deterministic_and_valid() {
    use glassbox_core::io::{write_f32, HostTensor, SafetensorsFile};
    let dir = tempfile::tempdir().unwrap();
    let tensors = vec![
        HostTensor { name: "b".into(), shape: vec![2, 3], data: (0..6).map(|i| i as f32 * 0.5).collect() },
        HostTensor { name: "a".into(), shape: vec![1], data: vec![-1.0] },
    ];
    let mut files = Vec::new();
    for i in 0..8 {
        let meta: std::collections::HashMap<String, String> = (0..6).map(|k| (format!("key{k}"), format!("v{k}"))).collect();
        let path = dir.path().join(format!("{i}.safetensors"));
        write_f32(&path, &tensors, meta).unwrap();
        files.push(std::fs::read(&path).unwrap());
        let f = SafetensorsFile::open(&path).unwrap();
        assert_eq!(f.tensor_f32("b").unwrap(), tensors[0]);
        assert_eq!(f.tensor_f32("a").unwrap(), tensors[1]);
        assert_eq!(f.metadata().unwrap()["key3"], "v3");
    }
    assert!(files.windows(2).all(|w| w[0] == w[1]), "bytes differ between writes");
    let bad = HostTensor { name: "c".into(), shape: vec![2], data: vec![1.0] };
    let err = write_f32(&dir.path().join("bad.safetensors"), &[bad], Default::default()).unwrap_err().to_string();
    assert!(err.contains("does not hold 1 values"), "{err}");
}
