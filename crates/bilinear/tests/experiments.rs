//! The small-scale reproductions of the bilinear-MLP paper (Pearce et al. 2024) against the
//! thresholds named in their checks. Each prints its checks; run with `-- --nocapture` to see the
//! numbers. The same runs are available as `glassbox repro bilinear-{a,b,e,f} --check`.

use glassbox_bilinear::experiments::{boolean, digits, mnist5k, modadd, ExperimentOptions, Outcome};
use std::path::PathBuf;

use glassbox_core::experiment::test_data_dir as real_data_dir;

fn options(data_dir: Option<PathBuf>, out: &tempfile::TempDir) -> ExperimentOptions {
    ExperimentOptions { data_dir, out: out.path().to_path_buf(), seeds: vec![0, 1, 2], progress: false }
}

fn assert_passed(outcome: &Outcome) {
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    eprintln!("{}: {:.1} s", outcome.name, outcome.wall_time_s);
    assert!(!outcome.checks.is_empty());
    assert!(outcome.passed(), "{}: a threshold was missed (see above)", outcome.name);
}

#[test]
fn experiment_a_and_c_mnist_5k() {
    let Some(dir) = real_data_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    assert_passed(&mnist5k::run(&options(Some(dir), &out)).unwrap());
}

#[test]
fn experiment_b_digits() {
    let Some(dir) = real_data_dir() else { return };
    let out = tempfile::tempdir().unwrap();
    assert_passed(&digits::run(&options(Some(dir), &out)).unwrap());
}

#[test]
fn experiment_e_boolean_toy() {
    let out = tempfile::tempdir().unwrap();
    assert_passed(&boolean::run(&options(None, &out)).unwrap());
}

#[test]
fn experiment_f_modular_addition() {
    let out = tempfile::tempdir().unwrap();
    assert_passed(&modadd::run(&options(None, &out)).unwrap());
}
