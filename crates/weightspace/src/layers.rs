//! One named layer of many models, the input of ProbeX and the tree tools (as in the ProbeX
//! reference code): a matrix X ∈ R^{d_H × d_W} per model in PyTorch `[out, in]` layout, raw
//! values, or a LoRA pair kept as its factors B [d_H, r] and A [r, d_W] (X = B A is never
//! formed).

use crate::{Error, Result};
use faer::MatRef;

#[derive(Clone, Debug)]
pub enum Layer {
    /// X, row-major d_H × d_W.
    Dense(Vec<f32>),
    /// X = B A: B row-major d_H × rank, A row-major rank × d_W.
    LowRank { b: Vec<f32>, a: Vec<f32>, rank: usize },
}

/// The same layer of every model of a collection.
#[derive(Clone, Debug)]
pub struct LayerSet {
    /// The tensor's name (or the LoRA pair's common prefix).
    pub name: String,
    pub d_h: usize,
    pub d_w: usize,
    pub layers: Vec<Layer>,
}

impl LayerSet {
    /// Dense layers from row-major matrices, checking every shape.
    pub fn dense(name: &str, d_h: usize, d_w: usize, layers: Vec<Vec<f32>>) -> Result<LayerSet> {
        for (i, x) in layers.iter().enumerate() {
            if x.len() != d_h * d_w {
                return Err(Error::invalid(format!(
                    "layer '{name}' of model {i} has {} values, expected {d_h} × {d_w}",
                    x.len()
                )));
            }
            if let Some(j) = x.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(format!("layer '{name}' of model {i} holds {} at entry {j}", x[j])));
            }
        }
        Ok(LayerSet { name: name.into(), d_h, d_w, layers: layers.into_iter().map(Layer::Dense).collect() })
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The flattened layers of the models `idx`, column-major d_H·d_W × n (one column per model).
    pub fn columns(&self, idx: &[usize]) -> Vec<f32> {
        use rayon::prelude::*;
        let d = self.d_h * self.d_w;
        let mut x = vec![0f32; d * idx.len()];
        x.par_chunks_mut(d.max(1)).zip(idx.par_iter()).for_each(|(col, &i)| col.copy_from_slice(&self.dense_of(i)));
        x
    }

    /// Model i's X as a dense row-major matrix (formed from the factors for a LoRA pair: only
    /// for the dense baseline, distances and routing, which need every entry anyway).
    pub fn dense_of(&self, i: usize) -> Vec<f32> {
        match &self.layers[i] {
            Layer::Dense(x) => x.clone(),
            Layer::LowRank { b, a, rank } => {
                let mut x = faer::Mat::<f32>::zeros(self.d_w, self.d_h);
                // Xᵀ (column-major d_W × d_H) has the memory of X row-major.
                faer::linalg::matmul::matmul(
                    x.as_mut(),
                    faer::Accum::Replace,
                    MatRef::from_row_major_slice(a, *rank, self.d_w).transpose(),
                    MatRef::from_row_major_slice(b, self.d_h, *rank).transpose(),
                    1.0,
                    faer::Par::Seq,
                );
                (0..self.d_h).flat_map(|r| x.col_as_slice(r).to_vec()).collect()
            }
        }
    }
}

/// The index of `name` in the lexicographically sorted list of weight-tensor names (ProbeX's
/// layer index counts `*.weight` tensors sorted as strings, so `layer.10` precedes `layer.2`).
pub fn sorted_weight_names(names: &[String]) -> Vec<String> {
    let mut w: Vec<String> = names.iter().filter(|n| n.ends_with("weight")).cloned().collect();
    w.sort();
    w
}

/// Multi-hot class targets over a fixed, alphabetically sorted class list (Model-J's
/// LabelEncoder).
#[derive(Clone, Debug, PartialEq)]
pub struct MultiHot {
    pub classes: Vec<String>,
    /// One row of 0/1 per model.
    pub rows: Vec<Vec<f32>>,
}

