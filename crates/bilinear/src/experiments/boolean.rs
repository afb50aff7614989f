//! Experiment E: the Boolean toy of the bilinear-MLP authors' tutorial. Four bits, each on with
//! p = 0.3; six outputs, the operation over each pair of bits; y = P((W x) ⊙ (V x)) with W, V
//! 6x4, P 6x6, trained with MSE, Adam lr 0.01 (no weight decay), cosine over 1000 steps,
//! batch 512.
//! The interaction matrix of each output must be the exact Boolean polynomial.

use super::{Check, ExperimentOptions, Outcome};
use crate::interaction::unit;
use crate::layer::BilinearLayer;
use crate::Result;
use faer::Mat;
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;
use std::time::Instant;

const BITS: usize = 4;
const HIDDEN: usize = 6;
const STEPS: usize = 1000;
const BATCH: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    And,
    Xor,
    Or,
}

impl Op {
    fn apply(self, a: bool, b: bool) -> f64 {
        (match self {
            Op::And => a && b,
            Op::Xor => a != b,
            Op::Or => a || b,
        }) as u8 as f64
    }
    /// The unique symmetric Q with x^T Q x = op(x_i, x_j) on bits (x² = x).
    fn exact(self, i: usize, j: usize) -> Mat<f64> {
        let mut q = Mat::zeros(BITS, BITS);
        let (diag, off) = match self {
            Op::And => (0.0, 0.5),
            Op::Xor => (1.0, -1.0),
            Op::Or => (1.0, -0.5),
        };
        q[(i, i)] = diag;
        q[(j, j)] = diag;
        q[(i, j)] = off;
        q[(j, i)] = off;
        q
    }
}

pub fn pairs() -> Vec<(usize, usize)> {
    (0..BITS).flat_map(|i| (i + 1..BITS).map(move |j| (i, j))).collect()
}

fn sample(rng: &mut ChaCha8Rng, op: Op, n: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let pairs = pairs();
    (0..n)
        .map(|_| {
            let bits: Vec<bool> = (0..BITS).map(|_| rng.random::<f64>() < 0.3).collect();
            let x = bits.iter().map(|&b| b as u8 as f64).collect();
            let y = pairs.iter().map(|&(i, j)| op.apply(bits[i], bits[j])).collect();
            (x, y)
        })
        .unzip()
}

/// The trained layer and its final MSE on a fresh batch of 8192.
pub fn train(op: Op, seed: u64) -> (BilinearLayer, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let outputs = pairs().len();
    // PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    let mut init = |n: usize, fan_in: usize| -> Vec<f32> {
        let b = 1.0 / (fan_in as f64).sqrt();
        (0..n).map(|_| rng.random_range(-b..b) as f32).collect()
    };
    let mut params = vec![init(HIDDEN * BITS, BITS), init(HIDDEN * BITS, BITS), init(outputs * HIDDEN, HIDDEN)];
    let mut adam = Adam::new(OptimConfig { kind: OptimKind::Adam, weight_decay: 0.0, ..OptimConfig::default() }, &[HIDDEN * BITS, HIDDEN * BITS, outputs * HIDDEN]);
    let layer_of = |p: &[Vec<f32>]| BilinearLayer {
        w: Mat::from_fn(HIDDEN, BITS, |h, i| p[0][h * BITS + i] as f64),
        v: Mat::from_fn(HIDDEN, BITS, |h, i| p[1][h * BITS + i] as f64),
        p: Mat::from_fn(outputs, HIDDEN, |c, h| p[2][c * HIDDEN + h] as f64),
        b1: None,
        b2: None,
    };
    for step in 0..STEPS {
        let (xs, ys) = sample(&mut rng, op, BATCH);
        let layer = layer_of(&params);
        let mut grads = [vec![0f64; HIDDEN * BITS], vec![0f64; HIDDEN * BITS], vec![0f64; outputs * HIDDEN]];
        // MSE averaged over batch and outputs (torch MSELoss), backward by hand.
        let scale = 2.0 / (BATCH * outputs) as f64;
        for (x, y) in xs.iter().zip(&ys) {
            let wx: Vec<f64> = (0..HIDDEN).map(|h| (0..BITS).map(|i| layer.w[(h, i)] * x[i]).sum()).collect();
            let vx: Vec<f64> = (0..HIDDEN).map(|h| (0..BITS).map(|i| layer.v[(h, i)] * x[i]).sum()).collect();
            let out = layer.forward(x);
            for (c, (&o, &t)) in out.iter().zip(y.iter()).enumerate() {
                let dy = scale * (o - t);
                for h in 0..HIDDEN {
                    grads[2][c * HIDDEN + h] += dy * wx[h] * vx[h];
                    let dg = dy * layer.p[(c, h)];
                    for i in 0..BITS {
                        grads[0][h * BITS + i] += dg * vx[h] * x[i];
                        grads[1][h * BITS + i] += dg * wx[h] * x[i];
                    }
                }
            }
        }
        let lr = 0.01 * 0.5 * (1.0 + (PI * step as f64 / STEPS as f64).cos());
        let g32: Vec<Vec<f32>> = grads.iter().map(|g| g.iter().map(|&v| v as f32).collect()).collect();
        adam.update(&mut params, &g32, lr);
    }
    let layer = layer_of(&params);
    let (xs, ys) = sample(&mut rng, op, 8192);
    let mse = xs.iter().zip(&ys).map(|(x, y)| layer.forward(x).iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>()).sum::<f64>() / (8192 * outputs) as f64;
    (layer, mse)
}

/// Largest |Q_c − exact| over all outputs c.
pub fn max_error(layer: &BilinearLayer, op: Op) -> f64 {
    let pairs = pairs();
    let mut worst = 0.0f64;
    for (c, &(i, j)) in pairs.iter().enumerate() {
        let q = layer.interaction(&unit(pairs.len(), c));
        let e = op.exact(i, j);
        for a in 0..BITS {
            for b in 0..BITS {
                worst = worst.max((q[(a, b)] - e[(a, b)]).abs());
            }
        }
    }
    worst
}

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    for op in [Op::And, Op::Xor, Op::Or] {
        let mut good = 0;
        let mut details = Vec::new();
        for &seed in &opts.seeds {
            let (layer, mse) = train(op, seed);
            let err = max_error(&layer, op);
            let q01 = layer.interaction(&unit(6, 0));
            rows.push(serde_json::json!({
                "op": format!("{op:?}"), "seed": seed, "mse": mse, "max_abs_error_vs_exact_q": err,
                "q_pair01": (0..BITS).map(|a| (0..BITS).map(|b| q01[(a, b)]).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }));
            good += (err <= 0.05 && mse < 1e-3) as usize;
            details.push(format!("seed {seed}: max |Q - exact| {err:.4}, MSE {mse:.2e}"));
        }
        if op != Op::Or {
            checks.push(Check::new(
                &format!("E {op:?}"),
                good >= 2.min(opts.seeds.len()),
                format!("{good} of {} seeds within 0.05 of the exact Q with MSE < 1e-3 (need 2): {}", opts.seeds.len(), details.join("; ")),
            ));
        }
    }
    Ok(Outcome { name: "bilinear experiment E (Boolean toy)".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
