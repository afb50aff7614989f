//! Losses on logits, written from primitives so their maths is visible and testable.

use crate::tensor::Tensor;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{FloatDType, Int};
use rayon::prelude::*;

/// Mean cross-entropy; `onehot` is `[batch, classes]`.
pub fn cross_entropy(logits: Tensor<2>, onehot: Tensor<2>) -> Tensor<1> {
    let b = logits.dims()[0] as f64;
    (log_softmax(logits, 1) * onehot).sum().neg() / b
}

/// [`cross_entropy`] with the log-softmax in f64, as Nanda et al.'s grokking code does: once
/// the loss nears f32's resolution (about 1e-7), f32 rounds the correct class's gradient to
/// nothing and Adam amplifies the noise that is left into loss spikes. The gradient returns in f32.
pub fn cross_entropy_f64(logits: Tensor<2>, onehot: Tensor<2>) -> Tensor<1> {
    let b = logits.dims()[0] as f64;
    let wide = |t: Tensor<2>| t.cast(FloatDType::F64);
    ((log_softmax(wide(logits), 1) * wide(onehot)).sum().neg() / b).cast(FloatDType::F32)
}

/// Mean next-token cross-entropy over every position of a language model: `logits`
/// `[batch, n · vocab]`, `targets` `[batch, n]` token ids.
pub fn lm_cross_entropy(logits: Tensor<2>, targets: Tensor<2, Int>, vocab: usize) -> Tensor<1> {
    let [b, nv] = logits.dims();
    let n = nv / vocab;
    let log_p = log_softmax(logits.reshape([b * n, vocab]), 1);
    log_p.gather(1, targets.reshape([b * n, 1])).mean().neg()
}

/// [`lm_cross_entropy`] of the logits `hidden · w_u` (`hidden` `[batch, n, d]`, `w_u`
/// `[d, vocab]`, `targets` `[batch, n]`), with the logits and the softmax kept out of the
/// autodiff graph. The logits, the loss and its gradient (softmax − onehot) / rows are formed
/// in one pass per row on the host; the gradients of `hidden` and `w_u` then reach the graph
/// through Σ hidden ⊙ G wᵀ + Σ w_u ⊙ hiddenᵀ G, a term whose value is cancelled and whose
/// gradients are exactly those of the loss. Recording the log-softmax instead costs about ten
/// passes over the `[rows, vocab]` logits forward and backward, the largest cost of a
/// language-model step after the matrix products.
pub fn fused_lm_cross_entropy(hidden: Tensor<3>, w_u: Tensor<2>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [b, n, d] = hidden.dims();
    let (rows, vocab) = (b * n, w_u.dims()[1]);
    let hidden = hidden.reshape([rows, d]);
    let (h, w) = (hidden.clone().inner(), w_u.clone().inner());
    let device = h.device();
    let mut logits = h.clone().matmul(w.clone()).into_data();
    let targets = targets.into_data().convert::<i64>().try_into_vec::<i64>().expect("token ids");
    assert_eq!(targets.len(), rows, "one target per position: {} targets for {rows} positions", targets.len());
    if let Some(bad) = targets.iter().find(|&&t| t < 0 || t as usize >= vocab) {
        panic!("target token id {bad} is outside the vocabulary of {vocab}");
    }
    let scale = 1.0 / rows as f32;
    let losses: Vec<f64> = logits
        .as_mut_slice::<f32>()
        .expect("f32 logits")
        .par_chunks_mut(vocab)
        .zip(&targets)
        .map(|(row, &t)| softmax_minus_target(row, t as usize, scale))
        .collect();
    // Summed in row order: the loss does not depend on the thread count.
    let total: f64 = losses.iter().sum();
    let g = Tensor::<2>::from_data(logits, &device);
    let grad_h = g.clone().matmul(w.transpose());
    let grad_w = h.transpose().matmul(g);
    let carrier = (hidden * grad_h).sum() + (w_u * grad_w).sum();
    carrier.clone() - carrier.detach() + total / rows as f64
}

