//! ProbeX's zero-shot threshold A8: zero-shot on the tree of denoising autoencoders, three
//! seeds, the same run as `glassbox repro probex-zeroshot --check` (about 25 s). Built-in data:
//! needs nothing.

use glassbox_core::experiment::ExperimentOptions;

#[test]
fn zero_shot_threshold_a8() {
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: None, out: out.path().to_path_buf(), seeds: vec![0, 1, 2], progress: false };
    let outcome = glassbox_weightspace::experiments::tree_world_zeroshot::run(&opts).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    assert_eq!(outcome.checks.len(), 2);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}
