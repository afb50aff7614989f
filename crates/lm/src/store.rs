//! On-disk activation store: language-model activations for a corpus, written once by
//! `glassbox acts` and read back many times (shuffled) by SAE training.
//!
//! A store is a folder:
//!
//! * `index.json` — what was stored (model, hooks and their per-token shapes, dtype, context
//!   length, the caller's description of the corpus) and which shards are finished. It is
//!   rewritten atomically after every shard, so it always describes exactly the shard files that
//!   are complete; that is what makes an interrupted run resumable.
//! * `shard-NNNNN.safetensors` — `contexts_per_shard` contexts each (the last one may hold
//!   fewer). Per hook one tensor named exactly like the hook, shape `[tokens, ...per-token
//!   shape]`, dtype F32 or BF16; plus I64 `[tokens]` tensors `tokens`, `doc`, `pos` and
//!   `context` (the global context index), so every activation row can be traced back to its
//!   document and position.
//!
//! Shards are plain safetensors files so other tools (Python `safetensors`, TransformerLens
//! users) can read them without glassbox.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::bf16;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod parts;
pub use parts::{PartWriter, PARTS_DIR};

/// Value of `format` in `index.json`; anything else is not ours.
pub const STORE_FORMAT: &str = "glassbox-activation-store";
/// Layout version this module writes and reads.
pub const STORE_VERSION: u32 = 1;
/// The index file inside a store folder.
pub const INDEX_FILE: &str = "index.json";

/// Tensor names every shard carries besides the hooks; hooks may not use them.
const RESERVED_TENSORS: [&str; 5] = ["tokens", "doc", "pos", "context", "__metadata__"];
/// Suffix of files being written; a kill mid-write leaves only these behind.
const TMP_SUFFIX: &str = ".tmp";
/// A safetensors header larger than this is a corrupt file, not a shard (same cap as the
/// `safetensors` crate), and must not trigger a huge allocation.
const MAX_HEADER_BYTES: u64 = 100_000_000;

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------

/// One fixed-length model input cut from the packed corpus, with the provenance of each token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Token ids fed to the model.
    pub tokens: Vec<u32>,
    /// Index (into the `documents` given to [`pack`]) of the document each token belongs to.
    pub doc: Vec<u32>,
    /// Position of each token within its document's token stream (see [`pack`] for how the
    /// separator is counted).
    pub pos: Vec<u32>,
}

impl Context {
    /// Number of tokens in the context.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when the context holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    fn with_capacity(n: usize) -> Self {
        Context {
            tokens: Vec::with_capacity(n),
            doc: Vec::with_capacity(n),
            pos: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, token: u32, doc: usize, pos: usize) {
        self.tokens.push(token);
        self.doc.push(saturating_u32(doc));
        self.pos.push(saturating_u32(pos));
    }
}

/// Result of [`pack`]: the full contexts and how many trailing tokens did not fill one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packed {
    pub contexts: Vec<Context>,
    /// Tokens of the last, incomplete context, which is dropped so every stored context has
    /// exactly the same length (the model then never sees padding).
    pub dropped_tokens: usize,
}

/// Concatenates tokenized documents in order and cuts the stream into contexts of exactly
/// `context` tokens, dropping the incomplete tail (counted in [`Packed::dropped_tokens`]).
///
/// When `separator` is given it is inserted *between* consecutive documents (not before the
/// first one nor after the last). The separator is attributed to the document it precedes, at
/// position 0, so that document's own tokens are at positions 1, 2, …; the first document (and
/// every document when there is no separator) starts at position 0. Empty documents still get
/// their separator, so every document boundary stays visible in the stream. Documents can
/// straddle context boundaries; `doc`/`pos` keep the provenance exact regardless.
///
/// Deterministic: the same documents and arguments always give the same contexts, which is what
/// lets an interrupted `glassbox acts` skip the contexts already stored. `context == 0` gives no
/// contexts and counts every token as dropped. Document indices and positions beyond `u32::MAX`
/// saturate.
pub fn pack(documents: &[Vec<u32>], context: usize, separator: Option<u32>) -> Packed {
    let mut contexts = Vec::new();
    let mut current = Context::with_capacity(context);
    let mut dropped_tokens = 0;
    for (d, doc) in documents.iter().enumerate() {
        let sep = if d > 0 { separator } else { None };
        for (p, token) in sep.into_iter().chain(doc.iter().copied()).enumerate() {
            if context == 0 {
                dropped_tokens += 1;
                continue;
            }
            current.push(token, d, p);
            if current.len() == context {
                contexts.push(std::mem::replace(
                    &mut current,
                    Context::with_capacity(context),
                ));
            }
        }
    }
    dropped_tokens += current.len();
    Packed {
        contexts,
        dropped_tokens,
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Index
// ---------------------------------------------------------------------------------------------

/// Element type of the stored activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreDtype {
    /// Exact activations, 4 bytes per value.
    F32,
    /// Half the disk and I/O of f32; rounded to nearest even, which SAE training tolerates.
    Bf16,
}

impl StoreDtype {
    fn safetensors_name(self) -> &'static str {
        match self {
            StoreDtype::F32 => "F32",
            StoreDtype::Bf16 => "BF16",
        }
    }

    fn size(self) -> usize {
        match self {
            StoreDtype::F32 => 4,
            StoreDtype::Bf16 => 2,
        }
    }
}

/// A stored hook: its name (also the tensor name in every shard) and per-token shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookInfo {
    pub name: String,
    /// Shape of one token's activation, e.g. `[576]` or `[9, 64]`.
    pub shape: Vec<usize>,
}

/// A finished shard as listed in `index.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// File name inside the store folder (always `shard-NNNNN.safetensors`, NNNNN = position).
    pub file: String,
    pub contexts: usize,
    pub tokens: usize,
}

/// Contents of `index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreIndex {
    pub format: String,
    pub version: u32,
    pub model: String,
    pub hooks: Vec<HookInfo>,
    pub dtype: StoreDtype,
    pub context: usize,
    pub contexts_per_shard: usize,
    /// Free-form description of the corpus given by the writer (path, size, sha256,
    /// separator…); a resume must present the same one, so it must identify the corpus.
    pub source: serde_json::Value,
    pub shards: Vec<ShardInfo>,
    pub total_tokens: usize,
    /// False while `glassbox acts` is still running or was interrupted.
    pub complete: bool,
}

impl StoreIndex {
    /// Number of contexts in all listed shards.
    pub fn contexts(&self) -> usize {
        self.shards.iter().map(|s| s.contexts).sum()
    }

    /// Per-token shape of a hook, if stored.
    pub fn hook_shape(&self, name: &str) -> Option<&[usize]> {
        self.hooks
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.shape.as_slice())
    }

    fn hook_names(&self) -> String {
        self.hooks
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks the invariants the writer maintains, so readers can rely on them instead of
    /// panicking on a hand-edited or corrupt index.
    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::format(path, msg));
        if let Err(msg) = check_layout(&self.hooks, self.context, self.contexts_per_shard) {
            return bad(msg);
        }
        let mut total = 0usize;
        for (i, shard) in self.shards.iter().enumerate() {
            if shard.file != shard_file_name(i) {
                return bad(format!(
                    "shard {i} is named {:?}, expected {:?}",
                    shard.file,
                    shard_file_name(i)
                ));
            }
            let full = shard.contexts == self.contexts_per_shard;
            let last_of_complete = self.complete && i + 1 == self.shards.len();
            if shard.contexts == 0
                || shard.contexts > self.contexts_per_shard
                || (!full && !last_of_complete)
            {
                return bad(format!(
                    "{} lists {} contexts; only the last shard of a complete store may hold fewer than {}",
                    shard.file, shard.contexts, self.contexts_per_shard
                ));
            }
            if shard.contexts.checked_mul(self.context) != Some(shard.tokens) {
                return bad(format!(
                    "{} lists {} tokens for {} contexts of {} tokens",
                    shard.file, shard.tokens, shard.contexts, self.context
                ));
            }
            total = total.saturating_add(shard.tokens);
        }
        if total != self.total_tokens {
            return bad(format!(
                "total_tokens is {} but the shards hold {total}",
                self.total_tokens
            ));
        }
        Ok(())
    }
}

