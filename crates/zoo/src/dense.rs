//! An MLP with hand-written backward on faer matrices: the readers' head (ProbeGen's: six
//! Linear layers of width 256 with ReLU between them), StatNN's network, and ProbeGen's
//! generators (affine layers with nothing between them, or ReLU for the non-linear control),
//! and the networks of the ProbeX tree world. PyTorch's default init (weights and
//! biases ~ U(±1/√fan_in)).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use glassbox_core::train::optim::Adam;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone)]
pub struct Mlp {
    pub dims: Vec<usize>,
    /// ReLU between layers (false: a deep linear network).
    pub relu: bool,
    /// [W_0, b_0, W_1, b_1, …], W_l row-major `[dims[l+1], dims[l]]`.
    pub params: Vec<Vec<f32>>,
}

/// The layer inputs of one forward pass (ReLU outputs), for the backward pass.
pub struct Cache {
    inputs: Vec<Mat<f32>>,
}

impl Mlp {
    pub fn new(dims: &[usize], seed: u64) -> Mlp {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Vec::new();
        for w in dims.windows(2) {
            let bound = 1.0 / (w[0] as f32).sqrt();
            params.push(
                (0..w[0] * w[1])
                    .map(|_| rng.random_range(-bound..bound))
                    .collect(),
            );
            params.push((0..w[1]).map(|_| rng.random_range(-bound..bound)).collect());
        }
        Mlp {
            dims: dims.to_vec(),
            relu: true,
            params,
        }
    }

    /// Affine layers only: a deep linear network (ProbeGen's generator).
    pub fn linear(dims: &[usize], seed: u64) -> Mlp {
        Mlp {
            relu: false,
            ..Mlp::new(dims, seed)
        }
    }

    /// ProbeGen's head: P·c_out → 256 → … → d_out, six Linear layers.
    pub fn head(d_in: usize, d_out: usize, seed: u64) -> Mlp {
        Mlp::new(&[d_in, 256, 256, 256, 256, 256, d_out], seed)
    }

    pub fn sizes(&self) -> Vec<usize> {
        self.params.iter().map(Vec::len).collect()
    }

    fn weight(&self, l: usize) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.params[2 * l], self.dims[l + 1], self.dims[l])
    }

    /// Outputs (no activation after the last layer) for the rows of x.
    pub fn forward(&self, x: &Mat<f32>) -> (Mat<f32>, Cache) {
        let layers = self.dims.len() - 1;
        let mut inputs = Vec::with_capacity(layers);
        let mut h = x.clone();
        for l in 0..layers {
            let mut z = mm(h.as_ref(), self.weight(l).transpose());
            let b = &self.params[2 * l + 1];
            let last = l + 1 == layers;
            for (j, &bj) in b.iter().enumerate() {
                for v in z.col_as_slice_mut(j) {
                    *v += bj;
                    if self.relu && !last && *v < 0.0 {
                        *v = 0.0;
                    }
                }
            }
            inputs.push(h);
            h = z;
        }
        (h, Cache { inputs })
    }

    /// Parameter gradients (same layout as `params`) and the gradient with respect to x.
    pub fn backward(&self, cache: &Cache, d_out: &Mat<f32>) -> (Vec<Vec<f32>>, Mat<f32>) {
        let layers = self.dims.len() - 1;
        let mut grads = vec![Vec::new(); 2 * layers];
        let mut g = d_out.clone();
        for l in (0..layers).rev() {
            let input = &cache.inputs[l];
            // inputᵀ g is dWᵀ (in × out) column-major, i.e. dW (out × in) row-major: no transposing copy.
            let dwt = mm(input.transpose(), g.as_ref());
            grads[2 * l] = (0..dwt.ncols()).flat_map(|o| dwt.col_as_slice(o).iter().copied()).collect();
            grads[2 * l + 1] = (0..g.ncols())
                .map(|j| g.col_as_slice(j).iter().sum())
                .collect();
            let mut d_in = mm(g.as_ref(), self.weight(l));
            if l > 0 && self.relu {
                // The input of layer l is a ReLU output: no gradient where it is zero.
                for j in 0..d_in.ncols() {
                    for (d, &h) in d_in
                        .col_as_slice_mut(j)
                        .iter_mut()
                        .zip(input.col_as_slice(j))
                    {
                        if h <= 0.0 {
                            *d = 0.0;
                        }
                    }
                }
            }
            g = d_in;
        }
        (grads, g)
    }
}

