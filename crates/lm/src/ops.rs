//! The forward pass's building blocks on row-major f32 buffers: linear maps through the gemm crate,
//! norms, activations, rotary embeddings and attention. Rows are tokens; every op works on
//! `[rows, width]` slices so that all prompts of a batch go through one GEMM, unpadded.

use crate::config::Activation;
use glassbox_core::vmath;
use rayon::prelude::*;

/// Below this many multiply-adds a GEMM runs on one thread: forking costs more than it gains.
const PARALLEL_GEMM_WORK: usize = 1 << 21;

/// A matrix operand: a slice with its row and column strides (in elements).
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Strided<'a> {
    pub fn rows(data: &'a [f32], row_stride: usize) -> Self {
        Strided { data, row_stride, col_stride: 1 }
    }
    /// The transpose of a row-major matrix with this row stride.
    pub fn transposed(data: &'a [f32], row_stride: usize) -> Self {
        Strided { data, row_stride: 1, col_stride: row_stride }
    }
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "{what}: a {rows}x{cols} view needs index {last} of {}", self.data.len());
        }
    }
}

/// C = A·B for C `[m, n]` (row stride `c_stride`), A `[m, k]`, B `[k, n]`, on the `gemm`
/// crate's kernels (AVX-512 where the CPU has it). Every view is bounds-checked before the
/// unchecked kernel runs.
#[allow(clippy::too_many_arguments)]
pub fn matmul(c: &mut [f32], c_stride: usize, a: Strided, b: Strided, m: usize, n: usize, k: usize, threads: bool) {
    Strided::rows(c, c_stride).check(m, n, "output");
    // SAFETY: the output view was checked to lie inside `c`, which is borrowed mutably, so it
    // cannot alias `a` or `b`.
    unsafe { gemm_to_ptr(c.as_mut_ptr(), c_stride, a, b, m, n, k, threads, false) }
}

/// C += A·B, shapes as in [`matmul`]: how a bias enters a linear map (PyTorch's `addmm`), with
/// no separate pass over the output.
#[allow(clippy::too_many_arguments)]
pub fn matmul_add(c: &mut [f32], c_stride: usize, a: Strided, b: Strided, m: usize, n: usize, k: usize, threads: bool) {
    Strided::rows(c, c_stride).check(m, n, "output");
    // SAFETY: as in `matmul`.
    unsafe { gemm_to_ptr(c.as_mut_ptr(), c_stride, a, b, m, n, k, threads, true) }
}

/// A new `[m, n]` matrix A·B. The GEMM writes the fresh buffer directly: no pass zeroes it first
/// (for the logits of a long batch that pass alone is hundreds of MB).
pub fn matmul_new(a: Strided, b: Strided, m: usize, n: usize, k: usize, threads: bool) -> Vec<f32> {
    let mut c = Vec::with_capacity(m * n);
    // SAFETY: the `[m, n]` view with row stride n covers exactly the m·n reserved elements, which
    // nothing else can reach. matmul_to_ptr writes every one of them and reads none, so all are
    // initialised when the length is set.
    unsafe {
        matmul_to_ptr(c.as_mut_ptr(), n, a, b, m, n, k, threads);
        c.set_len(m * n);
    }
    c
}

/// C = A·B written through a pointer: every element of the `[m, n]` view is written, none is
/// read. How attention heads write their disjoint columns of one output in parallel.
///
/// # Safety
/// `c` must be valid for writes at `r * c_stride + j` for every `r < m`, `j < n`, and no other
/// live reference may reach those elements or overlap `a` and `b`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_to_ptr(c: *mut f32, c_stride: usize, a: Strided, b: Strided, m: usize, n: usize, k: usize, threads: bool) {
    // SAFETY: the caller's contract.
    unsafe { gemm_to_ptr(c, c_stride, a, b, m, n, k, threads, false) }
}

