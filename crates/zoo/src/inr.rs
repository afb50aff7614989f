//! The SIREN INR of the MNIST-INR benchmark (as ProbeGen's reference code wraps it):
//! Linear(2, 32) → sin(30·) → Linear(32, 32) → sin(30·) → Linear(32, 1) → + 0.5, fitted to one
//! image on the grid linspace(−1, 1, side)² (x = column, y = row). Parameters are one flat f32
//! vector in the order of [`TENSORS`], each tensor in PyTorch layout (weight `[out, in]`), so a
//! zoo file names them like a glassbox Siren checkpoint.
//!
//! Forward and backward are written out by hand: an INR is 1,185 numbers, far below the size
//! where a tensor library's per-op overhead pays off, and a zoo fits thousands of them.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use multiversion::multiversion;
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

/// [`TENSORS`] as a zoo's (name, shape) list.
pub fn tensors() -> Vec<(String, Vec<usize>)> {
    TENSORS.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
}

/// Offsets of the tensors in the flat vector, and its length (1,185).
const W1: usize = 0;
const B1: usize = W1 + HIDDEN * 2;
const W2: usize = B1 + HIDDEN;
const B2: usize = W2 + HIDDEN * HIDDEN;
const W3: usize = B2 + HIDDEN;
const B3: usize = W3 + HIDDEN;
pub const N_PARAMS: usize = B3 + 1;

/// The init of ProbeGen's digits-INR reproduction R1: W1 ~ U(±1/2), W2, W3 ~ U(±√(6/32)/30),
/// every bias ~ U(±1/√fan_in).
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

/// The image grid: pixel (row r, column c) sits at (x, y) = (lin\[c], lin\[r]).
pub fn grid(side: usize) -> Vec<[f32; 2]> {
    let lin = |i: usize| {
        if side > 1 {
            -1.0 + 2.0 * i as f32 / (side - 1) as f32
        } else {
            0.0
        }
    };
    (0..side * side)
        .map(|k| [lin(k % side), lin(k / side)])
        .collect()
}

/// What the backward pass needs from one forward pass over P points: sin and cos of the first
/// and second layers' scaled pre-activations, P × 32 each (column-major).
pub struct Trace {
    s1: Mat<f32>,
    c1: Mat<f32>,
    s2: Mat<f32>,
    c2: Mat<f32>,
    /// The points as columns [x y 1] (P × 3: the ones sum over points in the backward pass),
    /// and scratch for pre-activations (kept so that a fit allocates nothing per step).
    coords: Mat<f32>,
    a1: Vec<f32>,
    a2: Mat<f32>,
}

/// The backward pass's own buffers, reused by every step of a fit.
pub struct Scratch {
    /// [d2 | d1]: the gradients at the second and first layers' pre-activations, n × 64.
    d: Mat<f32>,
    /// [d2 | d1]ᵀ [x y 1], 64 × 3: the sums over points the bias and first-layer gradients need.
    sums: Mat<f32>,
}

impl Scratch {
    pub fn new(n: usize) -> Scratch {
        Scratch { d: Mat::zeros(n, 2 * HIDDEN), sums: Mat::zeros(2 * HIDDEN, 3) }
    }
}

impl Trace {
    fn zeros(n: usize) -> Trace {
        let z = || Mat::zeros(n, HIDDEN);
        Trace { s1: z(), c1: z(), s2: z(), c2: z(), coords: Mat::ones(n, 3), a1: vec![0.0; n], a2: z() }
    }

    fn set_points(&mut self, points: &[[f32; 2]]) {
        for (k, xy) in points.iter().enumerate() {
            (self.coords[(k, 0)], self.coords[(k, 1)]) = (xy[0], xy[1]);
        }
    }
}

fn weight(p: &[f32], at: usize, rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(&p[at..at + rows * cols], rows, cols)
}

/// f(x) at every point, and the trace for [`backward`]. The 32 × 32 layer, where nearly all
/// multiplications are, goes through faer's matmul (SIMD kernels chosen at run time); sin and
/// cos through [`sin_cos`]. One INR per thread: the matmuls run sequentially.
pub fn forward(p: &[f32], points: &[[f32; 2]]) -> (Vec<f32>, Trace) {
    let n = points.len();
    let mut trace = Trace::zeros(n);
    let mut out = vec![0f32; n];
    forward_into(p, points, &mut trace, &mut out);
    (out, trace)
}

