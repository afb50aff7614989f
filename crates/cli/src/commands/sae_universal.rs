//! `glassbox sae universal`: a Universal SAE across language models reading the same text,
//! paired by word, with the universality analysis, its controls and text concept cards.

use crate::Cli;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use faer::Mat;
use glassbox_lm::score::split_documents;
use glassbox_lm::tokenizer::read_utf8_text;
use glassbox_lm::LoadedModel;
use glassbox_sae::analysis::{extend_run, universality, write_run, TAU};
use glassbox_sae::concepts::most_universal;
use glassbox_sae::experiments::{off_diagonal, r2_matrix, train as train_usae, PairedBatches};
use glassbox_sae::metrics::{firing_counts, ridge_cross_predictor};
use glassbox_sae::store::save_usae;
use glassbox_sae::text_cards::{text_cards, TEXT_CARD_NOTE};
use glassbox_sae::text_pairs::{extract, pick_documents, plan_contexts, truncate_words, Context};
use glassbox_sae::usae::{ScheduleTick, Usae, UsaeConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A Universal SAE across language models that read the same text (e.g. a BERT encoder and a
/// GPT-style decoder), paired by word.
///
/// Every model reads the same contexts (documents split at blank lines, cut at word boundaries to
/// fit --context tokens in every tokenizer); for each whitespace-separated word, each model's
/// activation at the word's last token at its hook is one paired row. The first word of each
/// context is left out when a model adds no BOS (that position is an attention sink). The USAE
/// (shared latent index, one encoder and dictionary per model) is trained on --text, and every
/// reported number is measured on held-out words: --eval-text, or else every tenth document of
/// --text. Controls: a ridge regression from one model's activations to the other's (the best
/// linear cross-predictor) and a USAE trained on pairs shuffled across words (cross-model R²
/// must collapse). The folder gets cfg.json + usae.safetensors, run.json (R² matrix, firing
/// entropy, co-firing, controls, text concept cards of the most universal latents) and figures/.
#[derive(Args, Debug)]
pub struct SaeUniversalArgs {
    /// Language models (folder, GGUF file or Hugging Face id), at least two; repeated or comma
    /// separated.
    #[arg(long = "model", value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// Hook per model, in --model order (default: the middle block's residual stream,
    /// blocks.{layers/2}.hook_resid_post).
    #[arg(long = "hook", value_delimiter = ',')]
    pub hooks: Vec<String>,
    /// UTF-8 training text; blank lines separate documents.
    #[arg(long)]
    pub text: PathBuf,
    /// Held-out text for every reported number (default: every tenth document of --text).
    #[arg(long)]
    pub eval_text: Option<PathBuf>,
    /// Training words (documents drawn at random from the whole text until they hold this many).
    #[arg(long)]
    pub words: Option<usize>,
    /// Held-out words at most.
    #[arg(long, default_value_t = 30_000)]
    pub eval_words: usize,
    /// Tokens per context (at most each model's context length).
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// Latents: the size of the shared dictionary.
    #[arg(long, default_value_t = 2048)]
    pub m: usize,
    /// Active latents per word: the encoders keep the k largest (1 to --m).
    #[arg(long, default_value_t = 32)]
    pub k: usize,
    /// Training steps, each on --batch paired words.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Words per step.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Peak learning rate: linear warm-up over the first 5 % of the steps, then cosine decay.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Weight of the auxiliary loss over the top m/2 unselected latents (the reference recipe's
    /// 0.1); it is dense work, most of a step's time at large m.
    #[arg(long, default_value_t = 0.1)]
    pub aux: f32,
    /// No BatchNorm in the encoders.
    #[arg(long)]
    pub no_batch_norm: bool,
    /// Skip the shuffled-pairing control (halves the training time).
    #[arg(long)]
    pub no_control: bool,
    /// Text concept cards (most universal latents first).
    #[arg(long, default_value_t = 12)]
    pub cards: usize,
    /// Words per model on each card.
    #[arg(long, default_value_t = 8)]
    pub top: usize,
    /// Contexts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_contexts: usize,
    /// Keep the paired activations in this folder and reuse them when the same models, hooks,
    /// texts and sizes are asked for again (training settings can change).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Output folder for the USAE, run.json and figures/.
    #[arg(long, default_value = "glassbox-usae-lm")]
    pub out: PathBuf,
}

/// Paired rows of one text: the contexts and one matrix per model.
struct Pairs {
    contexts: Vec<Context>,
    acts: Vec<Mat<f32>>,
}

fn model_name(spec: &str) -> String {
    let path = Path::new(spec.trim_end_matches('/'));
    let name = path.file_name().map_or(spec.to_string(), |n| n.to_string_lossy().to_string());
    name.strip_suffix(".gguf").unwrap_or(&name).to_string()
}

pub fn universal(cli: &Cli, a: &SaeUniversalArgs) -> Result<()> {
    let start = Instant::now();
    if a.models.len() < 2 {
        bail!("a universal SAE needs at least two --model (got {})", a.models.len());
    }
    if !a.hooks.is_empty() && a.hooks.len() != a.models.len() {
        bail!("--hook takes one hook per model ({} models, {} hooks)", a.models.len(), a.hooks.len());
    }
    if a.k == 0 || a.k > a.m || a.steps == 0 || a.batch == 0 {
        bail!("--k must be in 1..=--m, and --steps and --batch at least 1");
    }
    let mut models: Vec<LoadedModel> = Vec::new();
    for spec in &a.models {
        note(cli, &format!("loading {spec}"));
        models.push(glassbox_lm::load(spec).with_context(|| format!("cannot open model {spec}"))?);
    }
    let hooks: Vec<String> = if a.hooks.is_empty() {
        models.iter().map(|m| format!("blocks.{}.hook_resid_post", m.model.config.n_layers / 2)).collect()
    } else {
        a.hooks.clone()
    };
    for ((m, h), spec) in models.iter().zip(&hooks).zip(&a.models) {
        glassbox_lm::hooks::check_hook(&m.model.config, h).with_context(|| format!("--hook for {spec}"))?;
    }
    let context = models.iter().map(|m| m.model.config.max_positions).fold(a.context, usize::min);
    let mut names: Vec<String> = a.models.iter().map(|s| model_name(s)).collect();
    // One model at several hooks: the names key the saved tensors, so they must differ.
    let dup = |names: &[String], i: usize| names.iter().filter(|n| **n == names[i]).count() > 1;
    names = (0..names.len()).map(|i| if dup(&names, i) { format!("{}-{}", names[i], i + 1) } else { names[i].clone() }).collect();
    let key = serde_json::json!({
        "models": a.models, "hooks": hooks, "text": a.text, "eval_text": a.eval_text, "words": a.words,
        "eval_words": a.eval_words, "context": context, "seed": cli.seed,
    });
    let (train, eval) = match a.cache.as_deref().map(|dir| load_cache(dir, &key)).transpose()?.flatten() {
        Some(pairs) => {
            note(cli, &format!("reusing the paired activations in {}", a.cache.as_ref().unwrap().display()));
            pairs
        }
        None => {
            let pairs = pair_texts(cli, a, &models, &hooks, context)?;
            if let Some(dir) = &a.cache {
                save_cache(dir, &key, &pairs)?;
            }
            pairs
        }
    };
    drop(models);
    note(cli, &format!("{} training words, {} held-out words", train.acts[0].nrows(), eval.acts[0].nrows()));

    let config = UsaeConfig {
        lr: a.lr,
        aux_coef: a.aux,
        warmup_ticks: a.steps / 20,
        batch_norm: !a.no_batch_norm,
        tied_init: true,
        tick: ScheduleTick::Global,
        ..UsaeConfig::new(a.m, a.k, a.steps)
    };
    let progress = glassbox_core::train::progress_bar(!cli.quiet, (a.steps * if a.no_control { 1 } else { 2 }) as u64, 0);
    let fit = |shuffle: bool| fit(&train.acts, &names, config.clone(), a.batch, shuffle, cli.seed, &progress);
    let (usae, shuffled) = if a.no_control { (fit(false)?, None) } else {
        let (u, s) = rayon::join(|| fit(false), || fit(true));
        (u?, Some(s?))
    };
    progress.finish_and_clear();
    note(cli, "evaluating on the held-out words");
    let std_of = |u: &Usae| -> Vec<Mat<f32>> { eval.acts.iter().zip(&u.models).map(|(x, s)| s.standardise(x)).collect() };
    let eval_std = std_of(&usae);
    let u = universality(&usae, &eval_std)?;
    let r2_shuffled = shuffled.as_ref().map(|s| r2_matrix(s, &std_of(s)));
    // Ridge on at most 100k training words: the closed form is then a few seconds per pair.
    let ridge_rows: Vec<usize> = subsample(train.acts[0].nrows(), 100_000, cli.seed);
    let rows_of = |x: &Mat<f32>| Mat::from_fn(ridge_rows.len(), x.ncols(), |r, c| x[(ridge_rows[r], c)]);
    let ridge_train: Vec<Mat<f32>> = train.acts.iter().map(rows_of).collect();
    let n = names.len();
    let ridge: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { ridge_cross_predictor(&ridge_train[i], &ridge_train[j], &eval.acts[i], &eval.acts[j], 1e-3) }).collect())
        .collect();
    // Latents that fire (z > τ) on held-out words under every model's own encoder.
    let counts: Vec<Vec<usize>> = (0..n).map(|i| firing_counts(&usae.encode(i, &eval_std[i]).to_dense(), TAU)).collect();
    let alive = (0..a.m).filter(|&l| counts.iter().any(|c| c[l] > 0)).count();
    let in_all = (0..a.m).filter(|&l| counts.iter().all(|c| c[l] > 0)).count();
    let cofiring = u.cofire.iter().filter(|&&c| c > 0).count();

    save_usae(&usae, &a.out)?;
    write_run(&a.out, &format!("USAE over {} (paired by word)", names.join(", ")), &super::command_line(), &u, start.elapsed().as_secs_f64())?;
    let mut metrics: serde_json::Map<String, serde_json::Value> = glassbox_core::io::read_json::<serde_json::Value>(&a.out.join("run.json"))?
        .get("metrics")
        .and_then(|m| m.as_object().cloned())
        .unwrap_or_default();
    let mut checks = Vec::new();
    for (i, j, v) in off_diagonal(&u.r2) {
        let pair = format!("{}->{}", names[i], names[j]);
        metrics.insert(format!("ridge_r2.{pair}"), ridge[i][j].into());
        metrics.insert(format!("cross_over_ridge.{pair}"), (v / ridge[i][j]).into());
        checks.push((format!("cross R² {pair} >= 0.7 × ridge"), v >= 0.7 * ridge[i][j], format!("{v:.3} vs 0.7 × {:.3} = {:.3}", ridge[i][j], 0.7 * ridge[i][j])));
        if let Some(s) = &r2_shuffled {
            metrics.insert(format!("shuffled_r2.{pair}"), s[i][j].into());
            checks.push((format!("shuffled-pairing cross R² {pair} <= 0.1"), s[i][j] <= 0.1, format!("{:.3}", s[i][j])));
        }
    }
    metrics.insert("share_alive_firing_in_every_model".into(), (in_all as f64 / alive.max(1) as f64).into());
    metrics.insert("share_alive_cofiring".into(), (cofiring as f64 / alive.max(1) as f64).into());
    metrics.insert("train_words".into(), train.acts[0].nrows().into());
    metrics.insert("heldout_words".into(), eval.acts[0].nrows().into());
    let latents = most_universal(&u, a.cards);
    let cards = text_cards(&usae, &u, &eval_std, &eval.contexts, &latents, a.top);
    extend_run(
        &a.out,
        serde_json::json!({
            "metrics": metrics,
            "seed": cli.seed,
            "wall_time_s": start.elapsed().as_secs_f64(),
            "config": { "models": a.models, "hooks": hooks, "context": context, "m": a.m, "k": a.k, "steps": a.steps, "batch": a.batch, "lr": a.lr,
                        "batch_norm": !a.no_batch_norm, "init": "tied", "schedule": "global warm-up + cosine", "loss": "L1", "aux_coef": a.aux,
                        "text": a.text, "eval_text": a.eval_text },
            "ridge_r2": ridge, "shuffled_r2": r2_shuffled,
            "checks": checks.iter().map(|(n, ok, d)| serde_json::json!({ "name": n, "passed": ok, "detail": d })).collect::<Vec<_>>(),
            "text_cards": cards,
            "notes": [
                "Rows are words: each model's activation at the last token of the same whitespace-separated word of the same context. Every number is measured on held-out words.",
                "ridge_r2: a ridge regression from one model's activations to the other's (the best linear cross-predictor, fitted on training words); shuffled_r2: a USAE trained on pairs shuffled across words, whose cross-model R² should be about 0.",
                TEXT_CARD_NOTE,
            ],
        }),
    )?;
    println!("R² on {} held-out words (per-dim; row encodes, column decodes):", eval.acts[0].nrows());
    for (i, row) in u.r2.iter().enumerate() {
        println!("  {:>28} {}", names[i], row.iter().map(|v| format!("{v:7.3}")).collect::<Vec<_>>().join(" "));
    }
    for (name, ok, detail) in &checks {
        println!("  [{}] {name}: {detail}", if *ok { "pass" } else { "FAIL" });
    }
    println!(
        "latents alive {alive} of {}; firing in every model {in_all} ({:.3}); co-firing on some word {cofiring} ({:.3}); wrote {}",
        a.m,
        in_all as f64 / alive.max(1) as f64,
        cofiring as f64 / alive.max(1) as f64,
        a.out.display()
    );
    Ok(())
}

