//! A small deterministic mutation fuzzer for glassbox's file parsers, run as ordinary tests.
//!
//! A [`Target`] names a parser and the files (parts) its input is made of: one file for most
//! parsers, several for folder formats (a checkpoint is `model.json` and `model.safetensors`).
//! [`run`] starts from valid seed inputs and executes the parser on
//!
//! 1. every seed as it is (seeds marked valid must parse: a seed that stops parsing would leave
//!    the deep code unexercised, so that fails the test);
//! 2. prefixes of every part of every seed (every length for parts up to 2 KiB);
//! 3. mutants: one to five stacked mutations ([`mutate`]) of an input drawn from the corpus
//!    (the seeds, plus mutants that parsed or produced an error message not seen before), with
//!    occasional splicing with another input and fully random parts.
//!
//! Each execution runs under `catch_unwind`: a panic is a crash. So is a peak of live
//! allocations above the target's budget, measured by [`GuardAlloc`] (which also refuses, with
//! a diagnosis, any single allocation above the hard cap), and an execution slower than
//! [`SLOW`]. A crash is minimised (chunks of each part removed while it still crashes the same
//! way), written under the crash folder, printed as a Rust byte string for a regression test,
//! and fails the test.
//!
//! Everything is seeded: the same build runs the same executions. `GLASSBOX_FUZZ_EXECS=N`
//! sets the number of executions of every target (default: the target's own, a few seconds
//! each), `GLASSBOX_FUZZ_SEED=S` another sequence, and `GLASSBOX_FUZZ_DUMP=target:exec` writes
//! that execution's input to the crash folder before running it (for an input that aborts
//! the process, which cannot be caught).

pub mod alloc;
pub mod mutate;

pub use alloc::GuardAlloc;
pub use mutate::Dictionary;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// An execution slower than this is reported as a crash (a hang in the making).
pub const SLOW: Duration = Duration::from_secs(10);
/// An execution still running after this aborts the process with the input's coordinates.
const HANG: Duration = Duration::from_secs(120);
/// Default peak of live bytes one execution may reach: inputs are kilobytes, so anything near
/// this was sized by a number in the file rather than by its content.
pub const DEFAULT_BUDGET: usize = 256 << 20;
/// One allocation above this is refused (the process then aborts with the diagnosis).
pub const HARD_CAP: usize = 2 << 30;
/// Corpus entries kept besides the seeds.
const CORPUS_CAP: usize = 512;

/// How a part is mutated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Arbitrary bytes.
    Binary,
    /// A safetensors file: byte mutations, and structure-aware ones of its JSON header.
    Safetensors,
    /// JSON: structure-aware mutations, and byte mutations of the text.
    Json,
    /// Line- and comma-separated numbers.
    Text,
}

/// A custom structure-aware mutator for a part: returns None when the input does not have the
/// structure it understands.
pub type Custom = Box<dyn Fn(&mut ChaCha8Rng, &[u8]) -> Option<Vec<u8>>>;

/// One file of a target's input.
pub struct Part {
    /// File name inside the target's folder.
    pub name: &'static str,
    pub kind: Kind,
    /// Relative frequency with which mutations pick this part.
    pub weight: u32,
    /// An empty part means "no such file" (the parser's handling of an absent file is fuzzed).
    pub optional: bool,
    /// Used for 40 % of this part's mutations when set.
    pub custom: Option<Custom>,
}

