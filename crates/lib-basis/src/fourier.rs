//! Fourier purity of modular-addition features: how much of a feature's
//! non-constant 2-D DFT power over the p × p grid of inputs sits at one frequency.

use faer::Mat;

/// |DFT|² of a p × p grid x(a, b).
pub fn power_spectrum(x: &Mat<f64>) -> Mat<f64> {
    let p = x.nrows();
    let angle = |u: usize, a: usize| 2.0 * std::f64::consts::PI * ((u * a) % p) as f64 / p as f64;
    let cos = Mat::from_fn(p, p, |u, a| angle(u, a).cos());
    let sin = Mat::from_fn(p, p, |u, a| angle(u, a).sin());
    // F = (C - iS) X (C - iS)ᵀ.
    let re = &cos * x * cos.transpose() - &sin * x * sin.transpose();
    let im = &sin * x * cos.transpose() + &cos * x * sin.transpose();
    Mat::from_fn(p, p, |u, v| re[(u, v)].powi(2) + im[(u, v)].powi(2))
}

/// (purity, frequency): the largest share of non-DC power in {(u, v): u, v ∈ {0, ±w}} \ {(0, 0)}
/// over w = 1 … p/2, and the w that attains it. A feature with no non-DC power has purity 0.
pub fn purity(x: &Mat<f64>) -> (f64, usize) {
    let p = x.nrows();
    let power = power_spectrum(x);
    let total: f64 = (0..p).flat_map(|u| (0..p).map(move |v| (u, v))).filter(|&uv| uv != (0, 0)).map(|(u, v)| power[(u, v)]).sum();
    if total <= 1e-300 {
        return (0.0, 0);
    }
    let mut best = (0.0, 0);
    for w in 1..=p / 2 {
        let set = [0, w, p - w];
        let mut mass = 0.0;
        for (iu, &u) in set.iter().enumerate() {
            for (iv, &v) in set.iter().enumerate() {
                // p - w == w never happens for w <= p/2 with p odd; skip duplicates when p is even.
                if (u, v) == (0, 0) || (iu == 2 && u == w) || (iv == 2 && v == w) {
                    continue;
                }
                mass += power[(u, v)];
            }
        }
        if mass / total > best.0 {
            best = (mass / total, w);
        }
    }
    best
}

/// A feature's values over all pairs, x[(a, b)] = values[a·p + b].
pub fn grid(values: &[f64], p: usize) -> Mat<f64> {
    Mat::from_fn(p, p, |a, b| values[a * p + b])
}

/// Purity, dominant frequency and power spectrum (|DFT|² with the DC term zeroed, as a p × p
/// image scaled to its peak) of the first `count` non-constant features of a node layer whose
/// activations `acts_l` hold all p² pairs (sample a·p + b). A layer with several positions per
/// sample (a transformer's residual stream into attention) has its positions summed first.
pub fn layer_spectra(acts_l: &Mat<f64>, basis: &crate::LayerBasis, p: usize, count: usize) -> Vec<(f64, usize, Vec<f32>)> {
    let f_hat = basis.features(acts_l);
    let first = basis.const_first as usize;
    let positions = acts_l.nrows() / (p * p);
    (first..basis.width().min(first + count))
        .map(|j| {
            let g = grid(&(0..p * p).map(|r| (0..positions).map(|s| f_hat[(r * positions + s, j)]).sum()).collect::<Vec<_>>(), p);
            let (pur, w) = purity(&g);
            let power = power_spectrum(&g);
            // Each spectrum scaled to its own peak: the grid shows where the power is, not how much.
            let peak = (1..p * p).map(|k| power[(k / p, k % p)]).fold(0.0, f64::max).max(1e-300);
            let image = (0..p * p).map(|k| if k == 0 { 0.0 } else { (power[(k / p, k % p)] / peak) as f32 }).collect();
            (pur, w, image)
        })
        .collect()
}
