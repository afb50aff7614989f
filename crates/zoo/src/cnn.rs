//! Small CNNs of a CNN accuracy zoo (`mnist-cnn-acc`, ProbeGen's small-CNN-zoo reproduction
//! made for 28×28 MNIST, mirroring CIFAR10-GS's Small CNN Zoo with padding 1): 3×3 convolutions
//! with stride 2 and padding 1 (28 → 14 → 7 → 4), ReLU or tanh after each, global average
//! pooling, one Linear layer. Flat parameters: per convolution `convs.l.weight [out, in, 3, 3]`
//! and `convs.l.bias [out]`, then `head.weight [classes, c]`, `head.bias [classes]` (PyTorch
//! layouts). Convolutions are im2col gathers and faer matrix products over the whole batch;
//! activations are kept channel-last, one column per channel. Grey (one-channel) inputs. tanh
//! is [`glassbox_core::vmath::tanh`] (within 2 ulp of the exact value, and vectorised).

use crate::mlp::Activation;
use glassbox_core::vmath;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

/// Every zoo CNN's convolutions: 3×3 kernels, stride 2, padding 1.
pub const KERNEL: usize = 3;
pub const STRIDE: usize = 2;
pub const PADDING: usize = 1;

/// How a zoo CNN on side×side images runs, as zoo.json's `generation` records it (readers
/// refuse CNN zoos that record anything else).
pub fn geometry(side: usize) -> serde_json::Value {
    serde_json::json!({ "side": side, "kernel": KERNEL, "stride": STRIDE, "padding": PADDING })
}

/// The shape of a CNN, with the index tables its passes use (built once, in [`Cnn::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cnn {
    side: usize,
    channels: Vec<usize>,
    classes: usize,
    convs: Vec<Conv>,
    /// Offsets of head.weight and head.bias in the flat parameters.
    head: (usize, usize),
}

/// One convolution: sizes, parameter offsets and its im2col taps.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Conv {
    ci: usize,
    co: usize,
    /// Input and output side.
    si: usize,
    so: usize,
    weight: usize,
    bias: usize,
    /// Per kernel tap ky·3 + kx: the (output position, input position) pairs that read inside
    /// the image (the padding reads zeros and is left out), positions row-major in one image.
    taps: Vec<Vec<(u32, u32)>>,
}

/// Post-activation outputs of every convolution, for the backward pass.
pub struct Trace {
    layers: Vec<Mat<f32>>,
}

impl Conv {
    fn new(ci: usize, co: usize, si: usize, weight: usize) -> Conv {
        let so = (si + 2 * PADDING).saturating_sub(KERNEL) / STRIDE + 1;
        let taps = tap_pairs(KERNEL, STRIDE, PADDING, so, si);
        Conv { ci, co, si, so, weight, bias: weight + co * ci * KERNEL * KERNEL, taps }
    }

    fn width(&self) -> usize {
        self.ci * KERNEL * KERNEL
    }

    /// The im2col matrix: rows (image, output position), columns (input channel, tap), so that
    /// the convolution is one matrix product. `input[i]` is channel i of n images, image-major.
    fn im2col(&self, n: usize, input: &[&[f32]]) -> Mat<f32> {
        let (si2, so2) = (self.si * self.si, self.so * self.so);
        let mut cols = Mat::<f32>::zeros(n * so2, self.width());
        for (i, src) in input.iter().enumerate() {
            for (tap, pairs) in self.taps.iter().enumerate() {
                let dst = cols.col_as_slice_mut(i * KERNEL * KERNEL + tap);
                for img in 0..n {
                    let (d, s) = (&mut dst[img * so2..][..so2], &src[img * si2..][..si2]);
                    for &(o, t) in pairs {
                        d[o as usize] = s[t as usize];
                    }
                }
            }
        }
        cols
    }

