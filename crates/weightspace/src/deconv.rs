//! ProbeGen's transposed-convolution generator for image probes (Kahana et al. 2025: affine
//! layers only, DCGAN-like, tanh applied by [`crate::probes::Probes`]). Weights in PyTorch's
//! ConvTranspose2d layout `[in, out, k, k]`, PyTorch's default init (bound 1/√fan_in with
//! fan_in = out·k², PyTorch's quirk for transposed convolutions). One output pixel (y, x) of
//! layer out receives in[i, iy, ix]·w[i, o, ky, kx] where y = iy·s − p + ky, x = ix·s − p + kx.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use glassbox_zoo::cnn::tap_pairs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvT {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvT {
    pub fn out_side(&self, side: usize) -> usize {
        (side - 1) * self.stride + self.k - 2 * self.pad
    }
}

#[derive(Clone)]
pub struct Deconv {
    pub layers: Vec<ConvT>,
    /// Input side of each layer, and the output side last.
    pub sides: Vec<usize>,
    /// [W_0, b_0, W_1, b_1, …].
    pub params: Vec<Vec<f32>>,
}

/// Each layer's input, for the backward pass.
pub struct DeconvCache {
    inputs: Vec<Vec<f32>>,
}

impl Deconv {
    pub fn new(layers: Vec<ConvT>, in_side: usize, seed: u64) -> Deconv {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sides = vec![in_side];
        let mut params = Vec::new();
        for l in &layers {
            sides.push(l.out_side(*sides.last().expect("non-empty")));
            let bound = 1.0 / ((l.cout * l.k * l.k) as f32).sqrt();
            params.push((0..l.cin * l.cout * l.k * l.k).map(|_| rng.random_range(-bound..bound)).collect());
            params.push((0..l.cout).map(|_| rng.random_range(-bound..bound)).collect());
        }
        Deconv { layers, sides, params }
    }

