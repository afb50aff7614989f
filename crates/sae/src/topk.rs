//! TopK selection: per row, the k largest positive entries (a selection, not a sort).

use crate::usae::row_major;
use faer::Mat;
use rayon::prelude::*;

/// (latent, value) pairs of one row.
pub type Latents = Vec<(u32, f32)>;

/// Sparse codes: per row the selected (latent, value) pairs, largest value first.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseCodes {
    pub m: usize,
    pub rows: Vec<Vec<(u32, f32)>>,
}

impl SparseCodes {
    pub fn to_dense(&self) -> Mat<f32> {
        let mut z = Mat::zeros(self.rows.len(), self.m);
        for (t, row) in self.rows.iter().enumerate() {
            for &(l, v) in row {
                z[(t, l as usize)] = v;
            }
        }
        z
    }

    /// Mean number of active latents per row.
    pub fn l0(&self) -> f64 {
        self.rows.iter().map(|r| r.len()).sum::<usize>() as f64 / self.rows.len().max(1) as f64
    }
}

/// The k largest positive entries of one row, largest first; ties go to the lower index. Rows
/// with fewer than k positive entries keep all of them (TopK after ReLU: L0 can be below k).
pub fn topk_row(row: impl Iterator<Item = f32>, k: usize, skip: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut pos = select_row(row, k, skip);
    pos.sort_by(order);
    pos
}

/// Descending value, then ascending index.
fn order(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The same entries as [`topk_row`] in no particular order.
fn select_row(row: impl Iterator<Item = f32>, k: usize, skip: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut pos = vec![(0u32, 0f32); row.size_hint().1.unwrap_or(0)];
    let mut len = 0;
    for (i, v) in row.enumerate() {
        if len == pos.len() {
            pos.push((0, 0.0));
        }
        // Branch-free: about half the entries are positive, in no pattern a predictor can learn.
        pos[len] = (i as u32, v);
        len += (v > 0.0) as usize;
    }
    pos.truncate(len);
    if !skip.is_empty() {
        pos.retain(|&(i, _)| !skip.iter().any(|s| s.0 == i));
    }
    if pos.len() > k {
        pos.select_nth_unstable_by(k, order);
        pos.truncate(k);
    }
    pos
}

/// A USAE step's selection on one row of pre-activations: the k largest positive entries
/// (largest first) and, among the positive entries left, the `n_aux` largest (in no particular
/// order; the auxiliary term is a sum over them). Ties go to the lower index, as in [`topk_row`].
pub fn topk_and_rest(row: &[f32], k: usize, n_aux: usize) -> (Latents, Latents) {
    let mut pos = select_row(row.iter().copied(), row.len(), &[]);
    // select_row kept every positive entry (k = len); split them at the k-th largest.
    if pos.len() > k {
        pos.select_nth_unstable_by(k, order);
    }
    let mut rest = pos.split_off(k.min(pos.len()));
    pos.sort_by(order);
    if rest.len() > n_aux {
        rest.select_nth_unstable_by(n_aux, order);
        rest.truncate(n_aux);
    }
    (pos, rest)
}

/// TopK of ReLU(x) for every row of x.
pub fn topk(x: &Mat<f32>, k: usize) -> SparseCodes {
    let m = x.ncols();
    let rows = row_major(x).par_chunks(m.max(1)).with_min_len(64).map(|row| topk_row(row.iter().copied(), k, &[])).collect();
    SparseCodes { m, rows }
}
