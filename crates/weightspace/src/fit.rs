//! Training a weight-space expert on multi-hot class targets the way ProbeX's reference code
//! does: BCE-with-logits averaged over models × classes, Adam with L2 added to the gradient,
//! shuffled mini-batches, validation every `val_every` epochs (epochs 0, k, 2k, … counted from
//! zero), and the checkpoint with strictly better validation accuracy kept. Metric: mean over
//! (model, class) entries of \[logit > 0] == target.

use crate::layers::{LayerSet, MultiHot};
use crate::probex::Expert;
use faer::Mat;
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    pub lr: f64,
    /// L2 penalty added to the gradient (PyTorch Adam's weight_decay).
    pub l2: f64,
    pub batch: usize,
    pub epochs: usize,
    pub val_every: usize,
    pub seed: u64,
}

impl FitConfig {
    /// ProbeX in the synthetic tree world: Adam 1e-3, L2 1e-5, batch 64, 300 epochs, validation
    /// every 10.
    pub fn probex(seed: u64) -> FitConfig {
        FitConfig { lr: 1e-3, l2: 1e-5, batch: 64, epochs: 300, val_every: 10, seed }
    }

    /// The tree world's dense logistic regression on the raw layer: L2 1e-4.
    pub fn dense(seed: u64) -> FitConfig {
        FitConfig { l2: 1e-4, ..FitConfig::probex(seed) }
    }

    /// The tree world's StatNN classifier: Adam 1e-2, L2 1e-3.
    pub fn statnn(seed: u64) -> FitConfig {
        FitConfig { lr: 1e-2, l2: 1e-3, ..FitConfig::probex(seed) }
    }
}

/// A trained expert (the best-validation checkpoint) and its history.
#[derive(Clone, Debug)]
pub struct Fitted<E> {
    pub expert: E,
    /// 0-based epoch of the kept checkpoint.
    pub best_epoch: usize,
    pub best_val: f64,
    /// (epoch, mean training loss of that epoch, validation accuracy) at every validation.
    pub history: Vec<(usize, f64, f64)>,
    pub seconds: f64,
}

/// Mean BCE-with-logits over all entries of the rows `idx` of the targets, and its gradient.
pub fn bce(logits: &Mat<f32>, targets: &MultiHot, idx: &[usize]) -> (f64, Mat<f32>) {
    let n = (logits.nrows() * logits.ncols()).max(1) as f64;
    let mut loss = 0f64;
    let grad = Mat::from_fn(logits.nrows(), logits.ncols(), |r, c| {
        let (x, t) = (logits[(r, c)] as f64, targets.rows[idx[r]][c] as f64);
        // max(x, 0) − x t + log(1 + e^−|x|): the stable form PyTorch uses.
        loss += x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
        ((1.0 / (1.0 + (-x).exp()) - t) / n) as f32
    });
    (loss / n, grad)
}

/// Logits of the models `idx`, computed in batches of `batch`.
pub fn predict<E: Expert>(expert: &E, data: &LayerSet, idx: &[usize], batch: usize) -> Mat<f32> {
    let parts: Vec<Mat<f32>> = idx.chunks(batch.max(1)).map(|b| expert.forward(data, b).0).collect();
    let cols = parts.first().map_or(0, |p| p.ncols());
    let mut out = Mat::<f32>::zeros(idx.len(), cols);
    let mut row = 0;
    for p in parts {
        out.as_mut().submatrix_mut(row, 0, p.nrows(), cols).copy_from(p.as_ref());
        row += p.nrows();
    }
    out
}

/// Per-class binary accuracy at logit > 0, averaged over the rows `idx` and all classes.
pub fn binary_accuracy(logits: &Mat<f32>, targets: &MultiHot, idx: &[usize]) -> f64 {
    let mut hits = 0usize;
    for (r, &i) in idx.iter().enumerate() {
        for (c, &t) in targets.rows[i].iter().enumerate() {
            hits += ((logits[(r, c)] > 0.0) == (t > 0.5)) as usize;
        }
    }
    hits as f64 / (idx.len() * targets.n_classes()).max(1) as f64
}

pub fn accuracy<E: Expert>(expert: &E, data: &LayerSet, targets: &MultiHot, idx: &[usize]) -> f64 {
    binary_accuracy(&predict(expert, data, idx, 128), targets, idx)
}

