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
        self.update_unweighted(params, grads, lr)
    }

    fn update_unweighted<G: AsRef<[f32]> + Sync>(&mut self, params: &mut [Vec<f32>], grads: &[G], lr: f64) {
        debug_assert_eq!(params.len(), grads.len(), "one gradient per parameter");
        self.apply(params, lr, |i, start, p, m, v, k| update_chunk(p, &grads[i].as_ref()[start..start + p.len()], m, v, k));
    }

    /// One update with the gradient of one or more row blocks of a batch, Σ_b w_b g_b formed as
    /// [`weighted_sum`] forms it (bit for bit), but chunk by chunk in cache as the update
    /// reads it rather than in a pass over memory of its own.
    pub fn update_weighted<G: AsRef<[f32]> + Sync>(&mut self, params: &mut [Vec<f32>], blocks: &[Weighted<G>], lr: f64) {
        debug_assert!(blocks.iter().all(|b| b.grads.len() == params.len()), "one gradient per parameter");
        if let [one] = blocks {
            if one.weight == 1.0 {
                return self.update_unweighted(params, &one.grads, lr);
            }
        }
        if let [a, b] = blocks {
            // The common case (two shards) without a scratch buffer.
            let w = [a.weight, b.weight];
            return self.apply(params, lr, |i, start, p, m, v, k| {
                let range = start..start + p.len();
                update_chunk_pair(p, &a.grads[i].as_ref()[range.clone()], &b.grads[i].as_ref()[range], w, m, v, k)
            });
        }
        self.apply(params, lr, |i, start, p, m, v, k| {
            let mut g = Vec::with_capacity(p.len());
            weighted_sum_into(&mut g, blocks, i, start..start + p.len());
            update_chunk(p, &g, m, v, k)
        });
    }

    /// Run `chunk(parameter index, start, p, m, v, constants)` over every parameter in chunks,
    /// in parallel for tensors larger than one chunk.
    fn apply<F>(&mut self, params: &mut [Vec<f32>], lr: f64, chunk: F)
    where
        F: Fn(usize, usize, &mut [f32], &mut [f32], &mut [f32], [f32; 7]) + Sync,
    {
        let c = &self.config;
        self.step += 1;
        let t = self.step as i32;
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt() as f32;
        let step_size = (lr / (1.0 - c.beta1.powi(t))) as f32;
        let (b1, b2, eps) = (c.beta1 as f32, c.beta2 as f32, c.eps as f32);
        let l2 = if c.kind == OptimKind::Adam { c.weight_decay as f32 } else { 0.0 };
        let shrink = if c.kind == OptimKind::AdamW { (1.0 - lr * c.weight_decay) as f32 } else { 1.0 };
        let k = [b1, b2, eps, l2, shrink, step_size, bc2_sqrt];
        for (i, ((p, m), v)) in params.iter_mut().zip(&mut self.m).zip(&mut self.v).enumerate() {
            if p.len() <= CHUNK {
                // One chunk: no rayon task (a small model's step, e.g. an INR fit, is a few µs).
                chunk(i, 0, p, m, v, k);
                continue;
            }
            p.par_chunks_mut(CHUNK)
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(n, ((p, m), v))| chunk(i, n * CHUNK, p, m, v, k));
        }
    }
}

/// The gradients of all parameters from one row block of a batch, and the block's weight
/// (its share of the rows) in the batch mean.
pub struct Weighted<G> {
    pub weight: f32,
    pub grads: Vec<G>,
}

/// The batch gradient Σ_b w_b g_b of every parameter, as host vectors.
pub fn weighted_sum<G: AsRef<[f32]>>(blocks: &[Weighted<G>]) -> Vec<Vec<f32>> {
    (0..blocks[0].grads.len())
        .map(|i| {
            let n = blocks[0].grads[i].as_ref().len();
            let mut g = Vec::with_capacity(n);
            weighted_sum_into(&mut g, blocks, i, 0..n);
            g
        })
        .collect()
}

/// Append Σ_b w_b g_b[range] of parameter `i` to `out`, summed in block order, so two blocks
/// give exactly a·w_a + b·w_b in f32.
fn weighted_sum_into<G: AsRef<[f32]>>(out: &mut Vec<f32>, blocks: &[Weighted<G>], i: usize, range: std::ops::Range<usize>) {
    let (first, rest) = blocks.split_first().expect("at least one block");
    out.extend(first.grads[i].as_ref()[range.clone()].iter().map(|&x| x * first.weight));
    for b in rest {
        for (o, &x) in out.iter_mut().zip(&b.grads[i].as_ref()[range.clone()]) {
            *o += x * b.weight;
        }
    }
}

/// One chunk of the Adam update; compiled for AVX-512 and AVX2 as well and picked at run time
/// (16- or 8-wide sqrt and division instead of SSE2's 4). The same IEEE operations in the same
/// order either way (no fused multiply-adds), so results are bit-identical on every CPU.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn update_chunk(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 7]) {
    // Zipped iterators (no bounds checks) let the compiler vectorise the loop.
    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        adam_element(p, *g, m, v, k);
    }
}

/// [`update_chunk`] on the gradient w_a·a + w_b·b of two row blocks.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn update_chunk_pair(p: &mut [f32], a: &[f32], b: &[f32], w: [f32; 2], m: &mut [f32], v: &mut [f32], k: [f32; 7]) {
    for ((((p, a), b), m), v) in p.iter_mut().zip(a).zip(b).zip(m.iter_mut()).zip(v.iter_mut()) {
        adam_element(p, a * w[0] + b * w[1], m, v, k);
    }
}

#[inline(always)]
fn adam_element(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, k: [f32; 7]) {
    let [b1, b2, eps, l2, shrink, step_size, bc2_sqrt] = k;
    let gi = g + l2 * *p;
    *m = b1 * *m + (1.0 - b1) * gi;
    *v = b2 * *v + (1.0 - b2) * gi * gi;
    *p = *p * shrink - step_size * *m / (v.sqrt() / bc2_sqrt + eps);
}

/// torch.nn.utils.clip_grad_norm_: scale all gradients by max_norm / (norm + 1e-6) when the
/// global L2 norm exceeds `max_norm`. Returns the norm before clipping. The squares are summed
/// in fixed chunks, added in order, so the norm does not depend on the thread count.
pub fn clip_grad_norm(grads: &mut [Vec<f32>], max_norm: f64) -> f64 {
    let total = grads
        .iter()
        .flat_map(|g| g.par_chunks(CHUNK).map(|c| c.iter().map(|&x| x as f64 * x as f64).sum::<f64>()).collect::<Vec<f64>>())
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
