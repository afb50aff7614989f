//! Crash safety of the long-running commands: `glassbox train`, `glassbox zoo build` and
//! `glassbox acts --text` are killed with SIGKILL at random points, several times each, and
//! resumed; they end with the files of a run that was never interrupted. After every kill the
//! output folder is listed and every file in it must be complete (safetensors files open, JSON
//! files parse) or a temporary file of a write in progress, which the resume removes.
//!
//! The kill points come from a seeded generator and are spread over the whole run: each waits
//! for a number of finished units of work (epochs, shards) on disk, then a random part of one
//! unit's time, so kills land in start-up, in computations and in the middle of file writes,
//! up to the last save. The kills survived are printed (run with --nocapture to see them).

mod common;

use common::files;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills per command: at least this many must land before the run finishes.
const KILLS: usize = 8;
const MIN_KILLS: usize = 5;

fn glassbox() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_glassbox"));
    c.env_remove("GLASSBOX_DATA").env("XDG_CACHE_HOME", "/nonexistent/glassbox-test-cache");
    c
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn run_to_end(args: &[String]) {
    let o = glassbox().args(args).output().expect("binary runs");
    assert!(o.status.success(), "glassbox {}: {}{}", args.join(" "), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// SplitMix64: kill delays that are the same on every run of the test.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// After a kill: every file in `dir` is complete (staged files of a set being written,
/// NAME.next, too) or the temporary file of a write in progress (NAME.tmp, NAME.<pid>.tmp).
/// Returns the temporary and staged files seen.
fn check_no_half_written_file(dir: &Path, command: &str, kill: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for (name, path) in files(dir) {
        if name.ends_with(".tmp") {
            seen.push(name);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let base = match name.strip_suffix(".next") {
            Some(base) => {
                seen.push(name.clone());
                base
            }
            None => &name,
        };
        if base.ends_with(".safetensors") {
            if let Err(e) = safetensors::SafeTensors::deserialize(&bytes) {
                panic!("{command}, kill {kill}: {name} ({} bytes) is not a complete safetensors file: {e}", bytes.len());
            }
        } else if base.ends_with(".json") {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                panic!("{command}, kill {kill}: {name} ({} bytes) is not complete JSON: {e}", bytes.len());
            }
        } else {
            panic!("{command}, kill {kill}: unexpected file {name}");
        }
    }
    seen
}

/// One command to kill and resume.
struct Killable<'a> {
    name: &'a str,
    /// The first invocation, and the one that continues an interrupted run.
    first: Vec<String>,
    resume: Vec<String>,
    out: PathBuf,
    /// Units of work (epochs, shards) in the whole run, and how many are finished on disk.
    units: usize,
    done: &'a dyn Fn(&Path) -> usize,
}

/// Runs `k`, killing it (SIGKILL) KILLS times and resuming it, then lets the last resume finish.
/// Each kill point is drawn from `rng`: a number of finished units t (kill i's from the i-th of
/// KILLS equal parts of the run, short of the last unit, so that the kills move through it),
/// then a delay of up to half of one unit's time (`unit`, or less if this run is faster) after
/// t units are on disk (after the start for t = 0), so that a kill can land in start-up, in a
/// computation, or in the middle of writing a file. Returns the kills survived.
fn kill_and_resume(k: &Killable, unit: Duration, rng: &mut Rng) -> usize {
    let targets: Vec<usize> = (0..KILLS).map(|i| (((i as f64 + rng.uniform()) / KILLS as f64 * k.units as f64) as usize).min(k.units - 1)).collect();
    let (mut kills, mut runs) = (0, 0);
    let mut seen = BTreeSet::new();
    let failed = |o: &std::process::Output| format!("{} failed before it was killed: {}", k.name, String::from_utf8_lossy(&o.stderr));
    'runs: loop {
        let args = if runs == 0 { &k.first } else { &k.resume };
        runs += 1;
        let Some(&target) = targets.get(kills) else {
            run_to_end(args);
            break;
        };
        let fraction = 0.5 * rng.uniform();
        let mut child = glassbox().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("binary runs");
        let clock = Instant::now();
        // A unit's time as seen in this run, when it finishes one before the kill point: the
        // machine may be faster now than in the uninterrupted run.
        let (mut last, mut since, mut unit_now) = ((k.done)(&k.out), Instant::now(), unit);
        loop {
            let now = (k.done)(&k.out);
            if now >= target {
                break;
            }
            if now != last {
                (last, unit_now, since) = (now, unit_now.min(since.elapsed()), Instant::now());
            }
            if child.try_wait().unwrap().is_some() {
                let o = child.wait_with_output().unwrap();
                assert!(o.status.success(), "{}", failed(&o));
                break 'runs; // finished before reaching the kill point
            }
            assert!(clock.elapsed() < Duration::from_secs(120), "{}: no progress to {target} units", k.name);
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(unit_now.mul_f64(fraction));
        child.kill().unwrap();
        let o = child.wait_with_output().unwrap();
        if o.status.success() {
            break; // finished before the kill
        }
        assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{}", failed(&o));
        kills += 1;
        seen.extend(check_no_half_written_file(&k.out, k.name, kills));
    }
    eprintln!(
        "{}: {kills} kills survived (after {:?} of {} units of work), {runs} runs; temporary or staged files seen after a kill: {}",
        k.name,
        &targets[..kills],
        k.units,
        if seen.is_empty() { "none".to_string() } else { seen.into_iter().collect::<Vec<_>>().join(", ") }
    );
    kills
}

/// The files of two output folders are the same, byte for byte after `normalise`.
fn assert_same_files(whole: &Path, resumed: &Path, command: &str, normalise: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let (a, b) = (files(whole), files(resumed));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{command}: the resumed run's files differ");
    for (name, path) in &a {
        let (x, y) = (normalise(name, std::fs::read(path).unwrap()), normalise(name, std::fs::read(&b[name]).unwrap()));
        assert!(x == y, "{command}: {name} differs after the kills and resumes");
    }
}

/// The whole test: an uninterrupted run into `dir/whole/NAME`, then the killed and resumed one
/// into `dir/killed/NAME` (the same folder name: run.json records it). `done` counts the units
/// of work finished in an output folder.
fn check_command(dir: &Path, name: &str, seed: u64, args: impl Fn(&Path, bool) -> Vec<String>, done: &dyn Fn(&Path) -> usize, normalise: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let (whole, killed) = (dir.join("whole").join(name), dir.join("killed").join(name));
    let clock = Instant::now();
    run_to_end(&args(&whole, false));
    let units = done(&whole);
    assert!(units > 1, "{name}: {units} units of work");
    let unit = clock.elapsed().div_f64(units as f64);
    let k = Killable { name, first: args(&killed, false), resume: args(&killed, true), out: killed.clone(), units, done };
    let kills = kill_and_resume(&k, unit, &mut Rng(seed));
    assert!(kills >= MIN_KILLS, "{name}: only {kills} kills landed before the run finished");
    assert_same_files(&whole, &killed, name, normalise);
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// A JSON file, if it is there and complete.
fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// run.json without what legitimately differs between a resumed and an unbroken run: the
/// command line (it has --resume and the output path), the wall time of the last invocation
/// and the seconds each epoch took.
fn without_times(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    if name != "run.json" {
        return bytes;
    }
    let mut run = json(&bytes);
    let o = run.as_object_mut().unwrap();
    o.remove("command");
    o.remove("wall_time_s");
    for epoch in o["history"].as_array_mut().unwrap() {
        epoch.as_object_mut().unwrap().remove("seconds");
    }
    serde_json::to_vec(&run).unwrap()
}

#[test]
fn train_killed_and_resumed_ends_as_an_unbroken_run() {
    let dir = tempfile::tempdir().unwrap();
    let epochs = 100;
    // Checkpoints after every epoch: 100 saves to cut short.
    let args = |out: &Path, resume: bool| {
        let mut a: Vec<String> = ["--quiet", "--threads", "2", "train", "--model", "mlp", "--dataset", "glyphs", "--glyph-train", "3000", "--glyph-test", "300", "--hidden", "64",
            "--batch-size", "32", "--shards", "2", "--input-noise", "0.1", "--epochs", &epochs.to_string(), "--out", &s(out)]
            .map(String::from).to_vec();
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let done = |out: &Path| read_json(&out.join("model.json")).and_then(|c| c["epochs_done"].as_u64()).unwrap_or(0) as usize;
    check_command(dir.path(), "train", 1, args, &done, without_times);
}

#[test]
fn lm_train_killed_and_resumed_ends_as_an_unbroken_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("stories.txt");
    let stories: Vec<String> = (0..60).map(|i| format!("Story {i}. The little cat saw a red ball and the dog ran after it. They played in the garden until the sun went down.")).collect();
    std::fs::write(&text, stories.join("\n\n")).unwrap();
    // A checkpoint every step: 40 saves to cut short, the tokenizer written first.
    let args = |out: &Path, resume: bool| {
        let mut a: Vec<String> = ["--quiet", "--threads", "2", "lm", "train", &s(&text), "--arch", "gpt", "--vocab", "300", "--lowercase", "--layers", "2", "--d-model", "32",
            "--heads", "2", "--d-mlp", "48", "--context", "16", "--steps", "40", "--batch-size", "8", "--shards", "2", "--warmup", "2", "--eval-every", "10",
            "--save-every", "1", "--val-fraction", "0.1", "--out", &s(out)]
            .map(String::from).to_vec();
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let done = |out: &Path| read_json(&out.join("model.json")).and_then(|c| c["epochs_done"].as_u64()).unwrap_or(0) as usize;
    check_command(dir.path(), "lm train", 4, args, &done, without_times);
}

#[test]
fn zoo_build_killed_and_resumed_ends_as_an_unbroken_build() {
    let dir = tempfile::tempdir().unwrap();
    // Four shards of 500 INRs.
    let args = |out: &Path, _resume: bool| ["--quiet", "--threads", "2", "zoo", "build", "glyph-inr", "--count", "2000", "--out", &s(out)].map(String::from).to_vec();
    let done = |out: &Path| files(out).keys().filter(|n| n.starts_with("models-") && n.ends_with(".safetensors")).count();
    check_command(dir.path(), "zoo build", 2, args, &done, |_, b| b);
}

#[test]
fn acts_store_killed_and_resumed_ends_as_an_unbroken_one() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    // 120 documents of 20 to 200 words: about 100 shards of 8 contexts of 32 tokens.
    let words: Vec<&str> = "the cat sat on a mat and looked at the dog while a bird sang in the old tree by the river".split(' ').collect();
    let mut rng = Rng(7);
    let docs: Vec<String> = (0..120)
        .map(|_| (0..20 + (rng.uniform() * 180.0) as usize).map(|_| words[(rng.uniform() * words.len() as f64) as usize]).collect::<Vec<_>>().join(" "))
        .collect();
    std::fs::write(&corpus, docs.join("\n\n")).unwrap();
    let args = |out: &Path, _resume: bool| {
        ["--quiet", "--threads", "2", "acts", &common::tiny(), "--text", &s(&corpus), "--hooks", "blocks.0.hook_resid_post,blocks.1.hook_resid_post",
            "--context", "32", "--contexts-per-shard", "8", "--out", &s(out)]
            .map(String::from).to_vec()
    };
    let shards = |out: &Path| read_json(&out.join("index.json")).and_then(|i| i["shards"].as_array().map(Vec::len)).unwrap_or(0);
    check_command(dir.path(), "acts", 3, args, &shards, |_, b| b);
    // The last shard is partial: the store's last write lists it and marks the store complete,
    // and a kill before that write must leave a store the next run can finish.
    let index = read_json(&dir.path().join("whole/acts/index.json")).unwrap();
    assert!(index["shards"].as_array().unwrap().last().unwrap()["contexts"].as_u64().unwrap() < 8, "{index}");
}

/// A number that is no running process's id (Linux ids stay below pid_max).
fn ended_pid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(4_194_304)
}

/// The kill points that matter most for `train`, set up exactly rather than hit by chance: a
/// checkpoint is several files, and a kill between two of them must not leave the weights of
/// one epoch with the optimiser state or history of another. Every file is staged as NAME.next
/// and the set renamed into place, model.json last; a resume finishes a commit whose card was
/// staged and discards one whose card was not, and removes the temporary files of writes cut
/// short. Each folder below is a state some kill leaves; each resumed run must end as an
/// unbroken one.
#[test]
fn train_resumes_from_a_checkpoint_commit_cut_short_at_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path, extra: &[&str]| {
        let mut a: Vec<String> = ["--quiet", "--threads", "2", "train", "--model", "mlp", "--dataset", "glyphs", "--glyph-train", "400", "--glyph-test", "100", "--hidden", "16",
            "--batch-size", "64", "--shards", "2", "--input-noise", "0.1", "--epochs", "4", "--out", &s(out)]
            .map(String::from).to_vec();
        a.extend(extra.iter().map(|x| x.to_string()));
        run_to_end(&a);
    };
    // The checkpoints after epochs 2 and 3, and the unbroken run (each in a folder named "run",
    // as run.json records the name).
    let (two, three, whole) = (dir.path().join("two/run"), dir.path().join("three/run"), dir.path().join("whole/run"));
    args(&two, &["--stop-after", "2"]);
    args(&three, &["--stop-after", "3"]);
    args(&whole, &[]);
    let set = ["optimizer.safetensors", "run.json", "model.safetensors", "model.json"];
    let pid = ended_pid();
    // (state, files of epoch 3 already in place, files of epoch 3 staged as NAME.next)
    let states: [(&str, &[&str], &[&str]); 5] = [
        ("staging begun", &[], &set[..2]),
        ("all staged but the card", &[], &set[..3]),
        ("all staged", &[], &set),
        ("half renamed", &set[..2], &set[2..]),
        ("all renamed but the card", &set[..3], &set[3..]),
    ];
    for (state, placed, staged) in states {
        let cut = dir.path().join(state.replace(' ', "-")).join("run");
        std::fs::create_dir_all(&cut).unwrap();
        for f in set {
            let from = if placed.contains(&f) { &three } else { &two };
            std::fs::copy(from.join(f), cut.join(f)).unwrap();
        }
        for f in staged {
            std::fs::copy(three.join(f), cut.join(format!("{f}.next"))).unwrap();
        }
        // Writes cut short, of a file and of a staged file.
        std::fs::write(cut.join(format!("model.safetensors.{pid}.tmp")), b"partial").unwrap();
        std::fs::write(cut.join(format!("run.json.next.{pid}.tmp")), b"{\"na").unwrap();
        args(&cut, &["--resume"]);
        assert_same_files(&whole, &cut, state, without_times);
    }
    // A killed run started again without --resume (so nothing recovered its folder): its staged
    // files, among them a card that would mark the next set complete too early, must not last.
    let fresh = dir.path().join("fresh/run");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::copy(three.join("model.json"), fresh.join("model.json.next")).unwrap();
    std::fs::write(fresh.join("config.json.next"), b"{}").unwrap();
    args(&fresh, &["--stop-after", "2"]);
    assert_same_files(&two, &fresh, "a fresh run over staged files", without_times);
}

/// A zoo build killed while writing leaves temporary files (NAME.<pid>.tmp); the next build
/// removes those of its own shards and of the shared files whose process has ended.
#[test]
fn zoo_build_removes_the_temporary_files_of_killed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let build = |out: &Path| run_to_end(&["--quiet", "zoo", "build", "glyph-inr", "--count", "80", "--out", &s(out)].map(String::from));
    let (whole, cut) = (dir.path().join("whole/zoo"), dir.path().join("cut/zoo"));
    build(&whole);
    std::fs::create_dir_all(&cut).unwrap();
    std::fs::copy(whole.join("zoo.json"), cut.join("zoo.json")).unwrap();
    let pid = ended_pid();
    std::fs::write(cut.join(format!("models-00000.safetensors.{pid}.tmp")), b"partial").unwrap();
    std::fs::write(cut.join(format!("labels.json.{pid}.tmp")), b"[{\"cla").unwrap();
    build(&cut);
    assert_same_files(&whole, &cut, "zoo build", |_, b| b);
}
