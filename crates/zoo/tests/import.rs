//! `zoo import`: standalone checkpoints and a labels CSV give the same zoo as the built-in path,
//! and broken inputs are refused with errors that name the file and the problem.

use glassbox_core::io::{write_f32, HostTensor};
use glassbox_zoo::build::{build, random_split, ShardJob};
use glassbox_zoo::import::{import, Family, ImportOptions};
use glassbox_zoo::inr::FitOptions;
use glassbox_zoo::inr_zoo::InrZoo;
use glassbox_zoo::cnn::Cnn;
use glassbox_zoo::mlp::Mlp;
use glassbox_zoo::store;
use std::collections::HashMap;
use std::path::Path;

fn save(path: &Path, tensors: &[(String, Vec<usize>)], flat: &[f32], meta: &[(&str, &str)]) {
    let mut offset = 0;
    let host: Vec<HostTensor> = tensors
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            offset += n;
            HostTensor {
                name: name.clone(),
                shape: shape.clone(),
                data: flat[offset - n..offset].to_vec(),
            }
        })
        .collect();
    write_f32(
        path,
        &host,
        meta.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    )
    .unwrap();
}

fn opts() -> ImportOptions {
    ImportOptions {
        family: Family::Auto,
        target: None,
        seed: 3,
    }
}

