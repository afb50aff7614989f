//! Forward-pass speed of glassbox-lm against PyTorch (bench/lm_forward.sh, bench/lm_forward.py):
//! forward tokens/s of all-MiniLM-L6-v2 and SmolLM2-135M-Instruct on the token ids that
//! `bench/lm_forward.py tokens` wrote (64 short prompts, packed without padding; 8 contexts of
//! 512 tokens). SmolLM2 runs as "body" (Logits::None: up to the final norm) and "logits"
//! (Logits::All); MiniLM as "body" (the encoder output). One warm-up forward, then timed forwards
//! until about TARGET_S seconds (default 5) have passed, at least one; prints the median as one
//! JSON line per (model, workload, variant).
//!
//!     lm_forward_bench run TOKENS.json THREADS
//!     lm_forward_bench breakdown TOKENS.json [THREADS [MODEL]]  # where ctx512's time goes (default 1 thread, smollm2)
//!     lm_forward_bench memory TOKENS.json THREADS  # peak RSS (VmHWM) around SmolLM2 ctx512
//!
//! The thread count is rayon's global pool, built before anything else runs.

use glassbox_lm::{Batch, Hooks, Intervention, LoadedModel, Logits};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

// The allocator the glassbox binary uses, with its settings (glassbox_lm::allocator): freed pages
// are kept, so the large per-layer buffers are not faulted in again on every forward pass.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn target_s() -> f64 {
    std::env::var("TARGET_S").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One warm-up call, then timed calls until `target` seconds have passed: (median, reps).
fn timed(target: f64, mut f: impl FnMut()) -> (f64, usize) {
    f();
    let start = Instant::now();
    let mut times = Vec::new();
    loop {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64());
        if start.elapsed().as_secs_f64() >= target || times.len() >= 200 {
            break;
        }
    }
    let n = times.len();
    (median(times), n)
}

fn sequences(doc: &Value, model: &str, workload: &str) -> Vec<Vec<u32>> {
    doc[model][workload]
        .as_array()
        .expect("token file: sequences")
        .iter()
        .map(|s| s.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect())
        .collect()
}