impl MultiHot {
    /// Encode each model's class names; `classes` is sorted first. An unknown name is an error
    /// naming the model and the class.
    pub fn encode(mut classes: Vec<String>, per_model: &[Vec<String>]) -> Result<MultiHot> {
        classes.sort();
        classes.dedup();
        let rows = per_model
            .iter()
            .enumerate()
            .map(|(i, names)| {
                let mut row = vec![0f32; classes.len()];
                for n in names {
                    let c = classes.binary_search(n).map_err(|_| {
                        Error::invalid(format!(
                            "model {i} is labelled with class '{n}', which is not one of the {} known classes ({}…)",
                            classes.len(),
                            classes.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
                        ))
                    })?;
                    row[c] = 1.0;
                }
                Ok(row)
            })
            .collect::<Result<_>>()?;
        Ok(MultiHot { classes, rows })
    }

    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
}

/// Parse a Python list of strings, as Model-J's `dataset_chosen_targets` metadata stores it
/// (`['apple', "baby's", 'bear']`): only string literals in single or double quotes,
/// separated by commas; anything else is an error (never evaluated).
pub fn parse_python_list(s: &str) -> std::result::Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("expected a list like ['a', 'b'], got {s:?}"))?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(quote) = chars.next() else { break };
        if quote != '\'' && quote != '"' {
            return Err(format!("expected a quoted class name in {s:?}"));
        }
        let mut name = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("unterminated string in {s:?}")),
                Some('\\') => name.push(chars.next().ok_or_else(|| format!("dangling escape in {s:?}"))?),
                Some(c) if c == quote => break,
                Some(c) => name.push(c),
            }
        }
        out.push(name);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => return Err(format!("unexpected '{c}' in {s:?}")),
        }
    }
    Ok(out)
}

/// The (up, down) tensor names of a LoRA pair with this prefix, in diffusers' (`P.lora.up.weight`,
/// `P.lora.down.weight`) or PEFT's (`P.lora_B.weight`, `P.lora_A.weight`) naming.
fn lora_pair(names: &[String], prefix: &str) -> Option<(String, String)> {
    [("lora.up.weight", "lora.down.weight"), ("lora_B.weight", "lora_A.weight")]
        .into_iter()
        .map(|(u, d)| (format!("{prefix}.{u}"), format!("{prefix}.{d}")))
        .find(|(u, d)| names.contains(u) && names.contains(d))
}

/// What a user's layer choice names: a tensor, a LoRA pair's prefix, or an index into the
/// sorted weight names (ProbeX's layer index).
pub enum LayerChoice {
    Tensor(String),
    Lora { prefix: String, up: String, down: String },
}

/// Resolve `choice` (a tensor name, a LoRA prefix, or a number = index into the sorted weight
/// names) against the tensors a model has; the error lists them.
pub fn resolve_layer(names: &[String], choice: &str, source: &str) -> Result<LayerChoice> {
    if names.iter().any(|n| n == choice) {
        return Ok(LayerChoice::Tensor(choice.to_string()));
    }
    if let Some((up, down)) = lora_pair(names, choice) {
        return Ok(LayerChoice::Lora { prefix: choice.to_string(), up, down });
    }
    let sorted = sorted_weight_names(names);
    if let Ok(i) = choice.parse::<usize>() {
        return sorted.get(i).map(|n| LayerChoice::Tensor(n.clone())).ok_or_else(|| {
            Error::invalid(format!("{source}: layer index {i} is out of range: there are {} weight tensors (indices 0..{})", sorted.len(), sorted.len().saturating_sub(1)))
        });
    }
    Err(Error::invalid(format!("{source} has no layer '{choice}'; its tensors are: {}", names.join(", "))))
}

/// A tensor shape as ProbeX's matrix: 1-D → [d, 1], ≥2-D → [shape\[0], the rest] (a 1×1
/// convolution [out, in, 1, 1] reads as [out, in]; a 3×3 one as [out, in·9], where the
/// reference code reinterprets its memory as [in·9, out]).
pub fn matrix_shape(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [d] => (*d, 1),
        [d, rest @ ..] => (*d, rest.iter().product()),
    }
}

