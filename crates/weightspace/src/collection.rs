//! The models ProbeX and `glassbox trees` read: one layer of each, their labels and a split,
//! from a zoo folder or straight from a folder of checkpoints. From checkpoints only the named
//! layer is kept in memory (a real layer is megabytes of a much larger file), plus StatNN's
//! statistics when asked; the checkpoints may differ everywhere else.

use crate::layers::{from_zoo, matrix_shape, parse_python_list, resolve_layer, Layer, LayerChoice, LayerSet, MultiHot};
use crate::statnn::{probex_features, standardised_features, zoo_features};
use crate::{Error, Result};
use glassbox_core::io::SafetensorsFile;
use glassbox_zoo::build::random_split;
use glassbox_zoo::import::{checkpoints, metadata_labels};
use glassbox_zoo::store::{self, Splits};
use std::path::{Path, PathBuf};

pub struct Collection {
    pub source: PathBuf,
    pub names: Vec<String>,
    /// The tensors of the (first) model.
    pub tensor_names: Vec<String>,
    pub data: LayerSet,
    /// Per model its labels (zoo labels, or the checkpoint's metadata).
    pub labels: Vec<serde_json::Value>,
    pub splits: Splits,
    /// The class list the zoo declares (else the classes named in the labels are used).
    pub classes: Option<Vec<String>>,
    /// StatNN's features of every model (unstandardised), when asked for.
    statnn: Option<Vec<Vec<f32>>>,
    zoo: Option<glassbox_zoo::store::Zoo>,
}

impl Collection {
    /// Read `path` (a zoo folder with zoo.json, or a folder of checkpoints) keeping `layer`;
    /// `with_statnn` also computes StatNN's statistics. `seed` makes the split of checkpoints
    /// without a `split` label.
    pub fn open(path: &Path, layer: &str, with_statnn: bool, seed: u64) -> Result<Collection> {
        if path.join("zoo.json").is_file() {
            let zoo = store::load(path)?;
            let data = from_zoo(&zoo, layer)?;
            let names = (0..zoo.params.len()).map(|i| glassbox_zoo::export::model_name(&zoo, i)).collect();
            let classes = zoo.spec.generation.get("classes").and_then(|c| c.as_array()).map(|c| c.iter().filter_map(|v| v.as_str().map(String::from)).collect());
            let tensor_names = zoo.spec.tensors.iter().map(|(n, _)| n.clone()).collect();
            return Ok(Collection { source: path.to_path_buf(), names, tensor_names, data, labels: zoo.labels.clone(), splits: zoo.spec.splits.clone(), classes, statnn: None, zoo: Some(zoo) });
        }
        let found = checkpoints(path)?;
        let (mut names, mut labels, mut layers) = (Vec::new(), Vec::new(), Vec::new());
        let mut statnn = Vec::new();
        let mut shape: Option<(usize, usize, PathBuf)> = None;
        let mut set_name = String::new();
        let mut first_tensors = Vec::new();
        for (name, file_path) in &found {
            let file = SafetensorsFile::open(file_path)?;
            let entries = file.entries()?;
            let tensor_names: Vec<String> = entries.iter().map(|(n, _, _)| n.clone()).collect();
            let shape_of = |n: &str| entries.iter().find(|(e, _, _)| e == n).map(|(_, _, s)| s.clone()).unwrap_or_default();
            let source = file_path.display().to_string();
            if first_tensors.is_empty() {
                first_tensors = tensor_names.clone();
            }
            let choice = resolve_layer(&tensor_names, layer, &source)?;
            // An index could name different tensors in differently built checkpoints: every file
            // must resolve to what the first one did.
            let resolved = match &choice {
                LayerChoice::Tensor(t) => t.clone(),
                LayerChoice::Lora { prefix, .. } => prefix.clone(),
            };
            if let Some((_, _, first)) = &shape {
                if resolved != set_name {
                    return Err(Error::format(file_path, format!("layer '{layer}' is '{resolved}' here but '{set_name}' in {}: name the layer instead of giving an index", first.display())));
                }
            }
            let (layer_value, d_h, d_w) = match choice {
                LayerChoice::Tensor(t) => {
                    let (d_h, d_w) = matrix_shape(&shape_of(&t));
                    set_name = t.clone();
                    (Layer::Dense(file.tensor_f32(&t)?.data), d_h, d_w)
                }
                LayerChoice::Lora { prefix, up, down } => {
                    let ((d_h, rank), (rank_a, d_w)) = (matrix_shape(&shape_of(&up)), matrix_shape(&shape_of(&down)));
                    if rank != rank_a {
                        return Err(Error::format(file_path, format!("LoRA pair '{prefix}': up is {:?} and down {:?}, whose ranks differ", shape_of(&up), shape_of(&down))));
                    }
                    set_name = prefix;
                    (Layer::LowRank { b: file.tensor_f32(&up)?.data, a: file.tensor_f32(&down)?.data, rank }, d_h, d_w)
                }
            };
            let values: Box<dyn Iterator<Item = &f32>> = match &layer_value {
                Layer::Dense(x) => Box::new(x.iter()),
                Layer::LowRank { b, a, .. } => Box::new(b.iter().chain(a)),
            };
            if let Some(v) = values.copied().find(|v| !v.is_finite()) {
                return Err(Error::format(file_path, format!("layer '{layer}' holds {v}: the weights must be finite")));
            }
            match &shape {
                None => shape = Some((d_h, d_w, file_path.clone())),
                Some((h, w, first)) if (*h, *w) != (d_h, d_w) => {
                    return Err(Error::format(file_path, format!("layer '{layer}' is {d_h} × {d_w} here but {h} × {w} in {}: one collection must share the probed layer's shape (models of another architecture form their own collection)", first.display())));
                }
                Some(_) => {}
            }
            if with_statnn {
                let mut kept: Vec<&(String, _, Vec<usize>)> = entries.iter().filter(|(n, _, _)| !crate::statnn::is_fine_tune_head(n)).collect();
                kept.sort_by(|a, b| a.0.cmp(&b.0));
                let mut flat = Vec::new();
                let mut sizes = Vec::new();
                for (n, _, _) in kept {
                    let t = file.tensor_f32(n)?;
                    sizes.push(t.data.len());
                    flat.extend(t.data);
                }
                statnn.push(probex_features(&flat, &sizes));
            }
            names.push(name.clone());
            labels.push(serde_json::Value::Object(metadata_labels(&file)?));
            layers.push(layer_value);
        }
        let (d_h, d_w, _) = shape.expect("checkpoints() returns at least one");
        if with_statnn && statnn.iter().any(|f| f.len() != statnn[0].len()) {
            return Err(Error::format(path, "StatNN needs the same tensors in every checkpoint; these differ (run without the baselines)"));
        }
        let splits = split_from_labels(&labels, &names, path)?.unwrap_or_else(|| random_split(names.len(), 0.1, 0.2, seed));
        Ok(Collection { source: path.to_path_buf(), names, tensor_names: first_tensors, data: LayerSet { name: set_name, d_h, d_w, layers }, labels, splits, classes: None, statnn: with_statnn.then_some(statnn), zoo: None })
    }

