//! Shared by the integration tests: where the real models are, and the reference files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The folder `glassbox data fetch minilm smollm2` fills: $GLASSBOX_MODELS, else
/// ~/.cache/glassbox/models.
pub fn models_dir() -> PathBuf {
    glassbox_fetch::default_models_dir().expect("a home folder")
}

/// `path` under the models folder, or None after a note; a missing model fails under
/// GLASSBOX_REQUIRE_DATA=1 (as CI sets) instead of skipping.
pub fn real_model(name: &str) -> Option<PathBuf> {
    let path = models_dir().join(name);
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{} not found (run `glassbox data fetch minilm smollm2`)", path.display());
    if std::env::var("GLASSBOX_REQUIRE_DATA").as_deref() == Ok("1") {
        panic!("GLASSBOX_REQUIRE_DATA=1 but {msg}");
    }
    eprintln!("note: {msg}; skipping");
    None
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// The fixed prompts of bench/lm_prompts.txt.
pub fn bench_prompts() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/lm_prompts.txt");
    std::fs::read_to_string(path).expect("bench/lm_prompts.txt").lines().map(str::to_string).collect()
}

/// A tensor of a reference file, as f32 or i64.
pub enum RefTensor {
    F32(Vec<usize>, Vec<f32>),
    I64(Vec<usize>, Vec<i64>),
}

pub struct Reference {
    pub tensors: std::collections::BTreeMap<String, RefTensor>,
    pub metadata: std::collections::HashMap<String, String>,
}

impl Reference {
    pub fn open(path: &Path) -> Reference {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors = std::collections::BTreeMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let data = view.data();
            let t = match view.dtype() {
                safetensors::Dtype::F32 => RefTensor::F32(
                    shape,
                    data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
                ),
                safetensors::Dtype::I64 => RefTensor::I64(
                    shape,
                    data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect(),
                ),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            tensors.insert(name, t);
        }
        Reference { tensors, metadata: meta.metadata().clone().unwrap_or_default() }
    }

    pub fn f32(&self, name: &str) -> (&[usize], &[f32]) {
        match self.tensors.get(name) {
            Some(RefTensor::F32(s, d)) => (s, d),
            _ => panic!("reference has no F32 tensor {name}"),
        }
    }

    pub fn i64(&self, name: &str) -> &[i64] {
        match self.tensors.get(name) {
            Some(RefTensor::I64(_, d)) => d,
            _ => panic!("reference has no I64 tensor {name}"),
        }
    }

    /// Token sequences from a `tokens` / `offsets` pair.
    pub fn sequences(&self, tokens: &str, offsets: &str) -> Vec<Vec<u32>> {
        let (t, o) = (self.i64(tokens), self.i64(offsets));
        o.windows(2).map(|w| t[w[0] as usize..w[1] as usize].iter().map(|&v| v as u32).collect()).collect()
    }
}

/// max |a − b| / max |b| over finite entries; non-finite entries must agree exactly.
pub fn relative_error(name: &str, got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "{name}: {} values, reference has {}", got.len(), want.len());
    let (mut diff, mut scale) = (0f64, 0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !w.is_finite() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}[{i}]: {g} where the reference has {w}");
            continue;
        }
        diff = diff.max((g as f64 - w as f64).abs());
        scale = scale.max((w as f64).abs());
    }
    diff / scale.max(f64::MIN_POSITIVE)
}