/// [`forward`] into buffers of the right size (a fit reuses them for every step). Compiled for
/// AVX-512 and AVX2 as well and picked at run time.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn forward_into(p: &[f32], points: &[[f32; 2]], trace: &mut Trace, out: &mut [f32]) {
    trace.set_points(points);
    let Trace { s1, c1, s2, c2, coords, a1: a, a2 } = trace;
    let (xs, ys) = (coords.col_as_slice(0), coords.col_as_slice(1));
    for j in 0..HIDDEN {
        let (wx, wy, b) = (W0 * p[W1 + 2 * j], W0 * p[W1 + 2 * j + 1], W0 * p[B1 + j]);
        for ((a, x), y) in a.iter_mut().zip(xs.iter()).zip(ys.iter()) {
            *a = wx.mul_add(*x, wy.mul_add(*y, b));
        }
        sin_cos_portable(a, s1.col_as_slice_mut(j), c1.col_as_slice_mut(j));
    }
    matmul(
        a2.as_mut(),
        Accum::Replace,
        s1.as_ref(),
        weight(p, W2, HIDDEN, HIDDEN).transpose(),
        W0,
        Par::Seq,
    );
    out.fill(p[B3] + OFFSET);
    for j in 0..HIDDEN {
        let b = W0 * p[B2 + j];
        let col = a2.col_as_slice_mut(j);
        col.iter_mut().for_each(|v| *v += b);
        sin_cos_portable(col, s2.col_as_slice_mut(j), c2.col_as_slice_mut(j));
        let w = p[W3 + j];
        for (y, s) in out.iter_mut().zip(s2.col_as_slice(j)) {
            *y = w.mul_add(*s, *y);
        }
    }
}

/// Gradients of Σ_k d_out\[k]·f(x_k): with respect to the parameters (added into `d_params`
/// when given) and to the points (added into `d_points` when given).
pub fn backward(
    p: &[f32],
    points: &[[f32; 2]],
    trace: &Trace,
    d_out: &[f32],
    d_params: Option<&mut [f32]>,
    d_points: Option<&mut [[f32; 2]]>,
) {
    backward_with(p, trace, d_out, d_params, d_points, &mut Scratch::new(points.len()));
}

/// [`backward`] with buffers of the right size. `trace` knows the points (from [`forward`]).
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn backward_with(p: &[f32], trace: &Trace, d_out: &[f32], d_params: Option<&mut [f32]>, d_points: Option<&mut [[f32; 2]]>, scratch: &mut Scratch) {
    let Scratch { d, sums } = scratch;
    // Through the head and the second sine: dL/d(W2 h1 + b2)[k, j] = g_k·w3_j·30·cos.
    for j in 0..HIDDEN {
        let w = W0 * p[W3 + j];
        for ((d, g), c) in d.col_as_slice_mut(j).iter_mut().zip(d_out).zip(trace.c2.col_as_slice(j)) {
            *d = g * w * c;
        }
    }
    // dL/d(W1 x + b1) = (d2 W2)·30·cos.
    let (d2, d1) = d.as_mut().split_at_col_mut(HIDDEN);
    matmul(d1, Accum::Replace, d2.as_ref(), weight(p, W2, HIDDEN, HIDDEN), W0, Par::Seq);
    for j in 0..HIDDEN {
        for (d, c) in d.col_as_slice_mut(HIDDEN + j).iter_mut().zip(trace.c1.col_as_slice(j)) {
            *d *= c;
        }
    }
    let d2 = d.as_ref().subcols(0, HIDDEN);
    if let Some(dp) = d_params {
        dp[B3] += d_out.iter().sum::<f32>();
        // dW2 = d2ᵀ s1 in W2's row-major [out, in] layout is s1ᵀ d2 column-major: added in place.
        let dw2 = MatMut::from_column_major_slice_mut(&mut dp[W2..B2], HIDDEN, HIDDEN);
        matmul(dw2, Accum::Add, trace.s1.transpose(), d2, 1.0, Par::Seq);
        // dW3 = gᵀ s2 (a row), in place.
        let dw3 = MatMut::from_row_major_slice_mut(&mut dp[W3..B3], 1, HIDDEN);
        matmul(dw3, Accum::Add, MatRef::from_row_major_slice(d_out, 1, d_out.len()), trace.s2.as_ref(), 1.0, Par::Seq);
        // Sums over the points as one product (a sum per column, one after another, cost a
        // sixth of a fitting step in horizontal additions).
        matmul(sums.as_mut(), Accum::Replace, d.transpose(), trace.coords.as_ref(), 1.0, Par::Seq);
        for j in 0..HIDDEN {
            dp[B2 + j] += sums[(j, 2)];
            dp[W1 + 2 * j] += sums[(HIDDEN + j, 0)];
            dp[W1 + 2 * j + 1] += sums[(HIDDEN + j, 1)];
            dp[B1 + j] += sums[(HIDDEN + j, 2)];
        }
    }
    if let Some(dx) = d_points {
        for j in 0..HIDDEN {
            let (wx, wy) = (p[W1 + 2 * j], p[W1 + 2 * j + 1]);
            for (x, d) in dx.iter_mut().zip(d.col_as_slice(HIDDEN + j)) {
                x[0] = d.mul_add(wx, x[0]);
                x[1] = d.mul_add(wy, x[1]);
            }
        }
    }
}

