//! TopK selection: per row, the k largest positive entries (a selection, not a sort).

use faer::Mat;
use rayon::prelude::*;

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

/// The k largest positive entries of one row; ties go to the lower index. Rows with fewer than
/// k positive entries keep all of them (TopK after ReLU: L0 can be below k).
pub fn topk_row(row: impl Iterator<Item = f32>, k: usize, skip: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let mut pos: Vec<(u32, f32)> = row.enumerate().filter(|&(i, v)| v > 0.0 && !skip.iter().any(|s| s.0 == i as u32)).map(|(i, v)| (i as u32, v)).collect();
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if pos.len() > k {
        pos.select_nth_unstable_by(k, order);
        pos.truncate(k);
    }
    pos.sort_by(order);
    pos
}

/// TopK of ReLU(x) for every row of x.
pub fn topk(x: &Mat<f32>, k: usize) -> SparseCodes {
    topk_excluding(x, k, None)
}

/// TopK of ReLU(x) per row, never choosing the latents already in `exclude` (for AuxK).
pub fn topk_excluding(x: &Mat<f32>, k: usize, exclude: Option<&SparseCodes>) -> SparseCodes {
    // faer is column-major: copy to rows once rather than stride through every row.
    let m = x.ncols();
    let flat: Vec<f32> = (0..x.nrows()).flat_map(|t| (0..m).map(move |c| x[(t, c)])).collect();
    let rows = (0..x.nrows())
        .into_par_iter()
        .with_min_len(64)
        .map(|t| topk_row(flat[t * m..][..m].iter().copied(), k, exclude.map_or(&[][..], |e| &e.rows[t])))
        .collect();
    SparseCodes { m, rows }
}
