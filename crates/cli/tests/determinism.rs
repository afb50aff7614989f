//! The same seed gives the same files at --threads 1 and --threads 2, where the documentation
//! says so: `train` and `lm train` (whose results depend on --shards, not on --threads), and
//! `zoo build` (every model is fitted from the zoo seed and its index alone, so jobs on machines
//! with different core counts build parts of one zoo). Also the commands docs/robustness.md
//! lists as independent of the thread count: `acts` (a classifier's and a language model's),
//! `sae train` and `sae stream`.
//!
//! Every file of the two output folders is compared byte for byte, except what measures time
//! or names the invocation: in JSON files the keys `command`, `wall_time_s`, `seconds` and
//! `tokens_per_s` are removed before comparing.

mod common;

use common::files;

use std::path::{Path, PathBuf};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn run(args: &[String]) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(args)
        .env_remove("GLASSBOX_DATA")
        .env("XDG_CACHE_HOME", "/nonexistent/glassbox-test-cache")
        .output()
        .expect("binary runs");
    assert!(o.status.success(), "glassbox {}: {}{}", args.join(" "), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// JSON without the keys that measure time or name the invocation.
fn without_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for key in ["command", "wall_time_s", "seconds", "tokens_per_s"] {
                o.remove(key);
            }
            o.values_mut().for_each(without_times);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_times),
        _ => {}
    }
}

