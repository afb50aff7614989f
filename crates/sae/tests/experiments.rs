//! Tests A (planted concepts, BatchNorm on and off) and B (three networks on the glyph world)
//! against their thresholds, the USAE passing where the controls fail. Run with
//! `-- --nocapture` to see the numbers; the same runs are `glassbox repro usae-planted --check`
//! and `glassbox repro usae-glyphs --check`. Also a fast version of `glassbox repro usae-mnist
//! --check` (needs GLASSBOX_DATA).

use glassbox_core::experiment::ExperimentOptions;
use glassbox_sae::experiments::planted_concepts;

#[test]
fn test_a_planted_concepts() {
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: None, out: out.path().to_path_buf(), seeds: vec![0], progress: false };
    let outcome = planted_concepts::run(&opts).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    eprintln!("{}: {:.1} s", outcome.name, outcome.wall_time_s);
    assert_eq!(outcome.checks.len(), 12);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}

#[test]
fn test_b_three_networks_on_the_glyph_world() {
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: None, out: out.path().to_path_buf(), seeds: vec![0], progress: false };
    let outcome = glassbox_sae::experiments::glyph_networks::run(&opts).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    assert_eq!(outcome.checks.len(), 8);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}

/// The fast version of `glassbox repro usae-mnist --check` (12,000 training images, 1-2 epochs,
/// 1500 USAE steps, three concept cards): the same thresholds as the full run; the models' own
/// accuracy bar is 0.9 instead of 0.95.
#[test]
fn usae_over_three_mnist_models_fast() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else {
        eprintln!("skipped: GLASSBOX_DATA is not set");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: Some(data), out: out.path().to_path_buf(), seeds: vec![0], progress: false };
    let outcome = glassbox_sae::experiments::mnist_models::run(&opts, glassbox_sae::experiments::mnist_models::Scale::FAST).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    assert_eq!(outcome.checks.len(), 4);
    assert!(outcome.passed(), "a threshold was missed (see above)");
    let figures = out.path().join("usae-mnist/figures");
    for f in ["r2-matrix.svg", "firing-entropy.svg", "cofire-energy.svg"] {
        assert!(figures.join(f).is_file(), "{f} missing");
    }
}
