//! tanh over a slice, branch-free so that it vectorises (libm's `tanhf` is a call per element
//! and took 45% of a CNN reader's epoch). Built for AVX-512 and for AVX2 as well, chosen at run
//! time like [`crate::inr::sin_cos`].

use multiversion::multiversion;

/// tanh of every element, in place: within 2 ulp of the exact value (Cephes' `tanhf`: an odd
/// polynomial below |x| = 0.625, else 1 − 2 / (e^{2|x|} + 1)). NaN stays NaN.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn tanh(xs: &mut [f32]) {
    for v in xs {
        *v = tanh1(*v);
    }
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z - 3.333_328e-1) * z * x + x;
    // tanh(9) rounds to 1 in f32; the cap keeps e^{2|x|} finite. `a > 9` is false for NaN, so
    // NaN flows through.
    let capped = if a > 9.0 { 9.0 } else { a };
    let large = (1.0 - 2.0 / (exp_nonneg(2.0 * capped) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

/// e^x for 0 ≤ x ≤ 18 (Cephes' `expf`): x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-7
/// polynomial for e^r, and 2^n from the exponent bits.
#[inline(always)]
fn exp_nonneg(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer that then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let poly = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5) * r * r + r + 1.0;
    // n ≥ 0 here, so the bits' difference is n itself (no `as i32`, which stops vectorisation).
    let two_n = f32::from_bits((shifted.to_bits().wrapping_sub(ROUND.to_bits()) + 127) << 23);
    poly * two_n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place between `got` and the f64 value, at f32's spacing there.
    fn ulps(got: f32, exact: f64) -> f64 {
        let spacing = (exact.abs().max(f32::MIN_POSITIVE as f64) as f32).next_up() as f64 - exact.abs() as f32 as f64;
        (got as f64 - exact).abs() / spacing
    }

    #[test]
    fn tanh_is_within_2_ulp_of_the_exact_value() {
        let mut x: Vec<f32> = (0..400_001).map(|i| (i as f32 - 200_000.0) * 6e-5).collect();
        x.extend([0.0, -0.0, 0.625, -0.625, 0.624_999_9, 9.0, 9.5, -30.0, 1e-30, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY]);
        let mut y = x.clone();
        tanh(&mut y);
        let mut worst = (0.0, 0.0);
        for (&v, &t) in x.iter().zip(&y) {
            let err = ulps(t, (v as f64).tanh());
            if err > worst.0 {
                worst = (err, v);
            }
        }
        assert!(worst.0 <= 2.0, "{} ulp at x = {}", worst.0, worst.1);
        // Odd, exactly: the polynomial is odd and the other branch takes x's sign.
        for (&v, &t) in x.iter().zip(&y) {
            let mut minus = [-v];
            tanh(&mut minus);
            assert_eq!(minus[0], -t, "x = {v}");
        }
    }

    #[test]
    fn nan_stays_nan() {
        let mut y = [f32::NAN, 0.3, f32::NAN];
        tanh(&mut y);
        assert!(y[0].is_nan() && y[2].is_nan() && (y[1] - 0.3f32.tanh()).abs() < 1e-7);
    }
}
