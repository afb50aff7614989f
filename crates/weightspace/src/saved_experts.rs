//! A trained mixture of ProbeX tree experts on disk: `experts.safetensors` (per expert
//! `expert.{t}.probes` U [d_W, r_U], `expert.{t}.proj` [r_V, d_H], `expert.{t}.encoder.weight`
//! / `.bias`, `expert.{t}.head.weight` / `.bias`, in PyTorch's module layout, and the router's
//! `router.centroids` [K, d_H·d_W]) beside `experts.json` (the layer, the class list, the ranks,
//! and which tree each router cluster goes to). Written to temporary names and renamed.

use crate::probex::{Probex, Ranks};
use crate::trees::Router;
use crate::{Error, Result};
use glassbox_core::io::{read_json, write_f32, write_json, HostTensor, SafetensorsFile};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExpertsInfo {
    /// The probed layer (tensor name or LoRA prefix) and its matrix shape.
    pub layer: String,
    pub d_h: usize,
    pub d_w: usize,
    /// The classes, in the order of the experts' outputs (sorted).
    pub classes: Vec<String>,
    pub ranks: Ranks,
    pub relu: bool,
    /// The expert each router cluster sends its models to.
    pub cluster_tree: Vec<usize>,
    /// Number of experts (one per tree).
    pub n_experts: usize,
    /// The label key the experts predict.
    pub target: String,
    /// Where they were trained.
    pub trained_on: String,
    /// Names of the models the experts and the router were fitted on (the training split).
    /// Empty in experts saved before the names were recorded.
    #[serde(default)]
    pub train_models: Vec<String>,
    /// Names of the validation models that chose each expert's best checkpoint.
    #[serde(default)]
    pub val_models: Vec<String>,
}

const NAMES: [&str; 6] = ["probes", "proj", "encoder.weight", "encoder.bias", "head.weight", "head.bias"];

fn shapes(info: &ExpertsInfo) -> [Vec<usize>; 6] {
    let Ranks { probes: ru, proj: rv, rep: rt } = info.ranks;
    let d_y = info.classes.len();
    [vec![info.d_w, ru], vec![rv, info.d_h], vec![rt, ru * rv], vec![rt], vec![d_y, rt], vec![d_y]]
}

pub fn save(dir: &Path, info: &ExpertsInfo, experts: &[Probex], router: &Router) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tensors = Vec::new();
    for (t, e) in experts.iter().enumerate() {
        for ((name, shape), data) in NAMES.iter().zip(shapes(info)).zip(&e.params) {
            tensors.push(HostTensor { name: format!("expert.{t}.{name}"), shape, data: data.clone() });
        }
    }
    tensors.push(HostTensor { name: "router.centroids".into(), shape: vec![router.centroids.len(), info.d_h * info.d_w], data: router.centroids.concat() });
    write_f32(&dir.join("experts.safetensors"), &tensors, HashMap::from([("format".to_string(), "glassbox-probex-experts".to_string())]))?;
    write_json(&dir.join("experts.json"), info)
}

pub fn load(dir: &Path) -> Result<(ExpertsInfo, Vec<Probex>, Router)> {
    let info_path = dir.join("experts.json");
    let info: ExpertsInfo = read_json(&info_path)?;
    let Ranks { probes, proj, rep } = info.ranks;
    if [probes, proj, rep, info.d_h, info.d_w, info.classes.len()].contains(&0) || info.cluster_tree.iter().any(|&t| t >= info.n_experts) {
        return Err(Error::format(&info_path, "zero ranks, layer size or classes, or a router cluster sent to a missing expert"));
    }
    let path = dir.join("experts.safetensors");
    let file = SafetensorsFile::open(&path)?;
    let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = file.tensor_f32(name)?;
        if t.shape != shape {
            return Err(Error::format(&path, format!("tensor '{name}' has shape {:?}, experts.json implies {shape:?}", t.shape)));
        }
        Ok(t.data)
    };
    let mut experts = Vec::new();
    for t in 0..info.n_experts {
        let mut e = Probex::new(info.d_h, info.d_w, info.classes.len(), info.ranks, info.relu, 0);
        for (k, (name, shape)) in NAMES.iter().zip(shapes(&info)).enumerate() {
            e.params[k] = get(&format!("expert.{t}.{name}"), &shape)?;
        }
        experts.push(e);
    }
    let d = info.d_h * info.d_w;
    let centroids = get("router.centroids", &[info.cluster_tree.len(), d])?;
    let router = Router { centroids: centroids.chunks(d.max(1)).map(<[f32]>::to_vec).collect() };
    Ok((info, experts, router))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experts_and_router_round_trip_and_a_wrong_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ranks = Ranks { probes: 2, proj: 3, rep: 4 };
        let info = ExpertsInfo { layer: "layers.1.weight".into(), d_h: 3, d_w: 5, classes: vec!["a".into(), "b".into()], ranks, relu: true, cluster_tree: vec![1, 0], n_experts: 2, target: "dataset_chosen_targets".into(), trained_on: "zoo".into(), train_models: vec!["m0".into()], val_models: vec!["m1".into()] };
        let experts = vec![Probex::new(3, 5, 2, ranks, true, 1), Probex::new(3, 5, 2, ranks, true, 2)];
        let router = Router { centroids: vec![vec![0.5; 15], vec![-1.0; 15]] };
        save(dir.path(), &info, &experts, &router).unwrap();
        let (info2, experts2, router2) = load(dir.path()).unwrap();
        assert_eq!(info2.cluster_tree, info.cluster_tree);
        assert_eq!((info2.train_models.clone(), info2.val_models.clone()), (info.train_models.clone(), info.val_models.clone()));
        assert_eq!(router2.centroids, router.centroids);
        for (a, b) in experts.iter().zip(&experts2) {
            assert_eq!(a.params, b.params);
        }
        // experts.json claiming another layer shape no longer matches the tensors.
        let bad = ExpertsInfo { d_w: 4, ..info };
        glassbox_core::io::write_json(&dir.path().join("experts.json"), &bad).unwrap();
        let err = load(dir.path()).err().unwrap().to_string();
        assert!(err.contains("experts.safetensors") && err.contains("expert.0.probes"), "{err}");
    }
}