fn note(cli: &Cli, msg: &str) {
    if !cli.quiet {
        eprintln!("{msg}");
    }
}

/// Up to `max` of `0..n`, in order (seeded).
fn subsample(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..n).collect();
    if n > max {
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x41D6E));
        rows.truncate(max);
        rows.sort_unstable();
    }
    rows
}

/// A USAE on paired rows: scalar standardisation from 5000 rows spread over the set, then random
/// batches. With `shuffle`, every model but the first sees the rows in a fixed random order,
/// which breaks the pairing (the control).
fn fit(acts: &[Mat<f32>], names: &[String], config: UsaeConfig, batch: usize, shuffle: bool, seed: u64, progress: &indicatif::ProgressBar) -> Result<Usae> {
    let shapes: Vec<(&str, usize)> = names.iter().zip(acts).map(|(n, x)| (n.as_str(), x.ncols())).collect();
    let steps = config.total_ticks;
    let mut usae = Usae::new(config, &shapes, seed)?;
    let n = acts[0].nrows();
    let sample = subsample(n, 5000, seed);
    for (s, x) in usae.models.iter_mut().zip(acts) {
        s.fit_standardisation(&Mat::from_fn(sample.len(), x.ncols(), |r, c| x[(sample[r], c)]));
    }
    let data: Vec<Mat<f32>> = acts.iter().zip(&usae.models).map(|(x, s)| s.standardise(x)).collect();
    let mut batches = PairedBatches::new(&data, batch, shuffle, ChaCha8Rng::seed_from_u64(seed ^ 0x5AE));
    train_usae(&mut usae, steps, seed, |_| {
        progress.inc(1);
        batches.draw()
    })
    .context("USAE training")?;
    Ok(usae)
}