fn comparable(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    if !name.ends_with(".json") {
        return bytes;
    }
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    without_times(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// Runs `args(out)` at --threads 1 and 2 into `dir/t1/NAME` and `dir/t2/NAME` (one folder name:
/// run.json records it) and checks that the outputs are the same.
fn same_at_one_and_two_threads(dir: &Path, what: &str, name: &str, args: impl Fn(&Path) -> Vec<String>) {
    let outs: Vec<PathBuf> = ["1", "2"]
        .iter()
        .map(|t| {
            let out = dir.join(format!("t{t}")).join(name);
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            let mut a = vec!["--quiet".to_string(), "--threads".into(), t.to_string()];
            a.extend(args(&out));
            run(&a);
            out
        })
        .collect();
    let (a, b) = (files(&outs[0]), files(&outs[1]));
    assert!(!a.is_empty(), "{what}: no output");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: other files at 1 and 2 threads");
    for (f, path) in &a {
        let (x, y) = (comparable(f, std::fs::read(path).unwrap()), comparable(f, std::fs::read(&b[f]).unwrap()));
        assert!(x == y, "{what}: {f} differs between --threads 1 and --threads 2");
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// `train`: "The result depends on --shards and not on --threads", for every model family.
/// Batches of 128 rows are split into two blocks (blocks of fewer than 32 rows are not).
#[test]
fn train_gives_the_same_weights_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let glyphs = ["--dataset", "glyphs", "--glyph-train", "600", "--glyph-test", "100", "--input-noise", "0.1"];
    let families: [(&str, &[&str]); 4] = [
        ("mlp", &["--hidden", "64,32"]),
        ("bilinear", &["--hidden", "32"]),
        ("cnn", &["--hidden", "16", "--channels", "4,8"]),
        ("transformer", &["--dataset", "modadd", "--p", "17", "--train-fraction", "0.5", "--layers", "1", "--d-model", "16", "--heads", "2", "--d-head", "8", "--hidden", "32"]),
    ];
    for (model, extra) in families {
        let data: &[&str] = if model == "transformer" { &[] } else { &glyphs };
        same_at_one_and_two_threads(dir.path(), &format!("train --model {model}"), model, |out| {
            let mut a = strings(&["train", "--model", model, "--epochs", "3", "--batch-size", "128", "--shards", "2", "--out", &s(out)]);
            a.extend(strings(data));
            a.extend(strings(extra));
            a
        });
    }
}

/// `lm train`: "the result depends on [--shards], not on --threads".
#[test]
fn lm_train_gives_the_same_weights_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("stories.txt");
    let stories: Vec<String> = (0..40).map(|i| format!("Story {i}. The little cat saw a red ball and the dog ran after it. They played in the garden until the sun went down.")).collect();
    std::fs::write(&text, stories.join("\n\n")).unwrap();
    for arch in ["bilinear", "gpt"] {
        same_at_one_and_two_threads(dir.path(), &format!("lm train --arch {arch}"), arch, |out| {
            strings(&["lm", "train", &s(&text), "--arch", arch, "--vocab", "300", "--lowercase", "--layers", "2", "--d-model", "32", "--heads", "2", "--d-mlp", "48",
                "--context", "16", "--steps", "6", "--batch-size", "8", "--shards", "2", "--warmup", "2", "--eval-every", "3", "--save-every", "3", "--val-fraction", "0.1", "--out", &s(out)])
        });
    }
}

/// `zoo build`: models fitted in parallel, each from the zoo seed and its index alone. The INR
/// zoo on built-in data always; the trained MLP and CNN zoos when GLASSBOX_DATA is set.
#[test]
fn zoo_build_gives_the_same_zoo_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    same_at_one_and_two_threads(dir.path(), "zoo build glyph-inr", "inr", |out| strings(&["zoo", "build", "glyph-inr", "--count", "160", "--out", &s(out)]));
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    for (preset, count) in [("digits-mlp-acc", "40"), ("mnist-cnn-acc", "10")] {
        same_at_one_and_two_threads(dir.path(), &format!("zoo build {preset}"), preset, |out| {
            strings(&["--data", &s(&data), "zoo", "build", preset, "--count", count, "--out", &s(out)])
        });
    }
}

/// `acts` of a classifier and of a language model (a sharded store); `sae train` on the first
/// (a TopK SAE on one file, a Universal SAE with batch norm on two) and `sae stream` on the
/// second.
#[test]
fn acts_and_saes_are_the_same_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp");
    run(&strings(&["--quiet", "train", "--model", "mlp", "--hidden", "32", "--dataset", "glyphs", "--glyph-train", "600", "--glyph-test", "200", "--epochs", "2", "--out", &s(&model)]));
    same_at_one_and_two_threads(dir.path(), "acts (classifier)", "acts.safetensors", |out| strings(&["acts", &s(&model), "--sites", "layers.0.post,logits", "--out", &s(out)]));
    let acts = dir.path().join("t1/acts.safetensors");
    same_at_one_and_two_threads(dir.path(), "sae train", "sae", |out| {
        strings(&["sae", "train", &s(&acts), "--site", "layers.0.post", "--m", "64", "--k", "4", "--steps", "200", "--out", &s(out)])
    });
    // The same activations twice, as two models: a Universal SAE.
    let twin = dir.path().join("twin.safetensors");
    std::fs::copy(&acts, &twin).unwrap();
    same_at_one_and_two_threads(dir.path(), "sae train (universal)", "usae", |out| {
        strings(&["sae", "train", &s(&acts), &s(&twin), "--site", "layers.0.post,layers.0.post", "--m", "64", "--k", "4", "--steps", "200", "--out", &s(out)])
    });

    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "The cat sat on the mat and looked at the dog.\n\nA bird sang in the old tree by the river.\n\n".repeat(30)).unwrap();
    same_at_one_and_two_threads(dir.path(), "acts (language model)", "store", |out| {
        strings(&["acts", &common::tiny(), "--text", &s(&corpus), "--hooks", "blocks.0.hook_resid_post,blocks.1.mlp.hook_post,blocks.0.attn.hook_pattern",
            "--context", "16", "--contexts-per-shard", "8", "--out", &s(out)])
    });
    let store = dir.path().join("t1/store");
    same_at_one_and_two_threads(dir.path(), "sae stream", "stream", |out| {
        strings(&["sae", "stream", &s(&store), "--hook", "blocks.0.hook_resid_post", "--architecture", "batchtopk", "--k", "4", "--expansion", "2", "--batch", "64",
            "--tokens", "20000", "--out", &s(out)])
    });
}
