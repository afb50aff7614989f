//! scikit-learn's 8x8 digits CSV: 64 pixel counts 0-16 then the label, one sample per line.

use super::{read_maybe_gz, Dataset, Targets};
use crate::{Error, Result};
use std::path::Path;

/// Read the gzipped (or plain) CSV: pixels scaled by 1/16 to [0, 1], 8x8 images, 10 classes.
/// Line numbers in errors count every line of the file, blank ones included.
pub fn load_digits(path: &Path) -> Result<Dataset> {
    let bytes = read_maybe_gz(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::format(path, "not UTF-8 text"))?;
    let (mut inputs, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return Err(Error::format(path, format!("line {}: {} fields, expected 65", i + 1, fields.len())));
        }
        for (j, f) in fields.iter().enumerate() {
            let v: u32 = f.trim().parse().map_err(|_| Error::format(path, format!("line {}: '{f}' is not an integer", i + 1)))?;
            let max = if j < 64 { 16 } else { 9 };
            if v > max {
                return Err(Error::format(path, format!("line {}: value {v} in column {} exceeds {max}", i + 1, j + 1)));
            }
            if j < 64 { inputs.push(v as f32 / 16.0) } else { labels.push(v) }
        }
    }
    if labels.is_empty() {
        return Err(Error::format(path, "no samples"));
    }
    Ok(Dataset {
        name: "digits".into(),
        inputs,
        input_dim: 64,
        image_shape: Some([1, 8, 8]),
        targets: Targets::Classes { labels, n_classes: 10 },
    })
}
