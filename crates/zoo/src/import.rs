//! `glassbox zoo import`: a folder of ordinary checkpoints plus their labels become a zoo.
//! Checkpoints are `NAME.safetensors` files or `NAME/model.safetensors` run folders (glassbox's
//! own, whose model.json then says what they are). Labels come from a CSV (one row per model,
//! the model's name in the first column and its labels in the others) or, without one, from
//! each file's safetensors metadata, as Model-J stores them (`dataset_chosen_targets`, the
//! hyper-parameters); values are numbers where they parse. The default target is --target, else
//! the CSV's second column, else the one `zoo export` recorded in the metadata, else
//! `dataset_chosen_targets` when every model has it, else none. Every checkpoint and every label is
//! checked before anything is written.

use crate::build::random_split;
use crate::cnn::Cnn;
use crate::mlp::{Activation, Mlp};
use crate::store::{create, write_shard, Splits, Zoo, ZooSpec};
use crate::{inr, Error, Result};
use glassbox_core::io::SafetensorsFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// The SIREN layout → "inr", the MLP layout → "mlp", the CNN layout → "cnn", anything
    /// else → "weights".
    Auto,
    Inr,
    Mlp,
    /// The CNNs of `mnist-cnn-acc` zoos (`convs.i.*` 3×3 kernels, then `head.*`), read as
    /// 28×28 grey-image classifiers with stride 2 and padding 1.
    Cnn,
    /// Any checkpoints with the same tensors (for weight readers such as ProbeX).
    Weights,
}

pub struct ImportOptions {
    pub family: Family,
    /// The label to predict by default; when None, the CSV's second column, or from metadata
    /// the target `zoo export` recorded, else `dataset_chosen_targets`.
    pub target: Option<String>,
    /// Seed of the 70/10/20 split, used when the CSV has no `split` column.
    pub seed: u64,
}

#[derive(Debug)]
pub struct ImportReport {
    pub models: usize,
    pub family: String,
    pub target: String,
}

/// One checkpoint found in the folder: its name and file.
pub fn checkpoints(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_file() && path.extension().is_some_and(|e| e == "safetensors") {
            found.push((name, path));
        } else if path.join("model.safetensors").is_file() {
            let name = path
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            found.push((name, path.join("model.safetensors")));
        }
    }
    found.sort();
    if let Some(w) = found.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::format(dir, format!("two checkpoints are named '{}': {} and {}; keep one", w[0].0, w[0].1.display(), w[1].1.display())));
    }
    if found.is_empty() {
        return Err(Error::format(
            dir,
            "no checkpoints: expected NAME.safetensors files or NAME/model.safetensors folders",
        ));
    }
    Ok(found)
}

/// One model's labels, as labels.json stores them.
pub type Labels = serde_json::Map<String, serde_json::Value>;

/// Rows of the labels CSV by model name: label → JSON value (a number when it parses).
fn read_labels(path: &Path) -> Result<(Vec<String>, BTreeMap<String, Labels>)> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| Error::format(path, format!("cannot read as CSV: {e}")))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::format(path, format!("bad header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.len() < 2 {
        return Err(Error::format(
            path,
            "needs a header with the model-name column and at least one label column",
        ));
    }
    let mut rows = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::format(path, format!("row {}: {e}", i + 2)))?;
        let name = record.get(0).unwrap_or_default().trim().to_string();
        let mut labels = serde_json::Map::new();
        for (key, value) in header.iter().zip(record.iter()).skip(1) {
            let value = value.trim();
            if value.is_empty() {
                continue; // an empty cell: the model has no such label
            }
            let json = value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map_or_else(|| serde_json::json!(value), |v| serde_json::json!(v));
            labels.insert(key.clone(), json);
        }
        if rows.insert(name.clone(), labels).is_some() {
            return Err(Error::format(path, format!("model '{name}' has two rows")));
        }
    }
    Ok((header, rows))
}

