//! glassbox-fetch: downloads the real data sets and the test language models glassbox reads.
//!
//! Every download is checked by sha256 before it is kept, resumes where an interrupted one
//! stopped, and is moved into place only when complete: a reader of the destination folder sees
//! either the old state or the finished file, never half of one. Partial downloads wait in
//! `DIR/.glassbox-fetch/` until the next call.

pub mod catalogue;
mod download;
mod unpack;

pub use catalogue::{find, Entry, Kind, Remote, Unpack, CATALOGUE};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {msg}")]
    Http { url: String, msg: String },
    #[error("{url}: the download is corrupted (sha256 {got}, expected {expected}); it was deleted, run again")]
    Checksum { url: String, expected: String, got: String },
    #[error("{}: {msg}", path.display())]
    Archive { path: PathBuf, msg: String },
}

impl Error {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io { path: path.as_ref().to_path_buf(), source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// How to download.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Fetch every file from this base address instead of its official one, at the path
    /// [`mirror_path`] gives: a data folder served over HTTP is a mirror of the data sets.
    pub mirror: Option<String>,
    /// No progress bars.
    pub quiet: bool,
}

/// What [`fetch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every file was already there with the right checksum.
    Present,
    /// At least one file was downloaded.
    Fetched,
}

/// The folder `data fetch` puts models in when not told otherwise: `$GLASSBOX_MODELS`, else the
/// per-user cache's `glassbox/models`.
pub fn default_models_dir() -> Option<PathBuf> {
    std::env::var_os("GLASSBOX_MODELS")
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("glassbox").join("models")))
}

/// Download whatever of `entry` is missing or wrong in `dir`, verify it and move it into place.
pub fn fetch(entry: &Entry, dir: &Path, options: &Options) -> Result<Outcome> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let work = dir.join(".glassbox-fetch");
    let agent = download::agent();
    let mut outcome = Outcome::Present;
    let result = entry.remotes.iter().try_for_each(|remote| {
        if unpack::is_in_place(remote, dir)? {
            return Ok(());
        }
        std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        let file_name = remote.url.rsplit('/').next().unwrap_or(remote.url);
        let url = match &options.mirror {
            Some(base) => format!("{}/{}", base.trim_end_matches('/'), mirror_path(remote)),
            None => remote.url.to_string(),
        };
        // Named by content: MNIST and Fashion-MNIST have files of the same names.
        let part = work.join(format!("{}-{file_name}.part", &remote.sha256[..16]));
        download::download(&agent, &url, &part, remote.size, remote.sha256, options.quiet)?;
        unpack::put_in_place(remote, &part, dir, &work)?;
        outcome = Outcome::Fetched;
        Ok(())
    });
    // Removed only when empty: a partial download waits there for the next run.
    let _ = std::fs::remove_dir(&work);
    result.map(|()| outcome)
}

/// Where a mirror holds `remote`: a plain file at its path in the destination folder
/// (`mnist/train-images-idx3-ubyte.gz`), a wheel under its file name.
pub fn mirror_path(remote: &Remote) -> &str {
    match remote.unpack {
        Unpack::File { .. } => remote.unpack.target(),
        _ => remote.url.rsplit('/').next().unwrap_or(remote.url),
    }
}

/// Whether every file of `entry` is in `dir` (by name only: cheap, for listings).
pub fn looks_present(entry: &Entry, dir: &Path) -> bool {
    entry.remotes.iter().all(|r| dir.join(r.unpack.target()).exists())
}