/// Train `expert` on the models `train`, keeping the checkpoint of best accuracy on `val`.
/// `progress(epoch, epochs)` after every epoch.
pub fn fit<E: Expert>(
    mut expert: E,
    data: &LayerSet,
    targets: &MultiHot,
    train: &[usize],
    val: &[usize],
    cfg: &FitConfig,
    mut progress: impl FnMut(usize, usize),
) -> Fitted<E> {
    let start = std::time::Instant::now();
    let sizes: Vec<usize> = expert.params().iter().map(Vec::len).collect();
    let mut adam = Adam::new(OptimConfig { kind: OptimKind::Adam, weight_decay: cfg.l2, ..OptimConfig::default() }, &sizes);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xF17);
    let mut order = train.to_vec();
    let (mut best, mut best_epoch, mut best_val) = (expert.clone(), 0, f64::NEG_INFINITY);
    let mut history = Vec::new();
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for batch in order.chunks(cfg.batch.max(1)) {
            let (logits, cache) = expert.forward(data, batch);
            let (loss, d_logits) = bce(&logits, targets, batch);
            loss_sum += loss * batch.len() as f64;
            let grads = expert.backward(data, batch, cache, &d_logits);
            adam.update(expert.params_mut(), &grads, cfg.lr);
        }
        if epoch % cfg.val_every.max(1) == 0 {
            let v = accuracy(&expert, data, targets, val);
            history.push((epoch, loss_sum / order.len().max(1) as f64, v));
            if v > best_val {
                (best, best_epoch, best_val) = (expert.clone(), epoch, v);
            }
        }
        progress(epoch + 1, cfg.epochs);
    }
    Fitted { expert: best, best_epoch, best_val, history, seconds: start.elapsed().as_secs_f64() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probex::{DenseExpert, Probex, Ranks};

    #[test]
    fn bce_matches_a_hand_computed_value() {
        // logit 0 → ln 2 either way; logit ln 3 with target 1 → ln(4/3).
        let t = MultiHot { classes: vec!["a".into(), "b".into()], rows: vec![vec![1.0, 1.0]] };
        let (loss, g) = bce(&Mat::from_fn(1, 2, |_, c| [0.0f32, 3f32.ln()][c]), &t, &[0]);
        assert!((loss - (2f64.ln() + (4.0f64 / 3.0).ln()) / 2.0).abs() < 1e-6);
        assert!((g[(0, 0)] + 0.25).abs() < 1e-6 && (g[(0, 1)] + 0.125).abs() < 1e-6);
    }

    #[test]
    fn experts_learn_a_planted_linear_rule() {
        // Class c is present when ⟨X, P_c⟩ > 0 for fixed random P_c: a linear rule in the layer.
        let (n, d_h, d_w, k) = (240, 6, 5, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        use rand::Rng;
        let mut gauss = || rng.random_range(-1.0f32..1.0);
        let planes: Vec<Vec<f32>> = (0..k).map(|_| (0..d_h * d_w).map(|_| gauss()).collect()).collect();
        let xs: Vec<Vec<f32>> = (0..n).map(|_| (0..d_h * d_w).map(|_| gauss()).collect()).collect();
        let data = LayerSet::dense("x", d_h, d_w, xs.clone()).unwrap();
        let rows = xs.iter().map(|x| planes.iter().map(|p| (p.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() > 0.0) as u8 as f32).collect()).collect();
        let targets = MultiHot { classes: (0..k).map(|c| c.to_string()).collect(), rows };
        let (train, val): (Vec<usize>, Vec<usize>) = ((0..180).collect(), (180..240).collect());
        let cfg = FitConfig { epochs: 60, val_every: 5, batch: 32, lr: 1e-2, l2: 0.0, seed: 0 };
        let probex = fit(Probex::new(d_h, d_w, k, Ranks { probes: 6, proj: 6, rep: 8 }, false, 0), &data, &targets, &train, &val, &cfg, |_, _| {});
        let dense = fit(DenseExpert::new(d_h * d_w, k, 0), &data, &targets, &train, &val, &cfg, |_, _| {});
        for (name, v) in [("probex", probex.best_val), ("dense", dense.best_val)] {
            assert!(v > 0.85, "{name} should learn a linear rule: {v}");
        }
        assert_eq!(probex.best_val, accuracy(&probex.expert, &data, &targets, &val), "the kept checkpoint is the best one");
    }
}