/// A file's safetensors metadata as labels (numbers where they parse), without the format tag
/// and the default target `zoo export` records (see [`recorded_target`]).
pub fn metadata_labels(file: &SafetensorsFile) -> Result<Labels> {
    let mut labels = serde_json::Map::new();
    for (key, value) in file.metadata()? {
        if key == "format" || key == crate::export::TARGET_KEY {
            continue;
        }
        let json = value.trim().parse::<f64>().ok().filter(|v| v.is_finite()).map_or_else(|| serde_json::json!(value), |v| serde_json::json!(v));
        labels.insert(key, json);
    }
    Ok(labels)
}

/// The tensors `{prefix}.i.weight`, `{prefix}.i.bias` for i = 0, 1, … then `head.weight`,
/// `head.bias`, in that order, when they are all the checkpoint holds.
fn chained_layout(tensors: &BTreeMap<String, Vec<usize>>, prefix: &str) -> Option<Vec<(String, Vec<usize>)>> {
    let mut ordered = Vec::new();
    let mut i = 0;
    while let (Some(w), Some(b)) = (tensors.get(&format!("{prefix}.{i}.weight")), tensors.get(&format!("{prefix}.{i}.bias"))) {
        ordered.push((format!("{prefix}.{i}.weight"), w.clone()));
        ordered.push((format!("{prefix}.{i}.bias"), b.clone()));
        i += 1;
    }
    ordered.push(("head.weight".into(), tensors.get("head.weight")?.clone()));
    ordered.push(("head.bias".into(), tensors.get("head.bias")?.clone()));
    (ordered.len() == tensors.len()).then_some(ordered)
}

/// The MLP whose tensors these are (`layers.i.*`, then `head.*`), or None.
fn mlp_layout(tensors: &BTreeMap<String, Vec<usize>>) -> Option<Mlp> {
    Mlp::from_tensors(&chained_layout(tensors, "layers")?)
}

/// The input side CNN checkpoints are read at: the readers probe with 28×28 images.
const CNN_SIDE: usize = 28;

/// The zoo CNN whose tensors these are (`convs.i.*` with 3×3 kernels, then `head.*`), or None.
fn cnn_layout(tensors: &BTreeMap<String, Vec<usize>>) -> Option<Cnn> {
    Cnn::from_tensors(&chained_layout(tensors, "convs")?, CNN_SIDE)
}

/// The activation of an MLP or CNN checkpoint: its labels' `activation`, else the file's metadata,
/// else the model.json beside it.
fn activation(
    labels: &serde_json::Map<String, serde_json::Value>,
    file: &SafetensorsFile,
) -> Result<Option<Activation>> {
    let from_json = || -> Option<String> {
        let card: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(file.path.with_file_name("model.json")).ok()?,
        )
        .ok()?;
        card.get("architecture")?
            .get("activation")?
            .as_str()
            .map(String::from)
    };
    let name = labels
        .get("activation")
        .and_then(|v| v.as_str())
        .map(String::from)
        .or_else(|| file.metadata().ok()?.get("activation").cloned())
        .or_else(from_json);
    match name {
        None => Ok(None),
        Some(a) => Activation::parse(&a).map(Some).ok_or_else(|| {
            Error::format(
                &file.path,
                format!("activation '{a}': readers handle relu and tanh networks"),
            )
        }),
    }
}

/// Import the checkpoints of `dir` into a zoo at `out`, labelled by `labels_csv` or, when None,
/// by each checkpoint's metadata.
pub fn import(
    dir: &Path,
    labels_csv: Option<&Path>,
    out: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let zoo = read(dir, labels_csv, opts)?;
    create(out, &zoo.spec, &zoo.labels)?;
    for s in 0..zoo.spec.n_shards() {
        let range = zoo.spec.shard_range(s);
        write_shard(out, &zoo.spec, s, &zoo.params[range.clone()], &vec![Vec::new(); range.len()])?;
    }
    Ok(ImportReport {
        models: zoo.params.len(),
        family: zoo.spec.family,
        target: zoo.spec.target,
    })
}

