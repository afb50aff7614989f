//! Helpers shared by the integration tests.
#![allow(dead_code)]

use glassbox_core::data::{Dataset, Split, Targets};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[allow(unused_imports)]
pub use glassbox_core::experiment::test_data_dir as real_data_dir;

/// A small random classification set: `n` samples, `d` inputs, `k` classes.
pub fn random_classes(n: usize, d: usize, k: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let inputs = (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let labels = (0..n).map(|_| rng.random_range(0..k as u32)).collect();
    Dataset {
        name: "random".into(),
        inputs,
        input_dim: d,
        image_shape: None,
        targets: Targets::Classes { labels, n_classes: k },
    }
}

pub fn random_split(n: usize, d: usize, k: usize, seed: u64) -> Split {
    Split { train: random_classes(n, d, k, seed), test: random_classes(n / 2, d, k, seed + 1) }
}

/// Naive x @ W^T + b on host vectors, W is [out, in] row-major.
pub fn linear(x: &[f32], n: usize, w: &[f32], b: Option<&[f32]>, d_in: usize, d_out: usize) -> Vec<f32> {
    let mut y = vec![0f32; n * d_out];
    for r in 0..n {
        for o in 0..d_out {
            let mut s = b.map_or(0.0, |b| b[o] as f64);
            for i in 0..d_in {
                s += x[r * d_in + i] as f64 * w[o * d_in + i] as f64;
            }
            y[r * d_out + o] = s as f32;
        }
    }
    y
}

pub fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}
