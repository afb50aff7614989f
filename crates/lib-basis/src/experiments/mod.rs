//! The small-scale reproductions of the Local Interaction Basis paper, each with its acceptance
//! thresholds as named checks, judged on the median over seeds (or on every seed, where said).
//! `glassbox repro lib-modadd|lib-modadd-transformer|lib-digits|lib-mnist --check` runs them.

pub mod digits;
pub mod mnist;
pub mod modadd;
pub mod modadd_transformer;

use crate::analysis::{analyze, write_run, Analysis, AnalysisOptions};
use crate::linalg::relative_error;
use crate::network::Network;
use crate::{Result, Variant};
use faer::Mat;
use glassbox_core::data::{Dataset, Targets};
pub use glassbox_core::experiment::{fit, median, Check, ExperimentOptions, Outcome};
use glassbox_core::model::Model;
use std::path::Path;

pub fn labels(data: &Dataset) -> Vec<usize> {
    match &data.targets {
        Targets::Classes { labels, .. } => labels.iter().map(|&l| l as usize).collect(),
        Targets::MultiLabel { .. } => unreachable!("the LIB reproductions are classification tasks"),
    }
}

/// LIB and PCA of a trained model: bases on `basis`, ablations on `eval`; the run folder of the
/// analysis goes to `dir`.
pub(crate) fn lib_and_pca(model: &Model, basis: &Dataset, eval: &Dataset, opts: &AnalysisOptions, dir: &Path, name: &str) -> Result<(Network, Analysis)> {
    let start = std::time::Instant::now();
    let net = Network::from_model(model)?;
    let x_basis = net.fold_input(&basis.inputs, basis.len());
    let x_eval = net.fold_input(&eval.inputs, eval.len());
    let analysis = analyze(&net, x_basis, x_eval, &labels(eval), opts)?;
    write_run(dir, name, "glassbox repro", &analysis, serde_json::Value::Null, start.elapsed().as_secs_f64())?;
    Ok((net, analysis))
}

/// The worst relative error of E[f̂ᵀf̂] = diag(Λ) and C⁺C = I over the LIB layers.
pub(crate) fn invariant_error(net: &Network, analysis: &Analysis, basis: &Dataset) -> f64 {
    let lib = analysis.variant(Variant::Lib).expect("LIB was built");
    let acts = net.node_activations(net.fold_input(&basis.inputs, basis.len()));
    let mut worst = 0.0f64;
    for (l, b) in lib.basis.layers[..acts.len() - 1].iter().enumerate() {
        let f_hat = b.features(&acts[l]);
        let moment = (f_hat.transpose() * &f_hat) * faer::Scale(1.0 / f_hat.nrows() as f64);
        let diag = Mat::from_fn(b.width(), b.width(), |i, j| if i == j { b.lambda[i] } else { 0.0 });
        worst = worst.max(relative_error(&moment, &diag));
        worst = worst.max(relative_error(&(&b.c_plus * &b.c), &Mat::identity(b.width(), b.width())));
    }
    worst
}

/// Median of per-seed values that may be missing (a missing value counts as +∞: the
/// threshold was never reached).
pub(crate) fn median_of(values: &[Option<usize>]) -> f64 {
    median(values.iter().map(|v| v.map_or(f64::INFINITY, |k| k as f64)).collect())
}

pub(crate) fn show(values: &[Option<usize>]) -> String {
    values.iter().map(|v| v.map_or("-".to_string(), |k| k.to_string())).collect::<Vec<_>>().join("/")
}

/// "LIB ≤ factor × PCA (+ slack)" on medians over seeds.
pub(crate) fn ratio_check(name: &str, what: &str, lib: &[Option<usize>], pca: &[Option<usize>], factor: f64, slack: f64) -> Check {
    let (l, p) = (median_of(lib), median_of(pca));
    let pass = l.is_finite() && l <= factor * p + slack;
    let bound = if slack > 0.0 { format!("{factor}×PCA + {slack}") } else { format!("{factor}×PCA") };
    Check::new(name, pass, format!("{what}: LIB {} vs PCA {} (median {l} vs {p}); need LIB <= {bound}", show(lib), show(pca)))
}