/// The checkpoints of `dir` as an in-memory zoo (nothing is written), labelled as [`import`]
/// labels them.
pub fn read(dir: &Path, labels_csv: Option<&Path>, opts: &ImportOptions) -> Result<Zoo> {
    let found = checkpoints(dir)?;
    let (header, mut rows, recorded) = match labels_csv {
        Some(csv) => {
            let (header, rows) = read_labels(csv)?;
            (header, rows, None)
        }
        None => {
            let mut rows = BTreeMap::new();
            let mut targets = Vec::new();
            for (name, path) in &found {
                let file = SafetensorsFile::open(path)?;
                rows.insert(name.clone(), metadata_labels(&file)?);
                targets.push(recorded_target(&file)?);
            }
            let recorded = if opts.target.is_some() { None } else { agreed_target(&targets, dir)? };
            (Vec::new(), rows, recorded)
        }
    };
    // Where label errors point: the CSV, or the folder whose files carry the metadata.
    let labels_source = labels_csv.unwrap_or(dir);
    for (name, path) in &found {
        if !rows.contains_key(name) {
            return Err(Error::format(
                labels_source,
                format!("no row for model '{name}' ({})", path.display()),
            ));
        }
    }
    if let Some(extra) = rows.keys().find(|n| !found.iter().any(|(f, _)| f == *n)) {
        return Err(Error::format(labels_source, format!("names model '{extra}', but {} has no {extra}.safetensors or {extra}/model.safetensors", dir.display())));
    }
    // The layout comes from the first checkpoint; every other must match it exactly.
    let (mut layout, mut family) = (Vec::<(String, Vec<usize>)>::new(), String::new());
    let (mut params, mut labels) = (
        Vec::with_capacity(found.len()),
        Vec::with_capacity(found.len()),
    );
    for (name, path) in &found {
        let file = SafetensorsFile::open(path)?;
        let shapes: BTreeMap<String, Vec<usize>> = file
            .entries()?
            .into_iter()
            .map(|(n, _, s)| (n, s))
            .collect();
        if layout.is_empty() {
            let siren = inr::tensors();
            let is_siren = shapes == siren.iter().cloned().collect::<BTreeMap<_, _>>();
            (family, layout) = match (opts.family, is_siren) {
                (Family::Inr, false) => {
                    return Err(Error::format(
                        path,
                        format!("not the SIREN 2-32-32-1 layout {siren:?}; it holds {shapes:?}"),
                    ))
                }
                (Family::Inr, true) | (Family::Auto, true) => ("inr".into(), siren),
                (Family::Weights, _) => ("weights".into(), shapes.clone().into_iter().collect()),
                (Family::Auto, false) => match (mlp_layout(&shapes), cnn_layout(&shapes)) {
                    (Some(net), _) => ("mlp".into(), net.tensors()),
                    (None, Some(net)) => ("cnn".into(), net.tensors()),
                    (None, None) => ("weights".into(), shapes.clone().into_iter().collect()),
                },
                (Family::Mlp, _) => {
                    let net = mlp_layout(&shapes).ok_or_else(|| Error::format(path, format!("not an MLP (layers.i.weight/bias chaining into head.weight/bias); it holds {shapes:?}")))?;
                    ("mlp".into(), net.tensors())
                }
                (Family::Cnn, _) => {
                    let net = cnn_layout(&shapes).ok_or_else(|| Error::format(path, format!("not a zoo CNN (convs.i.weight [out, in, 3, 3] and convs.i.bias chaining from one input channel into head.weight/bias); it holds {shapes:?}")))?;
                    ("cnn".into(), net.tensors())
                }
            };
        } else if shapes != layout.iter().cloned().collect::<BTreeMap<_, _>>() {
            let first = &found[0].1;
            let diff = layout
                .iter()
                .find(|(n, s)| shapes.get(n) != Some(s))
                .map_or_else(
                    || {
                        format!(
                            "extra tensors {:?}",
                            shapes
                                .keys()
                                .filter(|k| !layout.iter().any(|(n, _)| n == *k))
                                .collect::<Vec<_>>()
                        )
                    },
                    |(n, s)| format!("tensor '{n}' is {:?}, expected {s:?}", shapes.get(n)),
                );
            return Err(Error::format(
                path,
                format!("a different architecture from {}: {diff}", first.display()),
            ));
        }
        let mut flat = Vec::new();
        for (tensor, _) in &layout {
            flat.extend(file.tensor_f32(tensor)?.data);
        }
        let mut row = rows.remove(name).expect("checked above");
        if family == "mlp" || family == "cnn" {
            let act = activation(&row, &file)?.ok_or_else(|| Error::format(labels_source, format!("model '{name}' has no activation: add an 'activation' column (relu or tanh)")))?;
            row.insert("activation".into(), serde_json::json!(act.name()));
        }
        row.insert("name".into(), serde_json::json!(name));
        params.push(flat);
        labels.push(serde_json::Value::Object(row));
    }
    // Metadata without a recorded target, without Model-J's class list and no --target: a zoo
    // without a default target (enough for `glassbox trees`, which needs no labels).
    let target = match (&opts.target, header.get(1), recorded) {
        (Some(t), _, _) => t.clone(),
        (None, Some(h), _) => h.clone(),
        (None, None, Some(r)) => r,
        (None, None, None) if labels.iter().all(|l| l.get("dataset_chosen_targets").is_some()) => "dataset_chosen_targets".into(),
        (None, None, None) => String::new(),
    };
    // A class-list target (Model-J's) is a string; any other target must be a number.
    let class_list = |v: &serde_json::Value| v.as_str().is_some_and(|s| s.trim_start().starts_with('['));
    if let Some(i) = labels.iter().position(|l| !target.is_empty() && !l.get(&target).is_some_and(|v| v.is_number() || class_list(v))) {
        return Err(Error::format(
            labels_source,
            format!(
                "model '{}' has no numeric or class-list '{target}' (the target; choose another with --target)",
                found[i].0
            ),
        ));
    }
    let splits = if labels.iter().any(|l| l.get("split").is_some()) {
        let mut s = Splits {
            train: Vec::new(),
            val: Vec::new(),
            test: Vec::new(),
        };
        for (i, l) in labels.iter().enumerate() {
            match l.get("split").and_then(|v| v.as_str()) {
                Some("train") => s.train.push(i),
                Some("val") => s.val.push(i),
                Some("test") => s.test.push(i),
                other => {
                    return Err(Error::format(
                        labels_source,
                        format!(
                            "model '{}': split {other:?} is not train, val or test",
                            found[i].0
                        ),
                    ))
                }
            }
        }
        s
    } else {
        random_split(params.len(), 0.1, 0.2, opts.seed)
    };
    let spec = ZooSpec {
        family: family.clone(),
        generation: generation(dir, labels_csv, opts.seed, &family),
        tensors: layout,
        count: params.len(),
        shard_size: 500,
        splits,
        target: target.clone(),
        measured: Vec::new(),
    };
    Ok(Zoo { dir: dir.to_path_buf(), spec, params, measured: BTreeMap::new(), labels })
}

