//! The MNIST CNN accuracy zoo (`mnist-cnn-acc`) at a small scale: 100 CNNs trained on MNIST by
//! sampled recipes, readers for 10 epochs, one seed (about 20 seconds). It checks the pipeline
//! end to end and that its numbers mean something: the zoo spans weak and good CNNs, real-digit
//! probes rank the test CNNs well, and every probe reader's τ is finite and above chance
//! (StatNN only has to be finite: ten epochs over 60 models are a handful of steps for its
//! 1,000-wide MLP). The acceptance comparison (ProbeGen against vanilla and StatNN on 10,000
//! CNNs, three seeds) is `glassbox repro probegen-mnist-cnn --check`. Needs GLASSBOX_DATA.

use glassbox_core::experiment::{test_data_dir, ExperimentOptions};
use glassbox_weightspace::experiments::mnist_cnn::{method_means, run, Scale};
use glassbox_zoo::store;

#[test]
fn a_small_mnist_cnn_zoo_is_read_by_every_method() {
    let Some(data) = test_data_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let opts = ExperimentOptions { data_dir: Some(data), out: out.path().to_path_buf(), seeds: vec![0], progress: false };
    let outcome = run(&opts, Scale { count: 100, epochs: 10 }).unwrap();
    for c in &outcome.checks {
        eprintln!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    let zoo = store::load(&out.path().join("mnist-cnn-zoo")).unwrap();
    let accuracy = zoo.measured("test_accuracy").unwrap();
    assert_eq!(accuracy.len(), 100);
    let (lo, hi) = accuracy.iter().fold((1f32, 0f32), |(lo, hi), &a| (lo.min(a), hi.max(a)));
    assert!(lo < 0.3 && hi > 0.6, "test accuracies should span weak and good CNNs: {lo}..{hi}");

    let means = method_means(&outcome);
    let names: Vec<&str> = means.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["uniform", "vanilla", "probegen", "real", "statnn"]);
    for (name, tau) in &means {
        assert!(tau.is_finite() && (name == "statnn" || *tau > 0.2), "{name}: test τ {tau}");
    }
    let real = means[3].1;
    assert!(real > 0.6, "real-digit probes rank the test CNNs with τ {real}");
}
