//! Small dense networks of an MLP zoo (ProbeGen's digits-MLP accuracy zoo: 64-16-16-10, ReLU or
//! tanh per model): forward, backward to the parameters and to the inputs, and softmax
//! cross-entropy. Parameters are one flat f32 vector, tensors in the order of [`Mlp::tensors`],
//! weights in PyTorch layout `[out, in]` (names as a glassbox MLP checkpoint: `layers.i.*`,
//! `head.*`).
//!
//! Written out by hand for the same reason as [`crate::inr`]: a model is ~1,500 numbers and a zoo
//! trains a thousand of them, far below the size where a tensor library's per-op overhead pays.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Tanh,
}

impl Activation {
    pub fn parse(s: &str) -> Option<Activation> {
        match s {
            "relu" => Some(Activation::Relu),
            "tanh" => Some(Activation::Tanh),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Relu => v.max(0.0),
            Activation::Tanh => v.tanh(),
        }
    }

    /// The derivative, from the activation's output.
    pub(crate) fn slope_from_output(self, h: f32) -> f32 {
        match self {
            Activation::Relu => (h > 0.0) as u8 as f32,
            Activation::Tanh => 1.0 - h * h,
        }
    }
}

/// The shape of the networks: layer widths, input first, logits last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mlp {
    pub dims: Vec<usize>,
}

/// Post-activation outputs of every hidden layer for a batch, for the backward pass.
pub struct Trace {
    hidden: Vec<Vec<f32>>,
}

impl Mlp {
    /// The target networks of the digits-MLP accuracy zoo.
    pub fn digits() -> Mlp {
        Mlp {
            dims: vec![64, 16, 16, 10],
        }
    }

    /// (name, shape) of every tensor, in flat-vector order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let layers = self.dims.len() - 1;
        let mut out = Vec::new();
        for (l, w) in self.dims.windows(2).enumerate() {
            let prefix = if l + 1 == layers {
                "head".to_string()
            } else {
                format!("layers.{l}")
            };
            out.push((format!("{prefix}.weight"), vec![w[1], w[0]]));
            out.push((format!("{prefix}.bias"), vec![w[1]]));
        }
        out
    }

    /// The network whose tensors these are, when they are [`Mlp::tensors`] of some widths.
    pub fn from_tensors(tensors: &[(String, Vec<usize>)]) -> Option<Mlp> {
        if tensors.len() < 2 || !tensors.len().is_multiple_of(2) {
            return None;
        }
        let mut dims = vec![*tensors[0].1.get(1)?];
        for pair in tensors.chunks(2) {
            dims.push(*pair[0].1.first()?);
        }
        let net = Mlp { dims };
        (net.dims.iter().all(|&d| d > 0) && net.tensors() == tensors).then_some(net)
    }

    pub fn n_params(&self) -> usize {
        self.dims.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    pub fn input_dim(&self) -> usize {
        self.dims[0]
    }

    pub fn output_dim(&self) -> usize {
        self.dims[self.dims.len() - 1]
    }

    /// (weight offset, bias offset) of layer l in the flat vector.
    pub fn offsets(&self, l: usize) -> (usize, usize) {
        let w: usize = self
            .dims
            .windows(2)
            .take(l)
            .map(|w| w[0] * w[1] + w[1])
            .sum();
        (w, w + self.dims[l] * self.dims[l + 1])
    }

    /// Logits (n × d_out, row-major) of the n rows of `x` (n × d_in), and the trace.
    pub fn forward(&self, p: &[f32], act: Activation, x: &[f32]) -> (Vec<f32>, Trace) {
        let layers = self.dims.len() - 1;
        let n = x.len() / self.dims[0];
        let mut hidden = Vec::with_capacity(layers - 1);
        let mut h = x.to_vec();
        for l in 0..layers {
            let (d_in, d_out) = (self.dims[l], self.dims[l + 1]);
            let (wo, bo) = self.offsets(l);
            let (w, b) = (&p[wo..bo], &p[bo..bo + d_out]);
            let mut z = vec![0f32; n * d_out];
            for r in 0..n {
                let row = &h[r * d_in..][..d_in];
                for o in 0..d_out {
                    let v = w[o * d_in..][..d_in]
                        .iter()
                        .zip(row)
                        .map(|(a, b)| a * b)
                        .sum::<f32>()
                        + b[o];
                    z[r * d_out + o] = if l + 1 < layers { act.apply(v) } else { v };
                }
            }
            if l > 0 {
                hidden.push(std::mem::replace(&mut h, z));
            } else {
                h = z;
            }
        }
        (h, Trace { hidden })
    }

    /// Gradients of Σ d_out ⊙ logits: with respect to the parameters (added into `d_params` when
    /// given) and to the inputs (returned when `want_input`, n × d_in).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        p: &[f32],
        act: Activation,
        x: &[f32],
        trace: &Trace,
        d_out: &[f32],
        mut d_params: Option<&mut [f32]>,
        want_input: bool,
    ) -> Option<Vec<f32>> {
        let layers = self.dims.len() - 1;
        let n = x.len() / self.dims[0];
        let mut g = d_out.to_vec();
        for l in (0..layers).rev() {
            let (d_in, d_o) = (self.dims[l], self.dims[l + 1]);
            let input: &[f32] = if l == 0 { x } else { &trace.hidden[l - 1] };
            let (wo, bo) = self.offsets(l);
            if let Some(d) = d_params.as_deref_mut() {
                for r in 0..n {
                    let (gr, ir) = (&g[r * d_o..][..d_o], &input[r * d_in..][..d_in]);
                    for o in 0..d_o {
                        d[bo + o] += gr[o];
                        for (dw, v) in d[wo + o * d_in..][..d_in].iter_mut().zip(ir) {
                            *dw += gr[o] * v;
                        }
                    }
                }
            }
            if l == 0 && !want_input {
                return None;
            }
            let w = &p[wo..bo];
            let mut back = vec![0f32; n * d_in];
            for r in 0..n {
                let br = &mut back[r * d_in..][..d_in];
                for o in 0..d_o {
                    let go = g[r * d_o + o];
                    for (b, wv) in br.iter_mut().zip(&w[o * d_in..][..d_in]) {
                        *b += go * wv;
                    }
                }
                if l > 0 {
                    for (b, &h) in br.iter_mut().zip(&input[r * d_in..][..d_in]) {
                        *b *= act.slope_from_output(h);
                    }
                }
            }
            g = back;
        }
        Some(g)
    }
}