/// a·b on the calling thread: a reader's matrices are a batch of 32 models wide, too small
/// for splitting across threads to pay (it made a 2-thread epoch slower than a 1-thread one).
fn mm(a: MatRef<'_, f32>, b: MatRef<'_, f32>) -> Mat<f32> {
    let mut out = Mat::zeros(a.nrows(), b.ncols());
    matmul(out.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    out
}

impl Mlp {
    /// One optimiser step on inputs `x`: `loss` maps the outputs to (loss, its gradient with
    /// respect to the outputs); returns the loss.
    pub fn step(&mut self, adam: &mut Adam, lr: f64, x: &Mat<f32>, loss: impl FnOnce(&Mat<f32>) -> (f64, Mat<f32>)) -> f64 {
        let (out, cache) = self.forward(x);
        let (value, d_out) = loss(&out);
        let (grads, _) = self.backward(&cache, &d_out);
        adam.update(&mut self.params, &grads, lr);
        value
    }
}

/// Rows of `width` values, one after another, as a matrix.
pub fn matrix(rows: &[f32], width: usize) -> Mat<f32> {
    Mat::from_fn(rows.len() / width.max(1), width, |r, c| rows[r * width + c])
}

/// The mean over all entries of (out − target)², and its gradient with respect to out.
pub fn mean_squared_error(out: &Mat<f32>, target: &Mat<f32>) -> (f64, Mat<f32>) {
    let (n, d) = (out.nrows(), out.ncols());
    let scale = 2.0 / (n * d) as f32;
    let grad = Mat::from_fn(n, d, |r, c| scale * (out[(r, c)] - target[(r, c)]));
    let loss = (0..n).flat_map(|r| (0..d).map(move |c| (r, c))).map(|(r, c)| ((out[(r, c)] - target[(r, c)]) as f64).powi(2)).sum::<f64>() / (n * d) as f64;
    (loss, grad)
}

/// Mean cross-entropy of logits against class indices, its gradient, and the accuracy.
pub fn cross_entropy(logits: &Mat<f32>, classes: &[usize]) -> (f64, Mat<f32>, f64) {
    let (n, k) = (logits.nrows(), logits.ncols());
    let mut grad = Mat::<f32>::zeros(n, k);
    let (mut loss, mut correct) = (0f64, 0usize);
    for r in 0..n {
        let max = (0..k)
            .map(|c| logits[(r, c)])
            .fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = (0..k)
            .map(|c| ((logits[(r, c)] - max) as f64).exp())
            .collect();
        let total: f64 = exps.iter().sum();
        loss += total.ln() - (logits[(r, classes[r])] - max) as f64;
        for c in 0..k {
            grad[(r, c)] = ((exps[c] / total - (c == classes[r]) as u8 as f64) / n as f64) as f32;
        }
        let arg = (0..k)
            .max_by(|&a, &b| logits[(r, a)].total_cmp(&logits[(r, b)]).then(b.cmp(&a)))
            .unwrap_or(0);
        correct += (arg == classes[r]) as usize;
    }
    (
        loss / n.max(1) as f64,
        grad,
        correct as f64 / n.max(1) as f64,
    )
}

/// Mean squared error of a one-column prediction against targets, and its gradient.
pub fn squared_error(pred: &Mat<f32>, targets: &[f32]) -> (f64, Mat<f32>) {
    let n = targets.len();
    let grad = Mat::from_fn(n, 1, |r, _| 2.0 * (pred[(r, 0)] - targets[r]) / n as f32);
    let loss = (0..n)
        .map(|r| ((pred[(r, 0)] - targets[r]) as f64).powi(2))
        .sum::<f64>()
        / n.max(1) as f64;
    (loss, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        for mlp in [Mlp::new(&[3, 5, 4, 2], 1), Mlp::linear(&[3, 5, 4, 2], 1)] {
            let x = Mat::from_fn(4, 3, |r, c| ((r * 3 + c) as f32 * 0.37).sin());
            let classes = [0, 1, 1, 0];
            let loss = |m: &Mlp, x: &Mat<f32>| cross_entropy(&m.forward(x).0, &classes).0;
            let (out, cache) = mlp.forward(&x);
            let (_, d_out, _) = cross_entropy(&out, &classes);
            let (grads, dx) = mlp.backward(&cache, &d_out);
            let h = 1e-3f32;
            for (t, g) in grads.iter().enumerate() {
                for i in [0, g.len() / 2, g.len() - 1] {
                    let (mut up, mut down) = (mlp.clone(), mlp.clone());
                    up.params[t][i] += h;
                    down.params[t][i] -= h;
                    let fd = (loss(&up, &x) - loss(&down, &x)) / (2.0 * h as f64);
                    assert!(
                        (fd - g[i] as f64).abs() < 1e-3 + 1e-2 * fd.abs(),
                        "param {t}.{i}: {} vs {fd}",
                        g[i]
                    );
                }
            }
            for (r, c) in [(0, 0), (2, 1), (3, 2)] {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[(r, c)] += h;
                down[(r, c)] -= h;
                let fd = (loss(&mlp, &up) - loss(&mlp, &down)) / (2.0 * h as f64);
                assert!(
                    (fd - dx[(r, c)] as f64).abs() < 1e-3 + 1e-2 * fd.abs(),
                    "input ({r}, {c})"
                );
            }
        }
    }

    #[test]
    fn squared_error_matches_a_hand_computed_value() {
        let (loss, grad) = squared_error(&Mat::from_fn(2, 1, |r, _| [0.5f32, 2.0][r]), &[1.0, 1.0]);
        assert!((loss - (0.25 + 1.0) / 2.0).abs() < 1e-9);
        assert_eq!((grad[(0, 0)], grad[(1, 0)]), (-0.5, 1.0));
    }
}
