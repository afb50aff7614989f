//! One file over HTTP(S) into a `.part` file that survives interruptions: a later call asks the
//! server for the remaining bytes only (an HTTP range request) and appends them. The file is
//! handed on only once its size and sha256 are right; a wrong checksum deletes it.

use crate::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The agent every download uses: no automatic decompression (so `.gz` files arrive as the bytes
/// their checksums name), HTTP error statuses handled here, a stall limit per read, and the
/// system's certificate store (which also holds the certificate of a company's TLS proxy).
pub(crate) fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("glassbox/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Download `url` (`size` bytes, `sha256`) into `part`, resuming whatever `part` already holds,
/// then verify it. `quiet` hides the progress bar.
pub(crate) fn download(agent: &ureq::Agent, url: &str, part: &Path, size: u64, sha256: &str, quiet: bool) -> Result<()> {
    let mut have = part.metadata().map(|m| m.len()).unwrap_or(0);
    if have > size {
        remove(part)?;
        have = 0;
    }
    if have < size {
        match fetch_rest(agent, url, part, have, size, quiet)? {
            Resumed::Done => {}
            // The server no longer serves the bytes past `have`: start once from nothing.
            Resumed::Refused => {
                remove(part)?;
                if let Resumed::Refused = fetch_rest(agent, url, part, 0, size, quiet)? {
                    return Err(Error::Http { url: url.into(), msg: "the server refuses the download (HTTP 416)".into() });
                }
            }
        }
    }
    let got = sha256_file(part)?;
    if got != sha256 {
        remove(part)?;
        return Err(Error::Checksum { url: url.into(), expected: sha256.into(), got });
    }
    Ok(())
}

enum Resumed {
    Done,
    /// HTTP 416: the server cannot serve the range asked for.
    Refused,
}

/// Append bytes `have..size` of `url` to `part` (or start over when the server ignores ranges).
fn fetch_rest(agent: &ureq::Agent, url: &str, part: &Path, have: u64, size: u64, quiet: bool) -> Result<Resumed> {
    let http = |msg: String| Error::Http { url: url.into(), msg };
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request.call().map_err(|e| http(e.to_string()))?;
    let status = response.status().as_u16();
    let start = match status {
        // Appended only when the part sent starts where ours ends ("bytes START-END/TOTAL").
        206 => {
            let range = response.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
            let from = range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|f| f.trim().parse::<u64>().ok());
            if from != Some(have) {
                return Err(http(format!("asked for bytes from {have}, the server sent the range '{range}'")));
            }
            have
        }
        200 => 0,
        416 => return Ok(Resumed::Refused),
        _ => return Err(http(format!("HTTP status {status}"))),
    };
    let mut file = OpenOptions::new().create(true).write(true).truncate(start == 0).append(start > 0).open(part).map_err(|e| Error::io(part, e))?;

    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(size) };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    bar.set_position(start);

    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    let mut overflowed = false;
    let outcome = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                // A server that sends more than the file's size is not serving this file.
                if done + n as u64 > size {
                    overflowed = true;
                    break Err(http(format!("the server sent more than the expected {size} bytes")));
                }
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(Error::io(part, e));
                }
                done += n as u64;
                bar.set_position(done);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(http(format!("the download stopped after {done} of {size} bytes ({e}); run again to resume"))),
        }
    };
    bar.finish_and_clear();
    file.sync_all().map_err(|e| Error::io(part, e))?;
    drop(file);
    if let Err(e) = outcome {
        // A server sending more than the file is not serving this file: nothing to resume.
        if overflowed {
            remove(part)?;
        }
        return Err(e);
    }
    if done < size {
        return Err(http(format!("the connection closed after {done} of {size} bytes; run again to resume")));
    }
    Ok(Resumed::Done)
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    sha256_reader(&mut file).map_err(|e| Error::io(path, e))
}

fn sha256_reader(reader: &mut impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}