/// Mean softmax cross-entropy of row-major logits (n × k) against classes, its gradient with
/// respect to the logits, and the number of rows whose arg-max is the class.
pub fn softmax_cross_entropy(
    logits: &[f32],
    k: usize,
    classes: &[usize],
) -> (f64, Vec<f32>, usize) {
    let n = classes.len();
    let mut grad = vec![0f32; logits.len()];
    let (mut loss, mut correct) = (0f64, 0);
    for (r, &c) in classes.iter().enumerate() {
        let row = &logits[r * k..][..k];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|&v| ((v - max) as f64).exp()).collect();
        let total: f64 = exps.iter().sum();
        loss += total.ln() - (row[c] - max) as f64;
        for j in 0..k {
            grad[r * k + j] = ((exps[j] / total - (j == c) as u8 as f64) / n as f64) as f32;
        }
        correct += (argmax(row) == c) as usize;
    }
    (loss / n.max(1) as f64, grad, correct)
}

/// The first index of the largest value.
pub fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, j| if row[j] > row[best] { j } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finite_differences::assert_gradient;

    #[test]
    fn the_digits_mlp_has_spec_r2s_1482_parameters() {
        let m = Mlp::digits();
        assert_eq!(m.n_params(), 1482);
        let names: Vec<String> = m.tensors().into_iter().map(|t| t.0).collect();
        assert_eq!(
            names,
            [
                "layers.0.weight",
                "layers.0.bias",
                "layers.1.weight",
                "layers.1.bias",
                "head.weight",
                "head.bias"
            ]
        );
        assert_eq!(Mlp::from_tensors(&m.tensors()), Some(m.clone()));
        let mut wrong = m.tensors();
        wrong[2].1 = vec![16, 15];
        assert_eq!(Mlp::from_tensors(&wrong), None);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let m = Mlp {
            dims: vec![3, 4, 5, 2],
        };
        let p: Vec<f32> = (0..m.n_params())
            .map(|i| ((i as f32) * 0.71).sin() * 0.8)
            .collect();
        let x = vec![0.2f32, -0.5, 0.9, -0.3, 0.4, 0.1];
        let d_out = [0.3f32, -0.7, 1.1, 0.5];
        for act in [Activation::Relu, Activation::Tanh] {
            let loss = |p: &[f32], x: &[f32]| -> f64 {
                m.forward(p, act, x)
                    .0
                    .iter()
                    .zip(&d_out)
                    .map(|(y, g)| (*y as f64) * (*g as f64))
                    .sum()
            };
            let (_, trace) = m.forward(&p, act, &x);
            let mut dp = vec![0f32; p.len()];
            let dx = m
                .backward(&p, act, &x, &trace, &d_out, Some(&mut dp), true)
                .unwrap();
            assert_gradient(&format!("{act:?} parameter"), &p, &dp, |p| loss(p, &x), 2e-3);
            assert_gradient(&format!("{act:?} input"), &x, &dx, |x| loss(&p, x), 2e-3);
        }
    }

    #[test]
    fn cross_entropy_matches_a_hand_computed_value() {
        // logits (0, ln 3): p = (1/4, 3/4); class 1 → loss ln(4/3), gradient (1/4, -1/4).
        let (loss, grad, correct) = softmax_cross_entropy(&[0.0, 3f32.ln()], 2, &[1]);
        assert!((loss - (4.0f64 / 3.0).ln()).abs() < 1e-6);
        assert!((grad[0] - 0.25).abs() < 1e-6 && (grad[1] + 0.25).abs() < 1e-6);
        assert_eq!(correct, 1);
    }
}