impl Part {
    pub fn new(name: &'static str, kind: Kind) -> Self {
        Part { name, kind, weight: 1, optional: false, custom: None }
    }
    pub fn weight(mut self, w: u32) -> Self {
        self.weight = w;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn custom(mut self, f: Custom) -> Self {
        self.custom = Some(f);
        self
    }
}

/// A parser under test.
pub struct Target {
    pub name: &'static str,
    pub parts: Vec<Part>,
    /// Executions of the default (CI) run.
    pub execs: u64,
    /// Peak live bytes allowed per execution.
    pub budget: usize,
    /// Longest a part may grow to under mutation.
    pub max_len: usize,
}

impl Target {
    pub fn new(name: &'static str, parts: Vec<Part>, execs: u64) -> Self {
        Target { name, parts, execs, budget: DEFAULT_BUDGET, max_len: 1 << 20 }
    }
}

/// An input: one byte string per part.
pub type Input = Vec<Vec<u8>>;

/// A starting input; `valid` ones must parse.
pub struct Seed {
    pub input: Input,
    pub valid: bool,
    pub label: String,
}

impl Seed {
    pub fn valid(label: impl Into<String>, input: Input) -> Self {
        Seed { input, valid: true, label: label.into() }
    }
    pub fn invalid(label: impl Into<String>, input: Input) -> Self {
        Seed { input, valid: false, label: label.into() }
    }
}

/// One distinct crash.
#[derive(Clone, Debug)]
pub struct Crash {
    /// What went wrong (panic message and location, allocation peak, or time).
    pub what: String,
    /// Same signature, same bug.
    pub signature: String,
    pub exec: u64,
    pub input: Input,
    pub minimized: Input,
    /// Where the minimised input was written.
    pub saved: PathBuf,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub target: String,
    pub execs: u64,
    pub ok: u64,
    pub err: u64,
    pub crashes: Vec<Crash>,
    pub elapsed: Duration,
    pub slowest: Duration,
    pub peak_bytes: usize,
    pub corpus: usize,
    pub distinct_errors: usize,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "fuzz {}: {} executions ({} ok, {} errors, {} distinct error messages) in {:.2} s ({:.0}/s), corpus {}, \
             peak allocation {:.1} MiB, slowest {:.1} ms, crashes {}",
            self.target,
            self.execs,
            self.ok,
            self.err,
            self.distinct_errors,
            self.elapsed.as_secs_f64(),
            self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.corpus,
            self.peak_bytes as f64 / (1 << 20) as f64,
            self.slowest.as_secs_f64() * 1e3,
            self.crashes.len()
        )
    }

    /// Fails (panics) listing every crash, with its minimised input as Rust byte strings.
    pub fn assert_no_crashes(&self) {
        if self.crashes.is_empty() {
            return;
        }
        let mut msg = format!("{} crash(es) in fuzz target {}:\n", self.crashes.len(), self.target);
        for c in &self.crashes {
            msg += &format!("\n- {} (execution {}), minimised input in {}:\n", c.what, c.exec, c.saved.display());
            for (i, part) in c.minimized.iter().enumerate() {
                msg += &format!("  part {i} ({} bytes): {}\n", part.len(), rust_bytes(part, 2000));
            }
        }
        panic!("{msg}");
    }
}

/// `b"..."` with escapes, cut after `max` bytes.
pub fn rust_bytes(bytes: &[u8], max: usize) -> String {
    let mut s = String::from("b\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'"' => s += "\\\"",
            b'\\' => s += "\\\\",
            b'\n' => s += "\\n",
            b'\r' => s += "\\r",
            b'\t' => s += "\\t",
            0x20..=0x7e => s.push(b as char),
            _ => s += &format!("\\x{b:02x}"),
        }
    }
    s.push('"');
    if bytes.len() > max {
        s += &format!(" (+{} bytes)", bytes.len() - max);
    }
    s
}

