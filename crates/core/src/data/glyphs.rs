//! The procedural glyph world on which the USAE reproduction's Test B trains three small
//! networks: 12x12 grey images with 1-3 distinct primitives of 8 types, intensity U(0.6, 1)
//! each, summed, clipped to 1.5, plus N(0, 0.05²) pixel noise. The target is the 8-way
//! multi-label presence of each type.
//!
//! Everything comes from one ChaCha8 stream per seed, so a data spec saved with a model
//! regenerates exactly the same images.

use super::{Dataset, Split, Targets};
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Image side in pixels.
pub const SIZE: usize = 12;
/// Number of primitive types, i.e. of labels.
pub const N_TYPES: usize = 8;
/// Label names, indexed by primitive type.
pub const TYPE_NAMES: [&str; N_TYPES] = ["hbar", "vbar", "diag", "antidiag", "square3", "hollow5", "plus", "checker4"];
/// Cap on a summed pixel before noise, so overlapping primitives stay in a bounded range.
pub const CLIP: f32 = 1.5;
/// Standard deviation of the per-pixel Gaussian noise.
pub const NOISE_STD: f32 = 0.05;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlyphWorld {
    pub n_train: usize,
    pub n_test: usize,
    pub seed: u64,
}

impl Default for GlyphWorld {
    fn default() -> Self {
        GlyphWorld { n_train: 20_000, n_test: 4_000, seed: 0 }
    }
}

/// Pixels (row, col) covered by a primitive of `kind` (0-7, see [`TYPE_NAMES`]) placed with the
/// rng; always inside the image. Bars and diagonals are 4-10 long, plus arms 2-3.
pub fn primitive_pixels(kind: usize, rng: &mut impl Rng) -> Result<Vec<(usize, usize)>> {
    if kind >= N_TYPES {
        return Err(Error::invalid(format!("glyph type {kind} does not exist (0-{})", N_TYPES - 1)));
    }
    Ok(place(kind, rng))
}

/// [`primitive_pixels`] for a kind already known to be valid.
fn place(kind: usize, rng: &mut impl Rng) -> Vec<(usize, usize)> {
    let s = SIZE;
    match kind {
        0 | 1 => {
            let len = rng.random_range(4..=10);
            let (fixed, start) = (rng.random_range(0..s), rng.random_range(0..=s - len));
            (start..start + len).map(|i| if kind == 0 { (fixed, i) } else { (i, fixed) }).collect()
        }
        2 | 3 => {
            let len = rng.random_range(4..=10);
            let (r0, c0) = (rng.random_range(0..=s - len), rng.random_range(0..=s - len));
            (0..len).map(|i| if kind == 2 { (r0 + i, c0 + i) } else { (r0 + i, c0 + len - 1 - i) }).collect()
        }
        4 => {
            let (r0, c0) = (rng.random_range(0..=s - 3), rng.random_range(0..=s - 3));
            (0..9).map(|i| (r0 + i / 3, c0 + i % 3)).collect()
        }
        5 => {
            let (r0, c0) = (rng.random_range(0..=s - 5), rng.random_range(0..=s - 5));
            (0..25).map(|i| (r0 + i / 5, c0 + i % 5)).filter(|&(r, c)| r == r0 || r == r0 + 4 || c == c0 || c == c0 + 4).collect()
        }
        6 => {
            let arm = rng.random_range(2..=3);
            let (r, c) = (rng.random_range(arm..s - arm), rng.random_range(arm..s - arm));
            let mut v: Vec<_> = (c - arm..=c + arm).map(|j| (r, j)).collect();
            v.extend((r - arm..=r + arm).filter(|&i| i != r).map(|i| (i, c)));
            v
        }
        7 => {
            let (r0, c0) = (rng.random_range(0..=s - 4), rng.random_range(0..=s - 4));
            (0..16).map(|i| (r0 + i / 4, c0 + i % 4)).filter(|&(r, c)| (r + c) % 2 == 0).collect()
        }
        _ => Vec::new(),
    }
}

/// The noise-free image of some primitives, each given as (pixels, intensity): intensities add
/// where primitives overlap and every pixel is clipped to [`CLIP`]. Row-major `[SIZE * SIZE]`.
pub fn render(strokes: &[(&[(usize, usize)], f32)]) -> Result<Vec<f32>> {
    let mut img = vec![0f32; SIZE * SIZE];
    for (pixels, intensity) in strokes {
        for &(r, c) in pixels.iter() {
            if r >= SIZE || c >= SIZE {
                return Err(Error::invalid(format!("glyph pixel ({r}, {c}) is outside the {SIZE}x{SIZE} image")));
            }
            img[r * SIZE + c] += intensity;
        }
    }
    for v in img.iter_mut() {
        *v = v.min(CLIP);
    }
    Ok(img)
}

/// One standard normal sample (Box-Muller), so no extra distribution crate is needed.
fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln never sees 0
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// One noisy image and its 8 presence labels (1.0 for each drawn type).
pub fn sample(rng: &mut impl Rng) -> (Vec<f32>, [f32; N_TYPES]) {
    let mut labels = [0f32; N_TYPES];
    let count = rng.random_range(1..=3);
    let mut kinds: Vec<usize> = Vec::new();
    while kinds.len() < count {
        let k = rng.random_range(0..N_TYPES);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let mut strokes = Vec::with_capacity(count);
    for &k in &kinds {
        let intensity = rng.random_range(0.6f32..1.0);
        strokes.push((place(k, rng), intensity));
        labels[k] = 1.0;
    }
    let refs: Vec<(&[(usize, usize)], f32)> = strokes.iter().map(|(p, i)| (p.as_slice(), *i)).collect();
    // `place` keeps every pixel inside the image, so rendering cannot fail.
    let mut img = render(&refs).unwrap_or_else(|_| vec![0f32; SIZE * SIZE]);
    for v in img.iter_mut() {
        *v += NOISE_STD * normal(rng);
    }
    (img, labels)
}

impl GlyphWorld {
    /// Label names, indexed by primitive type (same as the module's [`TYPE_NAMES`]).
    pub const TYPE_NAMES: [&'static str; N_TYPES] = TYPE_NAMES;

    /// Train then test images from one seeded stream: the same seed gives the same bytes.
    pub fn generate(&self) -> Split {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut make = |n: usize| {
            let (mut inputs, mut values) = (Vec::with_capacity(n * SIZE * SIZE), Vec::with_capacity(n * N_TYPES));
            for _ in 0..n {
                let (img, labels) = sample(&mut rng);
                inputs.extend(img);
                values.extend(labels);
            }
            Dataset {
                name: "glyphs".into(),
                inputs,
                input_dim: SIZE * SIZE,
                image_shape: Some([1, SIZE, SIZE]),
                targets: Targets::MultiLabel { values, n_labels: N_TYPES },
            }
        };
        let train = make(self.n_train);
        let test = make(self.n_test);
        Split { train, test }
    }
}
