//! Test A, the planted-concepts check of the Universal SAE: three "models" share 96 planted
//! concepts (each has its own random directions for them) plus 16 private ones. A USAE must
//! reconstruct across models, recover each shared concept at one latent index in all three, and
//! fire those latents in every model; the independent-SAE control must fail the cross-model
//! parts. Run with BatchNorm on and off.

use super::{r2_matrix, train, Check, ExperimentOptions, Outcome};
use crate::metrics::{dead_fraction, firing_counts, firing_entropy};
use crate::planted::{index_consistent_recovery, private_latents, Planted, PlantedConfig};
use crate::usae::{standardise, ScheduleTick, Usae, UsaeConfig};
use crate::Result;
use faer::Mat;
use std::time::Instant;

pub const M: usize = 256;
pub const K: usize = 8;
pub const STEPS: usize = 6000;
pub const BATCH: usize = 512;
const EVAL: usize = 20_000;
const TAU: f32 = 0.1;

pub struct Trained {
    pub usae: Usae,
    pub r2: Vec<Vec<f64>>,
    pub recovery: f64,
    pub fe_shared: f64,
    pub fe_private: f64,
    pub dead: Vec<f64>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Test A's recipe: m 256, k 8, lr 2e-3 with 5% warm-up and one cosine over the 6000
/// global steps, and the prototype's deviations its thresholds were calibrated with (tied init
/// with unit dictionary rows, no clipping). With the code's N(0, 1) rows and per-model ticks
/// the same 6000 steps reach self R² ≈ 0.79 and recovery 0.73-0.79 (not converged).
pub fn config(batch_norm: bool, universal: bool) -> UsaeConfig {
    UsaeConfig {
        lr: 2e-3,
        warmup_ticks: STEPS / 20,
        batch_norm,
        universal,
        tied_init: true,
        clip: None,
        tick: ScheduleTick::Global,
        ..UsaeConfig::new(M, K, STEPS)
    }
}

/// Train on fresh planted samples and evaluate on 20,000 more (Test A's protocol).
pub fn fit(planted: &Planted, config: UsaeConfig, seed: u64) -> Result<Trained> {
    let names: Vec<(String, usize)> = planted.shared_dirs.iter().enumerate().map(|(i, g)| (format!("model{i}"), g.ncols())).collect();
    let names: Vec<(&str, usize)> = names.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let mut usae = Usae::new(config, &names, seed)?;
    let stats = planted.sample(1000, seed ^ 0xA5A5);
    for (s, a) in usae.models.iter_mut().zip(&stats) {
        s.fit_standardisation(a);
    }
    // The standardisation is fixed before training; the batch closure cannot borrow `usae`.
    let stats: Vec<(f32, f32)> = usae.models.iter().map(|s| (s.mean, s.std)).collect();
    let scale = |raw: Vec<Mat<f32>>| -> Vec<Mat<f32>> {
        raw.iter().zip(&stats).map(|(a, &(mu, sd))| standardise(a, mu, sd)).collect()
    };
    let steps = usae.config.total_ticks;
    train(&mut usae, steps, seed, |step| scale(planted.sample(BATCH, seed.wrapping_mul(1_000_003).wrapping_add(step as u64 + 1))))?;
    let eval = scale(planted.sample(EVAL, seed.wrapping_add(77)));
    let r2 = r2_matrix(&usae, &eval);
    let dicts: Vec<Mat<f32>> = usae.models.iter().map(|s| s.dictionary()).collect();
    let dict_refs: Vec<&Mat<f32>> = dicts.iter().collect();
    let (recovery, matched) = index_consistent_recovery(planted, &dict_refs, 0.9);
    let codes: Vec<Mat<f32>> = (0..eval.len()).map(|i| usae.encode(i, &eval[i]).to_dense()).collect();
    let counts: Vec<Vec<usize>> = codes.iter().map(|z| firing_counts(z, TAU)).collect();
    let fe = firing_entropy(&counts);
    let fe_shared = mean(matched.iter().flatten().map(|&l| fe[l]));
    let private = private_latents(planted, &dict_refs, 0.9);
    let fe_private = mean(private.iter().flatten().map(|&l| fe[l]));
    let dead = codes.iter().map(|z| dead_fraction(z, 0.0)).collect();
    Ok(Trained { usae, r2, recovery, fe_shared, fe_private, dead })
}

fn off_diagonal(r2: &[Vec<f64>]) -> Vec<f64> {
    (0..r2.len()).flat_map(|i| (0..r2.len()).filter(move |&j| j != i).map(move |j| r2[i][j])).collect()
}

pub fn run(opts: &ExperimentOptions) -> Result<Outcome> {
    let start = Instant::now();
    let seed = opts.seeds.first().copied().unwrap_or(0);
    let planted = Planted::new(&PlantedConfig { seed, ..PlantedConfig::default() });
    let (mut rows, mut checks) = (Vec::new(), Vec::new());
    for batch_norm in [true, false] {
        let tag = if batch_norm { "BN" } else { "no BN" };
        let t = Instant::now();
        // The USAE and its control share nothing: one per core.
        let (u, c) = rayon::join(|| fit(&planted, config(batch_norm, true), seed), || fit(&planted, config(batch_norm, false), seed));
        let (u, c) = (u?, c?);
        let pair_seconds = t.elapsed().as_secs_f64();
        let (cross, control_cross) = (off_diagonal(&u.r2), off_diagonal(&c.r2));
        let self_r2: Vec<f64> = (0..u.r2.len()).map(|i| u.r2[i][i]).collect();
        let min_cross = cross.iter().cloned().fold(f64::INFINITY, f64::min);
        let mean_cross = cross.iter().sum::<f64>() / cross.len() as f64;
        let control_mean = control_cross.iter().sum::<f64>() / control_cross.len() as f64;
        checks.push(Check::new(&format!("self R² ({tag})"), self_r2.iter().all(|&r| r >= 0.80), format!("per-dim self R² {self_r2:.3?} >= 0.80")));
        checks.push(Check::new(&format!("cross R² ({tag})"), min_cross >= 0.45 && mean_cross >= 0.55, format!("cross R² min {min_cross:.3} >= 0.45, mean {mean_cross:.3} >= 0.55")));
        checks.push(Check::new(&format!("control cross R² ({tag})"), control_mean < 0.0, format!("independent SAEs: mean cross R² {control_mean:.3} < 0")));
        checks.push(Check::new(&format!("recovery ({tag})"), u.recovery >= 0.85 && c.recovery <= 0.05, format!("shared concepts at one index with cos > 0.9 in all models: USAE {:.3} >= 0.85, control {:.3} <= 0.05", u.recovery, c.recovery)));
        checks.push(Check::new(&format!("firing entropy ({tag})"), u.fe_shared >= 0.95 && u.fe_private <= 0.75, format!("mean FE of shared-concept latents {:.3} >= 0.95, of private-concept latents {:.3} <= 0.75", u.fe_shared, u.fe_private)));
        checks.push(Check::new(&format!("dead latents ({tag})"), u.dead.iter().all(|&d| d <= 0.30), format!("dead fraction per model {:.3?} <= 0.30", u.dead)));
        rows.push(serde_json::json!({
            "batch_norm": batch_norm, "r2": u.r2, "control_r2": c.r2, "recovery": u.recovery, "control_recovery": c.recovery,
            "fe_shared": u.fe_shared, "fe_private": u.fe_private, "control_fe_shared": c.fe_shared, "dead": u.dead, "usae_and_control_seconds": pair_seconds,
        }));
    }
    Ok(Outcome { name: "USAE test A (planted concepts)".into(), rows, checks, wall_time_s: start.elapsed().as_secs_f64() })
}