/// Checks hooks and sizes shared by a new spec and a stored index; returns a message naming the
/// problem.
fn check_layout(
    hooks: &[HookInfo],
    context: usize,
    contexts_per_shard: usize,
) -> std::result::Result<(), String> {
    if context == 0 {
        return Err("context length must be at least 1".into());
    }
    if contexts_per_shard == 0 {
        return Err("contexts_per_shard must be at least 1".into());
    }
    if hooks.is_empty() {
        return Err("no hooks to store".into());
    }
    let mut seen = BTreeSet::new();
    for hook in hooks {
        if hook.name.is_empty() {
            return Err("a hook has an empty name".into());
        }
        if RESERVED_TENSORS.contains(&hook.name.as_str()) {
            return Err(format!(
                "hook name {:?} is reserved for a shard's bookkeeping tensor",
                hook.name
            ));
        }
        if !seen.insert(hook.name.as_str()) {
            return Err(format!("hook {:?} is listed twice", hook.name));
        }
        if hook.shape.is_empty() || hook.shape.contains(&0) {
            return Err(format!(
                "hook {:?} has per-token shape {:?}; need one or more non-zero dims",
                hook.name, hook.shape
            ));
        }
        let rows = context.checked_mul(contexts_per_shard);
        if rows
            .and_then(|r| checked_product(&hook.shape).and_then(|d| d.checked_mul(r)))
            .is_none()
        {
            return Err(format!("hook {:?}: shard size overflows", hook.name));
        }
    }
    Ok(())
}

fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// `shard-00042.safetensors`: fixed names make the index the only source of truth and keep
/// file names from the index from pointing outside the store.
fn shard_file_name(i: usize) -> String {
    format!("shard-{i:05}.safetensors")
}

/// Reads and validates `dir/index.json`, with errors that say why the folder is not a store.
fn read_index(dir: &Path) -> Result<StoreIndex> {
    let path = dir.join(INDEX_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::format(
                &path,
                "missing: this folder is not a glassbox activation store",
            ))
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(&path, format!("not valid JSON: {e}")))?;
    let format = value.get("format").and_then(|f| f.as_str());
    if format != Some(STORE_FORMAT) {
        return Err(Error::format(
            &path,
            format!("format is {format:?}, expected {STORE_FORMAT:?}"),
        ));
    }
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(STORE_VERSION)) {
        return Err(Error::format(
            &path,
            format!("store version {version:?} is not supported (this glassbox reads version {STORE_VERSION})"),
        ));
    }
    let index: StoreIndex = serde_json::from_value(value)
        .map_err(|e| Error::format(&path, format!("invalid index: {e}")))?;
    index.validate(&path)?;
    Ok(index)
}

/// Writes `index.json` atomically so a kill never leaves a half-written index.
fn write_index(dir: &Path, index: &StoreIndex) -> Result<()> {
    let path = dir.join(INDEX_FILE);
    let mut text = serde_json::to_string_pretty(index)
        .map_err(|e| Error::format(&path, format!("cannot serialize index: {e}")))?;
    text.push('\n');
    write_atomic(&path, |w| w.write_all(text.as_bytes()))
}

/// Writes to `<path>.tmp`, syncs, then renames over `path`: readers and resumes see either the
/// old file or the complete new one.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(|e| Error::io(&tmp, e))?;
    let file = w
        .into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

// ---------------------------------------------------------------------------------------------
// Shard files
// ---------------------------------------------------------------------------------------------

/// Where one tensor lives inside a shard file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

#[derive(Deserialize)]
struct RawTensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

