//! What every paper reproduction shares: named acceptance checks, the outcome written to
//! run.json, the options a `glassbox repro` command passes, and training one model of it.

use crate::data::Split;
use crate::dataspec::DataSpec;
use crate::io::write_json;
use crate::model::{Architecture, Model};
use crate::train::{self, TrainConfig};
use crate::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One acceptance threshold and whether the measurement met it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    /// The measured numbers and the threshold, in words.
    pub detail: String,
    pub pass: bool,
}

impl Check {
    pub fn new(name: &str, pass: bool, detail: String) -> Check {
        Check { name: name.into(), detail, pass }
    }
}

/// What an experiment measured: a table of rows (free-form JSON) and the checks.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    pub rows: Vec<serde_json::Value>,
    pub checks: Vec<Check>,
    pub wall_time_s: f64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.pass)
    }

    /// The method comparisons among the rows: (metric, [(method, value)]).
    pub fn method_bars(&self) -> Vec<(String, Vec<(String, f64)>)> {
        self.rows
            .iter()
            .filter_map(|r| r.get("methods"))
            .map(|m| {
                let metric = m.get("metric").and_then(|v| v.as_str()).unwrap_or("value").to_string();
                let bars = m.get("bars").and_then(|b| b.as_array()).into_iter().flatten().filter_map(|b| Some((b.get(0)?.as_str()?.to_string(), b.get(1)?.as_f64().unwrap_or(f64::NAN)))).collect();
                (metric, bars)
            })
            .collect()
    }

    /// run.json in `dir`: the checks become metrics (1 pass, 0 fail) so the report shows them,
    /// and so does a comparison of methods (a row `{"methods": {"metric": …, "bars": [[method,
    /// value], …]}}`, which `glassbox repro` also draws as a bar chart).
    pub fn write(&self, dir: &Path, command: &str) -> Result<()> {
        let mut metrics: serde_json::Map<String, serde_json::Value> =
            self.checks.iter().map(|c| (c.name.clone(), serde_json::Value::from(c.pass as u8))).collect();
        for (metric, bars) in self.method_bars() {
            for (method, value) in bars {
                metrics.insert(format!("{metric}: {method}"), serde_json::json!(value));
            }
        }
        let run = serde_json::json!({
            "name": self.name,
            "command": command,
            "wall_time_s": self.wall_time_s,
            "versions": { "glassbox": env!("CARGO_PKG_VERSION") },
            "metrics": metrics,
            "checks": self.checks,
            "rows": self.rows,
        });
        write_json(&dir.join("run.json"), &run)
    }
}

/// Where an experiment reads data and writes its models.
#[derive(Clone, Debug)]
pub struct ExperimentOptions {
    pub data_dir: Option<PathBuf>,
    pub out: PathBuf,
    pub seeds: Vec<u64>,
    pub progress: bool,
}

/// Train one model of a reproduction; its checkpoint goes to `out/name`.
#[allow(clippy::too_many_arguments)]
pub fn fit(arch: Architecture, data: &Split, spec: &DataSpec, cfg: &TrainConfig, seed: u64, out: &Path, name: &str, progress: bool) -> Result<Model> {
    let opts = train::RunOptions {
        out_dir: out.join(name),
        name: name.into(),
        command: format!("glassbox repro ({name})"),
        seed,
        resume: false,
        progress,
        stop_after_epochs: None,
        save_every: cfg.epochs,
    };
    Ok(train::train(arch, data, spec, cfg, &opts)?.model)
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The middle value (the upper one of an even count), for thresholds judged on the median over
/// seeds; NaN for no values.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// For tests: the real data folder from GLASSBOX_DATA, or None (the test prints "skipped")
/// when it is not set. With GLASSBOX_REQUIRE_DATA=1 (as in CI) a missing folder panics, so
/// the test fails instead of skipping.
pub fn test_data_dir() -> Option<PathBuf> {
    let require = std::env::var("GLASSBOX_REQUIRE_DATA").is_ok_and(|v| v == "1");
    match std::env::var_os("GLASSBOX_DATA").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        other => {
            assert!(
                !require,
                "GLASSBOX_REQUIRE_DATA=1 but GLASSBOX_DATA is {other:?}, not an existing folder: \
                 set GLASSBOX_DATA to a folder holding the data sets (`glassbox data fetch all --to DIR`)"
            );
            eprintln!("skipped: GLASSBOX_DATA not set");
            None
        }
    }
}
