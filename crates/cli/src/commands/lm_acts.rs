//! `glassbox acts MODEL --text FILE`: a language model's activations over a corpus, into a
//! resumable activation store.

use crate::Cli;
use anyhow::{bail, Context as _, Result};
use clap::Args;
use glassbox_lm::store::{pack, Context, Packed, PartWriter, StoreDtype, StoreSpec, StoreWriter, PARTS_DIR};
use glassbox_lm::tokenizer::read_utf8_text;
use glassbox_lm::{score, Batch, Hooks, LoadedModel};
use glassbox_zoo::build::ShardJob;
use std::path::Path;

#[derive(Args, Debug, Default)]
pub struct LmActsArgs {
    /// Language models: a UTF-8 corpus; blank lines separate documents. Each document is
    /// tokenized with the model's default special tokens; documents are joined (with the
    /// end-of-text token between them when the tokenizer adds no BOS of its own) and cut into
    /// contexts of --context tokens (the tail that does not fill a context is left out). The
    /// store folder holds index.json and shard-NNNNN.safetensors files: per hook a tensor
    /// [tokens, ...] named by the hook, and `tokens`, `doc`, `pos`, `context` (I64 [tokens]).
    #[arg(long)]
    pub text: Option<std::path::PathBuf>,
    /// Language models: hooks to store, comma separated (see `glassbox lm info MODEL`). The
    /// forward pass stops after the deepest block they name.
    #[arg(long, value_delimiter = ',')]
    pub hooks: Vec<String>,
    /// Language models: tokens per context.
    #[arg(long, default_value_t = 128)]
    pub context: usize,
    /// Language models: contexts per shard file.
    #[arg(long, default_value_t = 256)]
    pub contexts_per_shard: usize,
    /// Language models: contexts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_contexts: usize,
    /// Language models: fold the norms into the next linear maps (TransformerLens's fold_ln).
    #[arg(long)]
    pub fold_ln: bool,
    /// Language models: store values as f32 or bf16.
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    pub dtype: String,
    /// Language models, i/n: one of n jobs building the store together. This job writes the
    /// store's shards s with s % n == i into OUT/parts (running it again resumes); a last run
    /// without --shard moves them into place, computes any shard still missing and writes the
    /// index. The store is byte-identical to one written by a single run (on machines with the
    /// same CPU features).
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
}