/// The default target a checkpoint's metadata records (`zoo export` writes it), if any.
fn recorded_target(file: &SafetensorsFile) -> Result<Option<String>> {
    Ok(file.metadata()?.get(crate::export::TARGET_KEY).cloned())
}

/// The target every checkpoint records, if they all record one; checkpoints that name different
/// targets are an error (a mix of exports), those that record none leave the choice to the
/// other rules.
fn agreed_target(targets: &[Option<String>], dir: &Path) -> Result<Option<String>> {
    let named: Vec<&String> = targets.iter().flatten().collect();
    if let Some(other) = named.iter().find(|t| **t != named[0]) {
        return Err(Error::format(dir, format!("the checkpoints' metadata names different default targets ('{}' and '{other}'): choose one with --target", named[0])));
    }
    Ok(if named.len() == targets.len() { named.first().map(|t| t.to_string()) } else { None })
}

/// zoo.json's `generation` of an imported zoo; for CNNs also how readers run them.
fn generation(dir: &Path, labels_csv: Option<&Path>, seed: u64, family: &str) -> serde_json::Value {
    let mut g = serde_json::json!({ "preset": "import", "source": dir.display().to_string(), "labels": labels_csv.map_or_else(|| "safetensors metadata".to_string(), |p| p.display().to_string()), "seed": seed });
    if family == "cnn" {
        for (key, value) in crate::cnn::geometry(CNN_SIDE).as_object().expect("an object") {
            g[key] = value.clone();
        }
    }
    g
}
