//! Model trees (ProbeX, Horwitz et al. 2025, "Learning on Model Weights using Tree Experts"):
//! pairwise Euclidean distances between the models' layer, Ward linkage (scipy's, through
//! `kodama`) cut into K clusters (`fcluster(maxclust=K)`), a nearest-centroid router, and the
//! mixture of per-tree experts with hard routing.

use crate::layers::LayerSet;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

/// Condensed pairwise distances ‖X_a − X_b‖₂ over the models `idx` (scipy's order: (0,1),
/// (0,2), …, (1,2), …) from one Gram matrix in f64 of the layers minus their mean: models of one
/// tree differ by small fine-tuning steps, and ‖a‖² + ‖b‖² − 2⟨a, b⟩ in f32 of the raw layers
/// would lose those distances to cancellation.
pub fn pairwise_distances(data: &LayerSet, idx: &[usize]) -> Vec<f64> {
    let (d, n) = (data.d_h * data.d_w, idx.len());
    let x = data.columns(idx);
    let mean: Vec<f64> = (0..d).map(|r| (0..n).map(|c| x[c * d + r] as f64).sum::<f64>() / n.max(1) as f64).collect();
    let mut centred = vec![0f64; d * n];
    centred.par_chunks_mut(d.max(1)).enumerate().for_each(|(c, col)| {
        for (r, v) in col.iter_mut().enumerate() {
            *v = x[c * d + r] as f64 - mean[r];
        }
    });
    drop(x);
    let xm = MatRef::from_column_major_slice(&centred, d, n);
    let mut gram = Mat::<f64>::zeros(n, n);
    matmul(gram.as_mut(), Accum::Replace, xm.transpose(), xm, 1.0, Par::rayon(0));
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for a in 0..n {
        for b in a + 1..n {
            out.push((gram[(a, a)] + gram[(b, b)] - 2.0 * gram[(a, b)]).max(0.0).sqrt());
        }
    }
    out
}

/// The distance between models a < b in a condensed matrix of n models.
pub fn condensed(dist: &[f64], n: usize, a: usize, b: usize) -> f64 {
    let (a, b) = (a.min(b), a.max(b));
    dist[n * a - a * (a + 1) / 2 + (b - a - 1)]
}

/// One merge of the Ward dendrogram: clusters `a` and `b` (labels as scipy: 0..n are the
/// models, n + i the cluster made at step i) joined at `height` into `size` models.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Merge {
    pub a: usize,
    pub b: usize,
    pub height: f64,
    pub size: usize,
}

/// Ward linkage of condensed Euclidean distances over n models.
pub fn ward(dist: &[f64], n: usize) -> Vec<Merge> {
    if n < 2 {
        return Vec::new();
    }
    let mut work = dist.to_vec();
    let dendrogram = kodama::linkage(&mut work, n, kodama::Method::Ward);
    dendrogram
        .steps()
        .iter()
        .map(|s| Merge { a: s.cluster1, b: s.cluster2, height: s.dissimilarity, size: s.size })
        .collect()
}

/// scipy's `fcluster(Z, k, 'maxclust')` for a dendrogram without ties: undo the last k − 1
/// merges. Cluster ids 0..k in the order of each cluster's first model.
pub fn cut(merges: &[Merge], n: usize, k: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n + merges.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (step, m) in merges.iter().take(n.saturating_sub(k.max(1))).enumerate() {
        let (ra, rb) = (root(&mut parent, m.a), root(&mut parent, m.b));
        parent[ra] = n + step;
        parent[rb] = n + step;
    }
    let mut ids = std::collections::HashMap::new();
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            let next = ids.len();
            *ids.entry(r).or_insert(next)
        })
        .collect()
}

/// The number of trees a dendrogram suggests: the cut below the largest relative jump between
/// consecutive merge heights among the top `max_k` merges (trees are far apart, fine-tunes
/// within a tree close). One tree when no jump is at least 2×.
pub fn suggest_k(merges: &[Merge], max_k: usize) -> usize {
    let h: Vec<f64> = merges.iter().map(|m| m.height).collect();
    let n = h.len();
    let (mut best_k, mut best_ratio) = (1, 2.0);
    // Cutting into k clusters undoes merges n − k + 1 … n − 1 (1-based); the jump is between
    // the highest merge kept and the lowest undone.
    for k in 2..=max_k.min(n) {
        let (kept, undone) = (h[n - k], h[n - k + 1]);
        let ratio = undone / kept.max(1e-12);
        if ratio >= best_ratio {
            (best_k, best_ratio) = (k, ratio);
        }
    }
    best_k
}

/// Share of models whose cluster's majority tree is their own tree (purity up to relabelling).
pub fn purity(clusters: &[usize], truth: &[usize]) -> f64 {
    let majority = majority_map(clusters, truth);
    let hits = clusters.iter().zip(truth).filter(|(c, t)| majority[**c] == **t).count();
    hits as f64 / clusters.len().max(1) as f64
}

/// For each cluster id, the most common true label among its members (ties: the smaller).
pub fn majority_map(clusters: &[usize], truth: &[usize]) -> Vec<usize> {
    let k = clusters.iter().max().map_or(0, |m| m + 1);
    let t = truth.iter().max().map_or(0, |m| m + 1);
    let mut counts = vec![vec![0usize; t]; k];
    for (&c, &l) in clusters.iter().zip(truth) {
        counts[c][l] += 1;
    }
    counts
        .iter()
        .map(|row| (0..t).fold(0, |best, l| if row[l] > row[best] { l } else { best }))
        .collect()
}

