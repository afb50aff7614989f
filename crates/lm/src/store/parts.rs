//! Building one store with several jobs (`glassbox acts ... --shard i/n`): job i writes the
//! store shards s with s % n == i into `parts/` inside the store folder, under their final
//! names; a last run without `--shard` moves them into place as it reaches them and writes the
//! index, computing any shard no job wrote. The shards are the bytes one run would write.

use super::{
    check_layout, first_difference, index_for_spec, order_activations, read_index, shard_file_name, write_atomic, write_shard, Context,
    ShardBuffer, StoreIndex, StoreSpec, INDEX_FILE,
};
use crate::error::{Error, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder inside a store where the jobs of a parallel build leave their shards.
pub const PARTS_DIR: &str = "parts";
/// The settings the jobs of a parallel build share, in `parts/`: the store's index with no
/// shards.
const PARTS_SETTINGS: &str = "settings.json";

/// Writes the shards of one job of a parallel build.
pub struct PartWriter {
    store: PathBuf,
    index: StoreIndex,
    hook_sizes: Vec<usize>,
    /// Shards the store's index already lists (a final run has gathered them).
    listed: usize,
}

impl PartWriter {
    /// Opens `store/parts` for shards of this spec: records the spec there, or checks it against
    /// the one recorded (and against the store's index, if a final run has started).
    pub fn open(store: &Path, spec: StoreSpec) -> Result<PartWriter> {
        let index = index_for_spec(spec)?;
        if let Err(msg) = check_layout(&index.hooks, index.context, index.contexts_per_shard) {
            return Err(Error::invalid(format!("{}: {msg}", store.display())));
        }
        let listed = if store.join(INDEX_FILE).exists() {
            let stored = read_index(store)?;
            check_same(&stored, &index, &store.join(INDEX_FILE))?;
            if stored.complete {
                return Err(Error::invalid(format!("{}: the store is complete; no shard is left for a --shard job", store.display())));
            }
            stored.shards.len()
        } else {
            0
        };
        let parts = store.join(PARTS_DIR);
        fs::create_dir_all(&parts).map_err(|e| Error::io(&parts, e))?;
        check_parts_settings(store, &index)?;
        let spec_path = parts.join(PARTS_SETTINGS);
        if !spec_path.exists() {
            // Jobs starting together all write the same text, each through a file of its own.
            let text = serde_json::to_string_pretty(&index).map_err(|e| Error::format(&spec_path, e.to_string()))?;
            let own = unique_name(&spec_path);
            write_atomic(&own, |w| w.write_all(text.as_bytes()))?;
            fs::rename(&own, &spec_path).map_err(|e| Error::io(&spec_path, e))?;
        }
        let hook_sizes = index.hooks.iter().map(|h| h.shape.iter().product()).collect();
        Ok(PartWriter { store: store.to_path_buf(), index, hook_sizes, listed })
    }

    /// Whether shard `s` is written already, by a job or in the store itself.
    pub fn has(&self, s: usize) -> bool {
        s < self.listed || self.store.join(PARTS_DIR).join(shard_file_name(s)).is_file()
    }

    /// Write shard `s`: `contexts` are its contexts in order, from context s × contexts per
    /// shard, each with its activations (`(hook, rows)` as [`super::StoreWriter::push`] takes).
    pub fn write(&self, s: usize, contexts: &[(&Context, Vec<(&str, &[f32])>)]) -> Result<()> {
        let first = s * self.index.contexts_per_shard;
        if contexts.is_empty() || contexts.len() > self.index.contexts_per_shard {
            return Err(Error::invalid(format!("shard {s} takes 1 to {} contexts, got {}", self.index.contexts_per_shard, contexts.len())));
        }
        let mut buffer = ShardBuffer::new(self.index.hooks.len());
        for (j, (ctx, activations)) in contexts.iter().enumerate() {
            let ordered = order_activations(&self.store, &self.index, &self.hook_sizes, first + j, ctx, activations)?;
            buffer.push(first + j, ctx, &ordered, self.index.dtype)?;
        }
        // Through a name of this job's own: a job run twice at once never mixes two writes.
        let path = self.store.join(PARTS_DIR).join(shard_file_name(s));
        let own = unique_name(&path);
        write_shard(&own, &self.index, &buffer)?;
        fs::rename(&own, &path).map_err(|e| Error::io(&path, e))
    }
}

/// `path` with a suffix no other writer uses: process id and a clock reading (jobs on several
/// machines may share the folder, and process ids repeat across machines).
fn unique_name(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}-{nanos}", std::process::id()));
    PathBuf::from(name)
}

/// Errors unless `parts/settings.json`, if there is one, was written for `index`'s settings.
pub(super) fn check_parts_settings(store: &Path, index: &StoreIndex) -> Result<()> {
    let path = store.join(PARTS_DIR).join(PARTS_SETTINGS);
    if !path.exists() {
        return Ok(());
    }
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let recorded: StoreIndex = serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("invalid settings: {e}")))?;
    check_same(&recorded, index, &path)
}

fn check_same(had: &StoreIndex, want: &StoreIndex, path: &Path) -> Result<()> {
    match first_difference(had, want) {
        None => Ok(()),
        Some((field, had, want)) => Err(Error::invalid(format!(
            "{}: the store's shards were written with a different `{field}` (stored {had}, requested {want}); \
             use the original settings, or a new output folder",
            path.display()
        ))),
    }
}

/// The shard a job left for position `s`, if any.
pub(super) fn part_path(store: &Path, s: usize) -> Option<PathBuf> {
    let path = store.join(PARTS_DIR).join(shard_file_name(s));
    path.is_file().then_some(path)
}

/// Remove `parts/` once the store is complete: what is left there (the settings, temporary
/// files of killed jobs) is no longer needed.
pub(super) fn remove_parts(store: &Path) -> Result<()> {
    let parts = store.join(PARTS_DIR);
    match fs::remove_dir_all(&parts) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&parts, e)),
        _ => Ok(()),
    }
}
