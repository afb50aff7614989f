//! The glassbox binary end to end: help, bad flags, train -> eval -> acts -> inspect -> report.

use glassbox_core::io::{write_f32, HostTensor};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

fn glassbox(args: &[&str]) -> Output {
    // No data folder from the environment, and a per-user cache that does not exist.
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(args)
        .env_remove("GLASSBOX_DATA")
        .env("XDG_CACHE_HOME", "/nonexistent/glassbox-test-cache")
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_command_has_help() {
    for cmd in ["train", "eval", "acts", "inspect", "report", "tour", "bilinear", "lib", "sae", "zoo", "probe", "probex", "trees", "repro", "lm", "data"] {
        let o = glassbox(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}: {}", text(&o));
        let t = text(&o);
        assert!(t.contains("--threads") && t.contains("--seed") && t.contains("--quiet") && t.contains("--data"), "{cmd}: {t}");
    }
}

#[test]
fn zero_threads_is_an_error() {
    let o = glassbox(&["--threads", "0", "inspect", "x.safetensors"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--threads must be at least 1"), "{}", text(&o));
}

#[test]
fn missing_data_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = glassbox(&["--quiet", "train", "--model", "mlp", "--dataset", "mnist", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("/nonexistent/glassbox-test-cache/glassbox/data") && t.contains("glassbox data fetch"), "{t}");
    // A data folder without the set names the command that fetches it.
    let empty = dir.path().join("data");
    std::fs::create_dir(&empty).unwrap();
    let o = glassbox(&["--quiet", "--data", empty.to_str().unwrap(), "train", "--model", "mlp", "--dataset", "digits", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("sklearn-digits/digits.csv.gz: not found: download it with `glassbox data fetch digits`"), "{}", text(&o));
}

#[test]
fn data_fetch_names_what_it_cannot_do_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("cache");
    let o = glassbox(&["data", "fetch", "cifar10", "--to", to.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown name 'cifar10': choose from mnist, fashion-mnist, digits, minilm, smollm2, or all"), "{}", text(&o));
    // Nothing listens on port 1: a clear error naming the file, and no file in place.
    let o = glassbox(&["--quiet", "data", "fetch", "digits", "--to", to.to_str().unwrap(), "--mirror", "http://127.0.0.1:1"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("fetching digits") && t.contains("http://127.0.0.1:1/scikit_learn-1.9.1"), "{t}");
    assert!(!to.join("sklearn-digits").exists() && !to.join(".glassbox-fetch").exists(), "nothing is left behind");
    let o = glassbox(&["data", "list", "--to", to.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    for name in ["mnist", "fashion-mnist", "digits", "minilm", "smollm2"] {
        assert!(t.contains(name), "{t}");
    }
    assert!(!t.contains("present"), "{t}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn train_eval_acts_inspect_report_on_built_in_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("runs/bil");
    let o = glassbox(&[
        "--quiet", "--seed", "3", "train", "--model", "bilinear", "--hidden", "16", "--dataset", "glyphs",
        "--glyph-train", "400", "--glyph-test", "100", "--epochs", "2", "--batch-size", "64", "--out", s(&run),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("test_accuracy"), "{}", text(&o));

    let o = glassbox(&["eval", s(&run), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["samples"], 100);
    let card: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).unwrap()).unwrap();
    let acc = v["accuracy"].as_f64().unwrap();
    assert!((acc - card["metrics"]["test_accuracy"].as_f64().unwrap()).abs() < 1e-12, "eval rebuilds the same test set");

    let o = glassbox(&["acts", s(&run), "--sites", "layers.9.post", "--out", s(&dir.path().join("a.safetensors"))]);
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown activation site 'layers.9.post'") && text(&o).contains("layers.0.left"), "{}", text(&o));

    let acts = dir.path().join("a.safetensors");
    let o = glassbox(&["acts", s(&run), "--sites", "embed,logits", "--limit", "30", "--out", s(&acts)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassbox(&["inspect", s(&acts), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let shapes: Vec<String> = v["tensors"].as_array().unwrap().iter().map(|t| format!("{}{}", t["name"], t["shape"])).collect();
    assert_eq!(shapes, ["\"embed\"[30,16]", "\"logits\"[30,8]"]);

    let o = glassbox(&["inspect", s(&run)]);
    assert!(o.status.success() && text(&o).contains("layers.0.w.weight"), "{}", text(&o));

    let report = dir.path().join("report.html");
    let o = glassbox(&["report", s(&dir.path().join("runs")), "--out", s(&report)]);
    assert!(o.status.success(), "{}", text(&o));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("bil") && !html.contains("src=\"http"));
}

#[test]
fn inspect_names_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.safetensors");
    std::fs::write(&f, b"\xff\xff\xff\xff\xff\xff\xff\x00garbage").unwrap();
    let o = glassbox(&["inspect", s(&f)]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("bad.safetensors") && t.contains("header claims"), "{t}");
}

#[test]
fn bilinear_analysis_of_a_trained_glyph_model() {
    let dir = tempfile::tempdir().unwrap();
    let (model, out) = (dir.path().join("bil"), dir.path().join("weights"));
    let o = glassbox(&[
        "--quiet", "train", "--model", "bilinear", "--dataset", "glyphs", "--glyph-train", "600", "--glyph-test", "200",
        "--hidden", "32", "--epochs", "2", "--out", s(&model),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassbox(&["bilinear", s(&model), "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("weights-only analysis"), "glyphs are multi-label: {}", text(&o));
    for f in ["run.json", "tensors.safetensors", "figures/01-eigenvectors.png", "figures/02-spectra.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let o = glassbox(&["inspect", s(&out.join("tensors.safetensors"))]);
    assert!(text(&o).contains("class.0.eigenvalues") && text(&o).contains("class.7.pixel_eigenvectors"), "{}", text(&o));
    let o = glassbox(&["bilinear", s(&model), "--out", s(&out), "--direction", "1,-1"]);
    assert!(!o.status.success() && text(&o).contains("a direction needs 8 numbers"), "{}", text(&o));
    let o = glassbox(&["bilinear", s(&model), "--out", s(&out), "--direction", "1,-1,0,0,0,0,0,0", "--top-k", "6"]);
    assert!(o.status.success() && out.join("figures/05-directions.png").is_file(), "{}", text(&o));
    // A file that is not a checkpoint and has no weight map is refused by name.
    let o = glassbox(&["bilinear", s(&out.join("tensors.safetensors"))]);
    assert!(!o.status.success() && text(&o).contains("--weights-map"), "{}", text(&o));
}

#[test]
fn bilinear_evaluates_a_pytorch_layer_on_the_data_set_named() {
    // The reference code's layout (W and V stacked in one [2 d_h, d_in] Linear) for modular
    // addition with the built-in p = 113: one-hot inputs of width 2p, p outputs.
    let dir = tempfile::tempdir().unwrap();
    let (p, d_h) = (113, 8);
    let tensor = |name: &str, shape: &[usize]| HostTensor {
        name: name.into(),
        shape: shape.to_vec(),
        data: (0..shape.iter().product::<usize>()).map(|i| (i * 7919 % 1000) as f32 / 1000.0 - 0.5).collect(),
    };
    let (layer, map, out) = (dir.path().join("layer.safetensors"), dir.path().join("map.json"), dir.path().join("run"));
    write_f32(&layer, &[tensor("mlp.W.weight", &[2 * d_h, 2 * p]), tensor("head.weight", &[p, d_h])], HashMap::new()).unwrap();
    std::fs::write(&map, r#"{"wv": "mlp.W.weight", "p": "head.weight"}"#).unwrap();
    let base = ["bilinear", s(&layer), "--weights-map", s(&map), "--no-masks", "--ks", "0,1,8", "--out", s(&out)];

    let o = glassbox(&[&base[..], &["--dataset", "modadd"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let b = &run["bilinear"];
    assert!(b["accuracy"].is_f64() && b["truncation"].as_array().unwrap().len() == 3, "{b}");
    // Full rank reproduces the layer's own logits.
    assert!(b["full_rank_max_error"].as_f64().unwrap() < 1e-9, "{b}");
    // The first 2,000 test pairs (the default) are scored, and the metrics' names say so.
    let metrics = &run["metrics"];
    let total = metrics["test_split_size"].as_u64().unwrap();
    assert!(total > 2000 && metrics["test_samples_evaluated"] == 2000, "{metrics}");
    assert!(metrics["first2000_test_accuracy"].is_f64() && metrics["first2000_test_truncated_accuracy_k8"].is_f64(), "{metrics}");
    assert!(metrics.get("test_accuracy").is_none() && metrics.get("truncated_accuracy_k8").is_none(), "{metrics}");
    assert!(text(&o).contains(&format!("accuracy on the first 2000 of {total} test samples")), "{}", text(&o));
    let o = glassbox(&[&base[..], &["--dataset", "modadd", "--samples", "0"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert!(run["metrics"]["test_accuracy"].is_f64() && run["metrics"]["truncated_accuracy_k8"].is_f64(), "{}", run["metrics"]);
    assert_eq!(run["metrics"]["test_samples_evaluated"].as_u64(), Some(total));

    // Without a data set the analysis is weights-only and says how to add one.
    let o = glassbox(&base);
    assert!(o.status.success() && text(&o).contains("--dataset NAME"), "{}", text(&o));
    // A data set the layer does not fit is refused, naming the file.
    let o = glassbox(&[&base[..], &["--dataset", "glyphs"]].concat());
    assert!(!o.status.success() && text(&o).contains("layer.safetensors: the model has 113 outputs"), "{}", text(&o));
    let o = glassbox(&[&base[..], &["--dataset", "modadd", "--no-data"]].concat());
    assert!(!o.status.success() && text(&o).contains("cannot be used with"), "{}", text(&o));
}

#[test]
fn repro_check_reports_each_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e");
    let o = glassbox(&["--quiet", "repro", "bilinear-e", "--seeds", "0", "--out", s(&out), "--check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("PASS E And") && text(&o).contains("PASS E Xor"), "{}", text(&o));
    assert!(out.join("run.json").is_file());
}

#[test]
fn resume_from_the_command_line_is_bit_exact_and_keeps_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (broken, whole) = (dir.path().join("broken"), dir.path().join("whole"));
    let args = |out: &Path| -> Vec<String> {
        ["--quiet", "train", "--model", "mlp", "--dataset", "glyphs", "--glyph-train", "400", "--glyph-test", "100", "--hidden", "16",
         "--epochs", "3", "--input-noise", "0.1", "--out", s(out)]
            .iter().map(|a| a.to_string()).collect()
    };
    let run = |threads: &str, extra: &[&str], out: &Path| {
        let mut a = vec!["--threads".to_string(), threads.to_string()];
        a.extend(args(out));
        a.extend(extra.iter().map(|x| x.to_string()));
        let o = glassbox(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", text(&o));
    };
    run("2", &["--stop-after", "1"], &broken);
    // Resumed on one thread: the run keeps the 2 shards it started with.
    run("1", &["--resume"], &broken);
    run("2", &[], &whole);
    let read = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(read(&broken), read(&whole), "resumed weights differ from an unbroken run");
}

#[test]
fn lib_on_a_modular_addition_mlp_and_its_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    let train = |extra: &[&str], out: &Path| {
        let mut args = vec!["--quiet", "train", "--dataset", "modadd", "--p", "13", "--train-fraction", "0.6", "--batch-size", "512", "--lr", "1e-2", "--out", s(out)];
        args.extend_from_slice(extra);
        let o = glassbox(&args);
        assert!(o.status.success(), "{}", text(&o));
    };
    train(&["--model", "mlp", "--embed", "8", "--hidden", "32", "--epochs", "40"], &model);
    let out = dir.path().join("lib");
    let o = glassbox(&["lib", s(&model), "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("features needed"), "{}", text(&o));
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert!(run["metrics"]["lib.features_needed.embed"].is_u64() || run["metrics"]["lib.features_needed.embed"].is_null());
    assert!(out.join("figures/graph-lib.svg").is_file() && out.join("figures/fourier-lib-1-embed.png").is_file());
    assert!(out.join("tensors.safetensors").is_file());
    // A CNN is not MLP-like; tanh cannot carry the folded constant; a missing folder is named.
    let cnn = dir.path().join("cnn");
    let o = glassbox(&["--quiet", "train", "--model", "cnn", "--dataset", "glyphs", "--glyph-train", "64", "--glyph-test", "32", "--epochs", "1", "--hidden", "8", "--channels", "2", "--out", s(&cnn)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassbox(&["lib", s(&cnn)]);
    assert!(!o.status.success() && text(&o).contains("LIB needs an MLP-like model"), "{}", text(&o));
    let tanh = dir.path().join("tanh");
    train(&["--model", "mlp", "--hidden", "8", "--activation", "tanh", "--epochs", "1"], &tanh);
    let o = glassbox(&["lib", s(&tanh)]);
    assert!(!o.status.success() && text(&o).contains("relu or gelu"), "{}", text(&o));
    let o = glassbox(&["lib", s(&dir.path().join("nothing"))]);
    assert!(!o.status.success() && text(&o).contains("nothing"), "{}", text(&o));
}

#[test]
fn sae_train_on_activation_files_and_its_bad_inputs() {
    use glassbox_core::io::{write_f32, HostTensor};
    let dir = tempfile::tempdir().unwrap();
    let acts = |name: &str, rows: usize, cols: usize| {
        let path = dir.path().join(name);
        let data = (0..rows * cols).map(|i| ((i * 7919 % 101) as f32 / 50.0 - 1.0).max(0.0)).collect();
        write_f32(&path, &[HostTensor { name: "layers.0.post".into(), shape: vec![rows, cols], data }], Default::default()).unwrap();
        path
    };
    let (a, b, short) = (acts("a.safetensors", 300, 12), acts("b.safetensors", 300, 8), acts("c.safetensors", 200, 8));
    let out = dir.path().join("usae");
    let o = glassbox(&["--quiet", "sae", "train", s(&a), s(&b), "--site", "layers.0.post", "--m", "32", "--k", "4", "--steps", "60", "--batch", "64", "--out", s(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("R² (per-dim"), "{}", text(&o));
    for f in ["cfg.json", "usae.safetensors", "run.json", "figures/firing-entropy.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let one = dir.path().join("sae");
    let o = glassbox(&["--quiet", "sae", "train", s(&a), "--site", "layers.0.post", "--m", "32", "--k", "4", "--steps", "30", "--out", s(&one)]);
    assert!(o.status.success() && one.join("sae.safetensors").is_file() && one.join("cfg.json").is_file(), "{}", text(&o));
    let o = glassbox(&["sae", "train", s(&a), "--site", "logits", "--out", s(&one)]);
    assert!(!o.status.success() && text(&o).contains("no activation site 'logits'") && text(&o).contains("layers.0.post"), "{}", text(&o));
    let o = glassbox(&["sae", "train", s(&a), s(&short), "--site", "layers.0.post", "--out", s(&out)]);
    assert!(!o.status.success() && text(&o).contains("the same inputs"), "{}", text(&o));
}

#[test]
fn sae_cards_for_two_glyph_models_and_its_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let glyphs = ["--dataset", "glyphs", "--glyph-train", "600", "--glyph-test", "200", "--epochs", "2"];
    let (mlp, bil) = (dir.path().join("mlp"), dir.path().join("bil"));
    for (model, path, hidden) in [("mlp", &mlp, "24,16"), ("bilinear", &bil, "16")] {
        let mut argv = vec!["--quiet", "train", "--model", model, "--hidden", hidden, "--out", s(path)];
        argv.extend(glyphs);
        let o = glassbox(&argv);
        assert!(o.status.success(), "{}", text(&o));
    }
    let (a, b) = (dir.path().join("mlp.safetensors"), dir.path().join("bil.safetensors"));
    for (model, site, file) in [(&mlp, "layers.1.post", &a), (&bil, "layers.0.post", &b)] {
        let o = glassbox(&["--quiet", "acts", s(model), "--sites", site, "--out", s(file)]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let usae = dir.path().join("usae");
    let o = glassbox(&["--quiet", "sae", "train", s(&a), s(&b), "--site", "layers.1.post,layers.0.post", "--m", "32", "--k", "4", "--steps", "80", "--out", s(&usae)]);
    assert!(o.status.success(), "{}", text(&o));
    let models = format!("{},{}", s(&mlp), s(&bil));
    let o = glassbox(&["--quiet", "sae", "cards", s(&usae), "--model", &models, "--site", "layers.1.post,layers.0.post", "--cards", "2", "--steps", "5"]);
    assert!(o.status.success(), "{}", text(&o));
    let cards: Vec<_> = std::fs::read_dir(usae.join("figures")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("concept-")).collect();
    assert_eq!(cards.len(), 2, "two concept cards");
    let run = std::fs::read_to_string(usae.join("run.json")).unwrap();
    assert!(run.contains("concept_cards") && run.contains("Concept cards"), "run.json lists the cards and says what they show");
    // One checkpoint for a two-model USAE, and a site of the wrong width, are refused.
    let o = glassbox(&["sae", "cards", s(&usae), "--model", s(&mlp), "--site", "layers.1.post"]);
    assert!(!o.status.success() && text(&o).contains("over 2 models"), "{}", text(&o));
    let o = glassbox(&["sae", "cards", s(&usae), "--model", &models, "--site", "layers.0.post"]);
    assert!(!o.status.success() && text(&o).contains("features, but the USAE's model"), "{}", text(&o));
}

#[test]
fn zoo_build_info_and_probe_train_on_the_digits_inr_zoo_and_their_bad_inputs() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else {
        eprintln!("skipped: GLASSBOX_DATA is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let zoo = dir.path().join("zoo");
    let data = data.display().to_string();
    let o = glassbox(&["--quiet", "--data", &data, "zoo", "build", "digits-inr", "--out", s(&zoo), "--shard", "1/2"]);
    assert!(o.status.success() && text(&o).contains("2 shards written"), "{}", text(&o));
    // Half the shards: readers refuse the zoo and say which shard is missing.
    let o = glassbox(&["probe", "train", s(&zoo), "--out", s(&dir.path().join("p"))]);
    assert!(!o.status.success() && text(&o).contains("models-00000.safetensors") && text(&o).contains("missing"), "{}", text(&o));
    let o = glassbox(&["--quiet", "--data", &data, "zoo", "build", "digits-inr", "--out", s(&zoo)]);
    assert!(o.status.success() && text(&o).contains("2 already there"), "{}", text(&o));
    let o = glassbox(&["zoo", "info", s(&zoo)]);
    assert!(text(&o).contains("1797 models") && text(&o).contains("train 1257, val 180, test 360"), "{}", text(&o));
    let out = dir.path().join("probegen");
    let o = glassbox(&["--quiet", "probe", "train", s(&zoo), "--method", "probegen", "--probes", "16", "--epochs", "2", "--out", s(&out)]);
    assert!(o.status.success() && out.join("run.json").is_file() && out.join("figures/probes.svg").is_file() && out.join("reader.safetensors").is_file(), "{}", text(&o));
    // The saved reader scores the zoo's test split as training reported, and predicts every model.
    let reported = text(&o).split("): ").nth(1).and_then(|t| t.split(';').next()).unwrap().to_string();
    let o = glassbox(&["probe", "eval", s(&out), s(&zoo)]);
    assert!(o.status.success() && text(&o).contains(&format!("accuracy on 360 models (test split of {}): {reported}", zoo.display())), "{reported} vs {}", text(&o));
    let csv = dir.path().join("pred.csv");
    let o = glassbox(&["probe", "predict", s(&out), s(&zoo), "--out", s(&csv)]);
    let pred = std::fs::read_to_string(&csv).unwrap_or_default();
    assert!(o.status.success() && pred.starts_with("model,name,class,probability\n0,,") && pred.lines().count() == 1798, "{}", text(&o));
    let o = glassbox(&["--quiet", "--data", &data, "--seed", "7", "zoo", "build", "digits-inr", "--out", s(&zoo)]);
    assert!(!o.status.success() && text(&o).contains("other settings"), "{}", text(&o));
    let o = glassbox(&["zoo", "build", "cifar-gs", "--out", s(&zoo)]);
    assert!(!o.status.success() && text(&o).contains("unknown zoo preset"), "{}", text(&o));

    // An accuracy zoo: the reader regresses test accuracy and is scored by Kendall's tau.
    let acc = dir.path().join("acc");
    let o = glassbox(&["--quiet", "--data", &data, "zoo", "build", "digits-mlp-acc", "--count", "100", "--out", s(&acc)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassbox(&["zoo", "info", s(&acc)]);
    assert!(text(&o).contains("100 models of family 'mlp', 1482 parameters") && text(&o).contains("test_accuracy: min"), "{}", text(&o));
    let reader = dir.path().join("acc-reader");
    let o = glassbox(&["--quiet", "--data", &data, "probe", "train", s(&acc), "--method", "real", "--probes", "8", "--epochs", "2", "--out", s(&reader)]);
    assert!(o.status.success() && text(&o).contains("test kendall_tau at the best validation epoch") && reader.join("figures/probes.png").is_file(), "{}", text(&o));
    // Integer labels read as numbers when asked (e.g. accuracy in whole percent).
    let o = glassbox(&["--quiet", "probe", "train", s(&zoo), "--task", "regression", "--probes", "8", "--epochs", "1", "--out", s(&dir.path().join("reg"))]);
    assert!(o.status.success() && text(&o).contains("test kendall_tau"), "{}", text(&o));
    // A reader of MLPs cannot read INRs.
    let o = glassbox(&["probe", "eval", s(&reader), s(&zoo)]);
    assert!(!o.status.success() && text(&o).contains("reads 'mlp' models"), "{}", text(&o));

    // A CNN accuracy zoo: 28×28 image probes, ProbeGen through transposed convolutions.
    let cnn = dir.path().join("cnn");
    let o = glassbox(&["--quiet", "--data", &data, "zoo", "build", "mnist-cnn-acc", "--count", "20", "--out", s(&cnn)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassbox(&["zoo", "info", s(&cnn)]);
    assert!(text(&o).contains("20 models of family 'cnn', 1338 parameters"), "{}", text(&o));
    for method in ["real", "probegen"] {
        let o = glassbox(&["--quiet", "--data", &data, "probe", "train", s(&cnn), "--method", method, "--probes", "4", "--epochs", "1", "--out", s(&dir.path().join(method))]);
        assert!(o.status.success() && text(&o).contains("test kendall_tau at the best validation epoch"), "{method}: {}", text(&o));
    }
    let o = glassbox(&["--quiet", "probe", "train", s(&cnn), "--method", "nonlinear", "--out", s(&dir.path().join("nl"))]);
    assert!(!o.status.success() && text(&o).contains("--method nonlinear has a fully-connected generator"), "{}", text(&o));
    let o = glassbox(&["--quiet", "--data", &data, "zoo", "build", "mnist-cnn-acc", "--count", "5", "--out", s(&dir.path().join("tiny"))]);
    assert!(!o.status.success() && text(&o).contains("--count must be at least 10"), "{}", text(&o));
    // Exported as standalone checkpoints and imported back without --labels or --target, the
    // CNNs are the same CNN zoo again: same split, same default target.
    let (ckpts, back) = (dir.path().join("cnn-ckpts"), dir.path().join("cnn-back"));
    assert!(glassbox(&["zoo", "export", s(&cnn), "--out", s(&ckpts)]).status.success());
    let o = glassbox(&["zoo", "import", s(&ckpts), "--out", s(&back)]);
    assert!(o.status.success() && text(&o).contains("imported 20 cnn models (target 'test_accuracy')"), "{}", text(&o));
    let splits = |zoo: &Path| text(&glassbox(&["zoo", "info", s(zoo)])).lines().find(|l| l.starts_with("splits:")).unwrap_or_default().to_string();
    assert!(splits(&back).ends_with("; target 'test_accuracy'") && splits(&back) == splits(&cnn), "{} vs {}", splits(&back), splits(&cnn));
    assert!(text(&glassbox(&["zoo", "info", s(&back)])).contains("20 models of family 'cnn'"));
    let o = glassbox(&["--quiet", "probe", "train", s(&back), "--probes", "4", "--epochs", "1", "--out", s(&dir.path().join("back-reader"))]);
    assert!(o.status.success() && text(&o).contains("test kendall_tau"), "{}", text(&o));
}

#[test]
fn trees_probex_train_predict_and_zeroshot_on_tree_world_zoos_and_their_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let zoo = dir.path().join("zoo");
    let o = glassbox(&["--quiet", "zoo", "build", "tree-world", "--per-tree", "24", "--hidden", "16", "--out", s(&zoo)]);
    assert!(o.status.success(), "{}", text(&o));
    let o = glassbox(&["trees", s(&zoo), "--layer", "layers.1.weight", "--out", s(&dir.path().join("trees"))]);
    assert!(o.status.success() && text(&o).contains("4 trees") && text(&o).contains("purity): 1.000") && dir.path().join("trees/figures/dendrogram.svg").is_file(), "{}", text(&o));
    let experts = dir.path().join("px");
    let o = glassbox(&["--quiet", "probex", "train", s(&zoo), "--layer", "layers.1.weight", "--ranks", "4,4,8", "--epochs", "5", "--out", s(&experts)]);
    assert!(o.status.success() && text(&o).contains("| tree |") && experts.join("experts.safetensors").is_file(), "{}", text(&o));
    for fig in ["cross-tree", "experts-vs-mixed", "dendrogram"] {
        assert!(experts.join(format!("figures/{fig}.svg")).is_file(), "{fig}");
    }
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(experts.join("run.json")).unwrap()).unwrap();
    assert!(run["metrics"]["tree 3: ProbeX test"].is_number(), "{run}");
    // Standalone checkpoints with metadata labels; predictions route every model.
    let ckpts = dir.path().join("ckpts");
    assert!(glassbox(&["zoo", "export", s(&zoo), "--out", s(&ckpts)]).status.success());
    let csv = dir.path().join("pred.csv");
    let o = glassbox(&["probex", "predict", s(&experts), s(&ckpts), "--out", s(&csv)]);
    assert!(o.status.success() && text(&o).contains("accuracy against their 'dataset_chosen_targets' labels"), "{}", text(&o));
    // The headline is the test models'; the experts' own training models are counted apart.
    let printed = text(&o);
    assert!(printed.contains(" test models (not used to train the experts or choose their checkpoints): ") && printed.contains(" of the experts' training models: ") && printed.contains("all 96 models (training, validation and test together): "), "{printed}");
    let lines = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(lines.lines().count(), 97, "a header and 96 models");
    assert!(lines.lines().nth(1).unwrap().starts_with("model_00000,0,\"['class_"), "{lines}");
    // Bad input: a layer the checkpoints lack, a bad --ranks, zero-shot on models trained on
    // several classes each, and an export into a folder that already holds checkpoints.
    let o = glassbox(&["probex", "train", s(&ckpts), "--layer", "layers.7.weight"]);
    assert!(!o.status.success() && text(&o).contains("has no layer 'layers.7.weight'; its tensors are: layers.0.weight"), "{}", text(&o));
    let o = glassbox(&["probex", "train", s(&zoo), "--layer", "2", "--ranks", "4,4"]);
    assert!(!o.status.success() && text(&o).contains("three positive numbers"), "{}", text(&o));
    let emb = dir.path().join("none.safetensors");
    let o = glassbox(&["probex", "zeroshot", s(&zoo), "--layer", "layers.1.weight", "--embeddings", s(&emb)]);
    assert!(!o.status.success() && text(&o).contains("names 10 classes"), "{}", text(&o));
    let o = glassbox(&["zoo", "export", s(&zoo), "--out", s(&ckpts)]);
    assert!(!o.status.success() && text(&o).contains("already holds .safetensors files"), "{}", text(&o));
    // The zero-shot zoo comes with its class embeddings.
    let zs = dir.path().join("zs");
    assert!(glassbox(&["--quiet", "zoo", "build", "tree-world-zeroshot", "--hidden", "16", "--out", s(&zs)]).status.success());
    let zcsv = dir.path().join("zs.csv");
    let o = glassbox(&["probex", "zeroshot", s(&zs), "--layer", "head.bias", "--epochs", "20", "--embeddings", s(&zs.join("class-embeddings.safetensors")), "--out", s(&zcsv)]);
    assert!(o.status.success() && text(&o).contains("15 seen classes") && text(&o).contains("zero-shot test top-1"), "{}", text(&o));
    // 15 seen classes × 4 val/test models + 5 held-out × 12, and a header.
    let lines = std::fs::read_to_string(&zcsv).unwrap();
    assert_eq!(lines.lines().count(), 1 + 60 + 60, "{lines}");
    assert!(lines.contains(",test-holdout,class_"), "{lines}");
}
