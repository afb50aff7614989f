//! glassbox against PyTorch/transformers on the same prompts: token ids, every hook the
//! reference file holds, sentence embeddings, last-position logits and greedy continuations.
//! The reference files come from bench/lm_reference.py (see tests/fixtures/README.md).

mod common;

use common::{bench_prompts, fixture, real_model, relative_error, Reference};
use glassbox_lm::generate::{generate, Sampling};
use glassbox_lm::hooks::check_hook;
use glassbox_lm::{load, Batch, Hooks, LoadedModel, Logits, Output};

/// Compare every hook of `reference` (tolerance by hook name) and return the forward output.
fn check_hooks(model: &LoadedModel, reference: &Reference, tolerance: impl Fn(&str) -> f64) -> Output {
    let config = &model.model.config;
    let sequences = reference.sequences("tokens", "offsets");
    let prompts = bench_prompts();
    for (prompt, want) in prompts.iter().zip(&sequences) {
        assert_eq!(&model.tokenizer.encode(prompt).unwrap(), want, "token ids of {prompt:?}");
    }
    if reference.tensors.contains_key("all_tokens") {
        for (prompt, want) in prompts.iter().zip(reference.sequences("all_tokens", "all_offsets")) {
            assert_eq!(model.tokenizer.encode(prompt).unwrap(), want, "token ids of {prompt:?}");
        }
    }
    let names: Vec<String> = reference.tensors.keys().filter(|k| check_hook(config, k).is_ok()).cloned().collect();
    assert!(names.len() >= 20, "the reference holds only {} hooks", names.len());
    let mut hooks = Hooks::capture(config, &names).unwrap();
    let out = model.model.forward(&Batch::new(&sequences), &mut hooks, Logits::Last).unwrap();
    let mut failures = Vec::new();
    let mut worst = (String::new(), 0f64);
    for name in &names {
        let got = &hooks.cache[name];
        let (shape, want) = reference.f32(name);
        assert_eq!(got.shape, shape, "{name}: shape");
        let err = relative_error(name, &got.data, want);
        if err > worst.1 {
            worst = (name.clone(), err);
        }
        if err > tolerance(name) {
            failures.push(format!("{name}: relative error {err:.3e} > {:.0e}", tolerance(name)));
        }
    }
    eprintln!("{} hooks compared; worst {} at {:.3e}", names.len(), worst.0, worst.1);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    out
}

fn check_greedy(model: &LoadedModel, reference: &Reference, greedy: &str, tokens: &str, offsets: &str) {
    let (shape, _) = match reference.tensors.get(greedy) {
        Some(common::RefTensor::I64(s, d)) => (s.clone(), d),
        _ => return,
    };
    let want = reference.i64(greedy);
    let n = shape[1];
    for (p, prompt) in reference.sequences(tokens, offsets).iter().enumerate() {
        let got = generate(&model.model, prompt, n, Sampling::GREEDY, None, &mut Hooks::new(), |_| {}).unwrap();
        let want: Vec<u32> = want[p * n..(p + 1) * n].iter().map(|&v| v as u32).collect();
        assert_eq!(got, want, "greedy continuation of prompt {p}");
    }
}

#[test]
fn tiny_gpt2_hooks_and_greedy_match_transformers() {
    let model = load(fixture("tiny-gpt2").to_str().unwrap()).unwrap();
    let reference = Reference::open(&fixture("reference/tiny-gpt2.safetensors"));
    check_hooks(&model, &reference, |_| 1e-4);
    check_greedy(&model, &reference, "greedy", "tokens", "offsets");
}

#[test]
fn minilm_hooks_and_sentence_embeddings_match_sentence_transformers() {
    let Some(dir) = real_model("all-MiniLM-L6-v2") else { return };
    let model = load(dir.to_str().unwrap()).unwrap();
    let reference = Reference::open(&fixture("reference/minilm.safetensors"));
    check_hooks(&model, &reference, |_| 1e-4);
    let sequences = reference.sequences("all_tokens", "all_offsets");
    let got = model.model.sentence_embeddings(&Batch::new(&sequences)).unwrap();
    let (_, want) = reference.f32("all_sentence_embedding");
    let d = model.model.config.d_model;
    let worst = got
        .iter()
        .flatten()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    eprintln!("sentence embeddings of {} prompts: max abs difference {worst:.3e}", got.len());
    assert_eq!(got.len() * d, want.len());
    assert!(worst <= 1e-5, "sentence embeddings differ by {worst}");
}

#[test]
fn smollm2_gguf_matches_transformers_gguf_path() {
    let Some(path) = real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else { return };
    let model = load(path.to_str().unwrap()).unwrap();
    let reference = Reference::open(&fixture("reference/smollm2.safetensors"));
    let last = format!("blocks.{}.hook_resid_post", model.model.config.n_layers - 1);
    let out = check_hooks(&model, &reference, |_| 1e-3);
    let (_, want) = reference.f32("last_logits");
    let got = out.logits.unwrap();
    let max = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    eprintln!("{last} checked above; last-position logits: max abs difference {diff:.3e} = {:.3e} x max |logit|", diff / max);
    assert!(diff <= 1e-3 * max, "logits differ by {diff} (max |logit| {max})");
    check_greedy(&model, &reference, "all_greedy", "all_tokens", "all_offsets");
}

/// Every hook of every block on all five prompts, against the full references that
/// bench/lm_reference.py --hooks all writes (too large to commit; see tests/fixtures/README.md).
#[test]
#[ignore = "needs {minilm,smollm2}-all.safetensors from bench/lm_reference.py --hooks all in $GLASSBOX_LM_REFERENCE (default ~/.cache/glassbox/reference)"]
fn full_references_match_on_every_hook() {
    let dir = std::env::var_os("GLASSBOX_LM_REFERENCE").map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::path::Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache/glassbox/reference")
    });
    for (model, file, tolerance) in [
        ("all-MiniLM-L6-v2", "minilm-all.safetensors", 1e-4),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-all.safetensors", 1e-3),
    ] {
        let Some(path) = real_model(model) else { continue };
        let loaded = load(path.to_str().unwrap()).unwrap();
        let reference = Reference::open(&dir.join(file));
        eprintln!("{model}:");
        check_hooks(&loaded, &reference, |_| tolerance);
    }
}
