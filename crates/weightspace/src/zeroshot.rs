//! Text-aligned ProbeX for zero-shot classification (Horwitz et al. 2025, the reference code's
//! `ProbeXZeroshot`): ProbeX's representation e of a model (no head), a learned projection
//! P t + b of each class's text embedding t, logits = cos(e, P t + b) with no temperature, softmax
//! cross-entropy over the training classes only (model → text). Prediction is top-1 over a
//! candidate class set: the training classes for in-distribution models, the held-out classes
//! for zero-shot. Training keeps two checkpoints: best in-distribution validation accuracy (≥)
//! and best held-out validation accuracy (≥), validated every `val_every` epochs.

use crate::layers::LayerSet;
use crate::probex::{col_major, col_sums, linear, Expert, Probex, Ranks};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use glassbox_core::train::optim::{Adam, OptimConfig, OptimKind};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct ZeroShot {
    /// ProbeX without a head (d_Y = 0): its representation e ∈ R^{r_T}.
    pub probex: Probex,
    pub d_text: usize,
    /// [P row-major r_T × d_text, b (r_T)]: PyTorch's `Linear(d_text, r_T)`.
    pub text: Vec<Vec<f32>>,
}

/// Rows scaled to unit length, and the norms (a zero row stays zero).
fn normalise(x: &Mat<f32>) -> (Mat<f32>, Vec<f32>) {
    let norms: Vec<f32> = (0..x.nrows()).map(|r| (0..x.ncols()).map(|c| x[(r, c)] * x[(r, c)]).sum::<f32>().sqrt()).collect();
    (Mat::from_fn(x.nrows(), x.ncols(), |r, c| if norms[r] > 0.0 { x[(r, c)] / norms[r] } else { 0.0 }), norms)
}

/// Back through row normalisation: dx = (dn − n (n·dn)) / |x|.
fn normalise_backward(n: &Mat<f32>, norms: &[f32], dn: &Mat<f32>) -> Mat<f32> {
    let dots: Vec<f32> = (0..n.nrows()).map(|r| (0..n.ncols()).map(|c| n[(r, c)] * dn[(r, c)]).sum()).collect();
    Mat::from_fn(n.nrows(), n.ncols(), |r, c| if norms[r] > 0.0 { (dn[(r, c)] - n[(r, c)] * dots[r]) / norms[r] } else { 0.0 })
}

pub struct ZeroShotCache {
    probex: crate::probex::ProbexCache,
    u: Mat<f32>,
    u_norms: Vec<f32>,
    v: Mat<f32>,
    v_norms: Vec<f32>,
}

impl ZeroShot {
    pub fn new(d_h: usize, d_w: usize, d_text: usize, ranks: Ranks, relu: bool, seed: u64) -> ZeroShot {
        let probex = Probex::new(d_h, d_w, 0, ranks, relu, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7E47);
        let bound = 1.0 / (d_text as f32).sqrt();
        let mut u = |n: usize| (0..n).map(|_| rng.random_range(-bound..bound)).collect::<Vec<f32>>();
        let text = vec![u(ranks.rep * d_text), u(ranks.rep)];
        ZeroShot { probex, d_text, text }
    }

    /// P t + b for every row t of `texts` (classes × d_text).
    fn project(&self, texts: &Mat<f32>) -> Mat<f32> {
        let p = MatRef::from_row_major_slice(&self.text[0], self.probex.ranks.rep, self.d_text);
        linear(texts.as_ref(), p, &self.text[1], Par::Seq)
    }

    /// Cosine logits (models × candidate classes) of the models `idx` against `texts`.
    pub fn forward(&self, data: &LayerSet, idx: &[usize], texts: &Mat<f32>) -> (Mat<f32>, ZeroShotCache) {
        let (e, probex) = self.probex.represent_with_cache(data, idx);
        let (u, u_norms) = normalise(&e);
        let (v, v_norms) = normalise(&self.project(texts));
        let mut logits = Mat::<f32>::zeros(idx.len(), texts.nrows());
        matmul(logits.as_mut(), Accum::Replace, u.as_ref(), v.transpose(), 1.0, Par::Seq);
        (logits, ZeroShotCache { probex, u, u_norms, v, v_norms })
    }

