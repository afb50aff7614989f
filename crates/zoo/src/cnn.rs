//! Small CNNs of a CNN accuracy zoo (issue 6's `mnist-cnn-acc`: spec/probegen.md 6 R3 made for
//! 28×28 MNIST, mirroring CIFAR10-GS's Small CNN Zoo with padding 1): 3×3 convolutions with
//! stride 2 and padding 1 (28 → 14 → 7 → 4), ReLU or tanh after each, global average pooling,
//! one Linear layer. Flat parameters: per convolution `convs.l.weight [out, in, 3, 3]` and
//! `convs.l.bias [out]`, then `head.weight [classes, c]`, `head.bias [classes]` (PyTorch layouts).
//! Convolutions are im2col gathers and faer matrix products over the whole batch; activations
//! are kept channel-last. Grey (one-channel) inputs.

use crate::mlp::Activation;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

const K: usize = 3;
const STRIDE: usize = 2;
const PAD: usize = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cnn {
    /// Input height and width (one channel).
    pub side: usize,
    /// Channels, input first.
    pub channels: Vec<usize>,
    pub classes: usize,
}

/// Post-activation outputs of every convolution, for the backward pass.
pub struct Trace {
    layers: Vec<Mat<f32>>,
}

impl Cnn {
    pub fn mnist() -> Cnn {
        Cnn { side: 28, channels: vec![1, 8, 8, 8], classes: 10 }
    }

    /// Spatial side of the input of layer l (l = convolutions: the last conv's output).
    pub fn side_at(&self, l: usize) -> usize {
        (0..l).fold(self.side, |s, _| (s + 2 * PAD - K) / STRIDE + 1)
    }