/// One row of [`fused_lm_cross_entropy`]: overwrites the logits with (softmax − onehot(target))
/// · `scale` and returns the row's loss, log Σ e^x − x_target.
#[multiversion::multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
fn softmax_minus_target(row: &mut [f32], target: usize, scale: f32) -> f64 {
    // Sixteen running maxima and sums, so that the loops vectorise (a single f32 accumulator
    // fixes the order of the additions).
    const LANES: usize = 16;
    let x_target = row[target];
    let mut lanes = [f32::NEG_INFINITY; LANES];
    for chunk in row.chunks(LANES) {
        lanes.iter_mut().zip(chunk).for_each(|(m, &v)| *m = m.max(v));
    }
    let max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter_mut().for_each(|v| *v = crate::vmath::exp1_fma(*v - max));
    let mut sums = [0f32; LANES];
    for chunk in row.chunks(LANES) {
        sums.iter_mut().zip(chunk).for_each(|(s, &v)| *s += v);
    }
    let sum: f64 = sums.iter().map(|&s| s as f64).sum();
    let norm = (scale as f64 / sum) as f32;
    row.iter_mut().for_each(|v| *v *= norm);
    row[target] -= scale;
    sum.ln() + (max - x_target) as f64
}

/// Mean binary cross-entropy with logits over all entries (torch BCEWithLogitsLoss):
/// softplus(x) - x y, with softplus(x) = relu(x) + log1p(exp(-|x|)) for stability.
pub fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let softplus = relu(logits.clone()) + logits.clone().abs().neg().exp().log1p();
    (softplus - logits * targets).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{from_vec, to_vec, train_device};

    /// The fused loss against the recorded one on random hidden states and a random
    /// unembedding: the same value, and the same gradients for both inputs.
    #[test]
    fn fused_lm_cross_entropy_equals_the_recorded_one() {
        use rand::{Rng, SeedableRng};
        let dev = train_device();
        // A vocabulary above the sixteen lanes of the row pass, and not a multiple of them.
        let (b, n, d, v) = (3, 5, 8, 37);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut random = |len: usize| (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect::<Vec<_>>();
        let (hv, wv) = (random(b * n * d), random(d * v));
        let ids: Vec<i64> = (0..b * n).map(|i| (i * 7 % v) as i64).collect();
        let targets = || Tensor::<2, Int>::from_data(burn::tensor::TensorData::new(ids.clone(), [b, n]), &dev);
        let run = |fused: bool| {
            let h = from_vec(hv.clone(), [b, n, d], &dev).require_grad();
            let w = from_vec(wv.clone(), [d, v], &dev).require_grad();
            let loss = if fused {
                fused_lm_cross_entropy(h.clone(), w.clone(), targets())
            } else {
                let logits = h.clone().reshape([b * n, d]).matmul(w.clone()).reshape([b, n * v]);
                lm_cross_entropy(logits, targets(), v)
            };
            let grads = loss.backward();
            (to_vec(loss)[0], to_vec(h.grad(&grads).unwrap()), to_vec(w.grad(&grads).unwrap()))
        };
        let (fused, recorded) = (run(true), run(false));
        assert!((fused.0 - recorded.0).abs() < 1e-5, "loss {} vs {}", fused.0, recorded.0);
        for (a, b) in [(&fused.1, &recorded.1), (&fused.2, &recorded.2)] {
            let worst = a.iter().zip(b.iter()).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(worst < 1e-6, "gradients differ by {worst}");
        }
    }

    #[test]
    fn f64_cross_entropy_keeps_what_f32_rounds_away() {
        let dev = train_device();
        let logits = || from_vec(vec![30.0f32, 0.0, 1.0, 2.0, -1.0, 0.5], [2, 3], &dev).require_grad();
        let onehot = || from_vec(vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0], [2, 3], &dev);
        let (narrow, wide) = (logits(), logits());
        let l32 = cross_entropy(narrow.clone(), onehot());
        let l64 = cross_entropy_f64(wide.clone(), onehot());
        // Row 1: -log_softmax(2, -1, 0.5)[2]; row 0: log(1 + e^-30 + e^-29) ≈ 1.2e-13, lost in f32.
        let row1 = (2f64.exp() + (-1f64).exp() + 0.5f64.exp()).ln() - 0.5;
        let row0 = (1.0 + (-30f64).exp() + (-29f64).exp()).ln();
        assert!((to_vec(l64.clone())[0] as f64 - (row0 + row1) / 2.0).abs() < 1e-6);
        let (g32, g64) = (narrow.grad(&l32.backward()).unwrap(), wide.grad(&l64.backward()).unwrap());
        let (g32, g64) = (to_vec(g32), to_vec(g64));
        // d/dlogit of the wrong classes in row 0: softmax / 2, about 1.2e-13 and 4.7e-14 / 2.
        assert!(g64[1] > 0.0 && (g64[1] as f64 - (-30f64).exp() / 2.0).abs() < 1e-18, "{}", g64[1]);
        for i in 3..6 {
            assert!((g32[i] - g64[i]).abs() < 1e-6);
        }
    }
}