/// Executions for `target`: `GLASSBOX_FUZZ_EXECS` or its default.
pub fn execs_for(default: u64) -> u64 {
    std::env::var("GLASSBOX_FUZZ_EXECS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn base_seed() -> u64 {
    std::env::var("GLASSBOX_FUZZ_SEED").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Where crash inputs are written: `$GLASSBOX_FUZZ_OUT`, else the system temp folder.
pub fn crash_dir() -> PathBuf {
    std::env::var_os("GLASSBOX_FUZZ_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("glassbox-fuzz"))
}

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Panics on a fuzzing thread are recorded (message, location) instead of printed.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(Cell::get) {
                let msg = payload_text(info.payload());
                let loc = info.location().map_or_else(|| "unknown location".to_string(), |l| format!("{}:{}", l.file(), l.line()));
                CAUGHT.with(|c| *c.borrow_mut() = Some((msg, loc)));
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The result of one execution.
enum Outcome {
    Ok,
    Err(String),
    Crash { what: String, signature: String },
}

struct Exec<'a, F> {
    target: &'a Target,
    f: F,
    exec: u64,
    slowest: Duration,
    peak: usize,
    clock: Arc<AtomicU64>,
    current: Arc<AtomicU64>,
    origin: Instant,
}

impl<F: FnMut(&Input) -> Result<(), String>> Exec<'_, F> {
    fn call(&mut self, input: &Input) -> Outcome {
        self.exec += 1;
        self.current.store(self.exec, Ordering::SeqCst);
        let started = Instant::now();
        self.clock.store(started.duration_since(self.origin).as_millis() as u64 + 1, Ordering::SeqCst);
        FUZZING.with(|f| f.set(true));
        CAUGHT.with(|c| c.borrow_mut().take());
        alloc::arm(self.target.name, self.exec, HARD_CAP);
        let result = catch_unwind(AssertUnwindSafe(|| (self.f)(input)));
        let peak = alloc::disarm();
        FUZZING.with(|f| f.set(false));
        self.clock.store(0, Ordering::SeqCst);
        let took = started.elapsed();
        self.slowest = self.slowest.max(took);
        self.peak = self.peak.max(peak);
        match result {
            Err(payload) => {
                let (msg, loc) = CAUGHT
                    .with(|c| c.borrow_mut().take())
                    .unwrap_or_else(|| (payload_text(&*payload), "unknown location".into()));
                Outcome::Crash { what: format!("panic at {loc}: {msg}"), signature: format!("panic {loc}") }
            }
            Ok(_) if peak > self.target.budget => Outcome::Crash {
                what: format!("allocated {peak} bytes at peak, above the budget of {} bytes", self.target.budget),
                signature: "allocation".into(),
            },
            Ok(_) if took > SLOW => Outcome::Crash {
                what: format!("took {:.1} s, above the limit of {} s", took.as_secs_f64(), SLOW.as_secs()),
                signature: "slow".into(),
            },
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err(e)) => Outcome::Err(e),
        }
    }
}

/// Error messages with digits removed: inputs that reach a new message reach new code.
fn error_shape(e: &str) -> String {
    e.chars().filter(|c| !c.is_ascii_digit()).take(200).collect()
}

/// Runs `f` with its allocations on this thread counted (requests above [`HARD_CAP`] refused);
/// returns its result, or its panic message, and the peak of live bytes. For regression tests.
pub fn measure<T>(f: impl FnOnce() -> T) -> (Result<T, String>, usize) {
    install_hook();
    FUZZING.with(|x| x.set(true));
    alloc::arm("regression", 0, HARD_CAP);
    let result = catch_unwind(AssertUnwindSafe(f));
    let peak = alloc::disarm();
    FUZZING.with(|x| x.set(false));
    let caught = CAUGHT.with(|c| c.borrow_mut().take());
    let result = result.map_err(|payload| match caught {
        Some((msg, loc)) => format!("panic at {loc}: {msg}"),
        None => payload_text(&*payload),
    });
    (result, peak)
}

/// Fuzzes `f` (which parses one input, writing its parts to files first if it reads files)
/// from `seeds`; see the crate documentation. Returns the report; call
/// [`Report::assert_no_crashes`] to fail on crashes.
pub fn run(target: &Target, seeds: Vec<Seed>, f: impl FnMut(&Input) -> Result<(), String>) -> Report {
    install_hook();
    assert!(!seeds.is_empty(), "fuzz target {} has no seeds", target.name);
    for s in &seeds {
        assert_eq!(s.input.len(), target.parts.len(), "seed {} of {} has the wrong number of parts", s.label, target.name);
    }
    let budget = execs_for(target.execs);
    let dump_at: Option<u64> = std::env::var("GLASSBOX_FUZZ_DUMP").ok().and_then(|v| {
        let (name, n) = v.split_once(':')?;
        (name == target.name).then(|| n.parse().ok()).flatten()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(fnv(target.name.as_bytes()) ^ base_seed());
    let dicts: Vec<Dictionary> = (0..target.parts.len())
        .map(|p| {
            let mut d = Dictionary::default();
            seeds.iter().for_each(|s| d.learn(&s.input[p]));
            d
        })
        .collect();

    // A watchdog: an execution that never returns aborts with its coordinates instead of
    // hanging the test suite.
    let clock = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let current = Arc::new(AtomicU64::new(0));
    let watchdog = {
        let (clock, current, done, name) = (clock.clone(), current.clone(), done.clone(), target.name);
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::park_timeout(Duration::from_millis(500));
                let started = clock.load(Ordering::SeqCst);
                if started > 0 && origin.elapsed().as_millis() as u64 > started + HANG.as_millis() as u64 {
                    let n = current.load(Ordering::SeqCst);
                    eprintln!(
                        "glassbox-fuzz: execution {n} of target {name} has run for {} s; rerun with the same \
                         GLASSBOX_FUZZ_EXECS and GLASSBOX_FUZZ_DUMP={name}:{n} to write out its input",
                        HANG.as_secs()
                    );
                    std::process::abort();
                }
            }
        })
    };

    let mut ex = Exec { target, f, exec: 0, slowest: Duration::ZERO, peak: 0, clock, current, origin };
    let mut report = Report { target: target.name.to_string(), ..Default::default() };
    let mut crashes: BTreeMap<String, Crash> = BTreeMap::new();
    let mut shapes: HashSet<String> = HashSet::new();
    let mut corpus: Vec<Input> = seeds.iter().map(|s| s.input.clone()).collect();
    let n_seeds = corpus.len();

    let execute = |ex: &mut Exec<'_, _>, input: &Input, report: &mut Report, crashes: &mut BTreeMap<String, Crash>| -> Outcome {
        if dump_at == Some(ex.exec + 1) {
            let dir = save(target, &format!("exec{}", ex.exec + 1), input);
            eprintln!("glassbox-fuzz: execution {} of {} written to {}", ex.exec + 1, target.name, dir.display());
        }
        let out = ex.call(input);
        report.execs += 1;
        match &out {
            Outcome::Ok => report.ok += 1,
            Outcome::Err(_) => report.err += 1,
            Outcome::Crash { what, signature } => {
                if !crashes.contains_key(signature) {
                    crashes.insert(
                        signature.clone(),
                        Crash { what: what.clone(), signature: signature.clone(), exec: ex.exec, input: input.clone(), minimized: Vec::new(), saved: PathBuf::new() },
                    );
                }
            }
        }
        out
    };

    // 1. The seeds.
    for s in &seeds {
        let out = execute(&mut ex, &s.input, &mut report, &mut crashes);
        if s.valid {
            if let Outcome::Err(e) = &out {
                panic!("fuzz target {}: seed {} no longer parses: {e}", target.name, s.label);
            }
        }
        if let Outcome::Err(e) = out {
            shapes.insert(error_shape(&e));
        }
    }

    // 2. Prefixes of every part.
    let prefix_budget = budget / 3;
    let mut prefixes = Vec::new();
    for s in &seeds {
        for (p, part) in s.input.iter().enumerate() {
            let lens: Vec<usize> = if part.len() <= 2048 {
                (0..part.len()).collect()
            } else {
                let mut v: Vec<usize> = (0..256).chain((0..512).map(|i| i * part.len() / 512)).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            prefixes.extend(lens.into_iter().map(|n| (s.input.clone(), p, n)));
        }
    }
    if prefixes.len() as u64 > prefix_budget {
        // An even spread over all of them.
        let keep = prefix_budget as usize;
        let total = prefixes.len();
        prefixes = (0..keep).map(|i| prefixes[i * total / keep.max(1)].clone()).collect();
    }
    for (mut input, p, n) in prefixes {
        if report.execs >= budget {
            break;
        }
        input[p].truncate(n);
        if let Outcome::Err(e) = execute(&mut ex, &input, &mut report, &mut crashes) {
            shapes.insert(error_shape(&e));
        }
    }

    // 3. Mutants.
    let weights: Vec<u32> = target.parts.iter().map(|p| p.weight).collect();
    let total_weight: u32 = weights.iter().sum();
    while report.execs < budget {
        let base = &corpus[rng.random_range(0..corpus.len())];
        let mut input = base.clone();
        let other = corpus[rng.random_range(0..corpus.len())].clone();
        let stack = 1 + (rng.random::<u32>().trailing_zeros() as usize).min(4);
        for _ in 0..stack {
            let mut w = rng.random_range(0..total_weight);
            let p = weights.iter().position(|&x| if w < x { true } else { w -= x; false }).expect("weights cover the range");
            let part = &target.parts[p];
            let bytes = &mut input[p];
            if rng.random_bool(0.01) {
                let n = rng.random_range(0..512);
                *bytes = (0..n).map(|_| rng.random()).collect();
                continue;
            }
            if part.optional && rng.random_bool(0.02) {
                bytes.clear();
                continue;
            }
            if let Some(custom) = &part.custom {
                if rng.random_bool(0.4) {
                    if let Some(out) = custom(&mut rng, bytes) {
                        *bytes = out;
                        continue;
                    }
                }
            }
            match part.kind {
                Kind::Binary => mutate::mutate_bytes(&mut rng, bytes, &other[p], &dicts[p], target.max_len),
                Kind::Text => mutate::mutate_text(&mut rng, bytes, &other[p], &dicts[p], target.max_len),
                Kind::Json => mutate::mutate_json(&mut rng, bytes, &other[p], &dicts[p], target.max_len),
                Kind::Safetensors => {
                    let structured = if rng.random_bool(0.5) {
                        mutate::mutate_safetensors(&mut rng, bytes, &other[p], &dicts[p], target.max_len)
                    } else {
                        None
                    };
                    match structured {
                        Some(out) => *bytes = out,
                        None => mutate::mutate_bytes(&mut rng, bytes, &other[p], &dicts[p], target.max_len),
                    }
                }
            }
        }
        let keep = match execute(&mut ex, &input, &mut report, &mut crashes) {
            Outcome::Ok => input != *base,
            Outcome::Err(e) => shapes.len() < 100_000 && shapes.insert(error_shape(&e)),
            Outcome::Crash { .. } => false,
        };
        if keep {
            if corpus.len() < n_seeds + CORPUS_CAP {
                corpus.push(input);
            } else {
                let i = rng.random_range(n_seeds..corpus.len());
                corpus[i] = input;
            }
        }
    }

    // Minimise and save each crash.
    for (i, crash) in crashes.values_mut().enumerate() {
        let signature = crash.signature.clone();
        let mut tries = 0;
        crash.minimized = minimize(target, &crash.input, |candidate| {
            tries += 1;
            tries <= 4000 && matches!(ex.call(candidate), Outcome::Crash { signature: s, .. } if s == signature)
        });
        crash.saved = save(target, &format!("crash{i}"), &crash.minimized);
    }
    report.elapsed = origin.elapsed();
    done.store(true, Ordering::SeqCst);
    watchdog.thread().unpark();
    let _ = watchdog.join();

    report.crashes = crashes.into_values().collect();
    report.slowest = ex.slowest;
    report.peak_bytes = ex.peak;
    report.corpus = corpus.len();
    report.distinct_errors = shapes.len();
    println!("{}", report.summary());
    append_log(&report);
    report
}

