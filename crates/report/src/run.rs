//! Reading run folders (a folder with run.json, or a folder of such folders).

use crate::ReportError;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct Run {
    pub dir: PathBuf,
    pub json: serde_json::Map<String, Value>,
}

impl Run {
    pub fn load(dir: &Path) -> Result<Run, ReportError> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            // Writers outside Rust may put bare NaN/Infinity in; read those as null rather than give up.
            Err(e) => serde_json::from_str(&non_finite_as_null(&text)).map_err(|_| {
                ReportError::Format {
                    path: path.clone(),
                    msg: format!("invalid JSON: {e}"),
                }
            })?,
        };
        match value {
            Value::Object(json) => Ok(Run {
                dir: dir.to_path_buf(),
                json,
            }),
            _ => Err(ReportError::Format {
                path,
                msg: "expected a JSON object".into(),
            }),
        }
    }

    pub fn name(&self) -> String {
        self.json
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                self.dir
                    .file_name()
                    .map_or("run".into(), |n| n.to_string_lossy().to_string())
            })
    }

    /// What the x of [`Run::history`] counts: "epoch", "step" (language models) or "row".
    pub fn history_x(&self) -> &'static str {
        let rows = self.json.get("history").and_then(Value::as_array);
        let has = |k: &str| rows.is_some_and(|r| r.iter().any(|row| row.get(k).is_some_and(Value::is_number)));
        if has("epoch") {
            "epoch"
        } else if has("step") {
            "step"
        } else {
            "row"
        }
    }

    /// Numeric series of `history`, keyed by field, with x = epoch (or step, or index + 1).
    pub fn history(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let Some(rows) = self.json.get("history").and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let Some(obj) = row.as_object() else { continue };
            let x = obj
                .get("epoch")
                .or_else(|| obj.get("step"))
                .and_then(Value::as_f64)
                .unwrap_or((i + 1) as f64);
            for (k, v) in obj {
                if k == "epoch" || k == "step" || k == "seconds" {
                    continue;
                }
                let Some(y) = v.as_f64().filter(|y| y.is_finite()) else {
                    continue;
                };
                match series.iter_mut().find(|(n, _)| n == k) {
                    Some((_, pts)) => pts.push((x, y)),
                    None => series.push((k.clone(), vec![(x, y)])),
                }
            }
        }
        series
    }
}

/// `NaN`, `Infinity` and `-Infinity` outside strings replaced by `null`.
fn non_finite_as_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if c == '"' {
            in_string = true;
        } else if let Some(word) = ["-Infinity", "Infinity", "NaN"]
            .iter()
            .find(|w| rest.starts_with(**w))
        {
            out.push_str("null");
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Each folder is a run (has run.json) or holds runs one level down (sorted by name).
pub fn find_runs(dirs: &[PathBuf]) -> Result<Vec<Run>, ReportError> {
    let mut runs = Vec::new();
    for dir in dirs {
        if dir.join("run.json").is_file() {
            runs.push(Run::load(dir)?);
            continue;
        }
        let entries = std::fs::read_dir(dir).map_err(|source| ReportError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut subs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("run.json").is_file())
            .collect();
        if subs.is_empty() {
            return Err(ReportError::Format {
                path: dir.clone(),
                msg: "no run.json here or in its sub-folders".into(),
            });
        }
        subs.sort();
        for s in subs {
            runs.push(Run::load(&s)?);
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_tokens_become_null_outside_strings() {
        let t = r#"{"a": NaN, "b": [-Infinity, Infinity], "c": "NaN \" Infinity"}"#;
        let v: serde_json::Value = serde_json::from_str(&super::non_finite_as_null(t)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": null, "b": [null, null], "c": "NaN \" Infinity"})
        );
    }
}