    /// Gradients of Σ d_logits ⊙ logits: ProbeX's six tensors (head ones empty), then P and b.
    pub fn backward(&self, data: &LayerSet, idx: &[usize], texts: &Mat<f32>, cache: ZeroShotCache, d_logits: &Mat<f32>) -> Vec<Vec<f32>> {
        let mut du = Mat::<f32>::zeros(idx.len(), cache.u.ncols());
        matmul(du.as_mut(), Accum::Replace, d_logits.as_ref(), cache.v.as_ref(), 1.0, Par::Seq);
        let mut dv = Mat::<f32>::zeros(texts.nrows(), cache.v.ncols());
        matmul(dv.as_mut(), Accum::Replace, d_logits.transpose(), cache.u.as_ref(), 1.0, Par::Seq);
        let de = normalise_backward(&cache.u, &cache.u_norms, &du);
        let dz = normalise_backward(&cache.v, &cache.v_norms, &dv);
        // dP (row-major r_T × d_text) = column-major textsᵀ dz.
        let mut dp = Mat::<f32>::zeros(self.d_text, dz.ncols());
        matmul(dp.as_mut(), Accum::Replace, texts.transpose(), dz.as_ref(), 1.0, Par::Seq);
        let mut grads = self.probex.backward_representation(data, idx, &cache.probex, &de);
        grads.extend([Vec::new(), Vec::new(), col_major(&dp), col_sums(&dz)]);
        grads
    }

    pub fn n_params(&self) -> usize {
        self.probex.n_params() + self.text.iter().map(Vec::len).sum::<usize>()
    }

    /// The top-1 class (an entry of `classes`, rows of `all_texts`) of each of the models `idx`.
    pub fn predict(&self, data: &LayerSet, idx: &[usize], classes: &[usize], all_texts: &Mat<f32>) -> Vec<usize> {
        if idx.is_empty() || classes.is_empty() {
            return Vec::new();
        }
        let (logits, _) = self.forward(data, idx, &rows(all_texts, classes));
        (0..idx.len())
            .map(|r| classes[(0..classes.len()).max_by(|&a, &b| logits[(r, a)].total_cmp(&logits[(r, b)]).then(b.cmp(&a))).unwrap_or(0)])
            .collect()
    }

    /// Top-1 accuracy of the models `idx` (true classes `truth`, indices into `classes`) among
    /// the candidate `classes` (rows of `all_texts`).
    pub fn top1(&self, data: &LayerSet, idx: &[usize], truth: &[usize], classes: &[usize], all_texts: &Mat<f32>) -> f64 {
        if idx.is_empty() {
            return f64::NAN;
        }
        let hits = self.predict(data, idx, classes, all_texts).iter().zip(truth).filter(|(p, t)| p == t).count();
        hits as f64 / idx.len() as f64
    }
}

/// The rows `which` of m.
pub fn rows(m: &Mat<f32>, which: &[usize]) -> Mat<f32> {
    Mat::from_fn(which.len(), m.ncols(), |r, c| m[(which[r], c)])
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZeroShotConfig {
    pub lr: f64,
    pub batch: usize,
    pub epochs: usize,
    pub val_every: usize,
    pub seed: u64,
}

impl ZeroShotConfig {
    /// The ProbeX paper's generative / zero-shot settings: Adam 2e-3, no weight decay, batch
    /// 128, 200 epochs, validation every 10.
    pub fn spec(seed: u64) -> ZeroShotConfig {
        ZeroShotConfig { lr: 2e-3, batch: 128, epochs: 200, val_every: 10, seed }
    }
}

/// The models and classes of a zero-shot problem: `class_of[i]` is model i's class (a row of
/// `texts`); `seen` the training classes, `held_out` the zero-shot ones.
pub struct ZeroShotData<'a> {
    pub data: &'a LayerSet,
    pub class_of: &'a [usize],
    pub texts: &'a Mat<f32>,
    pub seen: &'a [usize],
    pub held_out: &'a [usize],
}

#[derive(Clone, Debug, Serialize)]
pub struct ZeroShotScores {
    /// Best in-distribution validation checkpoint: its epoch, and test top-1 among the seen
    /// classes (in-distribution) and among the held-out ones (zero-shot).
    pub best_val_epoch: usize,
    pub in_dist_test: f64,
    pub zero_shot_test_at_best_val: f64,
    /// Best held-out validation checkpoint.
    pub best_holdout_epoch: usize,
    pub best_holdout_val: f64,
    pub zero_shot_test: f64,
    pub in_dist_test_at_best_holdout: f64,
    pub train_top1: f64,
    pub seconds: f64,
}

/// Split of a zero-shot problem: train / val / test models of seen classes, val / test models of
/// held-out classes.
pub struct ZeroShotSplit<'a> {
    pub train: &'a [usize],
    pub val: &'a [usize],
    pub test: &'a [usize],
    pub val_holdout: &'a [usize],
    pub test_holdout: &'a [usize],
}

