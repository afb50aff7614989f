//! Adam and AdamW with PyTorch's exact update rules, and global-norm gradient clipping.
//! Written here rather than taken from burn so the state is ours to checkpoint and resume.

use multiversion::multiversion;
use rayon::prelude::*;
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

/// Elements per parallel work item: large enough to amortise scheduling, small enough that
/// both cores share a 400k-element layer.
const CHUNK: usize = 1 << 14;

/// First and second moments per parameter (same order as the model's `Params`), kept as plain
/// host vectors: one fused pass per element is several times cheaper than a chain of tensor
/// ops, and it runs on all rayon threads.
pub struct Adam {
    pub config: OptimConfig,
    pub step: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

impl Adam {
    pub fn new(config: OptimConfig, sizes: &[usize]) -> Self {
        let zeros = || sizes.iter().map(|&n| vec![0f32; n]).collect();
        Adam { config, step: 0, m: zeros(), v: zeros() }
    }

    /// One update of `params` in place, with torch.optim.Adam / AdamW's arithmetic in f32.
    pub fn update(&mut self, params: &mut [Vec<f32>], grads: &[Vec<f32>], lr: f64) {
        let c = &self.config;
        self.step += 1;
        let t = self.step as i32;
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt() as f32;
        let step_size = (lr / (1.0 - c.beta1.powi(t))) as f32;
        let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
        let l2 = if c.kind == OptimKind::Adam { c.weight_decay as f32 } else { 0.0 };
        let shrink = if c.kind == OptimKind::AdamW { (1.0 - lr * c.weight_decay) as f32 } else { 1.0 };
        let k = [b1, b2, eps, l2, shrink, step_size, bc2_sqrt];
        for (((p, g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            if p.len() <= CHUNK {
                // One chunk: no rayon task (a small model's step, e.g. an INR fit, is a few µs).
                update_chunk(p, g, m, v, k);
                continue;
            }
            p.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| update_chunk(p, g, m, v, k));
        }
    }
}

/// One chunk of the Adam update; compiled for AVX-512 and AVX2 as well and picked at run time
/// (16- or 8-wide sqrt and division instead of SSE2's 4). The same IEEE operations in the same
/// order either way (no fused multiply-adds), so results are bit-identical on every CPU.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn update_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 7]) {
    let [b1, b2, eps, l2, shrink, step_size, bc2_sqrt] = k;
    // Zipped iterators (no bounds checks) let the compiler vectorise the loop.
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let gi = g + l2 * *p;
        *m = b1 * *m + (1.0 - b1) * gi;
        *v = b2 * *v + (1.0 - b2) * gi * gi;
        *p = *p * shrink - step_size * *m / (v.sqrt() / bc2_sqrt + eps);
    }
}

/// torch.nn.utils.clip_grad_norm_: scale all gradients by max_norm / (norm + 1e-6) when the
/// global L2 norm exceeds `max_norm`. Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Vec<f32>], max_norm: f64) -> f64 {
    let total = grads
        .iter()
        .map(|g| g.par_iter().map(|&x| x as f64 * x as f64).sum::<f64>())
        .sum::<f64>()
        .sqrt();
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for g in grads.iter_mut() {
            g.par_iter_mut().for_each(|x| *x *= coef as f32);
        }
    }
    total
}
