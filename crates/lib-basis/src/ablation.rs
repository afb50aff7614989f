//! How many features and edges the model needs (the LIB paper's evaluation): node ablation
//! curves and edge ablation with bisection, both scored by accuracy.

use crate::basis::Basis;
use crate::network::{accuracy, Module, Network};
use faer::{Mat, MatRef};
use rayon::prelude::*;
use serde::Serialize;

/// The LIB reference code's "exponential" schedule: every k up to 10, then steps growing by
/// 1.05^x, up to and including `width`.
pub fn schedule(width: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = (0..=width.min(10)).collect();
    let mut x = 10.0f64;
    let mut step = 1.0f64;
    while (x as usize) < width {
        step *= 1.05;
        x += step;
        let k = (x as usize).min(width);
        if k > *ks.last().unwrap() {
            ks.push(k);
        }
    }
    if *ks.last().unwrap() < width {
        ks.push(width);
    }
    ks
}

/// Section l run on its input in feature coordinates: f̂ C⁺ goes through the section. A dense
/// section's pre-activation is linear in the features, f̂ · (C⁺ W), so keeping k features
/// costs N·k·P there.
struct FromFeatures<'a> {
    module: &'a Module,
    c_plus: &'a Mat<f64>,
    to_pre: Option<Mat<f64>>,
}

impl<'a> FromFeatures<'a> {
    fn new(module: &'a Module, c_plus: &'a Mat<f64>) -> Self {
        let to_pre = match module {
            Module::Dense(s) => Some(c_plus * &s.weight),
            _ => None,
        };
        FromFeatures { module, c_plus, to_pre }
    }

    /// The section's output from the first f_hat.ncols() features.
    fn output(&self, f_hat: MatRef<'_, f64>) -> Mat<f64> {
        let k = f_hat.ncols();
        match (self.module, &self.to_pre) {
            (Module::Dense(s), Some(to_pre)) => s.output_from_pre(&(f_hat * to_pre.subrows(0, k))),
            (module, _) => module.forward(&(f_hat * self.c_plus.subrows(0, k))),
        }
    }
}

/// Node layer l in feature coordinates, ready for ablations.
struct Features<'a> {
    net: &'a Network,
    l: usize,
    f_hat: Mat<f64>,
    section: FromFeatures<'a>,
}

impl<'a> Features<'a> {
    fn new(net: &'a Network, basis: &'a Basis, l: usize, f: &Mat<f64>) -> Self {
        let b = &basis.layers[l];
        Features { net, l, f_hat: b.features(f), section: FromFeatures::new(&net.sections[l], &b.c_plus) }
    }

    /// Accuracy with only the first k features kept: f ↦ f C[:, :k] C⁺[:k, :] before section l.
    /// Centred features are zero-mean, so dropping one mean-ablates its direction.
    fn keep_first(&self, k: usize, labels: &[usize]) -> f64 {
        let k = k.min(self.f_hat.ncols());
        let out = self.section.output(self.f_hat.subcols(0, k));
        accuracy(&self.net.run_from(self.l + 1, out), labels)
    }
}

/// Accuracy with only the first k features of node layer l kept (see [`node_ablation`]).
pub fn keep_features(net: &Network, basis: &Basis, l: usize, f: &Mat<f64>, k: usize, labels: &[usize]) -> f64 {
    Features::new(net, basis, l, f).keep_first(k, labels)
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeAblation {
    pub layer: String,
    pub width: usize,
    /// (k, accuracy) along the schedule.
    pub curve: Vec<(usize, f64)>,
    /// Smallest k whose accuracy is at least the unablated accuracy minus the tolerance
    /// (found by bisection); None when even all features miss it.
    pub needed: Option<usize>,
}

/// Smallest k in [lo, hi] with ok(k), assuming ok is monotone; None when !ok(hi).
fn bisect(mut lo: usize, mut hi: usize, ok: impl Fn(usize) -> bool) -> Option<usize> {
    if !ok(hi) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if ok(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

pub fn node_ablation(net: &Network, basis: &Basis, l: usize, f: &Mat<f64>, labels: &[usize], baseline: f64, tolerance: f64) -> NodeAblation {
    let width = basis.layers[l].width();
    let features = Features::new(net, basis, l, f);
    let curve = schedule(width).into_par_iter().map(|k| (k, features.keep_first(k, labels))).collect();
    let needed = bisect(0, width, |k| features.keep_first(k, labels) >= baseline - tolerance);
    NodeAblation { layer: basis.layers[l].name.clone(), width, curve, needed }
}

/// Accuracy when each feature i of node layer l+1 is computed from only its `budget` strongest
/// incoming edges (edges out of a constant feature are free), then mapped back with C⁺_{l+1}.
/// Outputs whose inputs are all kept share one pass.
pub fn keep_edges(net: &Network, basis: &Basis, l: usize, f: &Mat<f64>, edges: &Mat<f64>, budget: usize, labels: &[usize]) -> f64 {
    let (b_in, b_out) = (&basis.layers[l], &basis.layers[l + 1]);
    let section = FromFeatures::new(&net.sections[l], &b_in.c_plus);
    let f_hat = b_in.features(f);
    let first = b_in.const_first as usize;
    let (k_out, k_in) = (edges.nrows(), edges.ncols());
    let mut order: Vec<(usize, usize)> = (0..k_out).flat_map(|i| (first..k_in).map(move |j| (i, j))).collect();
    order.sort_by(|a, b| edges[*b].total_cmp(&edges[*a]));
    let mut keep: Vec<Vec<bool>> = vec![(0..k_in).map(|j| j < first).collect(); k_out];
    for &(i, j) in order.iter().take(budget) {
        keep[i][j] = true;
    }
    let full = &section.output(f_hat.as_ref()) * &b_out.c;
    let columns: Vec<(usize, Vec<f64>)> = (0..k_out)
        .into_par_iter()
        .filter(|&i| keep[i].iter().any(|k| !k))
        .map(|i| {
            let masked = Mat::from_fn(f.nrows(), k_in, |r, j| if keep[i][j] { f_hat[(r, j)] } else { 0.0 });
            let col = &section.output(masked.as_ref()) * b_out.c.col(i);
            (i, (0..col.nrows()).map(|r| col[r]).collect())
        })
        .collect();
    let mut f_hat_out = full;
    for (i, col) in columns {
        for (r, v) in col.into_iter().enumerate() {
            f_hat_out[(r, i)] = v;
        }
    }
    accuracy(&net.run_from(l + 1, &f_hat_out * &b_out.c_plus), labels)
}

#[derive(Clone, Debug, Serialize)]
pub struct EdgeAblation {
    pub from: String,
    pub to: String,
    /// Non-constant edges in the graph.
    pub total: usize,
    /// Smallest number of edges whose accuracy is within the tolerance of the unablated model.
    pub needed: Option<usize>,
}

#[allow(clippy::too_many_arguments)]
pub fn edge_ablation(net: &Network, basis: &Basis, l: usize, f: &Mat<f64>, edges: &Mat<f64>, labels: &[usize], baseline: f64, tolerance: f64) -> EdgeAblation {
    let first = basis.layers[l].const_first as usize;
    let total = edges.nrows() * (edges.ncols() - first);
    let needed = bisect(0, total, |k| keep_edges(net, basis, l, f, edges, k, labels) >= baseline - tolerance);
    EdgeAblation { from: basis.layers[l].name.clone(), to: basis.layers[l + 1].name.clone(), total, needed }
}