fn load(doc: &Value, model: &str) -> LoadedModel {
    let path = doc["models"][model].as_str().expect("token file: model path");
    glassbox_lm::load(path).unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

fn run(doc: &Value, threads: usize) {
    let target = target_s();
    for (model, variants) in [("minilm", &[("body", Logits::None)][..]), ("smollm2", &[("body", Logits::None), ("logits", Logits::All)][..])] {
        let m = load(doc, model);
        for &(variant, logits) in variants {
            for workload in ["short", "ctx512"] {
                let batch = Batch::new(&sequences(doc, model, workload));
                let (seconds, reps) = timed(target, || {
                    let mut hooks = Hooks::new();
                    black_box(m.model.forward(&batch, &mut hooks, logits).expect("forward"));
                });
                let tokens = batch.n_tokens();
                println!(
                    "{}",
                    json!({ "bench": "lm_forward", "impl": "glassbox", "model": model, "workload": workload,
                        "variant": variant, "threads": threads, "tokens": tokens, "seconds": seconds,
                        "tokens_per_s": tokens as f64 / seconds, "reps": reps })
                );
            }
        }
    }
}

/// `VmHWM` (peak) and `VmRSS` of this process, in bytes.
fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn memory(doc: &Value, threads: usize) {
    let mb = |b: usize| b as f64 / 1e6;
    let report = |stage: &str, extra: Value| {
        let (hwm, now) = rss();
        let mut line = json!({ "bench": "lm_forward_memory", "impl": "glassbox", "model": "smollm2",
            "threads": threads, "stage": stage, "vm_hwm_mb": mb(hwm), "vm_rss_mb": mb(now) });
        if let (Value::Object(l), Value::Object(e)) = (&mut line, extra) {
            l.extend(e);
        }
        println!("{line}");
        hwm
    };
    report("start", json!({}));
    let m = load(doc, "smollm2");
    let c = &m.model.config;
    let weights = m.model.n_params() * 4;
    report("loaded", json!({ "n_params": m.model.n_params(), "f32_weights_mb": mb(weights) }));
    let batch = Batch::new(&sequences(doc, "smollm2", "ctx512"));
    let t = batch.n_tokens();
    // The least a forward must hold: the residual stream, the largest single intermediate
    // (the gated MLP's [gate | up] output, t x 2 d_mlp) and the output it returns.
    let resid = t * c.d_model * 4;
    let widest = t * 2 * c.d_mlp * 4;
    let logits = t * c.vocab_size * 4;
    for (variant, want, out) in [("body", Logits::None, resid), ("logits", Logits::All, resid + logits)] {
        let o = m.model.forward(&batch, &mut Hooks::new(), want).expect("forward");
        let acts = resid + widest + out;
        let hwm = report(
            &format!("after ctx512 {variant}"),
            json!({ "variant": variant, "tokens": t, "f32_weights_mb": mb(weights), "activations_mb": mb(acts),
                "budget_mb": mb(weights * 3 / 2 + acts), "output_mb": mb(out) }),
        );
        black_box(o);
        eprintln!(
            "ctx512 {variant}: peak RSS {:.0} MB vs f32 weights {:.0} MB + activations {:.0} MB: {:.2}x of (weights + acts), budget 1.5 x weights + acts = {:.0} MB",
            mb(hwm),
            mb(weights),
            mb(acts),
            hwm as f64 / (weights + acts) as f64,
            mb(weights * 3 / 2 + acts)
        );
    }
}

/// The template of a block hook name (`blocks.3.attn.hook_q` → `attn.hook_q`), or the name.
fn template(name: &str) -> String {
    match name.strip_prefix("blocks.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, t)| t).to_string(),
        None => name.to_string(),
    }
}

fn breakdown(doc: &Value, threads: usize, model: &str) {
    let m = load(doc, model);
    let (c, w) = (&m.model.config, &m.model.weights);
    let batch = Batch::new(&sequences(doc, model, "ctx512"));
    let t = batch.n_tokens();
    let emit = |what: &str, part: &str, seconds: f64, extra: Value| {
        let mut line = json!({ "bench": "lm_forward_breakdown", "impl": "glassbox", "model": model,
            "workload": "ctx512", "variant": "body", "threads": threads, "what": what, "part": part, "seconds": seconds });
        if let (Value::Object(l), Value::Object(e)) = (&mut line, extra) {
            l.extend(e);
        }
        println!("{line}");
    };

    // 1. The plain forward (no hooks): the faster of two (a 1-thread forward takes seconds, so
    //    the breakdown keeps to few of them).
    let plain = (0..2)
        .map(|_| {
            let t0 = Instant::now();
            black_box(m.model.forward(&batch, &mut Hooks::new(), Logits::None).unwrap());
            t0.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    emit("forward", "total (no hooks)", plain, json!({}));

    // 2. The same forward with a timestamp at every hook point (an Edit intervention that only
    //    reads the clock; the attention score/pattern hooks are left out, as they would switch
    //    attention to its materialised path). Intervals between consecutive hooks, summed over
    //    blocks, say which code ran: see the table in the report.
    let stamps: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(1024)));
    let mut hooks = Hooks::new();
    for name in glassbox_lm::hooks::hook_names(c) {
        if name.contains("attn_scores") || name.contains("hook_pattern") || name == "logits" {
            continue;
        }
        let s = stamps.clone();
        hooks
            .intervene(c, &name, Intervention::Edit(Arc::new(move |n: &str, _: &mut [f32], _: &[usize]| s.lock().unwrap().push((n.to_string(), Instant::now())))))
            .unwrap();
    }
    let mut intervals: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut hooked_totals = Vec::new();
    for _ in 0..1 {
        stamps.lock().unwrap().clear();
        let t0 = Instant::now();
        black_box(m.model.forward(&batch, &mut hooks, Logits::None).unwrap());
        let end = Instant::now();
        hooked_totals.push((end - t0).as_secs_f64());
        let s = stamps.lock().unwrap();
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let mut prev = ("start".to_string(), t0);
        for (name, at) in s.iter().cloned().chain(std::iter::once(("end".to_string(), end))) {
            let key = format!("{} -> {}", template(&prev.0), template(&name));
            *sums.entry(key).or_default() += (at - prev.1).as_secs_f64();
            prev = (name, at);
        }
        for (k, v) in sums {
            intervals.entry(k).or_default().push(v);
        }
    }
    emit("forward", "total (timestamp hooks)", median(hooked_totals), json!({}));
    let mut rows: Vec<(String, f64)> = intervals.into_iter().map(|(k, v)| (k, median(v))).collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (k, v) in &rows {
        emit("interval", k, *v, json!({ "share": v / plain }));
    }

    // 3. The linear maps alone on the real weights and the same shapes (inputs of the right
    //    size; values do not change GEMM time), summed over blocks; and the norm.
    let fill = |n: usize| (0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect::<Vec<f32>>();
    let x_d = fill(t * c.d_model);
    let x_z = fill(t * c.n_heads * c.d_head);
    let x_m = fill(t * c.d_mlp);
    type Pick = dyn Fn(&glassbox_lm::weights::Block) -> &glassbox_lm::ops::Linear;
    let parts: [(&str, &Pick, &[f32]); 4] = [
        ("qkv", &|b| &b.qkv, &x_d),
        ("attn_out", &|b| &b.attn_out, &x_z),
        ("mlp_in (gate|up)", &|b| &b.mlp_in, &x_d),
        ("mlp_out", &|b| &b.mlp_out, &x_m),
    ];
    let mut gemm_total = 0.0;
    for (part, get, x) in parts {
        let once = || {
            let t0 = Instant::now();
            for b in &w.blocks {
                black_box(get(b).forward(x, t));
            }
            t0.elapsed().as_secs_f64()
        };
        let s = once();
        let lin = get(&w.blocks[0]);
        let flops = 2.0 * (t * lin.d_in * lin.d_out * w.blocks.len()) as f64;
        gemm_total += s;
        emit("linear", part, s, json!({ "shape": [t, lin.d_in, lin.d_out], "gflops": flops / s / 1e9, "share": s / plain }));
    }
    emit("linear", "all linear maps", gemm_total, json!({ "share": gemm_total / plain }));
    let layer_norm = c.norm == glassbox_lm::config::NormKind::LayerNorm;
    let norm_once = || {
        let t0 = Instant::now();
        for b in &w.blocks {
            for p in [&b.ln1, &b.ln2] {
                let (_, mut y) = glassbox_lm::ops::normalize(&x_d, c.d_model, layer_norm, c.norm_eps);
                glassbox_lm::ops::affine(&mut y, p);
                black_box(y);
            }
        }
        t0.elapsed().as_secs_f64()
    };
    norm_once();
    let s = median((0..3).map(|_| norm_once()).collect());
    // (the norms are cheap: warm-up and median of 3)
    let norm = if layer_norm { "layernorm" } else { "rmsnorm" };
    emit("norm", &format!("{norm} normalize+affine (2 per block)"), s, json!({ "share": s / plain }));
}

fn main() {
    glassbox_lm::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "lm_forward_bench run TOKENS.json THREADS | breakdown TOKENS.json [THREADS [MODEL]] | memory TOKENS.json THREADS";
    let mode = args.first().expect(usage).as_str();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(args.get(1).expect(usage)).expect("token file")).expect("token JSON");
    let threads = args.get(2).and_then(|a| a.parse().ok()).unwrap_or_else(|| if mode == "breakdown" { 1 } else { panic!("{usage}") });
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().unwrap();
    match mode {
        "run" => run(&doc, threads),
        "breakdown" => breakdown(&doc, threads, args.get(3).map_or("smollm2", String::as_str)),
        "memory" => memory(&doc, threads),
        _ => panic!("{usage}"),
    }
}