#[test]
fn imported_inr_checkpoints_equal_the_built_zoo() {
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<Vec<f32>> = (0..5)
        .map(|i| (0..16).map(|k| ((k * (i + 2)) % 5) as f32 / 4.0).collect())
        .collect();
    let recipe = InrZoo {
        preset: "test".into(),
        labels: (0..5)
            .map(|i| serde_json::json!({ "class": i % 2 }))
            .collect(),
        splits: random_split(5, 0.2, 0.2, 1),
        images,
        side: 4,
        target: "class".into(),
        fit: FitOptions { steps: 5, lr: 1e-3 },
        shard_size: 2,
        seed: 1,
    };
    build(&dir.path().join("built"), &recipe, ShardJob::ALL, |_, _| {}).unwrap();
    let built = store::load(&dir.path().join("built")).unwrap();
    let ckpts = dir.path().join("ckpts");
    std::fs::create_dir_all(&ckpts).unwrap();
    let mut csv = String::from("model,class,split\n");
    for (m, p) in built.params.iter().enumerate() {
        save(
            &ckpts.join(format!("inr-{m}.safetensors")),
            &built.spec.tensors,
            p,
            &[],
        );
        let split = if built.spec.splits.train.contains(&m) {
            "train"
        } else if built.spec.splits.val.contains(&m) {
            "val"
        } else {
            "test"
        };
        csv.push_str(&format!("inr-{m},{},{split}\n", m % 2));
    }
    std::fs::write(dir.path().join("labels.csv"), &csv).unwrap();
    let out = dir.path().join("imported");
    let r = import(&ckpts, Some(&dir.path().join("labels.csv")), &out, &opts()).unwrap();
    assert_eq!(
        (r.models, r.family.as_str(), r.target.as_str()),
        (5, "inr", "class")
    );
    let zoo = store::load(&out).unwrap();
    assert_eq!(zoo.params, built.params);
    assert_eq!(zoo.spec.splits, built.spec.splits);
    assert_eq!(zoo.targets().unwrap(), built.targets().unwrap());
    assert_eq!(zoo.labels[4]["name"], "inr-4");

    // `zoo export` writes the models with their labels, split and default target as metadata;
    // importing that folder without a CSV or --target gives the same zoo back, target included.
    let exported = dir.path().join("exported");
    glassbox_zoo::export::export(&built, &exported).unwrap();
    let r = import(&exported, None, &dir.path().join("back"), &opts()).unwrap();
    assert_eq!((r.models, r.family.as_str(), r.target.as_str()), (5, "inr", "class"));
    let back = store::load(&dir.path().join("back")).unwrap();
    assert_eq!(back.params, built.params);
    assert_eq!(back.spec.splits, built.spec.splits);
    assert_eq!(back.targets().unwrap(), built.targets().unwrap());
    assert!(back.labels.iter().all(|l| l.get(glassbox_zoo::export::TARGET_KEY).is_none()), "the recorded target is not a label");

    // A checkpoint without a row, a row without a checkpoint, and a file of another architecture.
    std::fs::write(
        dir.path().join("short.csv"),
        csv.lines().take(5).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let err = import(
        &ckpts,
        Some(&dir.path().join("short.csv")),
        &dir.path().join("x"),
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("short.csv") && err.contains("no row for model 'inr-4'"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("extra.csv"),
        format!("{csv}ghost,1,train\n"),
    )
    .unwrap();
    let err = import(
        &ckpts,
        Some(&dir.path().join("extra.csv")),
        &dir.path().join("x"),
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("'ghost'") && err.contains("no ghost.safetensors"),
        "{err}"
    );
    let mut odd = built.spec.tensors.clone();
    odd[2].1 = vec![32, 16];
    save(
        &ckpts.join("inr-4.safetensors"),
        &odd,
        &vec![0.0; 1185 - 512],
        &[],
    );
    let err = import(
        &ckpts,
        Some(&dir.path().join("labels.csv")),
        &dir.path().join("x"),
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("inr-4.safetensors")
            && err.contains("different architecture")
            && err.contains("layers.1.weight"),
        "{err}"
    );
    assert!(
        !dir.path().join("x").exists(),
        "nothing is written when an input is bad"
    );
}

#[test]
fn mlp_checkpoints_take_their_activation_from_the_csv_metadata_or_model_json() {
    let dir = tempfile::tempdir().unwrap();
    let net = Mlp {
        dims: vec![4, 3, 2],
    };
    let flat: Vec<f32> = (0..net.n_params()).map(|i| i as f32 * 0.01).collect();
    let ckpts = dir.path().join("ckpts");
    std::fs::create_dir_all(ckpts.join("c")).unwrap();
    save(&ckpts.join("a.safetensors"), &net.tensors(), &flat, &[]);
    save(
        &ckpts.join("b.safetensors"),
        &net.tensors(),
        &flat,
        &[("activation", "tanh")],
    );
    save(
        &ckpts.join("c/model.safetensors"),
        &net.tensors(),
        &flat,
        &[],
    );
    std::fs::write(ckpts.join("c/model.json"), r#"{"architecture": {"kind": "mlp", "dims": [4, 3, 2], "activation": "relu", "bias": true}}"#).unwrap();
    std::fs::write(
        dir.path().join("labels.csv"),
        "model,accuracy,activation\na,0.5,tanh\nb,0.7,\nc,0.9,\n",
    )
    .unwrap();
    import(
        &ckpts,
        Some(&dir.path().join("labels.csv")),
        &dir.path().join("zoo"),
        &ImportOptions {
            target: Some("accuracy".into()),
            ..opts()
        },
    )
    .unwrap();
    let zoo = store::load(&dir.path().join("zoo")).unwrap();
    assert_eq!(zoo.spec.family, "mlp");
    assert_eq!(
        zoo.label_strings("activation").unwrap(),
        ["tanh", "tanh", "relu"]
    );
    assert_eq!(zoo.targets().unwrap(), [0.5, 0.7, 0.9]);
    // Without any source of the activation, the error says how to give one.
    std::fs::write(
        dir.path().join("bare.csv"),
        "model,accuracy\na,0.5\nb,0.7\nc,0.9\n",
    )
    .unwrap();
    let err = import(
        &ckpts,
        Some(&dir.path().join("bare.csv")),
        &dir.path().join("y"),
        &opts(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("model 'a' has no activation"), "{err}");
}

#[test]
fn cnn_checkpoints_become_a_cnn_zoo_that_readers_can_run() {
    let dir = tempfile::tempdir().unwrap();
    let (net, ckpts) = (Cnn::mnist(), dir.path().join("ckpts"));
    std::fs::create_dir_all(&ckpts).unwrap();
    let flat = |m: usize| -> Vec<f32> { (0..net.n_params()).map(|i| ((i * 7 + m) as f32 * 0.13).sin()).collect() };
    for (m, act) in ["relu", "tanh", "relu"].iter().enumerate() {
        let acc = format!("{}", 0.3 + 0.2 * m as f32);
        save(&ckpts.join(format!("cnn{m}.safetensors")), &net.tensors(), &flat(m), &[("activation", act), ("test_accuracy", &acc)]);
    }
    let zoo = glassbox_zoo::import::read(&ckpts, None, &ImportOptions { target: Some("test_accuracy".into()), ..opts() }).unwrap();
    assert_eq!((zoo.spec.family.as_str(), &zoo.spec.tensors), ("cnn", &net.tensors()));
    assert_eq!(zoo.params, (0..3).map(flat).collect::<Vec<_>>());
    assert_eq!(zoo.label_strings("activation").unwrap(), ["relu", "tanh", "relu"]);
    // How readers run the CNNs, which the weights alone do not say.
    let g = &zoo.spec.generation;
    assert_eq!([&g["side"], &g["kernel"], &g["stride"], &g["padding"]], [28, 3, 2, 1].map(serde_json::Value::from).each_ref());
    // Asking for a CNN zoo from MLP checkpoints names the file and what it holds.
    let mlp_dir = dir.path().join("mlps");
    std::fs::create_dir_all(&mlp_dir).unwrap();
    let mlp = Mlp { dims: vec![4, 3, 2] };
    save(&mlp_dir.join("a.safetensors"), &mlp.tensors(), &vec![0.1; mlp.n_params()], &[("activation", "relu")]);
    let Err(err) = glassbox_zoo::import::read(&mlp_dir, None, &ImportOptions { family: Family::Cnn, ..opts() }) else { panic!("MLP checkpoints read as CNNs") };
    let err = err.to_string();
    assert!(err.contains("a.safetensors") && err.contains("not a zoo CNN"), "{err}");
}

#[test]
fn two_checkpoints_of_one_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let net = Mlp { dims: vec![2, 2] };
    let flat = vec![0.5f32; net.n_params()];
    std::fs::create_dir_all(dir.path().join("ckpts/a")).unwrap();
    save(&dir.path().join("ckpts/a.safetensors"), &net.tensors(), &flat, &[]);
    save(&dir.path().join("ckpts/a/model.safetensors"), &net.tensors(), &flat, &[]);
    std::fs::write(dir.path().join("labels.csv"), "model,accuracy,activation\na,0.5,relu\n").unwrap();
    let err = import(&dir.path().join("ckpts"), Some(&dir.path().join("labels.csv")), &dir.path().join("zoo"), &opts()).unwrap_err().to_string();
    assert!(err.contains("two checkpoints are named 'a'"), "{err}");
}