pub fn fit_zeroshot(mut model: ZeroShot, z: &ZeroShotData, split: &ZeroShotSplit, cfg: &ZeroShotConfig) -> (ZeroShotScores, ZeroShot, ZeroShot) {
    let start = std::time::Instant::now();
    // One Adam per parameter group: Adam's state is per tensor, so this is one Adam over all.
    let adam_for = |p: &[Vec<f32>]| Adam::new(OptimConfig { kind: OptimKind::Adam, ..OptimConfig::default() }, &p.iter().map(Vec::len).collect::<Vec<_>>());
    let (mut adam_probex, mut adam_text) = (adam_for(&model.probex.params), adam_for(&model.text));
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x2E50);
    let seen_texts = rows(z.texts, z.seen);
    let position = |c: usize| z.seen.iter().position(|&s| s == c).expect("training models belong to seen classes");
    let truth = |idx: &[usize]| idx.iter().map(|&i| z.class_of[i]).collect::<Vec<_>>();
    let mut order = split.train.to_vec();
    let (mut best_val, mut best_hold) = ((f64::NEG_INFINITY, 0, model.clone()), (f64::NEG_INFINITY, 0, model.clone()));
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(cfg.batch.max(1)) {
            let (logits, cache) = model.forward(z.data, batch, &seen_texts);
            let classes: Vec<usize> = batch.iter().map(|&i| position(z.class_of[i])).collect();
            let (_, d_logits, _) = glassbox_zoo::dense::cross_entropy(&logits, &classes);
            let mut grads = model.backward(z.data, batch, &seen_texts, cache, &d_logits);
            let text_grads = grads.split_off(model.probex.params.len());
            adam_probex.update(&mut model.probex.params, &grads, cfg.lr);
            adam_text.update(&mut model.text, &text_grads, cfg.lr);
        }
        if epoch % cfg.val_every.max(1) == 0 {
            let v = model.top1(z.data, split.val, &truth(split.val), z.seen, z.texts);
            let h = model.top1(z.data, split.val_holdout, &truth(split.val_holdout), z.held_out, z.texts);
            if v >= best_val.0 {
                best_val = (v, epoch, model.clone());
            }
            if h >= best_hold.0 {
                best_hold = (h, epoch, model.clone());
            }
        }
    }
    let score = |m: &ZeroShot, idx: &[usize], classes: &[usize]| m.top1(z.data, idx, &truth(idx), classes, z.texts);
    let scores = ZeroShotScores {
        best_val_epoch: best_val.1,
        in_dist_test: score(&best_val.2, split.test, z.seen),
        zero_shot_test_at_best_val: score(&best_val.2, split.test_holdout, z.held_out),
        best_holdout_epoch: best_hold.1,
        best_holdout_val: best_hold.0,
        zero_shot_test: score(&best_hold.2, split.test_holdout, z.held_out),
        in_dist_test_at_best_holdout: score(&best_hold.2, split.test, z.seen),
        train_top1: score(&best_val.2, split.train, z.seen),
        seconds: start.elapsed().as_secs_f64(),
    };
    (scores, best_val.2, best_hold.2)
}

/// Class embeddings from a safetensors file holding one 1-D tensor per class name (from any
/// text encoder), as rows in the order of `classes`; a missing class or a tensor of another
/// length is an error naming the file.
pub fn read_class_embeddings(path: &std::path::Path, classes: &[String]) -> crate::Result<Mat<f32>> {
    let file = glassbox_core::io::SafetensorsFile::open(path)?;
    let names: Vec<String> = file.entries()?.into_iter().map(|(n, _, _)| n).collect();
    let mut rows_out: Vec<Vec<f32>> = Vec::with_capacity(classes.len());
    for c in classes {
        if !names.contains(c) {
            return Err(crate::Error::format(path, format!("no embedding for class '{c}' ({} classes embedded, e.g. {})", names.len(), names.iter().take(3).cloned().collect::<Vec<_>>().join(", "))));
        }
        let t = file.tensor_f32(c)?;
        if let Some(first) = rows_out.first() {
            if t.data.len() != first.len() {
                return Err(crate::Error::format(path, format!("class '{c}' has a {}-value embedding, '{}' one of {}", t.data.len(), classes[0], first.len())));
            }
        }
        rows_out.push(t.data);
    }
    let d = rows_out.first().map_or(0, Vec::len);
    if d == 0 {
        return Err(crate::Error::format(path, "the class embeddings are empty (0 values per class)"));
    }
    Ok(Mat::from_fn(classes.len(), d, |r, c| rows_out[r][c]))
}

/// A zero-shot problem from a collection whose models each name one class: the classes of the
/// training models are the seen ones; validation and test models of other classes are the
/// held-out (zero-shot) ones.
pub struct ZeroShotProblem {
    pub classes: Vec<String>,
    pub class_of: Vec<usize>,
    pub seen: Vec<usize>,
    pub held_out: Vec<usize>,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub val_holdout: Vec<usize>,
    pub test_holdout: Vec<usize>,
}