/// C = A·B, or C += A·B if `accumulate`, through a pointer; the safety contract of
/// [`matmul_to_ptr`], and with `accumulate` the view must also be initialised.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_to_ptr(c: *mut f32, c_stride: usize, a: Strided, b: Strided, m: usize, n: usize, k: usize, threads: bool, accumulate: bool) {
    a.check(m, k, "left operand");
    b.check(k, n, "right operand");
    if m == 0 || n == 0 || (k == 0 && accumulate) {
        return;
    }
    if k == 0 {
        for r in 0..m {
            // SAFETY: row r of the output view, valid for writes by the caller's contract.
            unsafe { std::ptr::write_bytes(c.add(r * c_stride), 0, n) };
        }
        return;
    }
    let parallel = threads && m * n * k >= PARALLEL_GEMM_WORK && rayon::current_num_threads() > 1;
    let par = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: `a` and `b` were checked to lie inside their slices; the output view is the
    // caller's contract. Without `accumulate` (read_dst false) the kernel only writes the output.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// A linear map stored as PyTorch stores `nn.Linear`: weight `[d_out, d_in]`, optional bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub d_in: usize,
    pub d_out: usize,
}

impl Linear {
    /// y = x Wᵀ + b for `x` of `[rows, d_in]`.
    pub fn forward(&self, x: &[f32], rows: usize) -> Vec<f32> {
        self.forward_part(x, rows, 0..self.d_out)
    }

    /// The outputs `outs` only (a range of the weight's rows): how one stacked map (Q/K/V,
    /// gate/up) yields its parts without a copy.
    pub fn forward_part(&self, x: &[f32], rows: usize, outs: std::ops::Range<usize>) -> Vec<f32> {
        debug_assert_eq!(x.len(), rows * self.d_in);
        let (xs, ws, width) = (Strided::rows(x, self.d_in), self.weight_t(&outs), outs.len());
        match &self.bias {
            // Start from the bias and add the product to it, as PyTorch's addmm does.
            Some(b) => {
                let mut y = b[outs].repeat(rows);
                matmul_add(&mut y, width, xs, ws, rows, width, self.d_in, true);
                y
            }
            None => matmul_new(xs, ws, rows, width, self.d_in, true),
        }
    }

    pub fn forward_into(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        debug_assert_eq!(x.len(), rows * self.d_in);
        let (xs, ws, width) = (Strided::rows(x, self.d_in), self.weight_t(&(0..self.d_out)), self.d_out);
        match &self.bias {
            Some(b) => {
                y.chunks_mut(width).for_each(|row| row.copy_from_slice(b));
                matmul_add(y, width, xs, ws, rows, width, self.d_in, true);
            }
            None => matmul(y, width, xs, ws, rows, width, self.d_in, true),
        }
    }

    /// Wᵀ restricted to the outputs `outs`: the right operand of x Wᵀ.
    fn weight_t(&self, outs: &std::ops::Range<usize>) -> Strided<'_> {
        Strided::transposed(&self.weight[outs.start * self.d_in..outs.end * self.d_in], self.d_in)
    }
}

/// A LayerNorm or RMSNorm's parameters; RMSNorm has no bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

/// Normalise each row without its weights: returns (scale `[rows]`, normalised `[rows, d]`).
/// LayerNorm centres the row first; RMSNorm does not. Sums run in f64 so that the statistic is
/// exact to f32 rounding.
pub fn normalize(x: &[f32], d: usize, layer_norm: bool, eps: f64) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / d;
    let mut scale = vec![0f32; rows];
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(d).zip(scale.par_iter_mut()).zip(x.par_chunks(d)).for_each(|((o, s), row)| {
        *s = normalize_row(row, o, layer_norm, eps);
    });
    (scale, out)
}

/// One row of [`normalize`]; returns its scale.
#[multiversion::multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn normalize_row(row: &[f32], out: &mut [f32], layer_norm: bool, eps: f64) -> f32 {
    let d = row.len() as f64;
    let mean = if layer_norm { lane_sum(row, |v| v as f64) / d } else { 0.0 };
    let var = lane_sum(row, |v| (v as f64 - mean) * (v as f64 - mean)) / d;
    let sc = (var + eps).sqrt();
    let inv = 1.0 / sc;
    out.iter_mut().zip(row).for_each(|(o, &v)| *o = ((v as f64 - mean) * inv) as f32);
    sc as f32
}

/// Σ f(v) in f64, kept per lane so that the loop vectorises (f64 lanes: half as many as f32).
#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut lanes = [0f64; LANES / 2];
    let mut chunks = row.chunks_exact(LANES / 2);
    for chunk in &mut chunks {
        lanes.iter_mut().zip(chunk).for_each(|(l, &v)| *l += f(v));
    }
    chunks.remainder().iter().for_each(|&v| lanes[0] += f(v));
    lanes.iter().sum()
}