/// sin and cos of every value, to within ~2e-7 of the true values (plus f32 rounding of the
/// argument's reduction, ~|x|·6e-8). Written branch-free so the compiler vectorises it, with
/// versions compiled for AVX-512 and AVX2 picked at run time: the scalar library calls were
/// most of an INR fit's time. Cephes' sinf/cosf: reduce by multiples of π/2 (Cody-Waite, three
/// parts), then minimax polynomials on [−π/4, π/4] and the quadrant's swap and signs. Fused
/// multiply-adds throughout: one instruction each where the CPU has FMA, and, being exactly
/// rounded, the same bits where it does not.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn sin_cos(x: &[f32], sin: &mut [f32], cos: &mut [f32]) {
    sin_cos_portable(x, sin, cos);
}

#[inline(always)]
fn sin_cos_portable(x: &[f32], sin: &mut [f32], cos: &mut [f32]) {
    const TWO_OVER_PI: f32 = std::f32::consts::FRAC_2_PI;
    // π/2 split so that k·P1 and k·P2 are exact in f32 for |k| < 2^13.
    const P1: f32 = 1.570_312_5;
    const P2: f32 = 4.837_513e-4;
    const P3: f32 = 7.549_79e-8;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer, without a library call.
    const ROUND: f32 = 12_582_912.0;
    for ((&v, s), c) in x.iter().zip(sin.iter_mut()).zip(cos.iter_mut()) {
        let shifted = v.mul_add(TWO_OVER_PI, ROUND);
        let k = shifted - ROUND;
        let r = (-k).mul_add(P3, (-k).mul_add(P2, (-k).mul_add(P1, v)));
        let z = r * r;
        let sr = (r * z).mul_add(z.mul_add(z.mul_add(-1.951_529_6e-4, 8.332_161e-3), -1.666_665_5e-1), r);
        let cr = (z * z).mul_add(z.mul_add(z.mul_add(2.443_315_7e-5, -1.388_731_6e-3), 4.166_664_6e-2), (-0.5f32).mul_add(z, 1.0));
        // The quadrant k mod 4 sits in the low mantissa bits of `shifted` (a bit cast, where
        // `k as i32` would saturate element by element and stop vectorisation).
        let q = shifted.to_bits();
        let (a, b) = if q & 1 == 0 { (sr, cr) } else { (cr, sr) };
        *s = if q & 2 == 0 { a } else { -a };
        *c = if (q + 1) & 2 == 0 { b } else { -b };
    }
}

/// How an INR is fitted (by default as for the digits INRs: full-batch Adam, lr 1e-3, 100
/// steps, MSE).
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub steps: usize,
    pub lr: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            steps: 100,
            lr: 1e-3,
        }
    }
}

/// Fit a fresh INR (seeded init) to `target` on `points`; returns the parameters and the final
/// mean squared error.
pub fn fit(target: &[f32], points: &[[f32; 2]], seed: u64, opts: &FitOptions) -> (Vec<f32>, f64) {
    let mut params = vec![init(seed)];
    let mut adam = Adam::new(OptimConfig { kind: OptimKind::Adam, ..OptimConfig::default() }, &[N_PARAMS]);
    let n = points.len();
    // Buffers reused by every step.
    let (mut trace, mut scratch) = (Trace::zeros(n), Scratch::new(n));
    let (mut y, mut d_out, mut grads) = (vec![0f32; n], vec![0f32; n], vec![vec![0f32; N_PARAMS]]);
    for _ in 0..opts.steps {
        forward_into(&params[0], points, &mut trace, &mut y);
        for ((d, y), t) in d_out.iter_mut().zip(&y).zip(target) {
            *d = 2.0 * (y - t) / n as f32;
        }
        grads[0].fill(0.0);
        backward_with(&params[0], &trace, &d_out, Some(&mut grads[0]), None, &mut scratch);
        adam.update(&mut params, &grads, opts.lr);
    }
    let p = params.pop().expect("one parameter vector");
    let mse = mse(&p, target, points);
    (p, mse)
}

