//! `glassbox lm` and `glassbox acts --text` end to end on the tiny GPT-2 fixture: info, run
//! (checked against the transformers reference), score, generate, a resumed activation store,
//! and the bad inputs a user meets (non-UTF-8 prompts, unknown hooks, a prompt too long).

mod common;

use common::{fails, glassbox, ok, split_sign_sae, text, tiny};
use std::path::{Path, PathBuf};

fn prompts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/lm_prompts.txt")
}

fn tensors(path: &Path) -> safetensors::SafeTensors<'static> {
    let bytes: &'static [u8] = Box::leak(std::fs::read(path).unwrap().into_boxed_slice());
    safetensors::SafeTensors::deserialize(bytes).unwrap()
}

fn f32s(st: &safetensors::SafeTensors, name: &str) -> Vec<f32> {
    st.tensor(name).unwrap().data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn info_lists_sizes_and_hooks() {
    let t = ok(&["lm", "info", &tiny()]);
    assert!(t.contains("gpt2 (GPT2LMHeadModel)") && t.contains("blocks.1.attn.hook_pattern") && t.contains("ln_final.hook_scale"), "{t}");
    let o = glassbox(&["lm", "run", "--help"]);
    assert!(text(&o).contains("[total_query_tokens, heads, longest_prompt]"), "{}", text(&o));
}

#[test]
fn run_writes_the_hooks_transformers_computes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hooks.safetensors");
    let hooks = "blocks.1.hook_resid_post,blocks.0.attn.hook_pattern,logits";
    // A small batch budget splits the prompts over several forward passes.
    ok(&["--quiet", "lm", "run", &tiny(), "--prompts", prompts().to_str().unwrap(), "--hooks", hooks, "--out", out.to_str().unwrap(), "--batch-tokens", "40"]);
    let got = tensors(&out);
    let reference = tensors(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures/reference/tiny-gpt2.safetensors"));
    for name in hooks.split(',').chain(["tokens", "offsets"]) {
        let (g, r) = (got.tensor(name).unwrap(), reference.tensor(name).unwrap());
        assert_eq!(g.shape(), r.shape(), "{name}");
        if name == "tokens" || name == "offsets" {
            assert_eq!(g.data(), r.data(), "{name}");
            continue;
        }
        let (g, r) = (f32s(&got, name), f32s(&reference, name));
        let scale = r.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs()));
        let diff = g.iter().zip(&r).filter(|(_, r)| r.is_finite()).fold(0f32, |m, (g, r)| m.max((g - r).abs()));
        assert!(diff <= 1e-4 * scale, "{name}: {diff} vs scale {scale}");
    }
}

#[test]
fn score_and_generate_run_and_ablation_costs_loss() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("text.txt");
    std::fs::write(&corpus, "First citizen speaks.\nThe people listen.\n\nSecond document here.\n").unwrap();
    let json = dir.path().join("score.json");
    let t = ok(&["--quiet", "lm", "score", &tiny(), "--text", corpus.to_str().unwrap(), "--json", json.to_str().unwrap(), "--per-document"]);
    assert!(t.contains("2 documents") && t.contains("perplexity"), "{t}");
    let clean: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    ok(&["--quiet", "lm", "score", &tiny(), "--text", corpus.to_str().unwrap(), "--json", json.to_str().unwrap(), "--ablate", "blocks.0.hook_mlp_out"]);
    let ablated: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_ne!(clean["loss"], ablated["loss"]);
    let t = ok(&["--quiet", "lm", "generate", &tiny(), "--prompt", "The quick", "--max-new-tokens", "5"]);
    assert!(t.starts_with("The quick"), "{t}");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.safetensors");
    let bad = dir.path().join("prompts.txt");
    std::fs::write(&bad, b"fine line\nbroken \xff line\n").unwrap();
    let t = fails(&["lm", "run", &tiny(), "--prompts", bad.to_str().unwrap(), "--hooks", "logits", "--out", out.to_str().unwrap()]);
    assert!(t.contains("prompts.txt") && t.contains("byte offset 17"), "{t}");
    let t = fails(&["lm", "run", &tiny(), "--prompts", prompts().to_str().unwrap(), "--hooks", "blocks.9.hook_resid_post", "--out", out.to_str().unwrap()]);
    assert!(t.contains("unknown hook 'blocks.9.hook_resid_post'") && t.contains("blocks.{0..1}.hook_resid_post"), "{t}");
    let long = dir.path().join("long.txt");
    std::fs::write(&long, "word ".repeat(200)).unwrap();
    let t = fails(&["lm", "run", &tiny(), "--prompts", long.to_str().unwrap(), "--hooks", "logits", "--out", out.to_str().unwrap()]);
    assert!(t.contains("long.txt: line 1 has") && t.contains("context of 64 tokens"), "{t}");
    assert!(!out.exists(), "nothing is written on error");
}