/// Parses a safetensors header without reading the data, so opening a store and reading one
/// hook stay cheap however many hooks a shard holds. Checks the file is exactly as long as the
/// header says (a truncated shard fails here).
fn read_shard_header(path: &Path) -> Result<BTreeMap<String, TensorEntry>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| Error::format(path, "truncated: shorter than a safetensors header"))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER_BYTES || header_len > file_len.saturating_sub(8) {
        return Err(Error::format(
            path,
            format!("corrupt or truncated: header claims {header_len} bytes"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| Error::io(path, e))?;
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| Error::format(path, format!("corrupt safetensors header: {e}")))?;
    let data_start = 8 + header_len;
    let mut tensors = BTreeMap::new();
    let mut data_end = 0u64;
    for (name, value) in raw {
        if name == "__metadata__" {
            continue;
        }
        let entry: RawTensorEntry = serde_json::from_value(value).map_err(|e| {
            Error::format(
                path,
                format!("corrupt header entry for tensor {name:?}: {e}"),
            )
        })?;
        let (start, end) = entry.data_offsets;
        let elem = match entry.dtype.as_str() {
            "F32" => 4,
            "BF16" => 2,
            "I64" => 8,
            other => {
                return Err(Error::format(
                    path,
                    format!("tensor {name:?} has unsupported dtype {other}"),
                ))
            }
        };
        let bytes = checked_product(&entry.shape)
            .and_then(|n| n.checked_mul(elem))
            .map(|n| n as u64);
        if end < start || bytes != Some(end - start) {
            return Err(Error::format(
                path,
                format!("tensor {name:?}: data offsets do not match its shape"),
            ));
        }
        data_end = data_end.max(end);
        tensors.insert(
            name,
            TensorEntry {
                dtype: entry.dtype,
                shape: entry.shape,
                start: data_start + start,
                end: data_start + end,
            },
        );
    }
    if data_start.checked_add(data_end) != Some(file_len) {
        return Err(Error::format(
            path,
            format!(
                "truncated or corrupt: {file_len} bytes on disk, header describes {}",
                data_start.saturating_add(data_end)
            ),
        ));
    }
    Ok(tensors)
}

/// Checks that shard `i` listed in `index` exists and holds exactly the expected tensors with
/// the expected dtypes and shapes; returns its tensor table.
fn verify_shard(dir: &Path, index: &StoreIndex, i: usize) -> Result<BTreeMap<String, TensorEntry>> {
    let info = &index.shards[i];
    let path = dir.join(&info.file);
    if !path.is_file() {
        return Err(Error::format(&path, "listed in index.json but missing"));
    }
    let tensors = read_shard_header(&path)?;
    let mut expected: BTreeMap<&str, (&str, Vec<usize>)> = BTreeMap::new();
    for name in ["tokens", "doc", "pos", "context"] {
        expected.insert(name, ("I64", vec![info.tokens]));
    }
    for hook in &index.hooks {
        let mut shape = vec![info.tokens];
        shape.extend_from_slice(&hook.shape);
        expected.insert(hook.name.as_str(), (index.dtype.safetensors_name(), shape));
    }
    if tensors.len() != expected.len() {
        return Err(Error::format(
            &path,
            format!(
                "holds {} tensors, expected {} ({} hooks + tokens, doc, pos, context)",
                tensors.len(),
                expected.len(),
                index.hooks.len()
            ),
        ));
    }
    for (name, (dtype, shape)) in expected {
        match tensors.get(name) {
            None => return Err(Error::format(&path, format!("tensor {name:?} is missing"))),
            Some(t) if t.dtype != dtype || t.shape != shape => {
                return Err(Error::format(
                    &path,
                    format!(
                        "tensor {name:?} is {} {:?}, expected {dtype} {shape:?}",
                        t.dtype, t.shape
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(tensors)
}

/// `len` bytes of a tensor's data from byte `offset` within it.
fn read_tensor_range(path: &Path, entry: &TensorEntry, offset: u64, len: u64) -> Result<Vec<u8>> {
    if offset + len > entry.end - entry.start {
        return Err(Error::format(
            path,
            format!("bytes {offset}..{} asked of a {}-byte tensor", offset + len, entry.end - entry.start),
        ));
    }
    let len = usize::try_from(len)
        .map_err(|_| Error::format(path, "tensor too large for this platform"))?;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(entry.start + offset))
        .map_err(|e| Error::io(path, e))?;
    let mut bytes = vec![0u8; len];
    file.read_exact(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// One shard's worth of pushed contexts, already encoded as little-endian tensor bytes so the
/// buffer costs exactly what the file will.
struct ShardBuffer {
    contexts: usize,
    tokens: Vec<u8>,
    doc: Vec<u8>,
    pos: Vec<u8>,
    context: Vec<u8>,
    /// One byte buffer per hook, in index order.
    hooks: Vec<Vec<u8>>,
}

impl ShardBuffer {
    fn new(hooks: usize) -> Self {
        ShardBuffer {
            contexts: 0,
            tokens: Vec::new(),
            doc: Vec::new(),
            pos: Vec::new(),
            context: Vec::new(),
            hooks: vec![Vec::new(); hooks],
        }
    }

    /// Appends one context (`ordered`: its activations in index hook order).
    fn push(&mut self, context_index: usize, ctx: &Context, ordered: &[&[f32]], dtype: StoreDtype) -> Result<()> {
        let global = i64::try_from(context_index).map_err(|_| Error::invalid("context index too large"))?;
        extend_i64(&mut self.tokens, ctx.tokens.iter().map(|&t| i64::from(t)));
        extend_i64(&mut self.doc, ctx.doc.iter().map(|&d| i64::from(d)));
        extend_i64(&mut self.pos, ctx.pos.iter().map(|&p| i64::from(p)));
        extend_i64(&mut self.context, std::iter::repeat_n(global, ctx.len()));
        for (bytes, values) in self.hooks.iter_mut().zip(ordered) {
            extend_activations(bytes, values, dtype);
        }
        self.contexts += 1;
        Ok(())
    }

    fn clear(&mut self) {
        self.contexts = 0;
        for b in [
            &mut self.tokens,
            &mut self.doc,
            &mut self.pos,
            &mut self.context,
        ] {
            b.clear();
        }
        self.hooks.iter_mut().for_each(Vec::clear);
    }
}

fn extend_i64(buf: &mut Vec<u8>, values: impl Iterator<Item = i64>) {
    for v in values {
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn extend_activations(buf: &mut Vec<u8>, values: &[f32], dtype: StoreDtype) {
    buf.reserve(values.len() * dtype.size());
    match dtype {
        StoreDtype::F32 => values
            .iter()
            .for_each(|v| buf.extend_from_slice(&v.to_le_bytes())),
        StoreDtype::Bf16 => values
            .iter()
            .for_each(|&v| buf.extend_from_slice(&bf16::from_f32(v).to_bits().to_le_bytes())),
    }
}

/// Writes a buffered shard as a safetensors file (atomically). The bookkeeping I64 tensors come
/// first and the header is padded to 8 bytes, so every tensor is aligned for zero-copy readers;
/// the layout depends only on the data, so a resumed store is byte-identical to a one-go store.
fn write_shard(path: &Path, index: &StoreIndex, buf: &ShardBuffer) -> Result<()> {
    let tokens = buf.contexts * index.context;
    let mut parts: Vec<(&str, &str, Vec<usize>, &[u8])> = vec![
        ("tokens", "I64", vec![tokens], &buf.tokens),
        ("doc", "I64", vec![tokens], &buf.doc),
        ("pos", "I64", vec![tokens], &buf.pos),
        ("context", "I64", vec![tokens], &buf.context),
    ];
    for (hook, bytes) in index.hooks.iter().zip(&buf.hooks) {
        let mut shape = vec![tokens];
        shape.extend_from_slice(&hook.shape);
        parts.push((
            hook.name.as_str(),
            index.dtype.safetensors_name(),
            shape,
            bytes,
        ));
    }
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::json!({ "format": STORE_FORMAT, "version": STORE_VERSION.to_string() }),
    );
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in &parts {
        let end = offset + bytes.len();
        header.insert(
            (*name).to_string(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&header)
        .map_err(|e| Error::format(path, format!("cannot build header: {e}")))?;
    header.resize(header.len().div_ceil(8) * 8, b' ');
    write_atomic(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        parts
            .iter()
            .try_for_each(|(_, _, _, bytes)| w.write_all(bytes))
    })
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// What to store; must be identical when resuming, so a resumed store never mixes settings.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSpec {
    pub model: String,
    /// Hook names and per-token shapes, in the order tensors are listed in the index.
    pub hooks: Vec<(String, Vec<usize>)>,
    pub dtype: StoreDtype,
    pub context: usize,
    pub contexts_per_shard: usize,
    /// Caller's description of the corpus (path, size, sha256, separator…). Compared on resume,
    /// so it should identify the corpus; strings and integers compare most reliably.
    pub source: serde_json::Value,
}

/// What [`StoreWriter::finish`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSummary {
    pub dir: PathBuf,
    pub shards: usize,
    pub contexts: usize,
    pub total_tokens: usize,
}

/// Streams contexts' activations into a store, one shard at a time; memory is one shard's
/// buffer. Dropping it without [`finish`](StoreWriter::finish) keeps every finished shard (the
/// buffered contexts are lost) and the store can be resumed.
pub struct StoreWriter {
    dir: PathBuf,
    index: StoreIndex,
    /// Values per token for each hook, in index order.
    hook_sizes: Vec<usize>,
    buffer: ShardBuffer,
    next_context: usize,
    removed: Vec<PathBuf>,
}

impl StoreWriter {
    /// Opens `dir` for writing: creates a new store when it has no `index.json` (the folder may
    /// exist but must hold no shard files), or resumes the existing one after checking it was
    /// written with exactly this spec and that its listed shards are intact. Leftovers of an
    /// interrupted run (unlisted shards, temporary files) are deleted; see
    /// [`removed_files`](Self::removed_files).
    pub fn create_or_resume(dir: &Path, spec: StoreSpec) -> Result<StoreWriter> {
        let index = index_for_spec(spec)?;
        if let Err(msg) = check_layout(&index.hooks, index.context, index.contexts_per_shard) {
            return Err(Error::invalid(format!("{}: {msg}", dir.display())));
        }
        parts::check_parts_settings(dir, &index)?;
        let (index, removed) = if dir.join(INDEX_FILE).exists() {
            resume_index(dir, index)?
        } else {
            create_index(dir, &index)?;
            (index, Vec::new())
        };
        let hook_sizes = index
            .hooks
            .iter()
            .map(|h| h.shape.iter().product())
            .collect();
        let next_context = index.contexts();
        let buffer = ShardBuffer::new(index.hooks.len());
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            index,
            hook_sizes,
            buffer,
            next_context,
            removed,
        })
    }

    /// Contexts already stored (and buffered): the caller skips this many packed contexts.
    pub fn contexts_done(&self) -> usize {
        self.next_context
    }

    /// Files deleted when resuming (leftovers of an interrupted write), for the caller to report.
    pub fn removed_files(&self) -> &[PathBuf] {
        &self.removed
    }

    /// The index as currently on disk plus the writer's settings.
    pub fn index(&self) -> &StoreIndex {
        &self.index
    }

    /// Buffers one context's activations (`activations` has one `(hook, rows)` entry per stored
    /// hook, any order, rows = tokens × per-token size, token-major) and writes a shard once
    /// `contexts_per_shard` are buffered. Contexts must arrive in order starting at
    /// [`contexts_done`](Self::contexts_done). A rejected push changes nothing.
    pub fn push(
        &mut self,
        context_index: usize,
        ctx: &Context,
        activations: &[(&str, &[f32])],
    ) -> Result<()> {
        let ordered = self.check_push(context_index, ctx, activations)?;
        self.buffer.push(context_index, ctx, &ordered, self.index.dtype)?;
        self.next_context += 1;
        if self.buffer.contexts == self.index.contexts_per_shard {
            self.flush_shard()?;
        }
        Ok(())
    }

    /// Validates a push and returns the activation slices in index hook order.
    fn check_push<'a>(
        &self,
        context_index: usize,
        ctx: &Context,
        activations: &[(&str, &'a [f32])],
    ) -> Result<Vec<&'a [f32]>> {
        let dir = self.dir.display();
        if self.index.complete {
            return Err(Error::invalid(format!(
                "{dir}: store is already complete; nothing more can be pushed"
            )));
        }
        if context_index != self.next_context {
            return Err(Error::invalid(format!(
                "{dir}: pushed context {context_index}, expected context {} (contexts must arrive in order)",
                self.next_context
            )));
        }
        order_activations(&self.dir, &self.index, &self.hook_sizes, context_index, ctx, activations)
    }

    /// At a shard boundary, moves the shard a job of a parallel build left for the next position
    /// (see [`PartWriter`]) into place and lists it, marking the store complete when it ends the
    /// `total_contexts`. Returns the contexts it held: 0 when there is no such shard.
    pub fn adopt_part(&mut self, total_contexts: usize) -> Result<usize> {
        let s = self.index.shards.len();
        let part = match parts::part_path(&self.dir, s) {
            Some(part) if self.buffer.contexts == 0 && !self.index.complete => part,
            _ => return Ok(0),
        };
        let contexts = self.index.contexts_per_shard.min(total_contexts.saturating_sub(self.next_context));
        if contexts == 0 {
            return Ok(0);
        }
        let info = ShardInfo { file: shard_file_name(s), contexts, tokens: contexts * self.index.context };
        let mut listed = self.index.clone();
        listed.shards.push(info.clone());
        verify_shard(&self.dir.join(PARTS_DIR), &listed, s).map_err(|e| {
            Error::format(&part, format!("{e}; delete it and run again to compute this shard here"))
        })?;
        // Moved before it is listed: a kill in between leaves an unlisted shard, which the next
        // run deletes and computes again.
        let path = self.dir.join(&info.file);
        fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
        self.index.total_tokens += info.tokens;
        self.index.shards.push(info);
        self.next_context += contexts;
        self.index.complete = self.next_context == total_contexts;
        write_index(&self.dir, &self.index)?;
        Ok(contexts)
    }

    /// Writes the buffered contexts as the next shard, then the index that lists it (in that
    /// order, so a kill in between leaves only an unlisted shard that a resume deletes).
    fn flush_shard(&mut self) -> Result<()> {
        let file = shard_file_name(self.index.shards.len());
        write_shard(&self.dir.join(&file), &self.index, &self.buffer)?;
        let tokens = self.buffer.contexts * self.index.context;
        self.index.shards.push(ShardInfo {
            file,
            contexts: self.buffer.contexts,
            tokens,
        });
        self.index.total_tokens += tokens;
        self.buffer.clear();
        write_index(&self.dir, &self.index)
    }

    /// Writes the last (possibly partial) shard and marks the store complete, in one index
    /// write: an index that lists a partial shard but is not complete is invalid, and a kill
    /// between two writes would leave one that no resume could open.
    pub fn finish(mut self) -> Result<StoreSummary> {
        if !self.index.complete {
            self.index.complete = true;
            if self.buffer.contexts > 0 {
                self.flush_shard()?;
            } else {
                write_index(&self.dir, &self.index)?;
            }
        }
        parts::remove_parts(&self.dir)?;
        Ok(StoreSummary {
            dir: self.dir.clone(),
            shards: self.index.shards.len(),
            contexts: self.index.contexts(),
            total_tokens: self.index.total_tokens,
        })
    }
}

/// Checks one context's activations against the store's layout (`dir` for messages) and
/// returns them in index hook order.
fn order_activations<'a>(
    dir: &Path,
    index: &StoreIndex,
    hook_sizes: &[usize],
    context_index: usize,
    ctx: &Context,
    activations: &[(&str, &'a [f32])],
) -> Result<Vec<&'a [f32]>> {
    let dir = dir.display();
    let n = index.context;
    if ctx.tokens.len() != n || ctx.doc.len() != n || ctx.pos.len() != n {
        return Err(Error::invalid(format!(
            "{dir}: context {context_index} has {} tokens / {} doc / {} pos entries, expected {n} each",
            ctx.tokens.len(),
            ctx.doc.len(),
            ctx.pos.len()
        )));
    }
    if let Some((name, _)) = activations
        .iter()
        .find(|(name, _)| index.hook_shape(name).is_none())
    {
        return Err(Error::invalid(format!(
            "{dir}: activations for hook {name:?}, which this store does not hold (hooks: {})",
            index.hook_names()
        )));
    }
    let mut ordered = Vec::with_capacity(index.hooks.len());
    for (hook, &size) in index.hooks.iter().zip(hook_sizes) {
        let mut matching = activations.iter().filter(|(name, _)| *name == hook.name);
        let values = match (matching.next(), matching.next()) {
            (Some((_, values)), None) => *values,
            (None, _) => {
                return Err(Error::invalid(format!(
                    "{dir}: context {context_index} has no activations for hook {:?}",
                    hook.name
                )))
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid(format!(
                    "{dir}: context {context_index} has hook {:?} twice",
                    hook.name
                )))
            }
        };
        if values.len() != n * size {
            return Err(Error::invalid(format!(
                "{dir}: hook {:?} in context {context_index} has {} values, expected {n} tokens × {size} ({:?}) = {}",
                hook.name,
                values.len(),
                hook.shape,
                n * size
            )));
        }
        ordered.push(values);
    }
    Ok(ordered)
}

/// The index a fresh store with this spec starts from. The source is round-tripped through JSON
/// text so it compares equal to what a resume reads back.
fn index_for_spec(spec: StoreSpec) -> Result<StoreIndex> {
    let source = serde_json::to_string(&spec.source)
        .and_then(|s| serde_json::from_str(&s))
        .map_err(|e| Error::invalid(format!("store source is not serializable: {e}")))?;
    Ok(StoreIndex {
        format: STORE_FORMAT.into(),
        version: STORE_VERSION,
        model: spec.model,
        hooks: spec
            .hooks
            .into_iter()
            .map(|(name, shape)| HookInfo { name, shape })
            .collect(),
        dtype: spec.dtype,
        context: spec.context,
        contexts_per_shard: spec.contexts_per_shard,
        source,
        shards: Vec::new(),
        total_tokens: 0,
        complete: false,
    })
}

/// Starts a new store in `dir`, refusing a folder that already holds shard files (someone
/// else's data, or a store whose index was lost: neither may be overwritten silently).
fn create_index(dir: &Path, index: &StoreIndex) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    if let Some(name) = list_dir(dir)?.into_iter().find(|n| n.starts_with("shard-")) {
        return Err(Error::invalid(format!(
            "{}: holds {name} but no {INDEX_FILE}; refusing to overwrite it (use an empty folder)",
            dir.display()
        )));
    }
    write_index(dir, index)
}

/// Loads the existing index for a resume: same spec, intact listed shards, leftovers removed.
fn resume_index(dir: &Path, wanted: StoreIndex) -> Result<(StoreIndex, Vec<PathBuf>)> {
    let stored = read_index(dir)?;
    if let Some((field, had, want)) = first_difference(&stored, &wanted) {
        return Err(Error::invalid(format!(
            "{}: the existing store was written with a different `{field}` (stored {had}, requested {want}); \
             use the original settings to resume, or a new output folder",
            dir.join(INDEX_FILE).display()
        )));
    }
    for i in 0..stored.shards.len() {
        verify_shard(dir, &stored, i)?;
    }
    let removed = remove_leftovers(dir, &stored)?;
    Ok((stored, removed))
}

/// First spec field (in index order) on which two indexes disagree, with both values as JSON.
fn first_difference(
    stored: &StoreIndex,
    wanted: &StoreIndex,
) -> Option<(&'static str, String, String)> {
    // Equal JSON is equal value for these fields.
    let fields = [
        ("model", to_json(&stored.model), to_json(&wanted.model)),
        ("hooks", to_json(&stored.hooks), to_json(&wanted.hooks)),
        ("dtype", to_json(&stored.dtype), to_json(&wanted.dtype)),
        ("context", to_json(&stored.context), to_json(&wanted.context)),
        ("contexts_per_shard", to_json(&stored.contexts_per_shard), to_json(&wanted.contexts_per_shard)),
        ("source", to_json(&stored.source), to_json(&wanted.source)),
    ];
    fields.into_iter().find(|(_, had, want)| had != want)
}

/// Compact JSON of a value, for error messages.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "?".into())
}

/// Deletes what an interrupted run left behind: shard files the index does not list and our
/// temporary files. Other files are left alone (they are not ours).
fn remove_leftovers(dir: &Path, index: &StoreIndex) -> Result<Vec<PathBuf>> {
    let listed: BTreeSet<&str> = index.shards.iter().map(|s| s.file.as_str()).collect();
    let mut removed = Vec::new();
    for name in list_dir(dir)? {
        let ours_tmp = name == format!("{INDEX_FILE}{TMP_SUFFIX}")
            || (name.starts_with("shard-") && name.ends_with(&format!(".safetensors{TMP_SUFFIX}")));
        let stray_shard = name.starts_with("shard-")
            && name.ends_with(".safetensors")
            && !listed.contains(name.as_str());
        if ours_tmp || stray_shard {
            let path = dir.join(&name);
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Names of the regular files in `dir` (non-UTF-8 names are skipped: we never write those).
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let is_file = entry
            .file_type()
            .map_err(|e| Error::io(entry.path(), e))?
            .is_file();
        if let (true, Some(name)) = (is_file, entry.file_name().to_str()) {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// A store opened for reading. Incomplete stores (a run still going or interrupted) can be
/// read too: they hold exactly the shards listed; check [`StoreIndex::complete`].
pub struct ActivationStore {
    dir: PathBuf,
    index: StoreIndex,
    /// Tensor table of each shard, read once at open.
    shards: Vec<BTreeMap<String, TensorEntry>>,
}

impl ActivationStore {
    /// Opens a store, checking the index and every listed shard's header (a missing, truncated
    /// or mismatched shard is reported now, not hours into training).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let index = read_index(&dir)?;
        let shards = (0..index.shards.len())
            .map(|i| verify_shard(&dir, &index, i))
            .collect::<Result<_>>()?;
        Ok(ActivationStore { dir, index, shards })
    }

    /// The store folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> &StoreIndex {
        &self.index
    }

    /// Rows (tokens) per hook across all listed shards.
    pub fn total_tokens(&self) -> usize {
        self.index.total_tokens
    }

    /// Number of listed (finished) shards.
    pub fn num_shards(&self) -> usize {
        self.index.shards.len()
    }

    /// Per-token shape of a stored hook.
    pub fn hook_shape(&self, name: &str) -> Option<&[usize]> {
        self.index.hook_shape(name)
    }

    /// Path and tensor entry of `name` in shard `i`, with errors naming what is missing.
    fn entry(&self, i: usize, name: &str) -> Result<(PathBuf, &TensorEntry)> {
        let (info, tensors) = self
            .index
            .shards
            .get(i)
            .zip(self.shards.get(i))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{}: no shard {i} (store has {})",
                    self.dir.display(),
                    self.num_shards()
                ))
            })?;
        let path = self.dir.join(&info.file);
        let entry = tensors.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "{}: no hook {name:?} (hooks: {})",
                self.dir.display(),
                self.index.hook_names()
            ))
        })?;
        Ok((path, entry))
    }

    /// All activation rows of `hook` in shard `i`, `tokens × per-token size` values, token-major;
    /// bf16 stores are widened to f32 exactly.
    pub fn read_shard(&self, i: usize, hook: &str) -> Result<Vec<f32>> {
        let rows = self.index.shards.get(i).map_or(0, |s| s.tokens);
        self.read_shard_rows(i, hook, 0..rows)
    }

    /// Rows `rows` of `hook` in shard `i` (a range of its tokens), read without the rest.
    pub fn read_shard_rows(&self, i: usize, hook: &str, rows: Range<usize>) -> Result<Vec<f32>> {
        let Some(d) = self.hook_shape(hook).and_then(checked_product) else {
            return Err(Error::invalid(format!(
                "{}: no hook {hook:?} (hooks: {})",
                self.dir.display(),
                self.index.hook_names()
            )));
        };
        let (path, entry) = self.entry(i, hook)?;
        let row_bytes = (d * self.index.dtype.size()) as u64;
        let bytes = read_tensor_range(&path, entry, rows.start as u64 * row_bytes, rows.len() as u64 * row_bytes)?;
        Ok(match self.index.dtype {
            StoreDtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            StoreDtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect(),
        })
    }

    fn read_i64(&self, i: usize, name: &str) -> Result<Vec<i64>> {
        let rows = self.index.shards.get(i).map_or(0, |s| s.tokens);
        self.read_i64_rows(i, name, 0..rows)
    }

    fn read_i64_rows(&self, i: usize, name: &str, rows: Range<usize>) -> Result<Vec<i64>> {
        let (path, entry) = self.entry(i, name)?;
        let bytes = read_tensor_range(&path, entry, rows.start as u64 * 8, rows.len() as u64 * 8)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }

    /// Token ids, document indices and in-document positions of shard `i`'s rows.
    pub fn read_tokens(&self, i: usize) -> Result<(Vec<i64>, Vec<i64>, Vec<i64>)> {
        Ok((
            self.read_i64(i, "tokens")?,
            self.read_i64(i, "doc")?,
            self.read_i64(i, "pos")?,
        ))
    }

    /// Global context index of each of shard `i`'s rows.
    pub fn read_context_ids(&self, i: usize) -> Result<Vec<i64>> {
        self.read_i64(i, "context")
    }

    /// One pass over every row of `hook` in random order, as batches of `batch_rows` rows
    /// (`batch_rows × d` values, d = per-token size); the last batch may be shorter.
    ///
    /// The contexts of every shard are read in one seeded random order (each a ranged read of its
    /// rows), and at most `buffer_shards` shards' worth of rows are held at once; each row of a
    /// batch is drawn uniformly from that buffer. A shard holds consecutive contexts of one
    /// stretch of text, so reading whole shards would fill a batch from a few stretches (a few
    /// books of a corpus); reading contexts from everywhere mixes the whole store while memory
    /// stays bounded. Same seed, same order. Bad arguments (unknown hook, zero sizes) and read
    /// errors come out as an `Err` item, after which the iterator ends.
    pub fn shuffled(
        &self,
        hook: &str,
        batch_rows: usize,
        buffer_shards: usize,
        seed: u64,
    ) -> ShuffledBatches<'_> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let context = self.index.context.max(1);
        let mut order: Vec<(usize, Range<usize>)> = self
            .index
            .shards
            .iter()
            .enumerate()
            .flat_map(|(i, s)| (0..s.tokens).step_by(context).map(move |r| (i, r..(r + context).min(s.tokens))))
            .collect();
        order.shuffle(&mut rng);
        let d = self.hook_shape(hook).and_then(checked_product).unwrap_or(0);
        let max_shard_rows = self
            .index
            .shards
            .iter()
            .map(|s| s.tokens)
            .max()
            .unwrap_or(0);
        let pending_error = if d == 0 {
            Some(Error::invalid(format!(
                "{}: no hook {hook:?} (hooks: {})",
                self.dir.display(),
                self.index.hook_names()
            )))
        } else if batch_rows == 0 || buffer_shards == 0 {
            Some(Error::invalid(format!(
                "shuffled batches need batch_rows ≥ 1 and buffer_shards ≥ 1 (got {batch_rows} and {buffer_shards})"
            )))
        } else {
            None
        };
        ShuffledBatches {
            store: self,
            hook: hook.to_string(),
            d,
            batch_rows,
            capacity_rows: max_shard_rows.saturating_mul(buffer_shards),
            order,
            next_context: 0,
            buffer: Vec::new(),
            peak_rows: 0,
            rng,
            pending_error,
            done: false,
            excluded: Vec::new(),
            skip_first: 0,
        }
    }
}