    fn convs(&self) -> usize {
        self.channels.len() - 1
    }

    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (l, c) in self.channels.windows(2).enumerate() {
            out.push((format!("convs.{l}.weight"), vec![c[1], c[0], K, K]));
            out.push((format!("convs.{l}.bias"), vec![c[1]]));
        }
        let last = self.channels[self.convs()];
        out.push(("head.weight".into(), vec![self.classes, last]));
        out.push(("head.bias".into(), vec![self.classes]));
        out
    }

    /// The network whose tensors these are, for a given input side.
    pub fn from_tensors(tensors: &[(String, Vec<usize>)], side: usize) -> Option<Cnn> {
        let convs = tensors.len().checked_sub(2)? / 2;
        let mut channels = vec![*tensors.first()?.1.get(1)?];
        for l in 0..convs {
            channels.push(*tensors[2 * l].1.first()?);
        }
        let classes = *tensors.last()?.1.first()?;
        let net = Cnn { side, channels, classes };
        // Grey images only: layer 0 reads its input as one channel.
        let sizes_ok = convs >= 1 && classes > 0 && net.channels.iter().all(|&c| c > 0);
        (sizes_ok && net.channels[0] == 1 && side > 0 && net.tensors() == tensors).then_some(net)
    }

    pub fn n_params(&self) -> usize {
        self.tensors().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    pub fn input_dim(&self) -> usize {
        self.channels[0] * self.side * self.side
    }

    /// (weight offset, bias offset) of layer l; l = convs() is the head.
    pub fn offsets(&self, l: usize) -> (usize, usize) {
        let sizes: Vec<usize> = self.tensors().iter().map(|(_, s)| s.iter().product()).collect();
        let w: usize = sizes[..2 * l].iter().sum();
        (w, w + sizes[2 * l])
    }

    /// (range, fan-in) of every weight tensor: He init and the L2 penalty use them.
    pub fn weights(&self) -> Vec<(std::ops::Range<usize>, usize)> {
        (0..=self.convs())
            .map(|l| {
                let (w, b) = self.offsets(l);
                let fan_in = if l < self.convs() { self.channels[l] * K * K } else { self.channels[l] };
                (w..b, fan_in)
            })
            .collect()
    }

    /// For every output position of layer l and every (i, ky, kx) of its kernel, the input
    /// value it reads in a channel-last image (position · channels + channel), or None in the
    /// padding: the im2col gather, so that a convolution is one matrix product.
    fn gather(&self, l: usize) -> Vec<Option<usize>> {
        let (ci, si, so) = (self.channels[l], self.side_at(l), self.side_at(l + 1));
        let mut idx = Vec::with_capacity(so * so * ci * K * K);
        for oy in 0..so {
            for ox in 0..so {
                for i in 0..ci {
                    for ky in 0..K {
                        for kx in 0..K {
                            let iy = (oy * STRIDE + ky).checked_sub(PAD).filter(|&v| v < si);
                            let ix = (ox * STRIDE + kx).checked_sub(PAD).filter(|&v| v < si);
                            idx.push(iy.zip(ix).map(|(iy, ix)| (iy * si + ix) * ci + i));
                        }
                    }
                }
            }
        }
        idx
    }

    /// Logits (n × classes) of the n images in `x` (n × side², row-major), and the trace.
    /// Activations are kept channel-last: rows (image, position), columns channels.
    pub fn forward(&self, p: &[f32], act: Activation, x: &[f32]) -> (Vec<f32>, Trace) {
        let n = x.len() / self.input_dim();
        let mut layers: Vec<Mat<f32>> = Vec::with_capacity(self.convs());
        for l in 0..self.convs() {
            let (ci, co, si, so) = (self.channels[l], self.channels[l + 1], self.side_at(l), self.side_at(l + 1));
            let cols = self.im2col(l, n, |img, at| if l == 0 { x[img * si * si * ci + at] } else { let (pos, c) = (at / ci, at % ci); layers[l - 1][(img * si * si + pos, c)] });
            let (wo, bo) = self.offsets(l);
            let w = MatRef::from_row_major_slice(&p[wo..bo], co, ci * K * K);
            let mut out = Mat::<f32>::zeros(n * so * so, co);
            matmul(out.as_mut(), Accum::Replace, cols.as_ref(), w.transpose(), 1.0, Par::Seq);
            for o in 0..co {
                let b = p[bo + o];
                out.col_as_slice_mut(o).iter_mut().for_each(|v| *v = act.apply(*v + b));
            }
            layers.push(out);
        }
        let (c, s) = (self.channels[self.convs()], self.side_at(self.convs()));
        let (wo, bo) = self.offsets(self.convs());
        let last = &layers[self.convs() - 1];
        let mut logits = vec![0f32; n * self.classes];
        for img in 0..n {
            let pooled: Vec<f32> = (0..c).map(|ch| last.col_as_slice(ch)[img * s * s..][..s * s].iter().sum::<f32>() / (s * s) as f32).collect();
            for k in 0..self.classes {
                logits[img * self.classes + k] = p[bo + k] + p[wo + k * c..][..c].iter().zip(&pooled).map(|(a, b)| a * b).sum::<f32>();
            }
        }
        (logits, Trace { layers })
    }

    /// The im2col matrix of layer l: rows (image, output position), columns (i, ky, kx);
    /// `value(image, channel-last index)` reads the layer's input.
    fn im2col(&self, l: usize, n: usize, value: impl Fn(usize, usize) -> f32) -> Mat<f32> {
        let (ci, so) = (self.channels[l], self.side_at(l + 1));
        let gather = self.gather(l);
        let width = ci * K * K;
        let mut cols = Mat::<f32>::zeros(n * so * so, width);
        for j in 0..width {
            let col = cols.col_as_slice_mut(j);
            for img in 0..n {
                for pos in 0..so * so {
                    if let Some(at) = gather[pos * width + j] {
                        col[img * so * so + pos] = value(img, at);
                    }
                }
            }
        }
        cols
    }

    /// Gradients of Σ d_out ⊙ logits: with respect to the parameters (added into `d_params` when
    /// given) and to the images (returned when `want_input`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, p: &[f32], act: Activation, x: &[f32], trace: &Trace, d_out: &[f32], mut d_params: Option<&mut [f32]>, want_input: bool) -> Option<Vec<f32>> {
        let n = x.len() / self.input_dim();
        let (c, s) = (self.channels[self.convs()], self.side_at(self.convs()));
        let (wo, bo) = self.offsets(self.convs());
        let last = &trace.layers[self.convs() - 1];
        // Through the head and the average pool: dL/dh[(img, pos), c] = (W_hᵀ d_out)[c] / s².
        let mut g = Mat::<f32>::zeros(n * s * s, c);
        for img in 0..n {
            let d = &d_out[img * self.classes..][..self.classes];
            for ch in 0..c {
                let d_feat: f32 = (0..self.classes).map(|k| p[wo + k * c + ch] * d[k]).sum();
                if let Some(dp) = d_params.as_deref_mut() {
                    let pooled = last.col_as_slice(ch)[img * s * s..][..s * s].iter().sum::<f32>() / (s * s) as f32;
                    for k in 0..self.classes {
                        dp[wo + k * c + ch] += d[k] * pooled;
                    }
                }
                g.col_as_slice_mut(ch)[img * s * s..][..s * s].fill(d_feat / (s * s) as f32);
            }
            if let Some(dp) = d_params.as_deref_mut() {
                for k in 0..self.classes {
                    dp[bo + k] += d[k];
                }
            }
        }
        for l in (0..self.convs()).rev() {
            let (ci, co, si, so) = (self.channels[l], self.channels[l + 1], self.side_at(l), self.side_at(l + 1));
            // g is dL/d(output of layer l's activation): through the activation first.
            for o in 0..co {
                for (d, &h) in g.col_as_slice_mut(o).iter_mut().zip(trace.layers[l].col_as_slice(o)) {
                    *d *= act.slope_from_output(h);
                }
            }
            let (wo, bo) = self.offsets(l);
            let width = ci * K * K;
            if let Some(dp) = d_params.as_deref_mut() {
                let cols = self.im2col(l, n, |img, at| if l == 0 { x[img * si * si * ci + at] } else { let (pos, ch) = (at / ci, at % ci); trace.layers[l - 1][(img * si * si + pos, ch)] });
                // dW = gᵀ cols is [co, ci·9]: W's own layout.
                let mut dw = Mat::<f32>::zeros(co, width);
                matmul(dw.as_mut(), Accum::Replace, g.transpose(), cols.as_ref(), 1.0, Par::Seq);
                for o in 0..co {
                    dp[bo + o] += g.col_as_slice(o).iter().sum::<f32>();
                    for j in 0..width {
                        dp[wo + o * width + j] += dw[(o, j)];
                    }
                }
            }
            if l == 0 && !want_input {
                return None;
            }
            // dL/d(cols) = g W, scattered back through the gather.
            let w = MatRef::from_row_major_slice(&p[wo..bo], co, width);
            let mut d_cols = Mat::<f32>::zeros(n * so * so, width);
            matmul(d_cols.as_mut(), Accum::Replace, g.as_ref(), w, 1.0, Par::Seq);
            let gather = self.gather(l);
            let mut back = Mat::<f32>::zeros(n * si * si, ci);
            for j in 0..width {
                let col = d_cols.col_as_slice(j);
                for img in 0..n {
                    for pos in 0..so * so {
                        if let Some(at) = gather[pos * width + j] {
                            back[(img * si * si + at / ci, at % ci)] += col[img * so * so + pos];
                        }
                    }
                }
            }
            g = back;
        }
        // Layer 0's input has one channel: column 0 is the image, row-major per image.
        Some(g.col_as_slice(0).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mnist_cnn_maps_28_to_4_and_names_its_tensors() {
        let net = Cnn::mnist();
        assert_eq!((net.side_at(1), net.side_at(2), net.side_at(3)), (14, 7, 4));
        assert_eq!(net.n_params(), 8 * 9 + 8 + 2 * (8 * 8 * 9 + 8) + 10 * 8 + 10);
        assert_eq!(Cnn::from_tensors(&net.tensors(), 28), Some(net));
    }

    #[test]
    fn rejects_layouts_it_cannot_run() {
        let head_only = vec![("head.weight".to_string(), vec![10, 1]), ("head.bias".to_string(), vec![10])];
        assert_eq!(Cnn::from_tensors(&head_only, 28), None);
        let zero = Cnn { side: 28, channels: vec![1, 0, 8], classes: 10 };
        assert_eq!(Cnn::from_tensors(&zero.tensors(), 28), None);
        assert_eq!(Cnn::from_tensors(&Cnn::mnist().tensors(), 0), None);
    }

    /// PyTorch's Conv2d by its definition (cross-correlation, zero padding), then the average
    /// pool and the head, one image at a time in [channel, y, x] layout.
    fn naive_logits(net: &Cnn, p: &[f32], act: Activation, image: &[f32]) -> Vec<f32> {
        let mut h = image.to_vec();
        for l in 0..net.convs() {
            let (ci, co, si, so) = (net.channels[l], net.channels[l + 1], net.side_at(l), net.side_at(l + 1));
            let (wo, bo) = net.offsets(l);
            let mut out = vec![0f32; co * so * so];
            for o in 0..co {
                for y in 0..so {
                    for x in 0..so {
                        let mut acc = p[bo + o];
                        for i in 0..ci {
                            for ky in 0..K {
                                for kx in 0..K {
                                    let (iy, ix) = ((y * STRIDE + ky) as isize - PAD as isize, (x * STRIDE + kx) as isize - PAD as isize);
                                    if (0..si as isize).contains(&iy) && (0..si as isize).contains(&ix) {
                                        acc += p[wo + ((o * ci + i) * K + ky) * K + kx] * h[(i * si + iy as usize) * si + ix as usize];
                                    }
                                }
                            }
                        }
                        out[(o * so + y) * so + x] = act.apply(acc);
                    }
                }
            }
            h = out;
        }
        let (c, s) = (net.channels[net.convs()], net.side_at(net.convs()));
        let pooled: Vec<f32> = (0..c).map(|ch| h[ch * s * s..][..s * s].iter().sum::<f32>() / (s * s) as f32).collect();
        let (wo, bo) = net.offsets(net.convs());
        (0..net.classes).map(|k| p[bo + k] + (0..c).map(|ch| p[wo + k * c + ch] * pooled[ch]).sum::<f32>()).collect()
    }

    #[test]
    fn the_forward_pass_matches_the_definition() {
        let net = Cnn { side: 9, channels: vec![1, 3, 4, 2], classes: 5 };
        let p: Vec<f32> = (0..net.n_params()).map(|i| ((i as f32) * 0.53).sin() * 0.6).collect();
        let x: Vec<f32> = (0..3 * 81).map(|i| ((i as f32) * 0.29).cos()).collect();
        for act in [Activation::Tanh, Activation::Relu] {
            let (fast, _) = net.forward(&p, act, &x);
            let slow: Vec<f32> = x.chunks(81).flat_map(|image| naive_logits(&net, &p, act, image)).collect();
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-5, "{act:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let net = Cnn { side: 7, channels: vec![1, 3, 2], classes: 3 };
        let p: Vec<f32> = (0..net.n_params()).map(|i| ((i as f32) * 0.37).sin() * 0.5).collect();
        let x: Vec<f32> = (0..2 * 49).map(|i| ((i as f32) * 0.61).cos()).collect();
        let d_out: Vec<f32> = (0..6).map(|i| (i as f32 - 2.5) * 0.4).collect();
        for act in [Activation::Tanh, Activation::Relu] {
            let loss = |p: &[f32], x: &[f32]| -> f64 { net.forward(p, act, x).0.iter().zip(&d_out).map(|(y, g)| (*y as f64) * (*g as f64)).sum() };
            let (_, trace) = net.forward(&p, act, &x);
            let mut dp = vec![0f32; p.len()];
            let dx = net.backward(&p, act, &x, &trace, &d_out, Some(&mut dp), true).unwrap();
            let h = 1e-3f32;
            for i in 0..p.len() {
                let (mut up, mut down) = (p.clone(), p.clone());
                up[i] += h;
                down[i] -= h;
                let fd = (loss(&up, &x) - loss(&down, &x)) / (2.0 * h as f64);
                assert!((fd - dp[i] as f64).abs() < 3e-3 * (1.0 + fd.abs()), "{act:?} parameter {i}: {} vs {fd}", dp[i]);
            }
            for i in 0..x.len() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let fd = (loss(&p, &up) - loss(&p, &down)) / (2.0 * h as f64);
                assert!((fd - dx[i] as f64).abs() < 3e-3 * (1.0 + fd.abs()), "{act:?} input {i}: {} vs {fd}", dx[i]);
            }
        }
    }
}