/// A store cut short after two shards (as by a kill) is finished by running the same command
/// again, and ends identical to a store written in one go.
#[test]
fn acts_store_resumes_after_an_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "To be or not to be, that is the question.\n\n".repeat(40)).unwrap();
    let run = |out: &Path| {
        ok(&[
            "--quiet", "acts", &tiny(), "--text", corpus.to_str().unwrap(), "--hooks", "blocks.0.hook_resid_post,blocks.1.mlp.hook_post",
            "--context", "16", "--contexts-per-shard", "4", "--out", out.to_str().unwrap(),
        ])
    };
    let whole = dir.path().join("whole");
    run(&whole);
    let cut = dir.path().join("cut");
    std::fs::create_dir(&cut).unwrap();
    let mut index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(whole.join("index.json")).unwrap()).unwrap();
    let shards = index["shards"].as_array().unwrap().len();
    assert!(shards > 3, "{shards} shards");
    for s in 0..2 {
        let f = format!("shard-{s:05}.safetensors");
        std::fs::copy(whole.join(&f), cut.join(&f)).unwrap();
    }
    // The third shard was being written when the run died.
    std::fs::write(cut.join("shard-00002.safetensors.tmp"), b"partial").unwrap();
    index["shards"].as_array_mut().unwrap().truncate(2);
    index["total_tokens"] = serde_json::json!(2 * 4 * 16);
    index["complete"] = serde_json::json!(false);
    std::fs::write(cut.join("index.json"), serde_json::to_string_pretty(&index).unwrap()).unwrap();
    run(&cut);
    let mut names: Vec<_> = std::fs::read_dir(&whole).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    let mut resumed: Vec<_> = std::fs::read_dir(&cut).unwrap().map(|e| e.unwrap().file_name()).collect();
    resumed.sort();
    assert_eq!(names, resumed);
    for n in names {
        assert_eq!(std::fs::read(whole.join(&n)).unwrap(), std::fs::read(cut.join(&n)).unwrap(), "{n:?}");
    }
}

