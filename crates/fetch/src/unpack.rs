//! From a verified download to its place in the destination folder: renamed, or unpacked from a
//! wheel into a temporary path beside the target and renamed once verified.

use crate::catalogue::{Remote, Unpack};
use crate::download::sha256_file;
use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Whether `remote`'s target is in `dir` with the right content.
pub(crate) fn is_in_place(remote: &Remote, dir: &Path) -> Result<bool> {
    let target = dir.join(remote.unpack.target());
    let verified = |path: &Path, sha: &str| -> Result<bool> { Ok(path.is_file() && sha256_file(path)? == sha) };
    match &remote.unpack {
        Unpack::File { .. } => verified(&target, remote.sha256),
        Unpack::ZipFile { sha256, .. } => verified(&target, sha256),
        Unpack::ZipDir { checks, .. } => {
            for (file, sha) in *checks {
                if !verified(&target.join(file), sha)? {
                    return Ok(false);
                }
            }
            Ok(target.is_dir())
        }
    }
}

/// Move the verified download `part` into place in `dir`, using `work` for temporary files.
pub(crate) fn put_in_place(remote: &Remote, part: &Path, dir: &Path, work: &Path) -> Result<()> {
    let target = dir.join(remote.unpack.target());
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    match &remote.unpack {
        Unpack::File { .. } => rename(part, &target),
        Unpack::ZipFile { member, sha256, .. } => {
            let tmp = work.join(format!("{}.tmp", file_name(&target).display()));
            let mut archive = open_zip(part)?;
            let mut entry = archive
                .by_name(member)
                .map_err(|e| Error::Archive { path: part.into(), msg: format!("no member {member}: {e}") })?;
            copy_out(&mut entry, &tmp, part)?;
            let got = sha256_file(&tmp)?;
            if got != *sha256 {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::Archive { path: part.into(), msg: format!("{member} has sha256 {got}, expected {sha256}") });
            }
            rename(&tmp, &target)?;
            remove_file(part)
        }
        Unpack::ZipDir { prefix, checks, .. } => {
            let tmp = work.join(format!("{}.tmp", file_name(&target).display()));
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            let mut archive = open_zip(part)?;
            for i in 0..archive.len() {
                let mut entry = archive.by_index(i).map_err(|e| Error::Archive { path: part.into(), msg: e.to_string() })?;
                // enclosed_name refuses absolute paths and `..`, so nothing lands outside `tmp`.
                let Some(name) = entry.enclosed_name() else { continue };
                let Ok(inside) = name.strip_prefix(prefix) else { continue };
                if entry.is_dir() || inside.as_os_str().is_empty() {
                    continue;
                }
                let out = tmp.join(inside);
                if let Some(parent) = out.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                }
                copy_out(&mut entry, &out, part)?;
            }
            for (file, sha) in *checks {
                let path = tmp.join(file);
                let got = if path.is_file() { sha256_file(&path)? } else { "nothing".into() };
                if got != *sha {
                    let _ = std::fs::remove_dir_all(&tmp);
                    return Err(Error::Archive { path: part.into(), msg: format!("{prefix}{file} has sha256 {got}, expected {sha}") });
                }
            }
            // A folder cannot be replaced by one rename: the old (incomplete or wrong) one is
            // moved aside first and deleted once the new one is in place.
            let old = work.join(format!("{}.old", file_name(&target).display()));
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
            }
            if target.exists() {
                rename(&target, &old)?;
            }
            rename(&tmp, &target)?;
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
            }
            remove_file(part)
        }
    }
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<File>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    zip::ZipArchive::new(file).map_err(|e| Error::Archive { path: path.into(), msg: format!("not a readable zip archive: {e}") })
}

/// Write one archive member to `out`, flushed to disk.
fn copy_out(entry: &mut impl Read, out: &Path, archive: &Path) -> Result<()> {
    let mut file = File::create(out).map_err(|e| Error::io(out, e))?;
    std::io::copy(entry, &mut file).map_err(|e| Error::Archive { path: archive.into(), msg: format!("cannot unpack {}: {e}", out.display()) })?;
    file.flush().and_then(|()| file.sync_all()).map_err(|e| Error::io(out, e))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))
}

fn remove_file(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|e| Error::io(path, e))
}

fn file_name(path: &Path) -> PathBuf {
    path.file_name().map(PathBuf::from).unwrap_or_else(|| "download".into())
}
