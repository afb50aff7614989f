//! Host matrices (faer) for the methods that compute on the host.

use faer::Mat;

/// A matrix's entries row by row. faer is column-major: each column is read as one slice
/// (faer's transposed copy is slower for the small matrices the methods use).
pub fn row_major(x: &Mat<f32>) -> Vec<f32> {
    let cols = x.ncols();
    let mut out = vec![0f32; x.nrows() * cols];
    for c in 0..cols {
        for (r, &v) in x.col_as_slice(c).iter().enumerate() {
            out[r * cols + c] = v;
        }
    }
    out
}
