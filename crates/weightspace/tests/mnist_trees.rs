//! The real-data MNIST tree zoo (4 roots × 240 MNIST fine-tunes, exported as checkpoints with
//! Model-J metadata and read back): routing, in-tree ProbeX, cross-tree chance, negative
//! transfer of mixing, StatNN below ProbeX; one seed, the same run as `glassbox repro
//! probex-mnist-trees --check --seeds 0` (about 2.5 minutes; the note reports three seeds).
//! Needs GLASSBOX_DATA.

use glassbox_core::experiment::{test_data_dir, ExperimentOptions};
use glassbox_weightspace::experiments::mnist_trees::{run, Scale};

#[test]
fn mnist_trees_routing_in_tree_cross_tree_mixing_statnn() {
    let Some(data) = test_data_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: Some(data), out: out.path().to_path_buf(), seeds: vec![0], progress: false };
    let outcome = run(&opts, Scale::FULL).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    assert_eq!(outcome.checks.len(), 6);
    assert!(outcome.passed(), "a threshold was missed (see above)");
}