/// Apply a norm's weight (and bias) to normalised rows in place.
pub fn affine(x: &mut [f32], p: &Norm) {
    let d = p.weight.len();
    x.par_chunks_mut(d).for_each(|row| {
        row.iter_mut().zip(&p.weight).for_each(|(v, w)| *v *= w);
        if let Some(b) = &p.bias {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
    });
}

/// Apply an activation to every element, in place, with vectorised kernels.
pub fn activate_all(act: Activation, x: &mut [f32]) {
    x.par_chunks_mut(4096).for_each(|c| match act {
        Activation::GeluTanh => vmath::gelu_tanh(c),
        Activation::GeluErf => vmath::gelu_erf(c),
        Activation::Silu => vmath::silu(c),
        Activation::Relu => c.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Identity => {}
    });
}

/// Rotary tables for positions `0..n` as Hugging Face's Llama builds them: inverse frequencies
/// θ^(−2i/d) in f32, angles position·freq, then cos and sin (halves repeated).
pub struct Rotary {
    pub d_head: usize,
    inv_freq: Vec<f32>,
}

impl Rotary {
    pub fn new(d_head: usize, theta: f64) -> Self {
        let inv_freq = (0..d_head / 2)
            .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / d_head as f32))
            .collect();
        Rotary { d_head, inv_freq }
    }

    /// cos and sin of every (position, frequency) pair, `[positions, d_head / 2]` each: formed
    /// once per forward pass and shared by every head and block.
    pub fn table(&self, positions: &[usize]) -> RotaryTable {
        let half = self.d_head / 2;
        let (mut cos, mut sin) = (Vec::with_capacity(positions.len() * half), Vec::with_capacity(positions.len() * half));
        for &pos in positions {
            for f in &self.inv_freq {
                let (s, c) = (pos as f32 * f).sin_cos();
                cos.push(c);
                sin.push(s);
            }
        }
        RotaryTable { half, cos, sin }
    }
}

pub struct RotaryTable {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RotaryTable {
    /// Rotate one head vector of token `row` in place: x·cos + rotate_half(x)·sin.
    pub fn apply(&self, x: &mut [f32], row: usize) {
        let half = self.half;
        let (cos, sin) = (&self.cos[row * half..(row + 1) * half], &self.sin[row * half..(row + 1) * half]);
        let (lo, hi) = x.split_at_mut(half);
        for i in 0..half {
            let (a, b) = (lo[i], hi[i]);
            lo[i] = a * cos[i] - b * sin[i];
            hi[i] = b * cos[i] + a * sin[i];
        }
    }
}

/// Softmax of a row in place; `-inf` entries get probability 0.
pub fn softmax(row: &mut [f32]) {
    let n = row.len();
    softmax_scaled(row, 1.0, n);
}

/// Lanes of the vectorised reductions: partial maxima and sums are kept per lane so that the
/// loops vectorise (a single f32 accumulator forces one element at a time).
const LANES: usize = 16;

/// Softmax of `scale · row[..visible]` in place, with the entries from `visible` on given
/// probability 0 (a causal mask).
pub fn softmax_scaled(row: &mut [f32], scale: f32, visible: usize) {
    let total = exp_shifted(row, scale, visible);
    if total > 0.0 {
        let inv = 1.0 / total;
        row[..visible].iter_mut().for_each(|v| *v *= inv);
    }
}

/// The unnormalised softmax of `scale · row[..visible]`: each entry becomes
/// exp(scale · (v − max)), the entries from `visible` on 0; returns their sum (0 if every
/// visible entry is −inf). Attention divides its weighted values by the sum instead of the
/// `[queries, keys]` weights. One pass finds the maximum, one exponentiates and sums.
#[multiversion::multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn exp_shifted(row: &mut [f32], scale: f32, visible: usize) -> f32 {
    let (live, masked) = row.split_at_mut(visible);
    masked.fill(0.0);
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    let mut chunks = live.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (m, &v) in lane_max.iter_mut().zip(chunk) {
            *m = if v > *m { v } else { *m };
        }
    }
    for &v in chunks.remainder() {
        lane_max[0] = if v > lane_max[0] { v } else { lane_max[0] };
    }
    let max = lane_max.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    if max == f32::NEG_INFINITY {
        live.fill(0.0);
        return 0.0;
    }
    let shift = scale * max;
    let mut lane_sum = [0f32; LANES];
    let mut chunks = live.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, v) in lane_sum.iter_mut().zip(chunk.iter_mut()) {
            *v = vmath::exp1_fma(v.mul_add(scale, -shift));
            *s += *v;
        }
    }
    for v in chunks.into_remainder() {
        *v = vmath::exp1_fma(v.mul_add(scale, -shift));
        lane_sum[0] += *v;
    }
    lane_sum.iter().sum()
}