    /// The adjoint of [`Conv::im2col`]: every column's gradient added back to the input it read.
    fn col2im(&self, n: usize, d_cols: &Mat<f32>) -> Mat<f32> {
        let (si2, so2) = (self.si * self.si, self.so * self.so);
        let mut back = Mat::<f32>::zeros(n * si2, self.ci);
        for i in 0..self.ci {
            let dst = back.col_as_slice_mut(i);
            for (tap, pairs) in self.taps.iter().enumerate() {
                let src = d_cols.col_as_slice(i * KERNEL * KERNEL + tap);
                for img in 0..n {
                    let (d, s) = (&mut dst[img * si2..][..si2], &src[img * so2..][..so2]);
                    for &(o, t) in pairs {
                        d[t as usize] += s[o as usize];
                    }
                }
            }
        }
        back
    }
}

/// Per kernel tap ky·kernel + kx: the pairs (a, b) of a position a in a `from`×`from` grid and
/// the position b = (ay·stride − pad + ky, ax·stride − pad + kx) it meets in a `to`×`to` grid,
/// where b falls inside (the padding is left out); positions row-major, a in order. A convolution
/// reads input b for output a; a transposed convolution writes input a to output b.
pub fn tap_pairs(kernel: usize, stride: usize, pad: usize, from: usize, to: usize) -> Vec<Vec<(u32, u32)>> {
    let inside = |a: usize, k: usize| (a * stride + k).checked_sub(pad).filter(|&v| v < to);
    (0..kernel * kernel)
        .map(|tap| {
            (0..from * from)
                .filter_map(|a| {
                    let (by, bx) = (inside(a / from, tap / kernel)?, inside(a % from, tap % kernel)?);
                    Some((a as u32, (by * to + bx) as u32))
                })
                .collect()
        })
        .collect()
}

/// Layer l's input, channel by channel: the images for l = 0, else layer l − 1's output columns.
fn layer_input<'a>(x: &'a [f32], outputs: &'a [Mat<f32>], l: usize) -> Vec<&'a [f32]> {
    match l.checked_sub(1) {
        None => vec![x],
        Some(prev) => (0..outputs[prev].ncols()).map(|i| outputs[prev].col_as_slice(i)).collect(),
    }
}

impl Cnn {
    /// A CNN on `side`×`side` inputs with these channels (input first) and classes.
    pub fn new(side: usize, channels: Vec<usize>, classes: usize) -> Cnn {
        let (mut convs, mut at, mut s) = (Vec::new(), 0, side);
        for c in channels.windows(2) {
            let conv = Conv::new(c[0], c[1], s, at);
            (at, s) = (conv.bias + conv.co, conv.so);
            convs.push(conv);
        }
        let last = *channels.last().unwrap_or(&0);
        Cnn { side, channels, classes, convs, head: (at, at + classes * last) }
    }

    pub fn mnist() -> Cnn {
        Cnn::new(28, vec![1, 8, 8, 8], 10)
    }

    pub fn side(&self) -> usize {
        self.side
    }

    /// Channels, input first.
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Spatial side of the input of layer l (l = convolutions: the last conv's output).
    pub fn side_at(&self, l: usize) -> usize {
        self.convs.get(l).map_or_else(|| self.convs.last().map_or(self.side, |c| c.so), |c| c.si)
    }

    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (l, c) in self.convs.iter().enumerate() {
            out.push((format!("convs.{l}.weight"), vec![c.co, c.ci, KERNEL, KERNEL]));
            out.push((format!("convs.{l}.bias"), vec![c.co]));
        }
        let last = self.channels[self.convs.len()];
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
        // Grey images only: layer 0 reads its input as one channel.
        let sizes_ok = convs >= 1 && classes > 0 && channels.iter().all(|&c| c > 0) && channels[0] == 1 && side > 0;
        let net = sizes_ok.then(|| Cnn::new(side, channels, classes))?;
        (net.tensors() == tensors).then_some(net)
    }

    pub fn n_params(&self) -> usize {
        self.head.1 + self.classes
    }

    pub fn input_dim(&self) -> usize {
        self.channels[0] * self.side * self.side
    }