/// One layer of every model of a zoo, as a [`matrix_shape`] matrix.
pub fn from_zoo(zoo: &glassbox_zoo::store::Zoo, choice: &str) -> Result<LayerSet> {
    let names: Vec<String> = zoo.spec.tensors.iter().map(|(n, _)| n.clone()).collect();
    let source = zoo.dir.join("zoo.json").display().to_string();
    let offset_of = |name: &str| -> (usize, Vec<usize>) {
        let mut offset = 0;
        for (n, shape) in &zoo.spec.tensors {
            if n == name {
                return (offset, shape.clone());
            }
            offset += shape.iter().product::<usize>();
        }
        unreachable!("resolved names exist")
    };
    match resolve_layer(&names, choice, &source)? {
        LayerChoice::Tensor(name) => {
            let (offset, shape) = offset_of(&name);
            let (d_h, d_w) = matrix_shape(&shape);
            let layers = zoo.params.iter().map(|p| p[offset..offset + d_h * d_w].to_vec()).collect();
            LayerSet::dense(&name, d_h, d_w, layers)
        }
        LayerChoice::Lora { prefix, up, down } => {
            let ((ou, su), (od, sd)) = (offset_of(&up), offset_of(&down));
            let ((d_h, rank), (rank_a, d_w)) = (matrix_shape(&su), matrix_shape(&sd));
            if rank != rank_a {
                return Err(Error::invalid(format!("{source}: LoRA pair '{prefix}' has up {su:?} and down {sd:?}, whose ranks differ")));
            }
            let layers = zoo
                .params
                .iter()
                .map(|p| Layer::LowRank { b: p[ou..ou + d_h * rank].to_vec(), a: p[od..od + rank * d_w].to_vec(), rank })
                .collect();
            Ok(LayerSet { name: prefix, d_h, d_w, layers })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_lists_parse_like_python() {
        assert_eq!(parse_python_list("['a', \"b's\", 'c d']").unwrap(), ["a", "b's", "c d"]);
        assert_eq!(parse_python_list("[]").unwrap(), Vec::<String>::new());
        assert!(parse_python_list("['a', 3]").is_err());
        assert!(parse_python_list("'a'").is_err());
        let names: Vec<String> = ["baby's", "say \"hi\"", "it's \"x\"", "a\\b", "potter's wheel, large"].map(String::from).into();
        assert_eq!(parse_python_list(&glassbox_zoo::tree_world::python_list(&names)).unwrap(), names);
    }

    #[test]
    fn multi_hot_uses_the_sorted_class_list_and_refuses_unknown_classes() {
        let m = MultiHot::encode(vec!["b".into(), "a".into(), "c".into()], &[vec!["c".into(), "a".into()]]).unwrap();
        assert_eq!(m.classes, ["a", "b", "c"]);
        assert_eq!(m.rows[0], [1.0, 0.0, 1.0]);
        let err = MultiHot::encode(vec!["a".into()], &[vec!["zebra".into()]]).unwrap_err();
        assert!(err.to_string().contains("'zebra'"), "{err}");
    }

    #[test]
    fn weight_names_sort_as_strings() {
        let names: Vec<String> = ["layer.2.weight", "layer.10.weight", "layer.2.bias", "classifier.weight"].map(String::from).into();
        assert_eq!(sorted_weight_names(&names), ["classifier.weight", "layer.10.weight", "layer.2.weight"]);
    }

    #[test]
    fn low_rank_layers_form_b_times_a() {
        // B = [[1],[2]], A = [[3, 4, 5]] → X = [[3,4,5],[6,8,10]].
        let set = LayerSet { name: "x".into(), d_h: 2, d_w: 3, layers: vec![Layer::LowRank { b: vec![1.0, 2.0], a: vec![3.0, 4.0, 5.0], rank: 1 }] };
        assert_eq!(set.dense_of(0), [3.0, 4.0, 5.0, 6.0, 8.0, 10.0]);
    }
}
