//! `glassbox zoo export`: every model of a zoo as a standalone checkpoint `NAME.safetensors`
//! (its tensors under their own names, unstacked), with its labels, split and measured values
//! as safetensors metadata strings, the way Model-J (ProbeX's model dataset) ships its models.
//! The zoo's default target is recorded too, under [`TARGET_KEY`]. `zoo import` of the folder
//! without a labels CSV gives back the same models, labels, split and target for INR, MLP, CNN
//! and weights zoos.

use crate::store::Zoo;
use crate::{Error, Result};
use glassbox_core::io::{write_f32, HostTensor};
use std::collections::HashMap;
use std::path::Path;

/// The metadata entry that names the zoo's default target (the label readers predict); `zoo
/// import` reads it back and does not count it as a label.
pub const TARGET_KEY: &str = "glassbox_zoo_target";

/// The model's file name: its `name` label, else `model_NNNNN`.
pub fn model_name(zoo: &Zoo, i: usize) -> String {
    zoo.labels[i].get("name").and_then(|v| v.as_str()).map_or_else(|| format!("model_{i:05}"), String::from)
}

/// Write every model of `zoo` into `out`; returns the number written.
pub fn export(zoo: &Zoo, out: &Path) -> Result<usize> {
    let names: Vec<String> = (0..zoo.params.len()).map(|i| model_name(zoo, i)).collect();
    let mut sorted = names.clone();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::format(zoo.dir.join("labels.json"), format!("two models are named '{}': their checkpoints would overwrite each other", w[0])));
    }
    // Checkpoints already in the folder would join the collection when it is read back.
    if std::fs::read_dir(out).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "safetensors")))) {
        return Err(Error::format(out, "already holds .safetensors files: export into a new or empty folder"));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut split = vec!["test"; zoo.params.len()];
    for (name, members) in [("train", &zoo.spec.splits.train), ("val", &zoo.spec.splits.val)] {
        for &i in members {
            split[i] = name;
        }
    }
    for (i, params) in zoo.params.iter().enumerate() {
        let mut tensors = Vec::new();
        let mut offset = 0;
        for (name, shape) in &zoo.spec.tensors {
            let size: usize = shape.iter().product();
            tensors.push(HostTensor { name: name.clone(), shape: shape.clone(), data: params[offset..offset + size].to_vec() });
            offset += size;
        }
        let mut metadata: HashMap<String, String> = zoo.labels[i]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "name")
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), String::from)))
            .collect();
        metadata.insert("split".into(), split[i].into());
        metadata.insert("format".into(), "pt".into());
        if !zoo.spec.target.is_empty() {
            metadata.insert(TARGET_KEY.into(), zoo.spec.target.clone());
        }
        write_f32(&out.join(format!("{}.safetensors", names[i])), &tensors, metadata)?;
    }
    Ok(zoo.params.len())
}