    /// (weight offset, bias offset) of layer l; l = the number of convolutions is the head.
    pub fn offsets(&self, l: usize) -> (usize, usize) {
        self.convs.get(l).map_or(self.head, |c| (c.weight, c.bias))
    }

    /// (range, fan-in) of every weight tensor: He init and the L2 penalty use them.
    pub fn weights(&self) -> Vec<(std::ops::Range<usize>, usize)> {
        let convs = self.convs.iter().map(|c| (c.weight..c.bias, c.width()));
        convs.chain([(self.head.0..self.head.1, self.channels[self.convs.len()])]).collect()
    }

    /// The last convolution's channels and side.
    fn pooled_shape(&self) -> (usize, usize) {
        (self.channels[self.convs.len()], self.side_at(self.convs.len()))
    }

    /// Logits (n × classes) of the n images in `x` (n × side², row-major), and the trace.
    pub fn forward(&self, p: &[f32], act: Activation, x: &[f32]) -> (Vec<f32>, Trace) {
        let n = x.len() / self.input_dim();
        let mut layers: Vec<Mat<f32>> = Vec::with_capacity(self.convs.len());
        for (l, conv) in self.convs.iter().enumerate() {
            let cols = conv.im2col(n, &layer_input(x, &layers, l));
            let w = MatRef::from_row_major_slice(&p[conv.weight..conv.bias], conv.co, conv.width());
            let mut out = Mat::<f32>::zeros(n * conv.so * conv.so, conv.co);
            matmul(out.as_mut(), Accum::Replace, cols.as_ref(), w.transpose(), 1.0, Par::Seq);
            for o in 0..conv.co {
                let (col, b) = (out.col_as_slice_mut(o), p[conv.bias + o]);
                match act {
                    Activation::Relu => col.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
                    Activation::Tanh => {
                        col.iter_mut().for_each(|v| *v += b);
                        vmath::tanh(col);
                    }
                }
            }
            layers.push(out);
        }
        let ((c, s), (wo, bo)) = (self.pooled_shape(), self.head);
        let last = &layers[self.convs.len() - 1];
        let mut logits = vec![0f32; n * self.classes];
        for img in 0..n {
            let pooled: Vec<f32> = (0..c).map(|ch| last.col_as_slice(ch)[img * s * s..][..s * s].iter().sum::<f32>() / (s * s) as f32).collect();
            for k in 0..self.classes {
                logits[img * self.classes + k] = p[bo + k] + p[wo + k * c..][..c].iter().zip(&pooled).map(|(a, b)| a * b).sum::<f32>();
            }
        }
        (logits, Trace { layers })
    }

    /// Gradients of Σ d_out ⊙ logits: with respect to the parameters (added into `d_params` when
    /// given) and to the images (returned when `want_input`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, p: &[f32], act: Activation, x: &[f32], trace: &Trace, d_out: &[f32], mut d_params: Option<&mut [f32]>, want_input: bool) -> Option<Vec<f32>> {
        let n = x.len() / self.input_dim();
        let ((c, s), (wo, bo)) = (self.pooled_shape(), self.head);
        let last = &trace.layers[self.convs.len() - 1];
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
        for (l, conv) in self.convs.iter().enumerate().rev() {
            // g is dL/d(output of layer l's activation): through the activation first.
            for o in 0..conv.co {
                for (d, &h) in g.col_as_slice_mut(o).iter_mut().zip(trace.layers[l].col_as_slice(o)) {
                    *d *= act.slope_from_output(h);
                }
            }
            let width = conv.width();
            if let Some(dp) = d_params.as_deref_mut() {
                let cols = conv.im2col(n, &layer_input(x, &trace.layers, l));
                // dW = gᵀ cols is [co, ci·9]: W's own layout.
                let mut dw = Mat::<f32>::zeros(conv.co, width);
                matmul(dw.as_mut(), Accum::Replace, g.transpose(), cols.as_ref(), 1.0, Par::Seq);
                for o in 0..conv.co {
                    dp[conv.bias + o] += g.col_as_slice(o).iter().sum::<f32>();
                    for j in 0..width {
                        dp[conv.weight + o * width + j] += dw[(o, j)];
                    }
                }
            }
            if l == 0 && !want_input {
                return None;
            }
            // dL/d(cols) = g W, added back through the gather.
            let w = MatRef::from_row_major_slice(&p[conv.weight..conv.bias], conv.co, width);
            let mut d_cols = Mat::<f32>::zeros(n * conv.so * conv.so, width);
            matmul(d_cols.as_mut(), Accum::Replace, g.as_ref(), w, 1.0, Par::Seq);
            g = conv.col2im(n, &d_cols);
        }
        // Layer 0's input has one channel: column 0 is the image, row-major per image.
        Some(g.col_as_slice(0).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finite_differences::assert_gradient;

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
        let zero = Cnn::new(28, vec![1, 0, 8], 10);
        assert_eq!(Cnn::from_tensors(&zero.tensors(), 28), None);
        assert_eq!(Cnn::from_tensors(&Cnn::mnist().tensors(), 0), None);
    }

