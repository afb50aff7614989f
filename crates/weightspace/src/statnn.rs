//! StatNN (the weight-statistics baseline of ProbeGen's digits-INR reproduction): per weight
//! tensor the mean, variance and the 0, 25, 50, 75 and 100 % quantiles (7 numbers per tensor),
//! z-scored with the training models' statistics, into an MLP 42-1000-1000-d_out (NFN's StatNet
//! widths; d_out classes or one number); Adam 1e-3 with a per-step cosine.

use glassbox_zoo::dense::Mlp;
use crate::reader::{better, Task, COSINE_TO_ZERO};
use faer::Mat;
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use glassbox_zoo::store::Splits;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The 7 statistics of every tensor; `tensors` gives each tensor's length in the flat vector.
pub fn features(params: &[f32], tensors: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(7 * tensors.len());
    let mut offset = 0;
    for &len in tensors {
        let t = &params[offset..offset + len];
        offset += len;
        if len == 0 {
            out.extend([0.0; 7]); // an empty tensor has no statistics
            continue;
        }
        let mean = t.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
        let var = t.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
        let mut sorted = t.to_vec();
        sorted.sort_by(f32::total_cmp);
        // Linear interpolation between order statistics (numpy's default quantile).
        let q = |p: f64| {
            let x = p * (len - 1) as f64;
            let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
            sorted[lo] as f64 + (sorted[hi] as f64 - sorted[lo] as f64) * (x - lo as f64)
        };
        out.extend([mean, var, q(0.0), q(0.25), q(0.5), q(0.75), q(1.0)].map(|v| v as f32));
    }
    out
}

/// The StatNN features of the ProbeX tree-world experiments: per tensor mean, standard
/// deviation and the 0, 25, 50, 75, 100 % quantiles.
pub fn probex_features(params: &[f32], tensors: &[usize]) -> Vec<f32> {
    let mut f = features(params, tensors);
    for chunk in f.chunks_mut(7) {
        chunk[1] = chunk[1].sqrt();
    }
    f
}

/// StatNN's input for ProbeX-style experts: the features of every model z-scored with the
/// `train` models' mean and standard deviation, as a 1 × k "layer" per model (a logistic
/// regression on it is the tree world's StatNN).
pub fn standardised_features(feats: &[Vec<f32>], train: &[usize]) -> crate::Result<crate::layers::LayerSet> {
    let d = feats.first().map_or(0, Vec::len);
    let mut out: Vec<Vec<f32>> = feats.to_vec();
    for c in 0..d {
        let v: Vec<f64> = train.iter().map(|&i| feats[i][c] as f64).collect();
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
        let sd = if sd > 0.0 { sd } else { 1.0 };
        for row in out.iter_mut() {
            row[c] = ((row[c] as f64 - m) / sd) as f32;
        }
    }
    crate::layers::LayerSet::dense("statnn-features", 1, d, out)
}

/// A fine-tune's freshly initialised output layer (glassbox's `head.*`, Hugging Face's
/// `classifier.*`), which StatNN leaves out.
pub fn is_fine_tune_head(name: &str) -> bool {
    name.starts_with("head.") || name.starts_with("classifier.")
}

/// The tree world's StatNN input for a zoo: [`probex_features`] of every weight tensor except a
/// fine-tune's fresh head, tensors taken in name order (so a zoo and its re-import agree),
/// standardised with the `train` models' statistics.
pub fn zoo_features(zoo: &glassbox_zoo::store::Zoo, train: &[usize]) -> crate::Result<crate::layers::LayerSet> {
    let mut ranges = Vec::new();
    let mut offset = 0;
    for (name, shape) in &zoo.spec.tensors {
        let n: usize = shape.iter().product();
        if !is_fine_tune_head(name) {
            ranges.push((name.clone(), offset..offset + n));
        }
        offset += n;
    }
    ranges.sort_by(|a, b| a.0.cmp(&b.0));
    let sizes: Vec<usize> = ranges.iter().map(|(_, r)| r.len()).collect();
    let feats: Vec<Vec<f32>> = zoo
        .params
        .iter()
        .map(|p| probex_features(&ranges.iter().flat_map(|(_, r)| p[r.clone()].iter().copied()).collect::<Vec<f32>>(), &sizes))
        .collect();
    standardised_features(&feats, train)
}

pub struct StatnnResult {
    /// The task's metric (accuracy or Kendall's τ-b) per epoch.
    pub val_metric: Vec<f64>,
    pub test_metric: Vec<f64>,
    /// 1-based epoch of the best validation metric (the first such epoch).
    pub best_epoch: usize,
    pub test_at_best_val: f64,
}

/// Train StatNN, evaluating on val and test every epoch.
pub fn train_statnn(
    params: &[Vec<f32>],
    tensors: &[usize],
    task: &Task,
    splits: &Splits,
    epochs: usize,
    seed: u64,
) -> StatnnResult {
    let feats: Vec<Vec<f32>> = params.iter().map(|p| features(p, tensors)).collect();
    let d = feats[0].len();
    // z-score with the training split's mean and standard deviation per feature.
    let stat = |c: usize| {
        let v: Vec<f64> = splits.train.iter().map(|&i| feats[i][c] as f64).collect();
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
        (m as f32, if s > 0.0 { s as f32 } else { 1.0 })
    };
    let stats: Vec<(f32, f32)> = (0..d).map(stat).collect();
    let rows = |idx: &[usize]| {
        Mat::from_fn(idx.len(), d, |r, c| {
            (feats[idx[r]][c] - stats[c].0) / stats[c].1
        })
    };
    let mut net = Mlp::new(&[d, 1000, 1000, task.outputs()], seed ^ 0x57A7);
    let mut adam = Adam::new(
        OptimConfig {
            kind: OptimKind::Adam,
            ..OptimConfig::default()
        },
        &net.sizes(),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED);
    let mut order = splits.train.clone();
    let total = (epochs * order.len().div_ceil(32)).max(1);
    let (mut val, mut test, mut step) = (Vec::new(), Vec::new(), 0);
    let (val_x, test_x) = (rows(&splits.val), rows(&splits.test));
    for _ in 0..epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(32) {
            let (out, cache) = net.forward(&rows(batch));
            let (_, d_out) = task.loss(&out, batch);
            let (grads, _) = net.backward(&cache, &d_out);
            let lr = COSINE_TO_ZERO.lr(1e-3, step, total);
            adam.update(&mut net.params, &grads, lr);
            step += 1;
        }
        val.push(task.metric(&net.forward(&val_x).0, &splits.val));
        test.push(task.metric(&net.forward(&test_x).0, &splits.test));
    }
    let best = (0..val.len()).fold(0, |b, e| if better(val[e], val[b]) { e } else { b });
    let test_at_best_val = test.get(best).copied().unwrap_or(f64::NAN);
    StatnnResult {
        val_metric: val,
        test_metric: test,
        best_epoch: best + 1,
        test_at_best_val,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_mean_variance_and_quantiles_per_tensor() {
        let f = features(&[1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 10.0], &[5, 2]);
        assert_eq!(f[..7], [3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(f[7..], [10.0, 0.0, 10.0, 10.0, 10.0, 10.0, 10.0]);
    }
}
