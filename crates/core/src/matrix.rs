//! Host matrices (faer) for the methods that compute on the host.

use faer::Mat;

/// A matrix's entries row by row. faer is column-major: each column is read as one slice
/// (faer's transposed copy is slower for the small matrices the methods use). Large matrices
/// are copied in bands of rows, in parallel, a few columns at a time, so that reads and writes
/// both stay in cache.
pub fn row_major(x: &Mat<f32>) -> Vec<f32> {
    use rayon::prelude::*;
    const BAND_ROWS: usize = 256;
    const BLOCK_COLS: usize = 16;
    let (rows, cols) = (x.nrows(), x.ncols());
    let mut out = vec![0f32; rows * cols];
    if cols == 0 {
        return out;
    }
    out.par_chunks_mut(BAND_ROWS * cols).enumerate().for_each(|(band, chunk)| {
        let first = band * BAND_ROWS;
        let n = chunk.len() / cols;
        for c0 in (0..cols).step_by(BLOCK_COLS) {
            for c in c0..(c0 + BLOCK_COLS).min(cols) {
                for (r, &v) in x.col_as_slice(c)[first..first + n].iter().enumerate() {
                    chunk[r * cols + c] = v;
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_major_reads_every_entry_row_by_row() {
        // Sizes around the band and block edges.
        for (rows, cols) in [(0, 3), (3, 0), (1, 1), (5, 17), (257, 33), (600, 16)] {
            let x = Mat::from_fn(rows, cols, |r, c| (r * 1000 + c) as f32);
            let flat = row_major(&x);
            assert_eq!(flat.len(), rows * cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(flat[r * cols + c], (r * 1000 + c) as f32, "{rows}x{cols} at ({r}, {c})");
                }
            }
        }
    }
}