/// Nearest-centroid routing (ProbeX's router): R(X) = argmin_k ‖X − X̂_k‖₂ with X̂_k the mean
/// layer of cluster k's training models.
#[derive(Clone, Debug, Default)]
pub struct Router {
    pub centroids: Vec<Vec<f32>>,
}

impl Router {
    /// Centroids of the clusters `clusters[j]` of the models `idx[j]`.
    pub fn new(data: &LayerSet, idx: &[usize], clusters: &[usize]) -> Router {
        let k = clusters.iter().max().map_or(0, |m| m + 1);
        let d = data.d_h * data.d_w;
        let mut sums = vec![vec![0f64; d]; k];
        let mut counts = vec![0usize; k];
        for (&i, &c) in idx.iter().zip(clusters) {
            for (s, v) in sums[c].iter_mut().zip(data.dense_of(i)) {
                *s += v as f64;
            }
            counts[c] += 1;
        }
        let centroids = sums
            .into_iter()
            .zip(counts)
            .map(|(s, n)| s.into_iter().map(|v| (v / n.max(1) as f64) as f32).collect())
            .collect();
        Router { centroids }
    }

    /// The cluster of each of the models `idx`.
    pub fn route(&self, data: &LayerSet, idx: &[usize]) -> Vec<usize> {
        idx.par_iter()
            .map(|&i| {
                let x = data.dense_of(i);
                let dist: Vec<f64> = self.centroids.iter().map(|c| c.iter().zip(&x).map(|(a, b)| ((a - b) as f64).powi(2)).sum()).collect();
                (0..dist.len()).min_by(|&a, &b| dist[a].total_cmp(&dist[b])).unwrap_or(0)
            })
            .collect()
    }
}

/// Mean distance between models of the same tree and between models of different trees.
pub fn within_between(dist: &[f64], trees: &[usize]) -> (f64, f64) {
    let n = trees.len();
    let (mut w, mut nw, mut b, mut nb) = (0.0, 0usize, 0.0, 0usize);
    for i in 0..n {
        for j in i + 1..n {
            let d = condensed(dist, n, i, j);
            if trees[i] == trees[j] {
                (w, nw) = (w + d, nw + 1);
            } else {
                (b, nb) = (b + d, nb + 1);
            }
        }
    }
    (w / nw.max(1) as f64, b / nb.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_a_direct_computation() {
        let xs: Vec<Vec<f32>> = (0..4).map(|m| (0..6).map(|k| ((m * 6 + k) as f32 * 0.9).sin() * 3.0).collect()).collect();
        let data = LayerSet::dense("x", 2, 3, xs.clone()).unwrap();
        let dist = pairwise_distances(&data, &[0, 1, 2, 3]);
        for a in 0..4 {
            for b in a + 1..4 {
                let direct = xs[a].iter().zip(&xs[b]).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>().sqrt();
                assert!((condensed(&dist, 4, a, b) - direct).abs() < 1e-4, "{a},{b}");
            }
        }
    }

    #[test]
    fn ward_matches_scipy_on_a_small_example() {
        // scipy.cluster.hierarchy.ward on points 0, 1, 5, 6, 20 (1-D):
        // [[0,1,1,2],[2,3,1,2],[5,6,7.0711,4],[4,7,21.5035,5]]; fcluster maxclust 2: 1 1 1 1 2, 3: 1 1 2 2 3.
        let pts = [0.0f32, 1.0, 5.0, 6.0, 20.0];
        let data = LayerSet::dense("x", 1, 1, pts.iter().map(|&p| vec![p]).collect()).unwrap();
        let merges = ward(&pairwise_distances(&data, &[0, 1, 2, 3, 4]), 5);
        let heights: Vec<f64> = merges.iter().map(|m| m.height).collect();
        let want = [1.0, 1.0, 50f64.sqrt(), 21.5035];
        for (h, w) in heights.iter().zip(want) {
            assert!((h - w).abs() < 1e-3, "{heights:?}");
        }
        assert_eq!(cut(&merges, 5, 2), [0, 0, 0, 0, 1]);
        assert_eq!(cut(&merges, 5, 3), [0, 0, 1, 1, 2]);
        // Heights 1, 1, 7.07, 21.5: the largest jump (7×) is above the two pairs.
        assert_eq!(suggest_k(&merges, 4), 3);
        assert_eq!(purity(&[0, 0, 1, 1, 2], &[0, 0, 1, 0, 1]), 0.8);
    }

    #[test]
    fn the_router_picks_the_nearest_centroid() {
        let data = LayerSet::dense("x", 1, 2, vec![vec![0.0, 0.0], vec![0.0, 2.0], vec![10.0, 10.0], vec![9.0, 9.0], vec![0.5, 0.5]]).unwrap();
        let router = Router::new(&data, &[0, 1, 2], &[0, 0, 1]);
        assert_eq!(router.centroids, [vec![0.0, 1.0], vec![10.0, 10.0]]);
        assert_eq!(router.route(&data, &[3, 4]), [1, 0]);
    }
}
