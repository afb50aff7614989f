//! ProbeGen's reproduction R1 on the digits-INR zoo: thresholds A1-A4 over three seeds, the
//! same run as `glassbox repro probegen-digits-inr --check --seeds 0,1,2`. Needs GLASSBOX_DATA.

use glassbox_core::experiment::{test_data_dir, ExperimentOptions};

#[test]
fn r1_digits_inr_thresholds_a1_to_a4() {
    let Some(data) = test_data_dir() else {
        eprintln!("skipped: GLASSBOX_DATA is not set");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: Some(data), out: out.path().to_path_buf(), seeds: vec![0, 1, 2], progress: false };
    let outcome = glassbox_weightspace::experiments::digits_inr::run(&opts).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    eprintln!("{}: {:.1} s", outcome.name, outcome.wall_time_s);
    assert_eq!(outcome.checks.len(), 5);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}
