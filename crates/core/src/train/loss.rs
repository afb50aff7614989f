//! Losses on logits, written from primitives so their maths is visible and testable.

use crate::tensor::Tensor;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{FloatDType, Int};

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
