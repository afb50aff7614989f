//! ProbeGen's reproduction R2 on the digits-MLP accuracy zoo: thresholds B1-B3 over three
//! seeds, the same run as `glassbox repro probegen-digits-mlp --check --seeds 0,1,2`. Needs
//! GLASSBOX_DATA.

use glassbox_core::experiment::{test_data_dir, ExperimentOptions};

#[test]
fn r2_digits_mlp_thresholds_b1_to_b3() {
    let Some(data) = test_data_dir() else {
        eprintln!("skipped: GLASSBOX_DATA is not set");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions {
        data_dir: Some(data),
        out: out.path().to_path_buf(),
        seeds: vec![0, 1, 2],
        progress: true,
    };
    let outcome = glassbox_weightspace::experiments::digits_mlp::run(&opts).unwrap();
    for c in &outcome.checks {
        eprintln!(
            "{} {}: {}",
            if c.pass { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    eprintln!("{}: {:.1} s", outcome.name, outcome.wall_time_s);
    assert_eq!(outcome.checks.len(), 4);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}