pub fn mse(p: &[f32], target: &[f32], points: &[[f32; 2]]) -> f64 {
    let (y, _) = forward(p, points);
    y.iter()
        .zip(target)
        .map(|(y, t)| ((y - t) as f64).powi(2))
        .sum::<f64>()
        / target.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        let p: Vec<f32> = init(3).iter().map(|v| v * 0.3).collect();
        let points = vec![[0.1f32, -0.4], [-0.7, 0.2], [0.5, 0.9]];
        let d_out = [0.7f32, -1.1, 0.4];
        let loss = |p: &[f32], pts: &[[f32; 2]]| -> f64 {
            forward(p, pts)
                .0
                .iter()
                .zip(&d_out)
                .map(|(y, g)| (*y as f64) * (*g as f64))
                .sum()
        };
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
            assert!(
                (fd - dp[i] as f64).abs() < 2e-2 * (1.0 + fd.abs()),
                "parameter {i}: {} vs {fd}",
                dp[i]
            );
        }
        for k in 0..3 {
            for c in 0..2 {
                let (mut up, mut down) = (points.clone(), points.clone());
                up[k][c] += h;
                down[k][c] -= h;
                let fd = (loss(&p, &up) - loss(&p, &down)) / (2.0 * h as f64);
                assert!(
                    (fd - dx[k][c] as f64).abs() < 2e-2 * (1.0 + fd.abs()),
                    "point {k}.{c}: {} vs {fd}",
                    dx[k][c]
                );
            }
        }
    }

    #[test]
    fn sin_cos_is_within_3e_7_of_the_library_plus_reduction_error() {
        let x: Vec<f32> = (0..200_001)
            .map(|i| (i as f32 - 100_000.0) * 0.004_99)
            .collect();
        let (mut s, mut c) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        sin_cos(&x, &mut s, &mut c);
        for ((&v, &s), &c) in x.iter().zip(&s).zip(&c) {
            let tol = 3e-7 + v.abs() as f64 * 6e-8;
            assert!(
                ((v as f64).sin() - s as f64).abs() < tol
                    && ((v as f64).cos() - c as f64).abs() < tol,
                "x = {v}: {s} {c}"
            );
        }
    }

    /// f(x) computed one point and one weight at a time, in f64.
    fn naive_forward(p: &[f32], x: [f32; 2]) -> f64 {
        let p: Vec<f64> = p.iter().map(|&v| v as f64).collect();
        let w0 = W0 as f64;
        let h1: Vec<f64> = (0..HIDDEN)
            .map(|j| {
                (w0 * (p[W1 + 2 * j] * x[0] as f64 + p[W1 + 2 * j + 1] * x[1] as f64 + p[B1 + j]))
                    .sin()
            })
            .collect();
        let h2: Vec<f64> = (0..HIDDEN)
            .map(|j| {
                (w0 * ((0..HIDDEN)
                    .map(|i| p[W2 + j * HIDDEN + i] * h1[i])
                    .sum::<f64>()
                    + p[B2 + j]))
                    .sin()
            })
            .collect();
        (0..HIDDEN).map(|j| p[W3 + j] * h2[j]).sum::<f64>() + p[B3] + OFFSET as f64
    }

    #[test]
    fn forward_matches_a_naive_f64_evaluation() {
        let p = init(11);
        let points: Vec<[f32; 2]> = (0..37)
            .map(|k| {
                [
                    ((k * 7) % 13) as f32 / 6.5 - 1.0,
                    ((k * 5) % 11) as f32 / 5.5 - 1.0,
                ]
            })
            .collect();
        let (y, _) = forward(&p, &points);
        for (k, x) in points.iter().enumerate() {
            let want = naive_forward(&p, *x);
            assert!(
                (y[k] as f64 - want).abs() < 1e-4,
                "point {k}: {} vs {want}",
                y[k]
            );
        }
    }

    #[test]
    fn the_grid_runs_along_columns_then_rows() {
        assert_eq!(
            grid(3),
            vec![
                [-1.0, -1.0],
                [0.0, -1.0],
                [1.0, -1.0],
                [-1.0, 0.0],
                [0.0, 0.0],
                [1.0, 0.0],
                [-1.0, 1.0],
                [0.0, 1.0],
                [1.0, 1.0]
            ]
        );
    }

    #[test]
    fn an_inr_fits_an_8x8_image() {
        let target: Vec<f32> = (0..64)
            .map(|k| if (k % 8 + k / 8) % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let (_, mse) = fit(&target, &grid(8), 0, &FitOptions::default());
        assert!(mse < 1e-4, "MSE {mse}");
    }
}
