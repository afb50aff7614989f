//! Test A of spec/usae.md 5.1 against its thresholds, with BatchNorm on and off, the USAE passing
//! where independent SAEs fail. Run with `-- --nocapture` to see the numbers; the same run is
//! `glassbox repro usae-planted --check`.

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
