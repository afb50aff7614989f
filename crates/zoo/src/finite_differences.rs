//! Test helper: gradients checked against central finite differences.

/// Checks `grad` against (f(v + h·e_i) − f(v − h·e_i)) / 2h for every coordinate i, h = 1e-3,
/// to `tol` relative (plus `tol` absolute). `what` names the variable in the failure message.
pub(crate) fn assert_gradient(what: &str, v: &[f32], grad: &[f32], f: impl Fn(&[f32]) -> f64, tol: f64) {
    assert_eq!(v.len(), grad.len(), "{what}: one gradient entry per coordinate");
    let h = 1e-3f32;
    for i in 0..v.len() {
        let (mut up, mut down) = (v.to_vec(), v.to_vec());
        up[i] += h;
        down[i] -= h;
        let fd = (f(&up) - f(&down)) / (2.0 * h as f64);
        assert!((fd - grad[i] as f64).abs() < tol * (1.0 + fd.abs()), "{what} {i}: {} vs {fd}", grad[i]);
    }
}