/// Shrinks a crashing input while `crashes` still holds: for JSON parts, whole values are
/// removed from their arrays and objects first; then chunks of every part (halving the chunk
/// size down to one byte).
pub fn minimize(target: &Target, input: &Input, mut crashes: impl FnMut(&Input) -> bool) -> Input {
    let mut best = input.clone();
    for p in 0..best.len() {
        if target.parts[p].kind != Kind::Json {
            continue;
        }
        let mut i = 0;
        while let Some(total) = mutate::json_nodes(&best[p]) {
            if i >= total {
                break;
            }
            let Some(candidate_part) = mutate::json_without_node(&best[p], i) else { break };
            let mut candidate = best.clone();
            candidate[p] = candidate_part;
            if crashes(&candidate) {
                best = candidate;
            } else {
                i += 1;
            }
        }
    }
    for p in 0..best.len() {
        let mut chunk = (best[p].len() / 2).max(1);
        loop {
            let mut i = 0;
            let mut removed = false;
            while i < best[p].len() {
                let mut candidate = best.clone();
                let end = (i + chunk).min(candidate[p].len());
                candidate[p].drain(i..end);
                if crashes(&candidate) {
                    best = candidate;
                    removed = true;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 && !removed {
                break;
            }
            if !removed {
                chunk /= 2;
            }
        }
    }
    best
}

/// Writes `input`'s parts into `<crash dir>/<target>-<label>/`; returns the folder.
fn save(target: &Target, label: &str, input: &Input) -> PathBuf {
    let dir = crash_dir().join(format!("{}-{label}", target.name));
    let _ = std::fs::create_dir_all(&dir);
    for (part, bytes) in target.parts.iter().zip(input) {
        let _ = std::fs::write(dir.join(part.name), bytes);
    }
    dir
}

/// Appends the summary line to `<crash dir>/report.txt`, where a long run's numbers collect.
fn append_log(report: &Report) {
    use std::io::Write;
    let dir = crash_dir();
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("report.txt")) {
        let _ = writeln!(f, "{}", report.summary());
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A temporary folder that a target's parts are written into before each execution; an
/// empty optional part removes its file.
pub struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    pub fn new() -> Self {
        Folder { dir: tempfile::tempdir().expect("a temporary folder") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The path of file `name` in the folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes every part of `input` (removing the files of empty optional parts).
    pub fn write(&self, target: &Target, input: &Input) {
        for (part, bytes) in target.parts.iter().zip(input) {
            let path = self.file(part.name);
            if part.optional && bytes.is_empty() {
                let _ = std::fs::remove_file(&path);
            } else {
                std::fs::write(&path, bytes).expect("write a fuzz input file");
            }
        }
    }
}

impl Default for Folder {
    fn default() -> Self {
        Self::new()
    }
}
