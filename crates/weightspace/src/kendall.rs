//! Kendall's τ-b (scipy.stats.kendalltau's default), the ranking metric of accuracy zoos: how
//! often a reader orders two models the way their true accuracies are ordered, with ties
//! corrected for. Counted over all pairs: exact, and under a second for 10⁴ models.

/// τ-b of x against y; NaN when either side is constant, holds a NaN (as scipy), or there
/// are fewer than two pairs.
pub fn tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if x[..n].iter().chain(&y[..n]).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (mut concordant, mut discordant, mut tie_x, mut tie_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => tie_x += 1,
                (false, true) => tie_y += 1,
                (false, false) if (dx > 0.0) == (dy > 0.0) => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    // τ-b = (C − D) / √((n₀ − n₁)(n₀ − n₂)), where the pairs tied in both count in neither factor.
    let (c, d) = (concordant as f64, discordant as f64);
    let denom = ((c + d + tie_x as f64) * (c + d + tie_y as f64)).sqrt();
    if denom == 0.0 {
        f64::NAN
    } else {
        (c - d) / denom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_counts_and_scipy() {
        assert_eq!(tau_b(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert_eq!(tau_b(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        // Pairs: (1,2) C, (1,3) C, (2,3) D → (2 − 1) / 3.
        assert!((tau_b(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-12);
        // With ties; scipy.stats.kendalltau([1, 2, 2, 3, 4], [2, 1, 3, 3, 5]) = 0.6666666666666666.
        assert!(
            (tau_b(&[1.0, 2.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 3.0, 3.0, 5.0]) - 0.6666666666666666)
                .abs()
                < 1e-12
        );
        // scipy.stats.kendalltau([0.1, 0.4, 0.4, 0.9, 0.3, 0.7], [1, 0, 0, 1, 1, 1]) = 0.0.
        assert!(
            tau_b(
                &[0.1, 0.4, 0.4, 0.9, 0.3, 0.7],
                &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
            )
            .abs()
                < 1e-12
        );
        // Ties on both sides: scipy.stats.kendalltau(x, y) = 0.13041013273932525.
        let (x, y) = (
            [0.3, 0.1, 0.4, 0.1, 0.5, 0.9, 0.2, 0.6, 0.5, 0.3],
            [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0, 2.0, 8.0],
        );
        assert!(
            (tau_b(&x, &y) - 0.13041013273932525).abs() < 1e-12,
            "{}",
            tau_b(&x, &y)
        );
        assert!(tau_b(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        assert!(tau_b(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0]).is_nan());
    }
}
