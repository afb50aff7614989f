//! The SIREN INR of spec/probegen.md 2.7: Linear(2, 32) → sin(30·) → Linear(32, 32) → sin(30·)
//! → Linear(32, 1) → + 0.5, fitted to one image on the grid linspace(−1, 1, side)² (x = column,
//! y = row). Parameters are one flat f32 vector in the order of [`TENSORS`], each tensor in
//! PyTorch layout (weight `[out, in]`), so a zoo file names them like a glassbox Siren checkpoint.
//!
//! Forward and backward are written out by hand: an INR is 1,185 numbers, far below the size
//! where a tensor library's per-op overhead pays off, and a zoo fits thousands of them.

use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const HIDDEN: usize = 32;
pub const W0: f32 = 30.0;
pub const OFFSET: f32 = 0.5;

/// (name, shape) of each tensor, in the order they sit in the flat parameter vector.
pub const TENSORS: [(&str, &[usize]); 6] = [
    ("layers.0.weight", &[HIDDEN, 2]),
    ("layers.0.bias", &[HIDDEN]),
    ("layers.1.weight", &[HIDDEN, HIDDEN]),
    ("layers.1.bias", &[HIDDEN]),
    ("head.weight", &[1, HIDDEN]),
    ("head.bias", &[1]),
];

/// Offsets of the tensors in the flat vector, and its length (1,185).
const W1: usize = 0;
const B1: usize = W1 + HIDDEN * 2;
const W2: usize = B1 + HIDDEN;
const B2: usize = W2 + HIDDEN * HIDDEN;
const W3: usize = B2 + HIDDEN;
const B3: usize = W3 + HIDDEN;
pub const N_PARAMS: usize = B3 + 1;

/// Spec 6 R1's init: W1 ~ U(±1/2), W2, W3 ~ U(±√(6/32)/30), every bias ~ U(±1/√fan_in).
pub fn init(seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut p = vec![0f32; N_PARAMS];
    let hidden = (6.0f32 / HIDDEN as f32).sqrt() / W0;
    let mut fill = |range: std::ops::Range<usize>, bound: f32| {
        for v in &mut p[range] {
            *v = rng.random_range(-bound..bound);
        }
    };
    fill(W1..B1, 0.5);
    fill(B1..W2, 1.0 / 2f32.sqrt());
    fill(W2..B2, hidden);
    fill(B2..W3, 1.0 / (HIDDEN as f32).sqrt());
    fill(W3..B3, hidden);
    fill(B3..N_PARAMS, 1.0 / (HIDDEN as f32).sqrt());
    p
}

/// The image grid: pixel (row r, column c) sits at (x, y) = (lin[c], lin[r]).
pub fn grid(side: usize) -> Vec<[f32; 2]> {
    let lin = |i: usize| if side > 1 { -1.0 + 2.0 * i as f32 / (side - 1) as f32 } else { 0.0 };
    (0..side * side).map(|k| [lin(k % side), lin(k / side)]).collect()
}

/// What the backward pass needs from one forward pass over P points.
pub struct Trace {
    /// sin and cos of the first and second layers' scaled pre-activations, P × 32 each.
    s1: Vec<f32>,
    c1: Vec<f32>,
    s2: Vec<f32>,
    c2: Vec<f32>,
}

/// f(x) at every point, and the trace for [`backward`].
pub fn forward(p: &[f32], points: &[[f32; 2]]) -> (Vec<f32>, Trace) {
    let n = points.len();
    let (mut s1, mut c1, mut s2, mut c2) = (vec![0f32; n * HIDDEN], vec![0f32; n * HIDDEN], vec![0f32; n * HIDDEN], vec![0f32; n * HIDDEN]);
    let mut out = vec![0f32; n];
    for (k, x) in points.iter().enumerate() {
        for j in 0..HIDDEN {
            let a = W0 * (p[W1 + 2 * j] * x[0] + p[W1 + 2 * j + 1] * x[1] + p[B1 + j]);
            (s1[k * HIDDEN + j], c1[k * HIDDEN + j]) = a.sin_cos();
        }
        let h1 = &s1[k * HIDDEN..][..HIDDEN];
        let mut y = p[B3] + OFFSET;
        for j in 0..HIDDEN {
            let row = &p[W2 + j * HIDDEN..][..HIDDEN];
            let a = W0 * (row.iter().zip(h1).map(|(w, h)| w * h).sum::<f32>() + p[B2 + j]);
            let (s, c) = a.sin_cos();
            s2[k * HIDDEN + j] = s;
            c2[k * HIDDEN + j] = c;
            y += p[W3 + j] * s;
        }
        out[k] = y;
    }
    (out, Trace { s1, c1, s2, c2 })
}

