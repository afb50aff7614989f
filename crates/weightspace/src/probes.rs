//! Where the probes of an INR reader come from (spec/probegen.md 2.2, 2.3, 2.6): P points in the
//! INR's 2-D input space, shared by every model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

pub const LATENT: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    /// Free coordinates, N(0, 1) init, learned (vanilla probing).
    Vanilla,
    /// Latents Z (P × 32, N(0, 1)) through Linear(32, 32) → Linear(32, 2), all learned.
    ProbeGen,
    /// Fixed coordinates ~ U(−1, 1)².
    Uniform,
    /// Fixed: the image grid the INRs were fitted on (the oracle: the representation is the image).
    Grid,
}

impl ProbeKind {
    pub fn learned(self) -> bool {
        matches!(self, ProbeKind::Vanilla | ProbeKind::ProbeGen)
    }

    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Vanilla => "vanilla",
            ProbeKind::ProbeGen => "probegen",
            ProbeKind::Uniform => "uniform",
            ProbeKind::Grid => "grid",
        }
    }
}

pub struct Probes {
    pub kind: ProbeKind,
    pub n: usize,
    /// Vanilla: [X (P × 2)]. ProbeGen: [Z (P × 32), W_a (32 × 32), b_a, W_b (2 × 32), b_b].
    /// Fixed kinds: [X].
    pub params: Vec<Vec<f32>>,
}

impl Probes {
    /// `grid` is used by [`ProbeKind::Grid`] (its length sets P).
    pub fn new(kind: ProbeKind, n: usize, grid: &[[f32; 2]], seed: u64) -> Probes {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = |len: usize| (0..len).map(|_| rng.sample::<f32, _>(StandardNormal)).collect::<Vec<f32>>();
        let params = match kind {
            ProbeKind::Vanilla => vec![normal(n * 2)],
            ProbeKind::ProbeGen => {
                let z = normal(n * LATENT);
                let mut uniform = |len: usize, fan_in: usize| {
                    let b = 1.0 / (fan_in as f32).sqrt();
                    (0..len).map(|_| rng.random_range(-b..b)).collect::<Vec<f32>>()
                };
                vec![z, uniform(LATENT * LATENT, LATENT), uniform(LATENT, LATENT), uniform(2 * LATENT, LATENT), uniform(2, LATENT)]
            }
            ProbeKind::Uniform => vec![(0..n * 2).map(|_| rng.random_range(-1.0f32..1.0)).collect()],
            ProbeKind::Grid => vec![grid.iter().flatten().copied().collect()],
        };
        let n = if kind == ProbeKind::Grid { grid.len() } else { n };
        Probes { kind, n, params }
    }

    pub fn sizes(&self) -> Vec<usize> {
        self.params.iter().map(Vec::len).collect()
    }

    /// The P probe points.
    pub fn points(&self) -> Vec<[f32; 2]> {
        match self.kind {
            ProbeKind::ProbeGen => {
                let hidden = self.generator_hidden();
                let (wb, bb) = (&self.params[3], &self.params[4]);
                (0..self.n).map(|p| {
                    let h = &hidden[p * LATENT..][..LATENT];
                    let out = |o: usize| wb[o * LATENT..][..LATENT].iter().zip(h).map(|(w, v)| w * v).sum::<f32>() + bb[o];
                    [out(0), out(1)]
                }).collect()
            }
            _ => self.params[0].chunks(2).map(|c| [c[0], c[1]]).collect(),
        }
    }

    /// ProbeGen's first layer output Z W_aᵀ + b_a (P × 32).
    fn generator_hidden(&self) -> Vec<f32> {
        let (z, wa, ba) = (&self.params[0], &self.params[1], &self.params[2]);
        let mut h = vec![0f32; self.n * LATENT];
        for p in 0..self.n {
            let zp = &z[p * LATENT..][..LATENT];
            for o in 0..LATENT {
                h[p * LATENT + o] = wa[o * LATENT..][..LATENT].iter().zip(zp).map(|(w, v)| w * v).sum::<f32>() + ba[o];
            }
        }
        h
    }

    /// Gradients of the probe parameters from dL/d(points); empty for fixed probes.
    pub fn backward(&self, d_points: &[[f32; 2]]) -> Vec<Vec<f32>> {
        match self.kind {
            ProbeKind::Vanilla => vec![d_points.iter().flatten().copied().collect()],
            ProbeKind::ProbeGen => {
                let hidden = self.generator_hidden();
                let (z, wa, wb) = (&self.params[0], &self.params[1], &self.params[3]);
                let mut g = vec![vec![0f32; self.n * LATENT], vec![0f32; LATENT * LATENT], vec![0f32; LATENT], vec![0f32; 2 * LATENT], vec![0f32; 2]];
                for (p, dx) in d_points.iter().enumerate() {
                    let h = &hidden[p * LATENT..][..LATENT];
                    let mut dh = [0f32; LATENT];
                    for o in 0..2 {
                        g[4][o] += dx[o];
                        for i in 0..LATENT {
                            g[3][o * LATENT + i] += dx[o] * h[i];
                            dh[i] += dx[o] * wb[o * LATENT + i];
                        }
                    }
                    let zp = &z[p * LATENT..][..LATENT];
                    for o in 0..LATENT {
                        g[2][o] += dh[o];
                        for i in 0..LATENT {
                            g[1][o * LATENT + i] += dh[o] * zp[i];
                            g[0][p * LATENT + i] += dh[o] * wa[o * LATENT + i];
                        }
                    }
                }
                g
            }
            ProbeKind::Uniform | ProbeKind::Grid => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_backward_matches_finite_differences() {
        let probes = Probes::new(ProbeKind::ProbeGen, 3, &[], 4);
        let weights = [[0.3f32, -0.8], [1.1, 0.2], [-0.5, 0.7]];
        let loss = |p: &Probes| -> f64 { p.points().iter().zip(&weights).map(|(x, w)| (x[0] * w[0] + x[1] * w[1]) as f64).sum() };
        let grads = probes.backward(&weights);
        let h = 1e-2f32;
        for (t, g) in grads.iter().enumerate() {
            for i in [0, g.len() - 1] {
                let mut up = Probes { kind: probes.kind, n: probes.n, params: probes.params.clone() };
                let mut down = Probes { kind: probes.kind, n: probes.n, params: probes.params.clone() };
                up.params[t][i] += h;
                down.params[t][i] -= h;
                let fd = (loss(&up) - loss(&down)) / (2.0 * h as f64);
                assert!((fd - g[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()), "tensor {t} entry {i}: {} vs {fd}", g[i]);
            }
        }
    }
}
