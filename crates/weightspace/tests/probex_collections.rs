//! ProbeX on a collection read from a zoo folder and from the same models exported as standalone
//! checkpoints with Model-J-style metadata labels: identical layers, labels, splits and results;
//! and clear errors for a missing layer, mixed layer shapes and an unknown class.

use glassbox_weightspace::collection::Collection;
use glassbox_weightspace::fit::FitConfig;
use glassbox_weightspace::probex::Ranks;
use glassbox_weightspace::tree_study::{run_study, StudyConfig};
use glassbox_zoo::build::{build, ShardJob};
use glassbox_zoo::tree_world::{TreeWorld, TreeWorldConfig};
use std::path::Path;

fn small_world(dir: &Path) {
    let world = TreeWorld::new(TreeWorldConfig { trees: 3, per_tree: 40, hidden: 16, root_steps: 300, ..TreeWorldConfig::spec(5) });
    build(&dir.join("zoo"), &world, ShardJob::ALL, |_, _| {}).unwrap();
    let zoo = glassbox_zoo::store::load(&dir.join("zoo")).unwrap();
    glassbox_zoo::export::export(&zoo, &dir.join("ckpts")).unwrap();
}

fn study_json(models: &Collection) -> serde_json::Value {
    let fit = FitConfig { epochs: 40, val_every: 5, batch: 8, lr: 3e-3, ..FitConfig::probex(1) };
    let config = StudyConfig { ranks: Ranks { probes: 8, proj: 8, rep: 16 }, probex: fit.clone(), dense: Some(FitConfig { l2: 1e-4, ..fit.clone() }), statnn: Some(FitConfig { lr: 1e-2, l2: 1e-3, ..fit }), linear: true, mixed: true };
    let targets = models.targets("dataset_chosen_targets", None).unwrap();
    let trees = models.known_trees().unwrap();
    let statnn = models.statnn().unwrap();
    let mut v = run_study(&models.data, &targets, &trees, &models.splits, Some(&statnn), &config, |_| {}).unwrap().summary();
    // Wall times differ between runs; everything else must not.
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("seconds");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn a_zoo_and_its_exported_checkpoints_give_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    small_world(dir.path());
    let from_zoo = Collection::open(&dir.path().join("zoo"), "layers.1.weight", true, 0).unwrap();
    // By sorted-name index: head.weight, layers.0.weight, layers.1.weight, … → 2.
    let from_files = Collection::open(&dir.path().join("ckpts"), "2", true, 0).unwrap();
    assert_eq!(from_zoo.names, from_files.names);
    assert_eq!(from_zoo.splits, from_files.splits);
    assert_eq!((from_files.data.name.as_str(), from_files.data.d_h, from_files.data.d_w), ("layers.1.weight", 16, 16));
    for i in 0..from_zoo.data.len() {
        assert_eq!(from_zoo.data.dense_of(i), from_files.data.dense_of(i), "model {i}");
    }
    assert_eq!(from_zoo.known_trees(), from_files.known_trees());
    let (a, b) = (study_json(&from_zoo), study_json(&from_files));
    assert_eq!(a, b);
    // Not trivially equal: the trees are found and every tree's dense expert fits its models.
    assert_eq!(a["routing"]["accuracy"], 1.0);
    for t in a["per_tree"].as_array().unwrap() {
        assert!(t["dense"]["train"].as_f64().unwrap() > 0.7, "{t}");
    }
}

#[test]
fn bad_collections_get_errors_that_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    small_world(dir.path());
    let ckpts = dir.path().join("ckpts");
    let err = Collection::open(&ckpts, "layers.9.weight", false, 0).err().unwrap().to_string();
    assert!(err.contains("model_00000.safetensors") && err.contains("no layer 'layers.9.weight'") && err.contains("layers.1.weight, layers.1.bias"), "{err}");
    let err = Collection::open(&ckpts, "99", false, 0).err().unwrap().to_string();
    assert!(err.contains("index 99 is out of range"), "{err}");

    // One checkpoint of another width: its probed layer has another shape.
    let other = dir.path().join("other");
    let world = TreeWorld::new(TreeWorldConfig { trees: 1, per_tree: 8, hidden: 12, root_steps: 10, ..TreeWorldConfig::spec(6) });
    build(&other.join("zoo"), &world, ShardJob::ALL, |_, _| {}).unwrap();
    glassbox_zoo::export::export(&glassbox_zoo::store::load(&other.join("zoo")).unwrap(), &other.join("ckpts")).unwrap();
    let mixed = dir.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    std::fs::copy(ckpts.join("model_00000.safetensors"), mixed.join("a.safetensors")).unwrap();
    std::fs::copy(other.join("ckpts/model_00000.safetensors"), mixed.join("b.safetensors")).unwrap();
    let err = Collection::open(&mixed, "layers.1.weight", false, 0).err().unwrap().to_string();
    assert!(err.contains("b.safetensors") && err.contains("12 × 12 here but 16 × 16"), "{err}");

    // A label naming a class outside the given class list.
    let models = Collection::open(&ckpts, "layers.1.weight", false, 0).unwrap();
    let err = models.targets("dataset_chosen_targets", Some(vec!["class_00".into(), "class_01".into()])).err().unwrap().to_string();
    assert!(err.contains("model 'model_00000'") && err.contains("not one of the 2 known classes"), "{err}");
}
