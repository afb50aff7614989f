//! Zoo folders: sharded builds that resume and merge, and clear errors for broken folders.

use glassbox_zoo::build::{build, random_split, ShardJob};
use glassbox_zoo::inr_zoo::InrZoo;
use glassbox_zoo::inr::FitOptions;
use glassbox_zoo::store;

fn tiny_zoo(seed: u64) -> InrZoo {
    let images: Vec<Vec<f32>> = (0..7).map(|i| (0..16).map(|k| ((k * (i + 1)) % 5) as f32 / 4.0).collect()).collect();
    InrZoo {
        preset: "test".into(),
        labels: (0..7).map(|i| serde_json::json!({ "class": i % 3 })).collect(),
        splits: random_split(7, 0.2, 0.2, seed),
        images,
        side: 4,
        target: "class".into(),
        fit: FitOptions { steps: 20, lr: 1e-3 },
        shard_size: 3,
        seed,
    }
}

#[test]
fn shards_built_by_separate_jobs_equal_one_build_and_a_rerun_resumes() {
    let (one, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let zoo = tiny_zoo(5);
    let r = build(one.path(), &zoo, ShardJob::ALL, |_, _| {}).unwrap();
    assert_eq!((r.shards_written, r.models_fitted), (3, 7));
    for index in [1, 0] {
        build(split.path(), &zoo, ShardJob { index, of: 2 }, |_, _| {}).unwrap();
    }
    let (a, b) = (store::load(one.path()).unwrap(), store::load(split.path()).unwrap());
    assert_eq!(a.params, b.params, "a model's weights depend on the zoo seed and its index only");
    assert_eq!(a.targets().unwrap(), vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.0]);
    // A killed build leaves whole shards only; running the command again fits what is missing.
    std::fs::remove_file(store::shard_path(one.path(), 1)).unwrap();
    let err = store::load(one.path()).err().expect("a missing shard is an error").to_string();
    assert!(err.contains("models-00001.safetensors") && err.contains("missing"), "{err}");
    let r = build(one.path(), &zoo, ShardJob::ALL, |_, _| {}).unwrap();
    assert_eq!((r.shards_written, r.shards_skipped), (1, 2));
    assert_eq!(store::load(one.path()).unwrap().params, a.params);
}

#[test]
fn a_folder_holding_another_zoo_is_refused_and_bad_shard_jobs_too() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &tiny_zoo(1), ShardJob::ALL, |_, _| {}).unwrap();
    let err = build(dir.path(), &tiny_zoo(2), ShardJob::ALL, |_, _| {}).err().unwrap().to_string();
    assert!(err.contains("other settings"), "{err}");
    for bad in ["2/2", "x", "1/0", "3"] {
        assert!(ShardJob::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(ShardJob::parse("1/4").unwrap().index, 1);
}

/// The fast version of `glassbox repro probegen-mnist-inr`'s zoo: the first 2 training and 1
/// test image per digit of MNIST, a few fitting steps. Needs GLASSBOX_DATA.
#[test]
fn an_mnist_inr_zoo_takes_the_first_images_of_each_class_and_splits_by_file() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else {
        eprintln!("skipped: GLASSBOX_DATA is not set");
        return;
    };
    let mnist = glassbox_core::data::load_named("mnist", Some(&data), 0).unwrap();
    let recipe = glassbox_zoo::inr_zoo::image_inr("mnist-inr", &mnist, Some((2, 1)), FitOptions { steps: 5, lr: 1e-3 }, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &recipe, ShardJob::ALL, |_, _| {}).unwrap();
    let zoo = store::load(dir.path()).unwrap();
    assert_eq!((zoo.spec.count, zoo.spec.generation["side"].as_u64()), (30, Some(28)));
    // 20 models of training images split 11:1 into train and val; the 10 test images are the test split.
    assert_eq!((zoo.spec.splits.train.len(), zoo.spec.splits.val.len()), (18, 2));
    assert_eq!(zoo.spec.splits.test, (20..30).collect::<Vec<_>>());
    let mut classes: Vec<f64> = zoo.targets().unwrap()[20..].to_vec();
    classes.sort_by(f64::total_cmp);
    assert_eq!(classes, (0..10).map(f64::from).collect::<Vec<_>>(), "one test image per digit");
    assert!(zoo.labels.iter().take(20).all(|l| l["file"] == "train") && zoo.labels[20]["file"] == "test");
    assert!(zoo.measured("fit_mse").unwrap().iter().all(|v| v.is_finite()));
}
