//! ProbeX's reproduction on the synthetic tree world: thresholds A1-A7 at full size (4 trees ×
//! 240 models, 128² layer, ProbeX r 32/32/64, 300 epochs), one seed; the same run as
//! `glassbox repro probex-tree-world --check --seeds 0` (the note reports three seeds).
//! Built-in data: needs nothing.

use glassbox_core::experiment::ExperimentOptions;
use glassbox_weightspace::experiments::tree_world::{run, Scale};

#[test]
fn tree_world_thresholds_a1_to_a7() {
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: None, out: out.path().to_path_buf(), seeds: vec![0], progress: false };
    let outcome = run(&opts, Scale::FULL).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    eprintln!("{}: {:.1} s", outcome.name, outcome.wall_time_s);
    assert_eq!(outcome.checks.len(), 8);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}