/// Plan and extract the training and held-out pairs.
fn pair_texts(cli: &Cli, a: &SaeUniversalArgs, models: &[LoadedModel], hooks: &[String], context: usize) -> Result<(Pairs, Pairs)> {
    let tokenizers: Vec<&glassbox_lm::Tokenizer> = models.iter().map(|m| &m.tokenizer).collect();
    let docs = split_documents(&read_utf8_text(&a.text)?);
    let (train_docs, eval_docs): (Vec<String>, Vec<String>) = match &a.eval_text {
        Some(path) => (docs, split_documents(&read_utf8_text(path)?)),
        None => {
            let (mut kept, mut held) = (Vec::new(), Vec::new());
            for (d, doc) in docs.into_iter().enumerate() {
                if d % 10 == 9 { held.push(doc) } else { kept.push(doc) }
            }
            (kept, held)
        }
    };
    let plan = |docs: &[String], words: Option<usize>, what: &str| -> Result<Vec<Context>> {
        // A few more documents than the word budget: leading words of contexts are dropped.
        let picked: Vec<String> = pick_documents(docs, words.map(|w| w + w / 5), cli.seed).into_iter().map(|d| docs[d].clone()).collect();
        let mut contexts = plan_contexts(&tokenizers, &picked, context)?;
        if let Some(w) = words {
            truncate_words(&mut contexts, w);
        }
        if contexts.is_empty() {
            bail!("the {what} text gives no word that fits a context of {context} tokens in every model");
        }
        Ok(contexts)
    };
    let train_ctx = plan(&train_docs, a.words, "training")?;
    let eval_ctx = plan(&eval_docs, Some(a.eval_words), "held-out")?;
    let pairs: Vec<(&LoadedModel, &str)> = models.iter().zip(hooks).map(|(m, h)| (m, h.as_str())).collect();
    let mut out = Vec::new();
    for (what, contexts) in [("training", train_ctx), ("held-out", eval_ctx)] {
        let tokens: usize = contexts.iter().map(|c| c.tokens.iter().map(Vec::len).sum::<usize>()).sum();
        note(cli, &format!("{what} text: {} contexts, {} words; running the models over {tokens} tokens", contexts.len(), contexts.iter().map(|c| c.words.len()).sum::<usize>()));
        let bar = glassbox_core::train::progress_bar(!cli.quiet, tokens as u64, 0);
        bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens  {per_sec}  ETA {eta}")?);
        let acts = extract(&pairs, &contexts, a.batch_contexts, |t| bar.inc(t as u64))?;
        bar.finish_and_clear();
        out.push(Pairs { contexts, acts });
    }
    let eval = out.pop().expect("two sets");
    Ok((out.pop().expect("two sets"), eval))
}

