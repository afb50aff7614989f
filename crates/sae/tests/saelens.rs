//! glassbox reads the SAE directories sae_lens writes (v6 and earlier) and encodes and decodes as
//! sae_lens does; what it writes reads back the same. References: tests/fixtures/saelens.

use glassbox_core::io::SafetensorsFile;
use glassbox_sae::saelens::{Architecture, Sae};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saelens").join(name)
}

/// Max |glassbox − sae_lens| of the latents and of the reconstruction on the reference input.
fn worst_difference(sae: &Sae, reference: &Path) -> (f32, f32) {
    let file = SafetensorsFile::open(reference).unwrap();
    let x = file.tensor_f32("x").unwrap();
    let rows = x.shape[0];
    let acts = sae.encode(&x.data, rows);
    let out = sae.decode(&acts, rows);
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    (diff(&acts, &file.tensor_f32("feature_acts").unwrap().data), diff(&out, &file.tensor_f32("sae_out").unwrap().data))
}

#[test]
fn every_sae_lens_layout_loads_and_encodes_as_sae_lens_does() {
    let cases = [
        ("standard", "standard", "standard"),
        ("topk", "topk", "topk"),
        ("jumprelu", "jumprelu", "jumprelu"),
        ("batchtopk", "batchtopk", "jumprelu"),
        ("standard-pre6", "standard", "standard"),
        ("topk-pre6", "topk", "topk"),
        ("standard-pre3", "standard", "standard"),
    ];
    for (dir, reference, arch) in cases {
        let sae = Sae::load(&fixture(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(sae.architecture.name(), arch, "{dir}");
        assert_eq!((sae.d_in, sae.d_sae), (16, 48), "{dir}");
        assert_eq!(sae.hook_name(), Some("blocks.3.hook_resid_post"), "{dir}");
        assert_eq!(sae.metadata["model_name"], "tiny", "{dir}");
        if arch == "topk" {
            assert!(matches!(sae.architecture, Architecture::TopK { k: 5, .. }), "{dir}");
        }
        let (acts, out) = worst_difference(&sae, &fixture(reference).join("reference.safetensors"));
        assert!(acts < 1e-5 && out < 1e-5, "{dir}: latents off by {acts}, reconstruction by {out}");
    }
}

#[test]
fn a_saved_sae_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["topk", "jumprelu", "standard"] {
        let sae = Sae::load(&fixture(name)).unwrap();
        let out = dir.path().join(name);
        sae.save(&out).unwrap();
        let back = Sae::load(&out).unwrap();
        assert_eq!(back.metadata["glassbox_version"], env!("CARGO_PKG_VERSION"));
        let mut back_meta = back.metadata.clone();
        back_meta.remove("glassbox_version");
        assert_eq!(back_meta, sae.metadata, "{name}");
        assert_eq!(Sae { metadata: sae.metadata.clone(), ..back }, sae, "{name}");
        let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("cfg.json")).unwrap()).unwrap();
        assert_eq!(cfg["metadata"]["hook_name"], "blocks.3.hook_resid_post");
        assert_eq!(cfg["metadata"]["sae_lens_version"], "6.0.0");
        assert_eq!(cfg["architecture"], name);
    }
}

/// Copy a fixture into a temporary directory and edit its cfg.json.
fn edited(name: &str, edit: impl Fn(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["cfg.json", "sae_weights.safetensors"] {
        std::fs::copy(fixture(name).join(file), dir.path().join(file)).unwrap();
    }
    let path = dir.path().join("cfg.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&path, cfg.to_string()).unwrap();
    dir
}

#[test]
fn bad_files_are_named_with_the_problem() {
    let err = |dir: &tempfile::TempDir| Sae::load(dir.path()).unwrap_err().to_string();
    let e = err(&edited("topk", |c| c["architecture"] = "gated".into()));
    assert!(e.contains("cfg.json") && e.contains("'gated'") && e.contains("standard, topk and jumprelu"), "{e}");
    // A width that disagrees with the weights.
    let e = err(&edited("standard", |c| c["d_in"] = 17.into()));
    assert!(e.contains("sae_weights.safetensors") && e.contains("W_enc") && e.contains("[16, 48]"), "{e}");
    // JumpReLU named on a file without a threshold.
    let e = err(&edited("standard", |c| c["architecture"] = "jumprelu".into()));
    assert!(e.contains("no tensor 'threshold'"), "{e}");
    let e = err(&edited("topk", |c| c["k"] = 49.into()));
    assert!(e.contains("k = 49"), "{e}");
    let e = err(&edited("topk", |c| c["normalize_activations"] = "layer_norm".into()));
    assert!(e.contains("layer_norm") && e.contains("not supported"), "{e}");
    let missing = tempfile::tempdir().unwrap();
    assert!(err(&missing).contains("cfg.json"));
}

/// Writes glassbox's copies of the reference SAEs into `$GLASSBOX_SAELENS_OUT` for sae_lens to
/// read back (`bench/saelens_files.py check OUT/<arch> tests/fixtures/saelens/<arch>/reference.safetensors`).
#[test]
#[ignore = "writes files for the sae_lens check; needs GLASSBOX_SAELENS_OUT"]
fn write_copies_for_sae_lens() {
    let out = PathBuf::from(std::env::var("GLASSBOX_SAELENS_OUT").expect("GLASSBOX_SAELENS_OUT"));
    for name in ["standard", "topk", "jumprelu", "batchtopk", "topk-pre6", "standard-pre3"] {
        Sae::load(&fixture(name)).unwrap().save(&out.join(name)).unwrap();
    }
}