/// Iterator returned by [`ActivationStore::shuffled`].
pub struct ShuffledBatches<'a> {
    store: &'a ActivationStore,
    hook: String,
    /// Values per row.
    d: usize,
    batch_rows: usize,
    /// Rows the buffer may hold: `buffer_shards` × the largest shard.
    capacity_rows: usize,
    /// Context visiting order (shard, rows) and the next position in it.
    order: Vec<(usize, Range<usize>)>,
    next_context: usize,
    /// Buffered rows, `d` values each.
    buffer: Vec<f32>,
    peak_rows: usize,
    rng: ChaCha8Rng,
    pending_error: Option<Error>,
    done: bool,
    /// Rows whose token id is one of these are skipped (special tokens).
    excluded: Vec<i64>,
    /// Rows at these first positions of their context are skipped.
    skip_first: usize,
}

impl ShuffledBatches<'_> {
    /// Skip the rows of these tokens (BOS, EOS, padding: what SAELens's
    /// `exclude_special_tokens` leaves out of training).
    pub fn excluding_tokens(mut self, ids: &[u32]) -> Self {
        self.excluded = ids.iter().map(|&t| t as i64).collect();
        self
    }

    /// Skip the first `n` positions of every context (SAELens's `seqpos_slice`): a context cut
    /// from running text has no BOS, and its first token takes the attention-sink role, with a
    /// residual norm a hundred times the others'.
    pub fn skipping_first_positions(mut self, n: usize) -> Self {
        self.skip_first = n;
        self
    }

    /// Most rows held in the shuffle buffer so far (for checking the memory bound).
    pub fn peak_buffered_rows(&self) -> usize {
        self.peak_rows
    }

    /// Rows of every shard (each of the hook's rows is `d` values).
    pub fn rows_per_pass(&self) -> usize {
        self.store.total_tokens()
    }

    fn buffered_rows(&self) -> usize {
        self.buffer.len() / self.d
    }

    /// Loads the next contexts in the visiting order while they fit in the buffer (an empty
    /// buffer always takes one, however large).
    fn refill(&mut self) -> Result<()> {
        while let Some((shard, rows)) = self.order.get(self.next_context).cloned() {
            if self.buffered_rows() > 0 && self.buffered_rows() + rows.len() > self.capacity_rows {
                break;
            }
            let values = self.store.read_shard_rows(shard, &self.hook, rows.clone())?;
            if self.excluded.is_empty() && self.skip_first == 0 {
                self.buffer.extend_from_slice(&values);
            } else {
                let tokens = self.store.read_i64_rows(shard, "tokens", rows)?;
                for (i, (row, token)) in values.chunks(self.d).zip(tokens).enumerate() {
                    if i >= self.skip_first && !self.excluded.contains(&token) {
                        self.buffer.extend_from_slice(row);
                    }
                }
            }
            self.next_context += 1;
            self.peak_rows = self.peak_rows.max(self.buffered_rows());
        }
        Ok(())
    }

    fn draw_row(&mut self, batch: &mut Vec<f32>) {
        draw_row(&mut self.buffer, self.d, &mut self.rng, batch);
    }
}