fn save_cache(dir: &Path, key: &serde_json::Value, (train, eval): &(Pairs, Pairs)) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (what, p) in [("train", train), ("eval", eval)] {
        for (i, x) in p.acts.iter().enumerate() {
            let mut bytes = Vec::with_capacity(x.nrows() * x.ncols() * 4);
            for r in 0..x.nrows() {
                for c in 0..x.ncols() {
                    bytes.extend_from_slice(&x[(r, c)].to_le_bytes());
                }
            }
            let path = dir.join(format!("{what}-{i}.f32"));
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        glassbox_core::io::write_json(&dir.join(format!("{what}-contexts.json")), &p.contexts)?;
    }
    let widths: Vec<usize> = train.acts.iter().map(|x| x.ncols()).collect();
    glassbox_core::io::write_json(&dir.join("key.json"), &serde_json::json!({ "key": key, "widths": widths }))?;
    Ok(())
}

/// The cached pairs when the folder holds pairs made with the same `key`.
fn load_cache(dir: &Path, key: &serde_json::Value) -> Result<Option<(Pairs, Pairs)>> {
    let Ok(stored) = glassbox_core::io::read_json::<serde_json::Value>(&dir.join("key.json")) else { return Ok(None) };
    if stored.get("key") != Some(key) {
        return Ok(None);
    }
    let widths: Vec<usize> = serde_json::from_value(stored["widths"].clone()).with_context(|| format!("{}: bad widths", dir.join("key.json").display()))?;
    let mut sets = Vec::new();
    for what in ["train", "eval"] {
        let contexts: Vec<Context> = glassbox_core::io::read_json(&dir.join(format!("{what}-contexts.json")))?;
        let rows: usize = contexts.iter().map(|c| c.words.len()).sum();
        let mut acts = Vec::new();
        for (i, &w) in widths.iter().enumerate() {
            let path = dir.join(format!("{what}-{i}.f32"));
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if bytes.len() != rows * w * 4 {
                bail!("{}: {} bytes, expected {rows} words × {w} values × 4", path.display(), bytes.len());
            }
            let v: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            acts.push(Mat::from_fn(rows, w, |r, c| v[r * w + c]));
        }
        sets.push(Pairs { contexts, acts });
    }
    let eval = sets.pop().expect("two sets");
    Ok(Some((sets.pop().expect("two sets"), eval)))
}
