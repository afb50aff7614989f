//! Adam and AdamW with PyTorch's exact update rules, and global-norm gradient clipping.
//! Written here rather than taken from burn so the state is ours to checkpoint and resume.

use crate::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// Weight decay as an L2 term added to the gradient (torch.optim.Adam).
    Adam,
    /// Decoupled weight decay (torch.optim.AdamW).
    AdamW,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub kind: OptimKind,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig { kind: OptimKind::AdamW, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// First and second moments per parameter (same order as the model's `Params`), on an
/// inference device so the updates build no autodiff graph.
pub struct Adam {
    pub config: OptimConfig,
    pub step: u64,
    pub m: Vec<Tensor<1>>,
    pub v: Vec<Tensor<1>>,
}

impl Adam {
    pub fn new(config: OptimConfig, sizes: &[usize], device: &Device) -> Self {
        let zeros = || sizes.iter().map(|&n| Tensor::zeros([n], device)).collect();
        Adam { config, step: 0, m: zeros(), v: zeros() }
    }

    /// One update: returns the new parameter values (without autodiff).
    /// `params` and `grads` are inference-device tensors in the same order as the moments.
    pub fn update(&mut self, params: Vec<Tensor<1>>, grads: Vec<Tensor<1>>, lr: f64) -> Vec<Tensor<1>> {
        let c = &self.config;
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = lr / bc1;
        params
            .into_iter()
            .zip(grads)
            .enumerate()
            .map(|(i, (p, mut g))| {
                let mut p = p;
                match c.kind {
                    OptimKind::Adam if c.weight_decay != 0.0 => g = g + p.clone() * c.weight_decay,
                    OptimKind::AdamW if c.weight_decay != 0.0 => p = p * (1.0 - lr * c.weight_decay),
                    _ => {}
                }
                let m = self.m[i].clone() * c.beta1 + g.clone() * (1.0 - c.beta1);
                let v = self.v[i].clone() * c.beta2 + g.clone() * g * (1.0 - c.beta2);
                let denom = v.clone().sqrt() / bc2_sqrt + c.eps;
                self.m[i] = m.clone();
                self.v[i] = v;
                p - m / denom * step_size
            })
            .collect()
    }
}

/// torch.nn.utils.clip_grad_norm_: scale all gradients by max_norm / (norm + 1e-6) when the
/// global L2 norm exceeds `max_norm`. Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor<1>], max_norm: f64) -> f64 {
    let total: f64 = grads
        .iter()
        .map(|g| crate::tensor::scalar(g.clone().powi_scalar(2).sum()))
        .sum::<f64>()
        .sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            *g = g.clone() * coef;
        }
    }
    total
}