    /// PyTorch's Conv2d by its definition (cross-correlation, zero padding), then the average
    /// pool and the head, one image at a time in [channel, y, x] layout.
    fn naive_logits(net: &Cnn, p: &[f32], act: Activation, image: &[f32]) -> Vec<f32> {
        let mut h = image.to_vec();
        for l in 0..net.convs.len() {
            let (ci, co, si, so) = (net.channels[l], net.channels[l + 1], net.side_at(l), net.side_at(l + 1));
            let (wo, bo) = net.offsets(l);
            let mut out = vec![0f32; co * so * so];
            for o in 0..co {
                for y in 0..so {
                    for x in 0..so {
                        let mut acc = p[bo + o];
                        for i in 0..ci {
                            for ky in 0..KERNEL {
                                for kx in 0..KERNEL {
                                    let (iy, ix) = ((y * STRIDE + ky) as isize - PADDING as isize, (x * STRIDE + kx) as isize - PADDING as isize);
                                    if (0..si as isize).contains(&iy) && (0..si as isize).contains(&ix) {
                                        acc += p[wo + ((o * ci + i) * KERNEL + ky) * KERNEL + kx] * h[(i * si + iy as usize) * si + ix as usize];
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
        let (c, s) = (net.channels[net.convs.len()], net.side_at(net.convs.len()));
        let pooled: Vec<f32> = (0..c).map(|ch| h[ch * s * s..][..s * s].iter().sum::<f32>() / (s * s) as f32).collect();
        let (wo, bo) = net.offsets(net.convs.len());
        (0..net.classes).map(|k| p[bo + k] + (0..c).map(|ch| p[wo + k * c + ch] * pooled[ch]).sum::<f32>()).collect()
    }

    #[test]
    fn the_forward_pass_matches_the_definition() {
        let net = Cnn::new(9, vec![1, 3, 4, 2], 5);
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
        let net = Cnn::new(7, vec![1, 3, 2], 3);
        let p: Vec<f32> = (0..net.n_params()).map(|i| ((i as f32) * 0.37).sin() * 0.5).collect();
        let x: Vec<f32> = (0..2 * 49).map(|i| ((i as f32) * 0.61).cos()).collect();
        let d_out: Vec<f32> = (0..6).map(|i| (i as f32 - 2.5) * 0.4).collect();
        for act in [Activation::Tanh, Activation::Relu] {
            let loss = |p: &[f32], x: &[f32]| -> f64 { net.forward(p, act, x).0.iter().zip(&d_out).map(|(y, g)| (*y as f64) * (*g as f64)).sum() };
            let (_, trace) = net.forward(&p, act, &x);
            let mut dp = vec![0f32; p.len()];
            let dx = net.backward(&p, act, &x, &trace, &d_out, Some(&mut dp), true).unwrap();
            assert_gradient(&format!("{act:?} parameter"), &p, &dp, |p| loss(p, &x), 3e-3);
            assert_gradient(&format!("{act:?} input"), &x, &dx, |x| loss(&p, x), 3e-3);
        }
    }
}
