//! Elementwise functions over slices, branch-free so that they vectorise (libm's `tanhf` is a
//! call per element and took 45% of a CNN reader's epoch; `erff` and `expf` likewise dominated a
//! transformer's MLP and softmax). Built for AVX-512 and for AVX2 as well, chosen at run time.

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
    exp_reduced(x)
}

/// e^x for −87.3 ≤ x ≤ 88.7 by Cephes' reduction; callers clamp.
#[inline(always)]
fn exp_reduced(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer that then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let poly = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5) * r * r + r + 1.0;
    // The bits' difference is n in two's complement (no `as i32`, which stops vectorisation);
    // n ≥ −126 keeps 2^n a normal number.
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    poly * two_n
}

/// e^x for any x, within 2 ulp: 0 below ln(f32::MIN_POSITIVE) ≈ −87.34 (no subnormals) and ∞
/// above 88.376 (where 2^n leaves the exponent range; e^88.72 is the largest finite f32).
#[inline(always)]
pub fn exp1(x: f32) -> f32 {
    const LO: f32 = -87.336_55;
    const HI: f32 = 88.376_26;
    let y = exp_reduced(x.clamp(LO, HI));
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        y
    }
}

/// e^x as [`exp1`] computes it (same reduction and polynomial), with fused multiply-adds: half
/// the instructions inside a function built for FMA (a `multiversion` target); elsewhere
/// `mul_add` may be a slow library call. 0 below −87.34; for x ≤ 88.37 (no overflow check).
#[inline(always)]
pub fn exp1_fma(x: f32) -> f32 {
    const LO: f32 = -87.336_55;
    const ROUND: f32 = 12_582_912.0;
    let xc = if x < LO { LO } else { x };
    let shifted = xc.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, xc));
    let p = 1.987_569_1e-4f32.mul_add(r, 1.398_199_9e-3).mul_add(r, 8.333_452e-3).mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1).mul_add(r, 0.5).mul_add(r * r, r + 1.0);
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if x < LO {
        0.0
    } else {
        p * two_n
    }
}

/// e^x of every element, in place (within 2 ulp; NaN stays NaN).
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn exp(xs: &mut [f32]) {
    for v in xs {
        *v = if v.is_nan() { *v } else { exp1(*v) };
    }
}

/// erf by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7), the approximation PyTorch's
/// vectorised CPU `erf` uses.
#[inline(always)]
fn erf1(x: f32) -> f32 {
    let (poly, gauss) = erfc_parts(x.abs());
    (1.0 - poly * gauss).copysign(x)
}

