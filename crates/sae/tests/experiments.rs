//! Tests A (spec/usae.md 5.1, planted concepts, BatchNorm on and off) and B (5.2, three networks
//! on the glyph world) against their thresholds, the USAE passing where the controls fail. Run
//! with `-- --nocapture` to see the numbers; the same runs are `glassbox repro usae-planted
//! --check` and `glassbox repro usae-glyphs --check`.

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