/// log Σ exp(row), stably.
pub fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_matches_a_hand_computed_product() {
        let lin = Linear { weight: vec![1., 2., 3., 4., 5., 6.], bias: Some(vec![0.5, -1.0]), d_in: 3, d_out: 2 };
        // x = [[1, 0, -1], [2, 1, 0]]
        let y = lin.forward(&[1., 0., -1., 2., 1., 0.], 2);
        assert_eq!(y, vec![1. - 3. + 0.5, 4. - 6. - 1.0, 2. + 2. + 0.5, 8. + 5. - 1.0]);
    }

    #[test]
    fn layer_norm_and_rms_norm_match_their_definitions() {
        let p = Norm { weight: vec![1., 2., 3., 4.], bias: Some(vec![0., 0., 0., 1.]) };
        let x = [1f32, 2., 3., 6.];
        let (s, mut y) = normalize(&x, 4, true, 0.0);
        affine(&mut y, &p);
        let var: f32 = [-2f32, -1., 0., 3.].iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!((s[0] - var.sqrt()).abs() < 1e-6);
        assert!((y[3] - (3.0 / var.sqrt() * 4.0 + 1.0)).abs() < 1e-5);
        let (s, y) = normalize(&x, 4, false, 0.0);
        let rms = (50f32 / 4.0).sqrt();
        assert!((s[0] - rms).abs() < 1e-6 && (y[0] - 1.0 / rms).abs() < 1e-6);
    }

    #[test]
    fn activations_match_reference_values() {
        // torch.nn.functional.gelu(torch.tensor(1.0)) and approximate="tanh"; silu(1.0); relu.
        let expected = [
            (Activation::GeluErf, 0.841_344_7),
            (Activation::GeluTanh, 0.841_191_9),
            (Activation::Silu, 0.731_058_6),
            (Activation::Relu, 1.0),
        ];
        for (act, want) in expected {
            let mut x = [1.0f32, -0.0];
            activate_all(act, &mut x);
            assert!((x[0] - want).abs() < 1e-6 && x[1] == 0.0, "{act:?}: {x:?}");
        }
    }

    #[test]
    fn rotary_rotates_pairs_of_halves() {
        let rot = Rotary::new(4, 10_000.0).table(&[0, 1, 2, 3]);
        let mut x = [1f32, 0., 0., 0.];
        rot.apply(&mut x, 1);
        // i = 0: freq 1, angle 1 -> (cos 1, ., sin 1, .)
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[2] - 1f32.sin()).abs() < 1e-6);
        let mut y = [0f32, 1., 0., 0.];
        rot.apply(&mut y, 3); // i = 1: freq 1e-2, angle 0.03
        assert!((y[1] - 0.03f32.cos()).abs() < 1e-6 && (y[3] - 0.03f32.sin()).abs() < 1e-6);
    }

    #[test]
    fn softmax_ignores_masked_entries() {
        let mut r = [0f32, f32::NEG_INFINITY, 0.0];
        softmax(&mut r);
        assert_eq!(r, [0.5, 0.0, 0.5]);
        // Scaled, with the tail masked, against the f64 definition over 37 entries.
        let x: Vec<f32> = (0..40).map(|i| ((i * 17 % 23) as f32 - 11.0) * 0.7).collect();
        let mut y = x.clone();
        softmax_scaled(&mut y, 0.5, 37);
        let max = x[..37].iter().fold(f64::MIN, |m, &v| m.max(0.5 * v as f64));
        let total: f64 = x[..37].iter().map(|&v| (0.5 * v as f64 - max).exp()).sum();
        for (i, &v) in x.iter().enumerate() {
            let want = if i < 37 { (0.5 * v as f64 - max).exp() / total } else { 0.0 };
            assert!((y[i] as f64 - want).abs() < 1e-7, "{i}: {} vs {want}", y[i]);
        }
    }
}
