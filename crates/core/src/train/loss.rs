//! Losses on logits, written from primitives so their maths is visible and testable.

use crate::tensor::Tensor;
use burn::tensor::activation::{log_softmax, relu};

/// Mean cross-entropy; `onehot` is `[batch, classes]`.
pub fn cross_entropy(logits: Tensor<2>, onehot: Tensor<2>) -> Tensor<1> {
    let b = logits.dims()[0] as f64;
    (log_softmax(logits, 1) * onehot).sum().neg() / b
}

/// Mean binary cross-entropy with logits over all entries (torch BCEWithLogitsLoss):
/// softplus(x) - x y, with softplus(x) = relu(x) + log1p(exp(-|x|)) for stability.
pub fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let softplus = relu(logits.clone()) + logits.clone().abs().neg().exp().log1p();
    (softplus - logits * targets).mean()
}
