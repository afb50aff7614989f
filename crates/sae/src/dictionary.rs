//! The decoder: raw rows V re-parameterised to unit norm on every use, D = V / (‖V_row‖ + 1e-8)
//! (spec 1.3), so gradients flow through the normalisation.

use faer::Mat;

const EPS: f32 = 1e-8;

/// D from raw V (m × d), with the row norms of V.
pub fn normalise(raw: &Mat<f32>) -> (Mat<f32>, Vec<f32>) {
    let norms: Vec<f32> = (0..raw.nrows()).map(|l| (0..raw.ncols()).map(|c| raw[(l, c)] * raw[(l, c)]).sum::<f32>().sqrt()).collect();
    let d = Mat::from_fn(raw.nrows(), raw.ncols(), |l, c| raw[(l, c)] / (norms[l] + EPS));
    (d, norms)
}

/// dL/dV from dL/dD: dV = dD/(n+ε) − V (V·dD) / (n (n+ε)²) per row.
pub fn backward(raw: &Mat<f32>, norms: &[f32], d_dict: &Mat<f32>) -> Mat<f32> {
    let dots: Vec<f32> = (0..raw.nrows()).map(|l| (0..raw.ncols()).map(|c| raw[(l, c)] * d_dict[(l, c)]).sum()).collect();
    Mat::from_fn(raw.nrows(), raw.ncols(), |l, c| {
        let n = norms[l];
        let scale = if n > 0.0 { dots[l] / (n * (n + EPS) * (n + EPS)) } else { 0.0 };
        d_dict[(l, c)] / (n + EPS) - raw[(l, c)] * scale
    })
}