    /// For 28×28 probes, ProbeGen's deep_linear_5 pattern resized from 32 to 28 pixels: 32×1×1
    /// → 64×4×4 (k4, s1) → 32×7×7 (k3, s2, p1) → 16×14×14 (k4, s2, p1) → 16×28×28 (k4, s2,
    /// p1) → 1×28×28 (k3, s1, p1). The k3 stage from 4×4 to 7×7 replaces ProbeGen's k4 one
    /// from 4×4 to 8×8, and the widths are halved (64, 32, 16 instead of 128, 64, 32) for
    /// these 8-channel targets.
    pub fn mnist(latent: usize, seed: u64) -> Deconv {
        let l = |cin, cout, k, stride, pad| ConvT { cin, cout, k, stride, pad };
        Deconv::new(vec![l(latent, 64, 4, 1, 0), l(64, 32, 3, 2, 1), l(32, 16, 4, 2, 1), l(16, 16, 4, 2, 1), l(16, 1, 3, 1, 1)], 1, seed)
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].cin * self.sides[0] * self.sides[0]
    }

    pub fn output_dim(&self) -> usize {
        let last = self.layers.len();
        self.layers[last - 1].cout * self.sides[last] * self.sides[last]
    }

    pub fn sizes(&self) -> Vec<usize> {
        self.params.iter().map(Vec::len).collect()
    }

    /// Layer l's input as a matrix with rows (image, input pixel) and columns the input
    /// channels, and its weights as cin × (cout, ky, kx): one matrix product gives every
    /// input pixel's contribution to every output channel and kernel offset.
    fn operands(&self, li: usize, h: &[f32]) -> (Mat<f32>, MatRef<'_, f32>) {
        let l = self.layers[li];
        let area = self.sides[li] * self.sides[li];
        let n = h.len() / (l.cin * area);
        let mut x = Mat::<f32>::zeros(n * area, l.cin);
        for i in 0..l.cin {
            let col = x.col_as_slice_mut(i);
            for img in 0..n {
                col[img * area..][..area].copy_from_slice(&h[(img * l.cin + i) * area..][..area]);
            }
        }
        let w = MatRef::from_row_major_slice(&self.params[2 * li], l.cin, l.cout * l.k * l.k);
        (x, w)
    }

    /// Calls f(column of taps for one image, output plane, pairs) for every image, output
    /// channel o and kernel tap: the tap matrix's column (o, ky, kx) holds, for rows (image, iy,
    /// ix), what input pixel (iy, ix) sends to output plane o at the pairs' positions.
    fn for_each_tap(&self, li: usize, n: usize, mut f: impl FnMut(usize, usize, usize, &[(u32, u32)])) {
        let l = self.layers[li];
        let (si2, so2) = (self.sides[li] * self.sides[li], self.sides[li + 1] * self.sides[li + 1]);
        // Input pixel (iy, ix) meets output (iy·s − p + ky, ix·s − p + kx) at tap (ky, kx).
        let pairs = tap_pairs(l.k, l.stride, l.pad, self.sides[li], self.sides[li + 1]);
        for img in 0..n {
            for o in 0..l.cout {
                for (tap, pairs) in pairs.iter().enumerate() {
                    f(o * l.k * l.k + tap, img * si2, (img * l.cout + o) * so2, pairs);
                }
            }
        }
    }

    /// The outputs (n × output_dim, row-major) of n inputs (n × input_dim).
    pub fn forward(&self, z: &[f32]) -> (Vec<f32>, DeconvCache) {
        let n = z.len() / self.input_dim();
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut h = z.to_vec();
        for (li, l) in self.layers.iter().enumerate() {
            let so2 = self.sides[li + 1] * self.sides[li + 1];
            let (x, w) = self.operands(li, &h);
            let mut taps = Mat::<f32>::zeros(x.nrows(), w.ncols());
            matmul(taps.as_mut(), Accum::Replace, x.as_ref(), w, 1.0, Par::Seq);
            let mut out = vec![0f32; n * l.cout * so2];
            for (plane, bias) in out.chunks_mut(so2).zip(self.params[2 * li + 1].iter().cycle()) {
                plane.fill(*bias);
            }
            self.for_each_tap(li, n, |c, row, plane, pairs| {
                let (col, out) = (&taps.col_as_slice(c)[row..], &mut out[plane..]);
                for &(i, t) in pairs {
                    out[t as usize] += col[i as usize];
                }
            });
            inputs.push(std::mem::replace(&mut h, out));
        }
        (h, DeconvCache { inputs })
    }

    /// Parameter gradients (layout of `params`) and dL/dz from dL/d(outputs).
    pub fn backward(&self, cache: &DeconvCache, d_out: &[f32]) -> (Vec<Vec<f32>>, Vec<f32>) {
        let mut grads: Vec<Vec<f32>> = self.params.iter().map(|p| vec![0f32; p.len()]).collect();
        let mut g = d_out.to_vec();
        for (li, l) in self.layers.iter().enumerate().rev() {
            let (si2, so2) = (self.sides[li] * self.sides[li], self.sides[li + 1] * self.sides[li + 1]);
            let (x, w) = self.operands(li, &cache.inputs[li]);
            let n = x.nrows() / si2;
            for (plane, o) in g.chunks(so2).zip((0..l.cout).cycle()) {
                grads[2 * li + 1][o] += plane.iter().sum::<f32>();
            }
            let mut d_taps = Mat::<f32>::zeros(x.nrows(), w.ncols());
            self.for_each_tap(li, n, |c, row, plane, pairs| {
                let (col, g) = (&mut d_taps.col_as_slice_mut(c)[row..], &g[plane..]);
                for &(i, t) in pairs {
                    col[i as usize] = g[t as usize];
                }
            });
            let mut dw = Mat::<f32>::zeros(l.cin, w.ncols());
            matmul(dw.as_mut(), Accum::Replace, x.transpose(), d_taps.as_ref(), 1.0, Par::Seq);
            for (i, row) in grads[2 * li].chunks_mut(w.ncols()).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v += dw[(i, c)];
                }
            }
            let mut dx = Mat::<f32>::zeros(x.nrows(), l.cin);
            matmul(dx.as_mut(), Accum::Replace, d_taps.as_ref(), w.transpose(), 1.0, Par::Seq);
            g = vec![0f32; n * l.cin * si2];
            for i in 0..l.cin {
                let col = dx.col_as_slice(i);
                for img in 0..n {
                    g[(img * l.cin + i) * si2..][..si2].copy_from_slice(&col[img * si2..][..si2]);
                }
            }
        }
        (grads, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mnist_stack_grows_1_to_28_pixels() {
        let d = Deconv::mnist(32, 0);
        assert_eq!(d.sides, vec![1, 4, 7, 14, 28, 28]);
        assert_eq!((d.input_dim(), d.output_dim()), (32, 784));
    }

    #[test]
    fn a_transposed_convolution_matches_a_hand_computed_case() {
        // One 2×2 input channel, kernel 2×2 of ones, stride 2: each input pixel paints its own
        // 2×2 block of the 4×4 output (plus the bias 0.5).
        let mut d = Deconv::new(vec![ConvT { cin: 1, cout: 1, k: 2, stride: 2, pad: 0 }], 2, 0);
        d.params = vec![vec![1.0; 4], vec![0.5]];
        let (out, _) = d.forward(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(out, vec![1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5]);
    }

    /// The definition, one output pixel at a time: out[o, y, x] += in[i, iy, ix]·w[i, o, ky, kx].
    fn naive_forward(d: &Deconv, z: &[f32]) -> Vec<f32> {
        let mut h = z.to_vec();
        for (li, l) in d.layers.iter().enumerate() {
            let (si, so) = (d.sides[li], d.sides[li + 1]);
            let n = h.len() / (l.cin * si * si);
            let (w, b) = (&d.params[2 * li], &d.params[2 * li + 1]);
            let mut out = vec![0f32; n * l.cout * so * so];
            for img in 0..n {
                for o in 0..l.cout {
                    for y in 0..so {
                        for x in 0..so {
                            let mut acc = b[o];
                            for i in 0..l.cin {
                                for (iy, ky) in (0..si).flat_map(|iy| (0..l.k).map(move |ky| (iy, ky))) {
                                    for (ix, kx) in (0..si).flat_map(|ix| (0..l.k).map(move |kx| (ix, kx))) {
                                        if iy * l.stride + ky == y + l.pad && ix * l.stride + kx == x + l.pad {
                                            acc += h[((img * l.cin + i) * si + iy) * si + ix] * w[((i * l.cout + o) * l.k + ky) * l.k + kx];
                                        }
                                    }
                                }
                            }
                            out[((img * l.cout + o) * so + y) * so + x] = acc;
                        }
                    }
                }
            }
            h = out;
        }
        h
    }

    #[test]
    fn the_matrix_form_matches_the_definition() {
        let d = Deconv::new(vec![ConvT { cin: 3, cout: 4, k: 4, stride: 1, pad: 0 }, ConvT { cin: 4, cout: 3, k: 3, stride: 2, pad: 1 }, ConvT { cin: 3, cout: 2, k: 4, stride: 2, pad: 1 }], 1, 9);
        let z: Vec<f32> = (0..3 * 3).map(|i| ((i as f32) * 1.3).sin()).collect();
        let (fast, slow) = (d.forward(&z).0, naive_forward(&d, &z));
        assert_eq!(fast.len(), slow.len());
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let d = Deconv::new(vec![ConvT { cin: 3, cout: 4, k: 4, stride: 1, pad: 0 }, ConvT { cin: 4, cout: 2, k: 3, stride: 2, pad: 1 }], 1, 5);
        let z: Vec<f32> = (0..2 * 3).map(|i| ((i as f32) * 0.9).sin()).collect();
        let (out, cache) = d.forward(&z);
        let weights: Vec<f32> = (0..out.len()).map(|i| ((i as f32) * 0.37).cos()).collect();
        let loss = |d: &Deconv, z: &[f32]| -> f64 { d.forward(z).0.iter().zip(&weights).map(|(a, b)| (a * b) as f64).sum() };
        let (grads, dz) = d.backward(&cache, &weights);
        let h = 1e-2f32;
        for (t, g) in grads.iter().enumerate() {
            for i in [0, g.len() / 3, g.len() - 1] {
                let (mut up, mut down) = (d.clone(), d.clone());
                up.params[t][i] += h;
                down.params[t][i] -= h;
                let fd = (loss(&up, &z) - loss(&down, &z)) / (2.0 * h as f64);
                assert!((fd - g[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()), "tensor {t} entry {i}: {} vs {fd}", g[i]);
            }
        }
        for i in 0..z.len() {
            let (mut up, mut down) = (z.clone(), z.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&d, &up) - loss(&d, &down)) / (2.0 * h as f64);
            assert!((fd - dz[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()), "z {i}: {} vs {fd}", dz[i]);
        }
    }
}