/// Moves one uniformly chosen row of `buffer` (rows of `d` values) into `batch`; swap-remove
/// keeps this O(d).
pub(crate) fn draw_row(buffer: &mut Vec<f32>, d: usize, rng: &mut ChaCha8Rng, batch: &mut Vec<f32>) {
    let rows = buffer.len() / d;
    let j = rng.random_range(0..rows);
    batch.extend_from_slice(&buffer[j * d..(j + 1) * d]);
    let last = (rows - 1) * d;
    if j * d != last {
        buffer.copy_within(last..last + d, j * d);
    }
    buffer.truncate(last);
}

impl Iterator for ShuffledBatches<'_> {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        let mut batch = Vec::with_capacity(self.batch_rows * self.d);
        while batch.len() < self.batch_rows * self.d {
            if let Err(e) = self.refill() {
                self.done = true;
                return Some(Err(e));
            }
            if self.buffer.is_empty() {
                break;
            }
            self.draw_row(&mut batch);
        }
        if batch.is_empty() {
            self.done = true;
            return None;
        }
        Some(Ok(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    const CTX: usize = 4;

    fn spec(dtype: StoreDtype, contexts_per_shard: usize) -> StoreSpec {
        StoreSpec {
            model: "test/tiny".into(),
            hooks: vec![
                ("blocks.0.hook_resid_post".into(), vec![3]),
                ("blocks.0.attn.hook_z".into(), vec![2, 2]),
            ],
            dtype,
            context: CTX,
            contexts_per_shard,
            source: json!({ "corpus": "corpus.txt", "bytes": 1234, "sha256": "abc", "separator": 0 }),
        }
    }

    fn context(c: usize) -> Context {
        let tokens = (0..CTX).map(|t| (c * CTX + t) as u32 + 7).collect();
        let doc = (0..CTX).map(|t| ((c * CTX + t) / 3) as u32).collect();
        let pos = (0..CTX).map(|t| ((c * CTX + t) % 3) as u32).collect();
        Context { tokens, doc, pos }
    }

    /// Deterministic non-trivial activations (not bf16-exact) for context `c`, hook of size `d`.
    fn acts(c: usize, hook: usize, d: usize) -> Vec<f32> {
        (0..CTX * d)
            .map(|i| ((c * 1000 + hook * 100 + i) as f32 * 0.7311).sin() * 3.3)
            .collect()
    }

    fn push_context(w: &mut StoreWriter, c: usize) {
        let a = acts(c, 0, 3);
        let z = acts(c, 1, 4);
        w.push(
            c,
            &context(c),
            &[
                ("blocks.0.hook_resid_post", &a),
                ("blocks.0.attn.hook_z", &z),
            ],
        )
        .unwrap();
    }

    fn write_store(dir: &Path, dtype: StoreDtype, cps: usize, contexts: usize) -> StoreSummary {
        let mut w = StoreWriter::create_or_resume(dir, spec(dtype, cps)).unwrap();
        for c in 0..contexts {
            push_context(&mut w, c);
        }
        w.finish().unwrap()
    }

    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        list_dir(dir)
            .unwrap()
            .into_iter()
            .map(|n| (n.clone(), fs::read(dir.join(n)).unwrap()))
            .collect()
    }

    #[test]
    fn pack_with_separator_tracks_doc_and_pos_and_drops_tail() {
        let docs = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9]];
        let packed = pack(&docs, 4, Some(0));
        // Stream: 1 2 3 | 0 4 5 | 0 6 7 8 9  (11 tokens → 2 contexts + 3 dropped)
        assert_eq!(packed.dropped_tokens, 3);
        assert_eq!(packed.contexts.len(), 2);
        assert_eq!(
            packed.contexts[0],
            Context {
                tokens: vec![1, 2, 3, 0],
                doc: vec![0, 0, 0, 1],
                pos: vec![0, 1, 2, 0]
            }
        );
        assert_eq!(
            packed.contexts[1],
            Context {
                tokens: vec![4, 5, 0, 6],
                doc: vec![1, 1, 2, 2],
                pos: vec![1, 2, 0, 1]
            }
        );
    }

    #[test]
    fn pack_without_separator_and_edge_cases() {
        let docs = vec![vec![1, 2, 3], vec![], vec![4, 5, 6, 7, 8, 9]];
        let packed = pack(&docs, 4, None);
        assert_eq!(packed.dropped_tokens, 1);
        assert_eq!(
            packed.contexts[0],
            Context {
                tokens: vec![1, 2, 3, 4],
                doc: vec![0, 0, 0, 2],
                pos: vec![0, 1, 2, 0]
            }
        );
        assert_eq!(
            packed.contexts[1],
            Context {
                tokens: vec![5, 6, 7, 8],
                doc: vec![2; 4],
                pos: vec![1, 2, 3, 4]
            }
        );
        // An empty document still gets its separator.
        let packed = pack(&docs, 2, Some(0));
        let all: Vec<u32> = packed
            .contexts
            .iter()
            .flat_map(|c| c.tokens.clone())
            .collect();
        assert_eq!(all, vec![1, 2, 3, 0, 0, 4, 5, 6, 7, 8]);
        assert_eq!(packed.dropped_tokens, 1);
        // Exact multiple: nothing dropped; context 0: everything dropped.
        assert_eq!(pack(&[vec![1, 2, 3, 4]], 2, None).dropped_tokens, 0);
        let zero = pack(&docs, 0, Some(0));
        assert!(zero.contexts.is_empty());
        assert_eq!(zero.dropped_tokens, 11);
    }

    fn check_roundtrip(dtype: StoreDtype) {
        let tmp = tempfile::tempdir().unwrap();
        let summary = write_store(tmp.path(), dtype, 2, 5);
        assert_eq!(
            summary,
            StoreSummary {
                dir: tmp.path().into(),
                shards: 3,
                contexts: 5,
                total_tokens: 5 * CTX
            }
        );
        let store = ActivationStore::open(tmp.path()).unwrap();
        assert!(store.index().complete);
        assert_eq!(store.total_tokens(), 20);
        assert_eq!(store.hook_shape("blocks.0.attn.hook_z"), Some(&[2, 2][..]));
        assert_eq!(store.hook_shape("nope"), None);
        assert_eq!(
            store
                .index()
                .shards
                .iter()
                .map(|s| s.contexts)
                .collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        for shard in 0..3 {
            let contexts: Vec<usize> = (shard * 2..(shard * 2 + 2).min(5)).collect();
            for (h, (name, d)) in [("blocks.0.hook_resid_post", 3), ("blocks.0.attn.hook_z", 4)]
                .into_iter()
                .enumerate()
            {
                let expected: Vec<f32> = contexts.iter().flat_map(|&c| acts(c, h, d)).collect();
                let got = store.read_shard(shard, name).unwrap();
                assert_eq!(got.len(), expected.len());
                for (g, e) in got.iter().zip(&expected) {
                    let want = match dtype {
                        StoreDtype::F32 => *e,
                        StoreDtype::Bf16 => bf16::from_f32(*e).to_f32(),
                    };
                    assert_eq!(g.to_bits(), want.to_bits());
                }
            }
            let (tokens, doc, pos) = store.read_tokens(shard).unwrap();
            let want: Vec<Context> = contexts.iter().map(|&c| context(c)).collect();
            assert_eq!(
                tokens,
                want.iter()
                    .flat_map(|c| c.tokens.iter().map(|&t| i64::from(t)))
                    .collect::<Vec<_>>()
            );
            assert_eq!(
                doc,
                want.iter()
                    .flat_map(|c| c.doc.iter().map(|&t| i64::from(t)))
                    .collect::<Vec<_>>()
            );
            assert_eq!(
                pos,
                want.iter()
                    .flat_map(|c| c.pos.iter().map(|&t| i64::from(t)))
                    .collect::<Vec<_>>()
            );
            let ids = store.read_context_ids(shard).unwrap();
            assert_eq!(
                ids,
                contexts
                    .iter()
                    .flat_map(|&c| [c as i64; CTX])
                    .collect::<Vec<_>>()
            );
            // The shard is a valid safetensors file for other tools.
            let bytes = fs::read(tmp.path().join(shard_file_name(shard))).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let z = st.tensor("blocks.0.attn.hook_z").unwrap();
            assert_eq!(z.shape(), &[contexts.len() * CTX, 2, 2]);
            let want_dtype = match dtype {
                StoreDtype::F32 => safetensors::Dtype::F32,
                StoreDtype::Bf16 => safetensors::Dtype::BF16,
            };
            assert_eq!(z.dtype(), want_dtype);
            assert_eq!(
                st.tensor("tokens").unwrap().dtype(),
                safetensors::Dtype::I64
            );
        }
        assert!(store.read_shard(3, "blocks.0.attn.hook_z").is_err());
        assert!(store.read_shard(0, "tokens").is_err());
    }

    #[test]
    fn f32_store_roundtrips_exactly() {
        check_roundtrip(StoreDtype::F32);
    }

    #[test]
    fn bf16_store_matches_half_rounding() {
        check_roundtrip(StoreDtype::Bf16);
    }

    #[test]
    fn resume_after_kill_equals_one_go_store() {
        let once = tempfile::tempdir().unwrap();
        write_store(once.path(), StoreDtype::Bf16, 2, 5);

        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        {
            let mut w = StoreWriter::create_or_resume(dir, spec(StoreDtype::Bf16, 2)).unwrap();
            for c in 0..3 {
                push_context(&mut w, c);
            }
            assert_eq!(w.contexts_done(), 3);
            // Dropped without finish: shard 0 is on disk, context 2 only in memory.
        }
        fs::write(dir.join("shard-00001.safetensors.tmp"), b"half a shard").unwrap();
        fs::write(dir.join("index.json.tmp"), b"{").unwrap();
        let partial = fs::read(dir.join("shard-00000.safetensors")).unwrap();
        fs::write(
            dir.join("shard-00001.safetensors"),
            &partial[..partial.len() / 2],
        )
        .unwrap();
        fs::write(dir.join("notes.txt"), b"not ours").unwrap();

        let mut w = StoreWriter::create_or_resume(dir, spec(StoreDtype::Bf16, 2)).unwrap();
        assert_eq!(w.contexts_done(), 2);
        let removed: Vec<String> = w
            .removed_files()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            removed,
            vec![
                "index.json.tmp",
                "shard-00001.safetensors",
                "shard-00001.safetensors.tmp"
            ]
        );
        assert!(dir.join("notes.txt").exists());
        let err = w.push(3, &context(3), &[]).unwrap_err().to_string();
        assert!(err.contains("expected context 2"), "{err}");
        for c in 2..5 {
            push_context(&mut w, c);
        }
        w.finish().unwrap();
        fs::remove_file(dir.join("notes.txt")).unwrap();
        assert_eq!(files(dir), files(once.path()));

        // Resuming a complete store: nothing to do, no pushes accepted.
        let mut w = StoreWriter::create_or_resume(dir, spec(StoreDtype::Bf16, 2)).unwrap();
        assert_eq!(w.contexts_done(), 5);
        assert!(w
            .push(5, &context(5), &[])
            .unwrap_err()
            .to_string()
            .contains("complete"));
        assert_eq!(w.finish().unwrap().contexts, 5);
    }

    /// Shards of `contexts` contexts written by `jobs` part writers, then gathered by a writer.
    fn parallel_store(dir: &Path, cps: usize, contexts: usize, jobs: usize) -> StoreSummary {
        for job in 0..jobs {
            let parts = PartWriter::open(dir, spec(StoreDtype::F32, cps)).unwrap();
            for s in (0..contexts.div_ceil(cps)).filter(|s| s % jobs == job) {
                let range = s * cps..((s + 1) * cps).min(contexts);
                let owned: Vec<(Context, Vec<f32>, Vec<f32>)> = range.map(|c| (context(c), acts(c, 0, 3), acts(c, 1, 4))).collect();
                let rows: Vec<(&Context, Vec<(&str, &[f32])>)> = owned
                    .iter()
                    .map(|(ctx, a, z)| (ctx, vec![("blocks.0.hook_resid_post", a.as_slice()), ("blocks.0.attn.hook_z", z.as_slice())]))
                    .collect();
                assert!(!parts.has(s));
                parts.write(s, &rows).unwrap();
                assert!(parts.has(s));
            }
        }
        let mut w = StoreWriter::create_or_resume(dir, spec(StoreDtype::F32, cps)).unwrap();
        let mut next = 0;
        while next < contexts {
            match w.adopt_part(contexts).unwrap() {
                0 => {
                    push_context(&mut w, next);
                    next += 1;
                }
                n => next += n,
            }
        }
        w.finish().unwrap()
    }

    #[test]
    fn parts_written_by_jobs_and_gathered_equal_one_go_store() {
        for (contexts, jobs) in [(10, 2), (12, 3), (3, 2)] {
            let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            assert_eq!(write_store(one.path(), StoreDtype::F32, 4, contexts), StoreSummary { dir: one.path().into(), ..parallel_store(many.path(), 4, contexts, jobs) });
            assert_eq!(files(one.path()), files(many.path()), "{contexts} contexts, {jobs} jobs");
            assert!(!many.path().join(PARTS_DIR).exists());
        }
    }

    #[test]
    fn part_writers_refuse_bad_layouts_finished_stores_and_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let e = PartWriter::open(dir.path(), spec(StoreDtype::F32, 0)).err().unwrap().to_string();
        assert!(e.contains("contexts_per_shard must be at least 1"), "{e}");
        assert!(!dir.path().join(PARTS_DIR).exists(), "nothing is written for a bad layout");
        PartWriter::open(dir.path(), spec(StoreDtype::F32, 4)).unwrap();
        let e = PartWriter::open(dir.path(), spec(StoreDtype::Bf16, 4)).err().unwrap().to_string();
        assert!(e.contains("settings.json: the store's shards were written with a different `dtype`"), "{e}");
        let e = StoreWriter::create_or_resume(dir.path(), spec(StoreDtype::Bf16, 4)).err().unwrap().to_string();
        assert!(e.contains("with a different `dtype`"), "{e}");
        let done = tempfile::tempdir().unwrap();
        write_store(done.path(), StoreDtype::F32, 4, 6);
        let e = PartWriter::open(done.path(), spec(StoreDtype::F32, 4)).err().unwrap().to_string();
        assert!(e.contains("the store is complete; no shard is left for a --shard job"), "{e}");
        assert!(!done.path().join(PARTS_DIR).exists());
    }

    #[test]
    fn a_damaged_part_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let parts = PartWriter::open(dir.path(), spec(StoreDtype::F32, 2)).unwrap();
        let (a, z, ctx) = (acts(0, 0, 3), acts(0, 1, 4), context(0));
        let rows = vec![(&ctx, vec![("blocks.0.hook_resid_post", a.as_slice()), ("blocks.0.attn.hook_z", z.as_slice())])];
        let e = parts.write(0, &rows[..0]).err().unwrap().to_string();
        assert!(e.contains("shard 0 takes 1 to 2 contexts, got 0"), "{e}");
        parts.write(0, &rows).unwrap(); // one context where the shard needs two
        let mut w = StoreWriter::create_or_resume(dir.path(), spec(StoreDtype::F32, 2)).unwrap();
        let e = w.adopt_part(4).err().unwrap().to_string();
        assert!(e.contains("shard-00000.safetensors") && e.contains("delete it and run again to compute this shard here"), "{e}");
    }

    #[test]
    fn resume_with_other_spec_names_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        write_store(tmp.path(), StoreDtype::F32, 2, 3);
        type Change = fn(&mut StoreSpec);
        let cases: [(&str, Change); 6] = [
            ("model", |s| s.model = "other".into()),
            ("hooks", |s| s.hooks[1].1 = vec![4]),
            ("dtype", |s| s.dtype = StoreDtype::Bf16),
            ("context", |s| s.context = 8),
            ("contexts_per_shard", |s| s.contexts_per_shard = 3),
            ("source", |s| s.source["sha256"] = json!("def")),
        ];
        for (field, change) in cases {
            let mut s = spec(StoreDtype::F32, 2);
            change(&mut s);
            let err = StoreWriter::create_or_resume(tmp.path(), s)
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains(&format!("different `{field}`")),
                "{field}: {err}"
            );
            assert!(err.contains("index.json"), "{err}");
        }
    }

    #[test]
    fn resume_rejects_missing_or_truncated_listed_shard() {
        let tmp = tempfile::tempdir().unwrap();
        write_store(tmp.path(), StoreDtype::F32, 2, 5);
        let shard = tmp.path().join("shard-00001.safetensors");
        let bytes = fs::read(&shard).unwrap();
        fs::write(&shard, &bytes[..bytes.len() - 3]).unwrap();
        let err = StoreWriter::create_or_resume(tmp.path(), spec(StoreDtype::F32, 2))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("shard-00001.safetensors") && err.contains("truncated"),
            "{err}"
        );
        fs::remove_file(&shard).unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("shard-00001.safetensors") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn create_refuses_folder_with_shards_but_no_index() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("shard-00000.safetensors"), b"x").unwrap();
        let err = StoreWriter::create_or_resume(tmp.path(), spec(StoreDtype::F32, 2))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("shard-00000.safetensors"), "{err}");
    }

    #[test]
    fn bad_pushes_are_rejected_without_side_effects() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create_or_resume(tmp.path(), spec(StoreDtype::F32, 2)).unwrap();
        let a = acts(0, 0, 3);
        let z = acts(0, 1, 4);
        let short = &z[..z.len() - 1];
        let err = w.push(
            0,
            &context(0),
            &[
                ("blocks.0.hook_resid_post", &a),
                ("blocks.0.attn.hook_z", short),
            ],
        );
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("blocks.0.attn.hook_z")
                && err.contains("15 values")
                && err.contains("= 16"),
            "{err}"
        );
        let err = w
            .push(0, &context(0), &[("blocks.0.hook_resid_post", &a)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no activations for hook \"blocks.0.attn.hook_z\""),
            "{err}"
        );
        let err = w
            .push(
                0,
                &context(0),
                &[
                    ("blocks.0.hook_resid_post", &a),
                    ("blocks.0.attn.hook_z", &z),
                    ("extra", &a),
                ],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"extra\""), "{err}");
        let mut ctx = context(0);
        ctx.pos.pop();
        assert!(w
            .push(
                0,
                &ctx,
                &[
                    ("blocks.0.hook_resid_post", &a),
                    ("blocks.0.attn.hook_z", &z)
                ]
            )
            .is_err());
        assert_eq!(w.contexts_done(), 0);
        push_context(&mut w, 0);
        assert_eq!(w.contexts_done(), 1);
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = spec(StoreDtype::F32, 2);
        s.hooks.push(("tokens".into(), vec![3]));
        assert!(StoreWriter::create_or_resume(tmp.path(), s)
            .err()
            .unwrap()
            .to_string()
            .contains("reserved"));
        let mut s = spec(StoreDtype::F32, 2);
        s.hooks[0].1 = vec![];
        assert!(StoreWriter::create_or_resume(tmp.path(), s).is_err());
        assert!(StoreWriter::create_or_resume(tmp.path(), spec(StoreDtype::F32, 0)).is_err());
        assert!(!tmp.path().join(INDEX_FILE).exists());
    }

    #[test]
    fn open_reports_bad_index() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("index.json") && err.contains("missing"),
            "{err}"
        );
        fs::write(tmp.path().join(INDEX_FILE), b"{ not json").unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("index.json") && err.contains("not valid JSON"),
            "{err}"
        );
        fs::write(
            tmp.path().join(INDEX_FILE),
            br#"{"format": "something-else", "version": 1}"#,
        )
        .unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("index.json") && err.contains("something-else"),
            "{err}"
        );
        fs::write(
            tmp.path().join(INDEX_FILE),
            format!(r#"{{"format": "{STORE_FORMAT}", "version": 9}}"#),
        )
        .unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("index.json") && err.contains("version"),
            "{err}"
        );
        fs::write(
            tmp.path().join(INDEX_FILE),
            format!(r#"{{"format": "{STORE_FORMAT}", "version": 1}}"#),
        )
        .unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("index.json") && err.contains("missing field"),
            "{err}"
        );
    }

    #[test]
    fn open_rejects_inconsistent_index() {
        let tmp = tempfile::tempdir().unwrap();
        write_store(tmp.path(), StoreDtype::F32, 2, 5);
        let path = tmp.path().join(INDEX_FILE);
        let mut index: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        index["shards"][0]["file"] = json!("../elsewhere.safetensors");
        fs::write(&path, index.to_string()).unwrap();
        let err = ActivationStore::open(tmp.path()).err().unwrap().to_string();
        assert!(
            err.contains("index.json") && err.contains("elsewhere"),
            "{err}"
        );
    }

    /// A store whose rows are distinct and identifiable: row value [t, -t, 0.5] for global row t.
    fn row_store(dir: &Path, contexts: usize, cps: usize) {
        let mut s = spec(StoreDtype::F32, cps);
        s.hooks = vec![("h".into(), vec![3])];
        let mut w = StoreWriter::create_or_resume(dir, s).unwrap();
        for c in 0..contexts {
            let rows: Vec<f32> = (0..CTX)
                .flat_map(|t| {
                    let r = (c * CTX + t) as f32;
                    [r, -r, 0.5]
                })
                .collect();
            w.push(c, &context(c), &[("h", &rows)]).unwrap();
        }
        w.finish().unwrap();
    }

    fn row_ids(
        store: &ActivationStore,
        batch: usize,
        buffer: usize,
        seed: u64,
    ) -> (Vec<usize>, Vec<usize>, usize) {
        let mut it = store.shuffled("h", batch, buffer, seed);
        let mut ids = Vec::new();
        let mut sizes = Vec::new();
        for b in it.by_ref() {
            let b = b.unwrap();
            sizes.push(b.len() / 3);
            for row in b.chunks_exact(3) {
                assert_eq!(row[1], -row[0]);
                assert_eq!(row[2], 0.5);
                ids.push(row[0] as usize);
            }
        }
        (ids, sizes, it.peak_buffered_rows())
    }

    #[test]
    fn shuffled_visits_each_row_once_with_bounded_buffer() {
        let tmp = tempfile::tempdir().unwrap();
        row_store(tmp.path(), 13, 2); // 7 shards: 6 × 8 rows + 1 × 4 rows = 52 rows
        let store = ActivationStore::open(tmp.path()).unwrap();
        let (ids, sizes, peak) = row_ids(&store, 5, 2, 42);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..52).collect::<Vec<_>>());
        assert!(sizes[..sizes.len() - 1].iter().all(|&s| s == 5));
        assert_eq!(sizes.last(), Some(&2));
        assert!(peak <= 2 * 8, "peak {peak}");
        assert!(peak > 0);
        assert_ne!(ids, (0..52).collect::<Vec<_>>());

        let (same, _, _) = row_ids(&store, 5, 2, 42);
        assert_eq!(same, ids);
        let (other, _, _) = row_ids(&store, 5, 2, 43);
        assert_ne!(other, ids);

        // Batches larger than the buffer still work; memory stays bounded by the buffer.
        let (ids, sizes, peak) = row_ids(&store, 30, 1, 7);
        assert_eq!(ids.len(), 52);
        assert_eq!(sizes, vec![30, 22]);
        assert!(peak <= 8, "peak {peak}");
    }

    #[test]
    fn shuffled_mixes_contexts_of_different_shards_in_one_buffer() {
        let tmp = tempfile::tempdir().unwrap();
        row_store(tmp.path(), 13, 2); // shards of 2 contexts (8 rows)
        let store = ActivationStore::open(tmp.path()).unwrap();
        let shard_of = |row: usize| row / (2 * CTX);
        // A buffer of one shard's rows holds two contexts; drawn from random shards, the first
        // batch mixes two shards for most seeds (whole-shard reads never could).
        let mixed = (0..20)
            .filter(|&seed| {
                let (ids, _, _) = row_ids(&store, 2 * CTX, 1, seed);
                ids[..2 * CTX].iter().map(|&r| shard_of(r)).collect::<BTreeSet<_>>().len() > 1
            })
            .count();
        assert!(mixed >= 15, "{mixed} of 20 seeds mixed shards");
    }

    #[test]
    fn shuffled_reports_bad_arguments() {
        let tmp = tempfile::tempdir().unwrap();
        row_store(tmp.path(), 2, 2);
        let store = ActivationStore::open(tmp.path()).unwrap();
        let mut it = store.shuffled("missing", 4, 1, 0);
        assert!(it
            .next()
            .unwrap()
            .unwrap_err()
            .to_string()
            .contains("missing"));
        assert!(it.next().is_none());
        assert!(store.shuffled("h", 0, 1, 0).next().unwrap().is_err());
        assert!(store.shuffled("h", 4, 0, 0).next().unwrap().is_err());
    }

    #[test]
    fn shuffled_can_skip_the_rows_of_given_tokens() {
        let tmp = tempfile::tempdir().unwrap();
        row_store(tmp.path(), 5, 2); // row t has token t + 7
        let store = ActivationStore::open(tmp.path()).unwrap();
        let skip = [7u32, 10, 26];
        let mut ids: Vec<usize> = store
            .shuffled("h", 3, 2, 1)
            .excluding_tokens(&skip)
            .flat_map(|b| b.unwrap().chunks_exact(3).map(|r| r[0] as usize).collect::<Vec<_>>())
            .collect();
        ids.sort_unstable();
        let want: Vec<usize> = (0..20).filter(|t| !skip.contains(&(*t as u32 + 7))).collect();
        assert_eq!(ids, want);
        let mut ids: Vec<usize> = store
            .shuffled("h", 3, 2, 1)
            .skipping_first_positions(1)
            .flat_map(|b| b.unwrap().chunks_exact(3).map(|r| r[0] as usize).collect::<Vec<_>>())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..20).filter(|t| t % CTX != 0).collect::<Vec<_>>());
    }
}
