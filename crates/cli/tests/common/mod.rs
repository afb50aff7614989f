//! Helpers shared by the command-line tests: running the binary, the tiny GPT-2 fixture, an SAE
//! that splits the residual stream into its positive and negative parts, and listing outputs.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn glassbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassbox")).args(args).output().expect("binary runs")
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn ok(args: &[&str]) -> String {
    let o = glassbox(args);
    assert!(o.status.success(), "glassbox {}: {}", args.join(" "), text(&o));
    text(&o)
}

pub fn fails(args: &[&str]) -> String {
    let o = glassbox(args);
    assert!(!o.status.success(), "glassbox {} succeeded", args.join(" "));
    text(&o)
}

/// The committed random tiny GPT-2 (64 wide, 2 blocks).
pub fn tiny() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lm/tests/fixtures/tiny-gpt2").display().to_string()
}

/// A standard SAE on `hook` of the tiny GPT-2 whose latents are relu(x_i + bias) and
/// relu(−x_i + bias): with bias 0 it reconstructs its input exactly.
pub fn split_sign_sae(hook: &str, bias: f32, apply_b_dec_to_input: bool) -> glassbox_sae::saelens::Sae {
    let (d, m) = (64, 128);
    let (mut w_enc, mut w_dec) = (vec![0f32; d * m], vec![0f32; m * d]);
    for i in 0..d {
        (w_enc[i * m + i], w_enc[i * m + d + i]) = (1.0, -1.0);
        (w_dec[i * d + i], w_dec[(d + i) * d + i]) = (1.0, -1.0);
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("hook_name".into(), hook.into());
    glassbox_sae::saelens::Sae {
        architecture: glassbox_sae::saelens::Architecture::Standard,
        d_in: d,
        d_sae: m,
        w_enc,
        b_enc: vec![bias; m],
        w_dec,
        b_dec: vec![0.0; d],
        apply_b_dec_to_input,
        metadata,
    }
}

/// Every file under `dir` by path relative to it (`dir` itself, named "", when it is a file;
/// nothing when it does not exist).
pub fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), p);
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.is_file() {
        out.insert(String::new(), dir.to_path_buf());
    } else if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}