/// For a ≥ 0, A&S 7.1.26's erfc(a) = p(a)·e^{−a²} as (p(a), e^{−a²}).
#[inline(always)]
fn erfc_parts(a: f32) -> (f32, f32) {
    let t = 1.0 / (0.327_591_1 * a + 1.0);
    let r = (((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_7) * t - 0.284_496_74) * t + 0.254_829_6;
    (r * t, exp1(-a * a))
}

/// GELU with the exact error function, 0.5·x·(1 + erf(x/√2)), in place.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn gelu_erf(xs: &mut [f32]) {
    for v in xs {
        *v = 0.5 * *v * (1.0 + erf1(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// GELU with the exact error function and its derivative: for each x, gelu(x) = x·Φ(x) into
/// `value` and gelu′(x) = Φ(x) + x·φ(x) into `derivative`, Φ and φ the standard normal CDF and
/// density (erf as in [`gelu_erf`]; φ shares its e^{−x²/2}).
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn gelu_erf_with_derivative(xs: &[f32], value: &mut [f32], derivative: &mut [f32]) {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    for ((&x, v), d) in xs.iter().zip(value.iter_mut()).zip(derivative.iter_mut()) {
        // e^{−a²} with a = |x|/√2 is e^{−x²/2}, the density's exponential as well.
        let (poly, gauss) = erfc_parts(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
        let cdf = 0.5 * (1.0 + (1.0 - poly * gauss).copysign(x));
        *v = x * cdf;
        *d = cdf + x * FRAC_1_SQRT_2PI * gauss;
    }
}

/// GELU with the tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), in place.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn gelu_tanh(xs: &mut [f32]) {
    const C: f32 = 0.797_884_6;
    for v in xs {
        let x = *v;
        *v = 0.5 * x * (1.0 + tanh1(C * (x + 0.044_715 * x * x * x)));
    }
}

/// SiLU, x·σ(x) = x / (1 + e^{−x}), in place.
#[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
pub fn silu(xs: &mut [f32]) {
    for v in xs {
        *v /= 1.0 + exp1(-*v);
    }
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
    fn exp_gelu_and_silu_match_f64() {
        let x: Vec<f32> = (0..200_001).map(|i| (i as f32 - 100_000.0) * 1e-3).collect();
        let mut e = x.clone();
        exp(&mut e);
        for (&v, &y) in x.iter().zip(&e) {
            let want = (v as f64).exp();
            if v > 88.376_26 {
                assert_eq!(y, f32::INFINITY);
                continue;
            }
            assert!(want < 1.000_01 * f32::MIN_POSITIVE as f64 || ulps(y, want) <= 2.0, "exp({v}) = {y}, want {want}");
        }
        let (mut ge, mut gt, mut si) = (x.clone(), x.clone(), x.clone());
        gelu_erf(&mut ge);
        gelu_tanh(&mut gt);
        silu(&mut si);
        for (i, &v) in x.iter().enumerate() {
            let v64 = v as f64;
            let erf = libm::erf(v64 / std::f64::consts::SQRT_2);
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let checks = [
                (ge[i], 0.5 * v64 * (1.0 + erf)),
                (gt[i], 0.5 * v64 * (1.0 + (c * (v64 + 0.044715 * v64.powi(3))).tanh())),
                (si[i], v64 / (1.0 + (-v64).exp())),
            ];
            for (got, want) in checks {
                assert!((got as f64 - want).abs() <= 2e-7 * v64.abs().max(1.0), "x = {v}: {got} vs {want}");
            }
        }
        let (mut value, mut derivative) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        gelu_erf_with_derivative(&x, &mut value, &mut derivative);
        assert_eq!(value, ge, "the same GELU as gelu_erf");
        for (i, &v) in x.iter().enumerate() {
            let v64 = v as f64;
            let cdf = 0.5 * (1.0 + libm::erf(v64 / std::f64::consts::SQRT_2));
            let want = cdf + v64 * (-0.5 * v64 * v64).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!((derivative[i] as f64 - want).abs() <= 4e-7 * v64.abs().max(1.0), "gelu'({v}) = {} vs {want}", derivative[i]);
        }
        let mut edge = [-100.0f32, 100.0, f32::NAN];
        exp(&mut edge);
        assert_eq!(&edge[..2], &[0.0, f32::INFINITY]);
        assert!(edge[2].is_nan());
    }

    #[test]
    fn fused_exp_is_within_2_ulp() {
        #[multiversion(targets("x86_64+avx512f+avx2+fma", "x86_64+avx2+fma"))]
        fn all(xs: &mut [f32]) {
            xs.iter_mut().for_each(|v| *v = exp1_fma(*v));
        }
        let x: Vec<f32> = (0..400_001).map(|i| (i as f32 - 380_000.0) * 2.3e-4).chain([-87.3, -87.34, -90.0, -1e30, 0.0]).collect();
        let mut y = x.clone();
        all(&mut y);
        for (&v, &e) in x.iter().zip(&y) {
            let want = (v as f64).exp();
            assert!(want < 1.000_01 * f32::MIN_POSITIVE as f64 || ulps(e, want) <= 2.0, "exp({v}) = {e}, want {want}");
            if v < -87.336_55 {
                assert_eq!(e, 0.0);
            }
        }
    }

    #[test]
    fn nan_stays_nan() {
        let mut y = [f32::NAN, 0.3, f32::NAN];
        tanh(&mut y);
        assert!(y[0].is_nan() && y[2].is_nan() && (y[1] - 0.3f32.tanh()).abs() < 1e-7);
    }
}