/// Three `--shard i/n` jobs (one of them run twice, one cut short) and a last run without
/// `--shard` give the store one run writes, byte for byte; the last run computes the shard a
/// job did not finish. Bad combinations are refused with a clear message.
#[test]
fn acts_store_built_by_shard_jobs_equals_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "To be or not to be, that is the question.\n\n".repeat(40)).unwrap();
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--quiet", "acts", &tiny(), "--text", corpus.to_str().unwrap(), "--hooks", "blocks.0.hook_resid_post,blocks.1.attn.hook_pattern",
            "--context", "16", "--contexts-per-shard", "4", "--batch-contexts", "3", "--out", out.to_str().unwrap()]
            .map(String::from)
            .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |out: &Path, extra: &[&str]| ok(&args(out, extra).iter().map(String::as_str).collect::<Vec<_>>());
    let whole = dir.path().join("whole");
    run(&whole, &[]);
    let jobs = dir.path().join("jobs");
    let printed = run(&jobs, &["--shard", "0/3"]);
    assert!(printed.contains("job 0/3: ") && printed.contains("shards written, 0 already there"), "{printed}");
    assert!(run(&jobs, &["--shard", "0/3"]).contains(" 0 shards written, "), "a second run of a job resumes");
    run(&jobs, &["--shard", "1/3"]);
    run(&jobs, &["--shard", "2/3"]);
    assert!(!jobs.join("index.json").exists(), "the jobs leave the index to the last run");
    // One job's shard was lost (as if its job died before the rename): the last run computes it.
    std::fs::remove_file(jobs.join("parts/shard-00004.safetensors")).unwrap();
    std::fs::write(jobs.join("parts/shard-00004.safetensors.tmp"), b"partial").unwrap();
    let printed = run(&jobs, &[]);
    assert!(printed.contains("moved in ") && printed.contains("contexts written by the jobs"), "{printed}");
    let names = |d: &Path| {
        let mut n: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&whole), names(&jobs), "parts/ is gone once the store is complete");
    assert!(names(&whole).len() > 6, "{:?}", names(&whole));
    for n in names(&whole) {
        assert_eq!(std::fs::read(whole.join(&n)).unwrap(), std::fs::read(jobs.join(&n)).unwrap(), "{n:?}");
    }
    // A job with other settings than the parts already there, and --shard without --text.
    let other = dir.path().join("other");
    run(&other, &["--shard", "0/2"]);
    let e = fails(&args(&other, &["--shard", "1/2", "--dtype", "bf16"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("parts/settings.json: the store's shards were written with a different `dtype`"), "{e}");
    let e = fails(&args(&other, &["--dtype", "bf16"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("with a different `dtype`"), "{e}");
    let e = fails(&args(&other, &["--shard", "2/2"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--shard takes i/n with 0 <= i < n, got '2/2'"), "{e}");
    let e = fails(&["acts", &tiny(), "--shard", "0/2", "--out", other.to_str().unwrap()]);
    assert!(e.contains("--shard builds a language model's activation store together with other jobs; it needs --text"), "{e}");
}

/// The hook the SAE tests train and evaluate at.
const SAE_HOOK: &str = "blocks.1.hook_resid_pre";

/// `dir/corpus.txt`: two short documents, twenty times over.
fn two_documents(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, "The cat sat on the mat and looked at the dog.\n\nA bird sang in the old tree by the river.\n\n".repeat(20)).unwrap();
    corpus
}

/// `glassbox acts` of the tiny GPT-2 at SAE_HOOK over `corpus`, contexts of 16 tokens.
fn acts_store(corpus: &Path, store: &Path, contexts_per_shard: usize, dtype: &str) {
    ok(&["--quiet", "acts", &tiny(), "--text", corpus.to_str().unwrap(), "--hooks", SAE_HOOK, "--context", "16", "--contexts-per-shard", &contexts_per_shard.to_string(), "--dtype", dtype, "--out", store.to_str().unwrap()]);
}

#[test]
fn sae_eval_reports_saelens_metrics_and_refuses_a_wrong_width() {
    let dir = tempfile::tempdir().unwrap();
    // An SAE that reconstructs the tiny model's residual stream exactly: latents relu(x), relu(−x).
    let sae = split_sign_sae("blocks.1.hook_resid_pre", 0.0, true);
    let sae_dir = dir.path().join("sae");
    sae.save(&sae_dir).unwrap();
    let prompts = prompts().display().to_string();
    let out = ok(&["sae", "eval", sae_dir.to_str().unwrap(), "--model", &tiny(), "--text", &prompts, "--context", "8", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out[..out.rfind('}').unwrap() + 1]).unwrap();
    assert_eq!(json["hook_name"], "blocks.1.hook_resid_pre");
    assert!((json["explained_variance"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{json}");
    assert!((json["predictions"]["ce_loss_score"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{json}");
    // Firing shares over more contexts than the evaluated one; the other metrics unchanged.
    let out = ok(&["sae", "eval", sae_dir.to_str().unwrap(), "--model", &tiny(), "--text", &prompts, "--context", "8", "--contexts", "1", "--density-contexts", "2", "--json"]);
    let dense: serde_json::Value = serde_json::from_str(&out[..out.rfind('}').unwrap() + 1]).unwrap();
    let tokens = dense["tokens"].as_u64().unwrap();
    assert!(tokens > 0 && dense["density_tokens"].as_u64().unwrap() > tokens, "{dense}");
    assert!((dense["explained_variance"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{dense}");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sae/tests/fixtures/saelens/topk");
    let e = fails(&["sae", "eval", fixture.to_str().unwrap(), "--model", &tiny(), "--text", &prompts, "--context", "8", "--hook", "blocks.0.hook_resid_post"]);
    assert!(e.contains("reads 16 values per token") && e.contains("has 64"), "{e}");
}

/// `sae stream` trains TopK and BatchTopK SAEs on a store, writes SAELens directories that `sae
/// eval` reads, and names the store's hooks when asked for another.
#[test]
fn sae_stream_trains_on_a_store_and_eval_reads_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, hook) = (two_documents(dir.path()), SAE_HOOK);
    let store = dir.path().join("store");
    acts_store(&corpus, &store, 8, "f32");
    for (arch, saved) in [("topk", "topk"), ("batchtopk", "jumprelu"), ("jumprelu", "jumprelu"), ("standard", "standard")] {
        let out = dir.path().join(arch);
        let said = ok(&[
            "--quiet", "sae", "stream", store.to_str().unwrap(), "--hook", hook, "--architecture", arch, "--k", "4", "--expansion", "2",
            "--l0-coefficient", "0.01", "--l1-coefficient", "0.01", "--normalize", "expected-average",
            "--batch", "32", "--tokens", "6000", "--lr", "0.01", "--out", out.to_str().unwrap(),
        ]);
        assert!(said.contains("64 -> 128") && said.contains("explained variance"), "{said}");
        let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("cfg.json")).unwrap()).unwrap();
        assert_eq!(cfg["architecture"], saved);
        assert_eq!(cfg["metadata"]["hook_name"], hook);
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
        assert_eq!(report["tokens"], 6000);
        assert!(report["explained_variance_last_100_steps"].as_f64().unwrap() > 0.3, "{report}");
        let eval = ok(&["--quiet", "sae", "eval", out.to_str().unwrap(), "--model", &tiny(), "--text", corpus.to_str().unwrap(), "--context", "16", "--json"]);
        let eval: serde_json::Value = serde_json::from_str(&eval[..eval.rfind('}').unwrap() + 1]).unwrap();
        assert!(eval["explained_variance"].as_f64().unwrap() > 0.3, "{eval}");
        assert!(eval["predictions"]["ce_loss_score"].is_number(), "{eval}");
    }
    let e = fails(&["sae", "stream", store.to_str().unwrap(), "--hook", "blocks.0.hook_resid_post", "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(e.contains("no hook blocks.0.hook_resid_post") && e.contains(hook), "{e}");
}

/// A `sae stream` killed mid-run continues from its checkpoint with --resume and ends with the
/// same SAE, byte for byte, as a run that was never interrupted; a leftover checkpoint is not
/// silently overwritten.
#[test]
fn sae_stream_killed_mid_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, hook) = (two_documents(dir.path()), SAE_HOOK);
    let store = dir.path().join("store");
    acts_store(&corpus, &store, 8, "f32");
    let args = |out: &Path| -> Vec<String> {
        ["--quiet", "sae", "stream", store.to_str().unwrap(), "--hook", hook, "--architecture", "batchtopk", "--k", "4", "--expansion", "2", "--batch", "32"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--tokens", "400000", "--checkpoint-every", "3200", "--normalize", "expected-average", "--out", out.to_str().unwrap()].map(String::from))
            .collect()
    };
    let whole = dir.path().join("whole");
    ok(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!whole.join("training-checkpoint.safetensors").exists(), "a finished run keeps no checkpoint");

    let cut = dir.path().join("cut");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_glassbox")).args(args(&cut)).spawn().unwrap();
    let checkpoint = cut.join("training-checkpoint.safetensors");
    let clock = std::time::Instant::now();
    while !checkpoint.exists() && clock.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success() && checkpoint.exists(), "the run was to be killed after its first checkpoint ({status})");
    assert!(!cut.join("sae_weights.safetensors").exists());
    let cut_args = args(&cut);
    let e = fails(&cut_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("--resume") && e.contains("training-checkpoint.safetensors"), "{e}");
    let resumed: Vec<&str> = cut_args.iter().map(String::as_str).chain(["--resume"]).collect();
    ok(&resumed);
    for f in ["sae_weights.safetensors", "cfg.json"] {
        assert!(std::fs::read(whole.join(f)).unwrap() == std::fs::read(cut.join(f)).unwrap(), "{f} differs after resuming");
    }
    // Another configuration does not continue the checkpoint of this one.
    let other = dir.path().join("other");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_glassbox")).args(args(&other)).spawn().unwrap();
    while !other.join("training-checkpoint.safetensors").exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut wrong: Vec<&str> = resumed.clone();
    let at = wrong.iter().position(|a| *a == cut.to_str().unwrap()).unwrap();
    wrong[at] = other.to_str().unwrap();
    wrong.extend(["--lr", "0.001"]);
    let e = fails(&wrong);
    assert!(e.contains("different training configuration"), "{e}");
}

/// `sae stream --model M --text F` computes the activations as it trains; the SAE it writes is
/// read by `sae eval` at the same hook.
#[test]
fn sae_stream_trains_straight_from_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = two_documents(dir.path());
    let out = dir.path().join("sae");
    let hook = SAE_HOOK;
    let said = ok(&[
        "--quiet", "sae", "stream", "--model", &tiny(), "--text", corpus.to_str().unwrap(), "--hook", hook, "--context", "16",
        "--buffer-tokens", "256", "--k", "4", "--expansion", "2", "--batch", "32", "--tokens", "3000", "--lr", "0.01", "--out", out.to_str().unwrap(),
    ]);
    assert!(said.contains("64 -> 128") && said.contains("3000 tokens"), "{said}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    assert!(report["explained_variance_last_100_steps"].as_f64().unwrap() > 0.3, "{report}");
    let eval = ok(&["--quiet", "sae", "eval", out.to_str().unwrap(), "--model", &tiny(), "--text", corpus.to_str().unwrap(), "--context", "16", "--json"]);
    assert!(eval.contains("explained_variance"), "{eval}");
    let e = fails(&["sae", "stream", "--hook", hook, "--out", dir.path().join("x").to_str().unwrap()]);
    assert!(e.contains("--text"), "{e}");
}

/// A store whose shards disagree with its index (another width, another dtype) or whose shard
/// was cut short is refused when training opens it, naming the shard and what is wrong.
#[test]
fn sae_stream_refuses_inconsistent_or_truncated_stores() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(&corpus, "The cat sat on the mat and looked at the dog.\n\n".repeat(20)).unwrap();
    let hook = SAE_HOOK;
    let make = |name: &str, dtype: &str| {
        let store = dir.path().join(name);
        acts_store(&corpus, &store, 4, dtype);
        store
    };
    let train = |store: &Path| fails(&["sae", "stream", store.to_str().unwrap(), "--hook", hook, "--keep-special-tokens", "--out", dir.path().join("sae").to_str().unwrap()]);
    let shard = "shard-00001.safetensors";

    // Another dtype: a bf16 shard in an f32 store.
    let (f32_store, bf16_store) = (make("f32", "f32"), make("bf16", "bf16"));
    std::fs::copy(bf16_store.join(shard), f32_store.join(shard)).unwrap();
    let e = train(&f32_store);
    assert!(e.contains(shard) && e.contains("BF16") && e.contains("expected F32"), "{e}");

    // Another width: the shard's hook tensor rewritten with half the columns.
    let narrow = make("narrow", "f32");
    let bytes = std::fs::read(narrow.join(shard)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let (mut shape, mut data) = (view.shape().to_vec(), view.data().to_vec());
        if name == hook {
            let row = shape[1] * 4;
            data = data.chunks(row).flat_map(|r| r[..row / 2].to_vec()).collect();
            shape[1] /= 2;
        }
        tensors.push((name, view.dtype(), shape, data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &narrow.join(shard)).unwrap();
    let e = train(&narrow);
    assert!(e.contains(shard) && e.contains(hook) && e.contains("expected F32"), "{e}");

    // A shard cut short.
    let cut = make("cut", "f32");
    let bytes = std::fs::read(cut.join(shard)).unwrap();
    std::fs::write(cut.join(shard), &bytes[..bytes.len() - 100]).unwrap();
    let e = train(&cut);
    assert!(e.contains(shard) && (e.contains("truncated") || e.contains("shorter")), "{e}");
}

/// A text of 40 short documents for the language-model training tests.
fn tiny_corpus(dir: &Path) -> std::path::PathBuf {
    let stories: Vec<String> = (0..40)
        .map(|i| format!("Story {i}. The little cat saw a red ball and the dog ran after it. They played in the garden until the sun went down, and then they slept."))
        .collect();
    let path = dir.join("stories.txt");
    std::fs::write(&path, stories.join("\n\n")).unwrap();
    path
}

#[test]
fn lm_train_writes_a_checkpoint_and_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_corpus(dir.path());
    let (broken, whole) = (dir.path().join("broken"), dir.path().join("whole"));
    for arch in ["bilinear", "gpt"] {
        let args = |out: &Path, extra: &[&str]| {
            let mut a = vec!["--quiet", "--threads", "2", "lm", "train", text.to_str().unwrap(), "--arch", arch, "--vocab", "300", "--lowercase", "--layers", "2",
                "--d-model", "32", "--heads", "2", "--d-mlp", "48", "--context", "16", "--steps", "6", "--batch-size", "4", "--warmup", "2", "--eval-every", "3",
                "--save-every", "2", "--val-fraction", "0.1", "--out", out.to_str().unwrap()];
            a.extend_from_slice(extra);
            ok(&a)
        };
        std::fs::remove_dir_all(&broken).ok();
        std::fs::remove_dir_all(&whole).ok();
        args(&broken, &["--stop-after", "3"]);
        args(&broken, &["--resume"]);
        let out = args(&whole, &[]);
        assert!(out.contains("val_loss"), "{out}");
        let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
        assert_eq!(read(&broken, "model.safetensors"), read(&whole, "model.safetensors"), "{arch}: resumed weights differ from an unbroken run");
        assert_eq!(read(&broken, "tokenizer.json"), read(&whole, "tokenizer.json"));
        let run: serde_json::Value = serde_json::from_slice(&read(&whole, "run.json")).unwrap();
        assert_eq!(run["history"].as_array().unwrap().len(), 6);
    }
}

#[test]
fn lm_train_refuses_what_it_cannot_train_on() {
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_corpus(dir.path());
    let out = dir.path().join("m");
    let base = ["--quiet", "lm", "train", text.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", "1"];
    let err = fails(&[&base[..], &["--d-model", "30", "--heads", "4"]].concat());
    assert!(err.contains("not a multiple of --heads"), "{err}");
    let err = fails(&[&base[..], &["--vocab", "100"]].concat());
    assert!(err.contains("byte-level vocabulary needs more than 256"), "{err}");
    let err = fails(&[&base[..], &["--context", "4000", "--vocab", "300"]].concat());
    assert!(err.contains("validation documents hold fewer than"), "{err}");
}

#[test]
fn a_trained_language_model_opens_in_the_model_loader_with_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_corpus(dir.path());
    for arch in ["bilinear", "gpt", "swiglu"] {
        let out = dir.path().join(arch);
        // Three layers: the bilinear attention scale 1/√6 is not a power of two.
        ok(&["--quiet", "lm", "train", text.to_str().unwrap(), "--arch", arch, "--vocab", "300", "--layers", "3", "--d-model", "32", "--heads", "2", "--d-mlp", "48",
            "--context", "16", "--steps", "4", "--batch-size", "4", "--val-fraction", "0.1", "--out", out.to_str().unwrap()]);
        assert!(out.join("config.json").is_file() && out.join("tokenizer.json").is_file());
        let prompts = dir.path().join("prompts.txt");
        std::fs::write(&prompts, "the little cat saw a red ball\nthey played in the garden\n").unwrap();
        let hooks = dir.path().join(format!("{arch}-hooks.safetensors"));
        ok(&["--quiet", "lm", "run", out.to_str().unwrap(), "--prompts", prompts.to_str().unwrap(), "--hooks", "logits", "--out", hooks.to_str().unwrap()]);
        let file = glassbox_core::io::SafetensorsFile::open(&hooks).unwrap();
        let (tokens, offsets, logits) = (file.tensor_f32("tokens").unwrap().data, file.tensor_f32("offsets").unwrap().data, file.tensor_f32("logits").unwrap().data);
        // glassbox's own checkpoint reader and transformer on the same tokens.
        let (model, _) = glassbox_core::checkpoint::load(&out, &glassbox_core::tensor::infer_device()).unwrap();
        let vocab = logits.len() / tokens.len();
        for p in 0..2 {
            let (lo, hi) = (offsets[p] as usize, offsets[p + 1] as usize);
            let x = glassbox_core::tensor::from_vec(tokens[lo..hi].to_vec(), [1, hi - lo], &glassbox_core::tensor::infer_device());
            let ours = glassbox_core::tensor::to_vec(model.forward(x));
            let theirs = &logits[lo * vocab..hi * vocab];
            let err = ours.iter().zip(theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < 1e-4, "{arch} prompt {p}: the model loader's logits differ from the trainer's by {err}");
        }
    }
}

#[test]
fn bilinear_reads_a_bilinear_transformers_mlp_through_saes() {
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_corpus(dir.path());
    let model = dir.path().join("lm");
    let m = model.to_str().unwrap();
    ok(&["--quiet", "lm", "train", text.to_str().unwrap(), "--arch", "bilinear", "--vocab", "300", "--layers", "2", "--d-model", "16", "--heads", "2", "--d-mlp", "24",
        "--context", "16", "--steps", "4", "--batch-size", "4", "--val-fraction", "0.1", "--out", m]);
    let sae = |hook: &str, out: &Path| {
        ok(&["--quiet", "sae", "stream", "--model", m, "--text", text.to_str().unwrap(), "--context", "16", "--hook", hook, "--k", "8", "--expansion", "4",
            "--tokens", "4000", "--batch", "256", "--out", out.to_str().unwrap()]);
    };
    let (sae_out, sae_in) = (dir.path().join("sae-out"), dir.path().join("sae-in"));
    sae("blocks.1.hook_mlp_out", &sae_out);
    sae("blocks.1.ln2.hook_normalized", &sae_in);
    let run = dir.path().join("run");
    let out = ok(&["bilinear", m, "--block", "1", "--sae-out", sae_out.to_str().unwrap(), "--sae-in", sae_in.to_str().unwrap(), "--text", text.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(out.contains("k = 16: mean correlation"), "{out}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["correlation_by_k"].as_array().unwrap().len(), 5);
    let pairs = &json["input_feature_interactions"][0]["top_input_pairs"];
    assert_eq!(pairs.as_array().unwrap().len(), 5, "{json}");
    // The low-rank MLP: with all 16 eigenvectors per direction it is the MLP, so it adds no loss;
    // with one it changes the loss (only a little: this model trained for four steps).
    let low = &json["low_rank_mlp"];
    assert!(low["mlp_read_error"].as_f64().unwrap() < 1e-4, "{low}");
    for basis in low["bases"].as_array().unwrap() {
        let by_k = basis["by_k"].as_array().unwrap();
        let last = by_k.last().unwrap();
        assert_eq!(last["k"], 16);
        assert!(last["loss_added"].as_f64().unwrap().abs() < 1e-5, "{basis}");
        assert!(by_k[0]["loss_added"].as_f64().unwrap().abs() > 1e-8, "{basis}");
    }
    for figure in ["01-correlation-by-k.svg", "02-correlation-k2.svg", "03-low-rank-loss.svg"] {
        assert!(run.join("figures").join(figure).is_file(), "{figure} missing");
    }
    // Without --block the command does not guess which MLP to read.
    let err = fails(&["bilinear", m, "--sae-out", sae_out.to_str().unwrap(), "--text", text.to_str().unwrap(), "--out", run.to_str().unwrap()]);
    assert!(err.contains("--block"), "{err}");
}