    /// The models' class lists under `key` (a Python list string, as Model-J, or a JSON array).
    pub fn class_lists(&self, key: &str) -> Result<Vec<Vec<String>>> {
        self.labels
            .iter()
            .zip(&self.names)
            .map(|(l, name)| match l.get(key) {
                Some(serde_json::Value::String(s)) => parse_python_list(s).map_err(|e| Error::format(&self.source, format!("model '{name}': '{key}': {e}"))),
                Some(serde_json::Value::Array(a)) => a.iter().map(|v| v.as_str().map(String::from).ok_or_else(|| Error::format(&self.source, format!("model '{name}': '{key}' holds a non-string")))).collect(),
                _ => Err(Error::format(&self.source, format!("model '{name}' has no class list '{key}'"))),
            })
            .collect()
    }

    /// Multi-hot targets over `classes` (default: the zoo's declared classes, else every class
    /// named); an unknown class is an error naming the model.
    pub fn targets(&self, key: &str, classes: Option<Vec<String>>) -> Result<MultiHot> {
        let lists = self.class_lists(key)?;
        let classes = classes.or_else(|| self.classes.clone()).unwrap_or_else(|| lists.iter().flatten().cloned().collect());
        MultiHot::encode(classes, &lists).map_err(|e| {
            let msg = e.to_string();
            // Name the model rather than its index.
            let named = lists.iter().position(|l| l.iter().any(|c| msg.contains(&format!("'{c}'")))).map_or(msg.clone(), |i| msg.replacen(&format!("model {i}"), &format!("model '{}'", self.names[i]), 1));
            Error::format(&self.source, named)
        })
    }

    /// The zoo, when the collection is one.
    pub fn zoo(&self) -> Option<&glassbox_zoo::store::Zoo> {
        self.zoo.as_ref()
    }

    /// Every model's tree from its `tree` label (numbers or names, numbered 0.. in sorted
    /// order), when every model has one.
    pub fn known_trees(&self) -> Option<Vec<usize>> {
        let keys: Vec<String> = self.labels.iter().map(|l| l.get("tree").and_then(|v| v.as_f64().map(|f| format!("{f:020.6}")).or_else(|| v.as_str().map(String::from)))).collect::<Option<_>>()?;
        let mut distinct = keys.clone();
        distinct.sort();
        distinct.dedup();
        Some(keys.iter().map(|k| distinct.binary_search(k).expect("listed")).collect())
    }

    /// StatNN's input, standardised with the training split's statistics.
    pub fn statnn(&self) -> Result<LayerSet> {
        match (&self.zoo, &self.statnn) {
            (Some(zoo), _) => zoo_features(zoo, &self.splits.train),
            (None, Some(f)) => standardised_features(f, &self.splits.train),
            (None, None) => Err(Error::invalid("StatNN features were not read (open the collection with with_statnn)")),
        }
    }
}

/// The split the models' `split` labels give, if any has one (then all must).
fn split_from_labels(labels: &[serde_json::Value], names: &[String], source: &Path) -> Result<Option<Splits>> {
    if labels.iter().all(|l| l.get("split").is_none()) {
        return Ok(None);
    }
    let mut s = Splits { train: Vec::new(), val: Vec::new(), test: Vec::new() };
    for (i, l) in labels.iter().enumerate() {
        match l.get("split").and_then(|v| v.as_str()) {
            Some("train") => s.train.push(i),
            Some("val") => s.val.push(i),
            Some("test") => s.test.push(i),
            other => return Err(Error::format(source, format!("model '{}': split {other:?} is not train, val or test", names[i]))),
        }
    }
    Ok(Some(s))
}