pub fn run(cli: &Cli, model: &Path, out: &Path, a: &LmActsArgs) -> Result<()> {
    let text_path = a.text.as_deref().expect("called with --text");
    if a.hooks.is_empty() {
        bail!("--hooks is required with --text (see `glassbox lm info {}`)", model.display());
    }
    let spec_str = model.to_str().with_context(|| format!("{}: not a UTF-8 path", model.display()))?;
    let mut m = glassbox_lm::load(spec_str).with_context(|| format!("cannot open model {spec_str}"))?;
    if a.fold_ln {
        m.fold_layer_norms()?;
    }
    let config = &m.model.config;
    if a.context == 0 || a.context > config.max_positions {
        bail!("--context must be between 1 and the model's context of {} tokens (got {})", config.max_positions, a.context);
    }
    let mut hooks = Hooks::capture(config, &a.hooks)?;
    let corpus = pack_text(&m, text_path, a.context)?;
    let packed = &corpus.packed;
    // Per-token shapes, from one forward pass of a short context.
    m.model.run_hooks(&Batch::new(&[packed.contexts[0].tokens[..1].to_vec()]), &mut hooks)?;
    let shapes: Vec<(String, Vec<usize>)> = a
        .hooks
        .iter()
        .map(|h| {
            let t = &hooks.cache[h];
            let mut shape = t.shape[1..].to_vec();
            if glassbox_lm::hooks::is_attention_map(h) {
                shape[1] = a.context; // keys of a full context
            }
            (h.clone(), shape)
        })
        .collect();
    hooks.take_cache();
    let spec = StoreSpec {
        model: m.source.path().display().to_string(),
        hooks: shapes,
        dtype: if a.dtype == "bf16" { StoreDtype::Bf16 } else { StoreDtype::F32 },
        context: a.context,
        contexts_per_shard: a.contexts_per_shard,
        source: serde_json::json!({
            "text": text_path.display().to_string(),
            "bytes": corpus.bytes,
            "documents": corpus.documents,
            "tokens": corpus.tokens,
            "separator": corpus.separator,
            "fold_ln": a.fold_ln,
        }),
    };
    if let Some(job) = &a.shard {
        return write_job(cli, &m, &mut hooks, &packed.contexts, out, spec, ShardJob::parse(job)?, a);
    }
    let mut writer = StoreWriter::create_or_resume(out, spec)?;
    for f in writer.removed_files() {
        eprintln!("removed the unfinished {}", f.display());
    }
    let start = writer.contexts_done();
    if start > 0 && !cli.quiet {
        eprintln!("resuming after {start} of {} contexts", packed.contexts.len());
    }
    let bar = glassbox_core::train::progress_bar(!cli.quiet, (packed.contexts.len() * a.context) as u64, (start * a.context) as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens  {per_sec}  ETA {eta}")?);
    let clock = std::time::Instant::now();
    let total = packed.contexts.len();
    let mut next = start;
    let (mut computed, mut gathered) = (0, 0);
    while next < total {
        // Shards the jobs of a parallel build left (`--shard`) are moved in, not recomputed.
        let adopted = writer.adopt_part(total)?;
        if adopted > 0 {
            next += adopted;
            gathered += adopted;
            bar.inc((adopted * a.context) as u64);
            continue;
        }
        let group = &packed.contexts[next..batch_end(next, total, a)];
        forward_group(&m, &mut hooks, group, a, |j, rows| Ok(writer.push(next + j, &group[j], rows)?))?;
        next += group.len();
        computed += group.len();
        bar.inc((group.len() * a.context) as u64);
    }
    bar.finish_and_clear();
    let summary = writer.finish()?;
    let done_now = computed * a.context;
    if gathered > 0 {
        println!("moved in {gathered} contexts written by the jobs in {}", out.join(PARTS_DIR).display());
    }
    println!(
        "{} contexts of {} tokens ({} tokens, {} left over) in {} shards -> {} ({:.0} tokens/s this run)",
        summary.contexts,
        a.context,
        summary.total_tokens,
        packed.dropped_tokens,
        summary.shards,
        summary.dir.display(),
        done_now as f64 / clock.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The end of the forward pass that starts at context `first`: --batch-contexts contexts, never
/// across a shard boundary, so that one run and the jobs of a parallel build batch alike.
fn batch_end(first: usize, total: usize, a: &LmActsArgs) -> usize {
    let shard_end = (first / a.contexts_per_shard + 1) * a.contexts_per_shard;
    (first + a.batch_contexts.max(1)).min(shard_end).min(total)
}

/// One forward pass over `group`, then `each(j, rows)` for its contexts in order, with rows
/// `(hook, values)` borrowed from the pass (tokens × the hook's per-token size).
fn forward_group(m: &LoadedModel, hooks: &mut Hooks, group: &[Context], a: &LmActsArgs, mut each: impl FnMut(usize, &[(&str, &[f32])]) -> Result<()>) -> Result<()> {
    let seqs: Vec<Vec<u32>> = group.iter().map(|c| c.tokens.clone()).collect();
    m.model.run_hooks(&Batch::new(&seqs), hooks)?;
    let cache = hooks.take_cache();
    for j in 0..group.len() {
        let rows: Vec<(&str, &[f32])> = a
            .hooks
            .iter()
            .map(|h| {
                let t = &cache[h];
                let row = t.row_len();
                (h.as_str(), &t.data[j * a.context * row..(j + 1) * a.context * row])
            })
            .collect();
        each(j, &rows)?;
    }
    Ok(())
}

/// One job of a parallel build: the store shards s with s % n == i, into OUT/parts.
#[allow(clippy::too_many_arguments)]
fn write_job(cli: &Cli, m: &LoadedModel, hooks: &mut Hooks, contexts: &[Context], out: &Path, spec: StoreSpec, job: ShardJob, a: &LmActsArgs) -> Result<()> {
    let parts = PartWriter::open(out, spec)?;
    let per_shard = a.contexts_per_shard;
    let mine: Vec<usize> = (0..contexts.len().div_ceil(per_shard)).filter(|s| s % job.of == job.index).collect();
    let bar = glassbox_core::train::progress_bar(!cli.quiet, mine.len() as u64, 0);
    let (mut written, mut skipped) = (0, 0);
    for &s in &mine {
        if parts.has(s) {
            skipped += 1;
        } else {
            let shard = &contexts[s * per_shard..((s + 1) * per_shard).min(contexts.len())];
            let mut rows = Vec::with_capacity(shard.len());
            let mut first = s * per_shard;
            while first < s * per_shard + shard.len() {
                let group = &contexts[first..batch_end(first, contexts.len(), a)];
                forward_group(m, hooks, group, a, |_, r| {
                    rows.push(r.iter().map(|(h, v)| (h.to_string(), v.to_vec())).collect::<Vec<_>>());
                    Ok(())
                })?;
                first += group.len();
            }
            let pushed: Vec<(&Context, Vec<(&str, &[f32])>)> =
                shard.iter().zip(&rows).map(|(c, r)| (c, r.iter().map(|(h, v)| (h.as_str(), v.as_slice())).collect())).collect();
            parts.write(s, &pushed)?;
            written += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "job {}/{}: {written} shards written, {skipped} already there, into {}; run without --shard to finish the store",
        job.index,
        job.of,
        out.join(PARTS_DIR).display()
    );
    Ok(())
}

/// A corpus as the model reads it in fixed-length contexts: documents split at blank lines,
/// tokenized with the model's special tokens, joined (with the end-of-text token between them
/// when the tokenizer adds no BOS of its own) and cut into contexts of `context` tokens.
pub(crate) fn pack_text(m: &LoadedModel, path: &Path, context: usize) -> Result<Corpus> {
    let text = read_utf8_text(path)?;
    let documents = score::split_documents(&text);
    let ids = documents.iter().map(|d| m.tokenizer.encode(d)).collect::<glassbox_lm::error::Result<Vec<_>>>()?;
    let separator = if m.tokenizer.adds_bos() { None } else { m.tokenizer.eos_id() };
    let packed = pack(&ids, context, separator);
    if packed.contexts.is_empty() {
        bail!("{}: {} tokens do not fill one context of {context}", path.display(), packed.dropped_tokens);
    }
    Ok(Corpus { bytes: text.len(), documents: documents.len(), tokens: ids.iter().map(Vec::len).sum(), separator, packed })
}

pub(crate) struct Corpus {
    pub bytes: usize,
    pub documents: usize,
    pub tokens: usize,
    /// The token put between documents, if any.
    pub separator: Option<u32>,
    pub packed: Packed,
}