impl ZeroShotProblem {
    pub fn new(models: &crate::collection::Collection, key: &str) -> crate::Result<ZeroShotProblem> {
        let lists = models.class_lists(key)?;
        if let Some(i) = lists.iter().position(|l| l.len() != 1) {
            return Err(crate::Error::format(&models.source, format!("model '{}' names {} classes under '{key}'; zero-shot needs exactly one per model", models.names[i], lists[i].len())));
        }
        let mut classes: Vec<String> = lists.iter().map(|l| l[0].clone()).collect();
        classes.sort();
        classes.dedup();
        let class_of: Vec<usize> = lists.iter().map(|l| classes.binary_search(&l[0]).expect("listed")).collect();
        let mut seen: Vec<usize> = models.splits.train.iter().map(|&i| class_of[i]).collect();
        seen.sort_unstable();
        seen.dedup();
        let held_out: Vec<usize> = (0..classes.len()).filter(|c| seen.binary_search(c).is_err()).collect();
        let part = |split: &[usize], held: bool| split.iter().copied().filter(|&i| seen.binary_search(&class_of[i]).is_err() == held).collect::<Vec<_>>();
        let s = &models.splits;
        let problem = ZeroShotProblem { val: part(&s.val, false), test: part(&s.test, false), val_holdout: part(&s.val, true), test_holdout: part(&s.test, true), train: s.train.clone(), classes, class_of, seen, held_out };
        let empty: Vec<&str> = [("training", &problem.train), ("in-distribution validation", &problem.val), ("in-distribution test", &problem.test), ("held-out validation", &problem.val_holdout), ("held-out test", &problem.test_holdout)]
            .into_iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(n, _)| n)
            .collect();
        if !empty.is_empty() {
            return Err(crate::Error::format(&models.source, format!("no {} models: zero-shot needs training models of the seen classes, validation and test models of seen classes, and validation and test models of classes no training model has (held out)", empty.join(", no "))));
        }
        Ok(problem)
    }

    pub fn split(&self) -> ZeroShotSplit<'_> {
        ZeroShotSplit { train: &self.train, val: &self.val, test: &self.test, val_holdout: &self.val_holdout, test_holdout: &self.test_holdout }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_shot_gradients_match_finite_differences() {
        let mats = (0..5).map(|m| (0..12).map(|k| ((m * 12 + k) as f32 * 0.53).sin()).collect()).collect();
        let data = LayerSet::dense("x", 4, 3, mats).unwrap();
        let texts = Mat::from_fn(3, 5, |r, c| ((r * 5 + c) as f32 * 0.77).cos());
        for relu in [false, true] {
            let model = ZeroShot::new(4, 3, 5, Ranks { probes: 2, proj: 3, rep: 4 }, relu, 9);
        let idx = [0, 2, 3, 4];
        let g = Mat::from_fn(4, 3, |r, c| ((r * 3 + c) as f32 * 0.61).sin());
        let scalar = |m: &ZeroShot| {
            let (y, _) = m.forward(&data, &idx, &texts);
            (0..4).flat_map(|r| (0..3).map(move |c| (r, c))).map(|(r, c)| y[(r, c)] as f64 * g[(r, c)] as f64).sum::<f64>()
        };
        let (_, cache) = model.forward(&data, &idx, &texts);
        let grads = model.backward(&data, &idx, &texts, cache, &g);
        let h = 2e-3f32;
        assert_eq!(grads.len(), model.probex.params.len() + model.text.len());
        for (t, grad) in grads.iter().enumerate() {
            let len = if t < 6 { model.probex.params[t].len() } else { model.text[t - 6].len() };
            assert_eq!(grad.len(), len, "tensor {t}");
            for i in (0..len).step_by((len / 3).max(1)) {
                let bump = |d: f32| {
                    let mut m = model.clone();
                    if t < 6 { m.probex.params[t][i] += d } else { m.text[t - 6][i] += d }
                    scalar(&m)
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h as f64);
                assert!((fd - grad[i] as f64).abs() < 2e-3 + 2e-2 * fd.abs(), "relu {relu} tensor {t} entry {i}: {} vs {fd}", grad[i]);
            }
        }
        }
    }

    #[test]
    fn logits_are_cosines_in_minus_one_to_one() {
        let data = LayerSet::dense("x", 2, 2, vec![vec![1.0, -2.0, 0.5, 3.0]]).unwrap();
        let texts = Mat::from_fn(4, 3, |r, c| (r as f32 - c as f32) * 0.9);
        let model = ZeroShot::new(2, 2, 3, Ranks { probes: 2, proj: 2, rep: 3 }, false, 1);
        let (y, _) = model.forward(&data, &[0], &texts);
        for c in 0..4 {
            assert!(y[(0, c)].abs() <= 1.0 + 1e-6);
        }
    }
}