/// Gradients of Σ_k d_out[k]·f(x_k): with respect to the parameters (added into `d_params`
/// when given) and to the points (added into `d_points` when given).
pub fn backward(p: &[f32], points: &[[f32; 2]], trace: &Trace, d_out: &[f32], mut d_params: Option<&mut [f32]>, mut d_points: Option<&mut [[f32; 2]]>) {
    let mut d_a2 = [0f32; HIDDEN];
    let mut d_a1 = [0f32; HIDDEN];
    for (k, x) in points.iter().enumerate() {
        let g = d_out[k];
        let (s1, c1) = (&trace.s1[k * HIDDEN..][..HIDDEN], &trace.c1[k * HIDDEN..][..HIDDEN]);
        let (s2, c2) = (&trace.s2[k * HIDDEN..][..HIDDEN], &trace.c2[k * HIDDEN..][..HIDDEN]);
        // Through the head and the second sine: dL/d(W2 h1 + b2) = g·w3·30·cos.
        for j in 0..HIDDEN {
            d_a2[j] = g * p[W3 + j] * W0 * c2[j];
        }
        // dL/d(W1 x + b1) = (W2ᵀ d_a2)·30·cos.
        for i in 0..HIDDEN {
            let back: f32 = (0..HIDDEN).map(|j| p[W2 + j * HIDDEN + i] * d_a2[j]).sum();
            d_a1[i] = back * W0 * c1[i];
        }
        if let Some(d) = d_params.as_deref_mut() {
            d[B3] += g;
            for j in 0..HIDDEN {
                d[W3 + j] += g * s2[j];
                d[B2 + j] += d_a2[j];
                let row = &mut d[W2 + j * HIDDEN..][..HIDDEN];
                for (w, h) in row.iter_mut().zip(s1) {
                    *w += d_a2[j] * h;
                }
            }
            for i in 0..HIDDEN {
                d[W1 + 2 * i] += d_a1[i] * x[0];
                d[W1 + 2 * i + 1] += d_a1[i] * x[1];
                d[B1 + i] += d_a1[i];
            }
        }
        if let Some(dx) = d_points.as_deref_mut() {
            for i in 0..HIDDEN {
                dx[k][0] += d_a1[i] * p[W1 + 2 * i];
                dx[k][1] += d_a1[i] * p[W1 + 2 * i + 1];
            }
        }
    }
}

/// How an INR is fitted (spec 6 R1: full-batch Adam, lr 1e-3, 100 steps, MSE).
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub steps: usize,
    pub lr: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { steps: 100, lr: 1e-3 }
    }
}

/// Fit a fresh INR (seeded init) to `target` on `points`; returns the parameters and the final
/// mean squared error.
pub fn fit(target: &[f32], points: &[[f32; 2]], seed: u64, opts: &FitOptions) -> (Vec<f32>, f64) {
    let mut params = vec![init(seed)];
    let mut adam = Adam::new(OptimConfig { kind: OptimKind::Adam, ..OptimConfig::default() }, &[N_PARAMS]);
    let n = points.len() as f32;
    for _ in 0..opts.steps {
        let (y, trace) = forward(&params[0], points);
        let d_out: Vec<f32> = y.iter().zip(target).map(|(y, t)| 2.0 * (y - t) / n).collect();
        let mut grad = vec![0f32; N_PARAMS];
        backward(&params[0], points, &trace, &d_out, Some(&mut grad), None);
        adam.update(&mut params, &[grad], opts.lr);
    }
    let p = params.pop().expect("one parameter vector");
    let mse = mse(&p, target, points);
    (p, mse)
}

pub fn mse(p: &[f32], target: &[f32], points: &[[f32; 2]]) -> f64 {
    let (y, _) = forward(p, points);
    y.iter().zip(target).map(|(y, t)| ((y - t) as f64).powi(2)).sum::<f64>() / target.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        let p: Vec<f32> = init(3).iter().map(|v| v * 0.3).collect();
        let points = vec![[0.1f32, -0.4], [-0.7, 0.2], [0.5, 0.9]];
        let d_out = [0.7f32, -1.1, 0.4];
        let loss = |p: &[f32], pts: &[[f32; 2]]| -> f64 { forward(p, pts).0.iter().zip(&d_out).map(|(y, g)| (*y as f64) * (*g as f64)).sum() };
        let (_, trace) = forward(&p, &points);
        let mut dp = vec![0f32; N_PARAMS];
        let mut dx = vec![[0f32; 2]; 3];
        backward(&p, &points, &trace, &d_out, Some(&mut dp), Some(&mut dx));
        let h = 1e-3f32;
        for i in [W1, W1 + 5, B1 + 3, W2, W2 + 77, B2 + 9, W3 + 4, B3] {
            let (mut up, mut down) = (p.clone(), p.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&up, &points) - loss(&down, &points)) / (2.0 * h as f64);
            assert!((fd - dp[i] as f64).abs() < 2e-2 * (1.0 + fd.abs()), "parameter {i}: {} vs {fd}", dp[i]);
        }
        for k in 0..3 {
            for c in 0..2 {
                let (mut up, mut down) = (points.clone(), points.clone());
                up[k][c] += h;
                down[k][c] -= h;
                let fd = (loss(&p, &up) - loss(&p, &down)) / (2.0 * h as f64);
                assert!((fd - dx[k][c] as f64).abs() < 2e-2 * (1.0 + fd.abs()), "point {k}.{c}: {} vs {fd}", dx[k][c]);
            }
        }
    }

    #[test]
    fn the_grid_runs_along_columns_then_rows() {
        assert_eq!(grid(3), vec![[-1.0, -1.0], [0.0, -1.0], [1.0, -1.0], [-1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]);
    }

    #[test]
    fn an_inr_fits_an_8x8_image() {
        let target: Vec<f32> = (0..64).map(|k| if (k % 8 + k / 8) % 3 == 0 { 1.0 } else { 0.0 }).collect();
        let (_, mse) = fit(&target, &grid(8), 0, &FitOptions::default());
        assert!(mse < 1e-4, "MSE {mse}");
    }
}
