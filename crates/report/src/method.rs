//! Which method produced a run, the order the report shows the methods in, what each method
//! section is for, and the few numbers that sum a run up on its overview card.

use crate::run::Run;
use crate::fmt_num;
use serde_json::{Map, Value};

/// The method groups of the report, in the order of the work: models are trained, then read
/// (bilinear, LIB, SAEs), then whole collections of models are read (zoos, trees), then
/// language models; reproductions and unknown runs last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Method {
    Training,
    Bilinear,
    Lib,
    Sae,
    Readers,
    ProbeX,
    LanguageModels,
    Repro,
    Other,
}

impl Method {
    /// The id of the group's section (`group-…`).
    pub fn slug(self) -> &'static str {
        match self {
            Method::Training => "training",
            Method::Bilinear => "bilinear",
            Method::Lib => "lib",
            Method::Sae => "sae",
            Method::Readers => "readers",
            Method::ProbeX => "probex",
            Method::LanguageModels => "lm",
            Method::Repro => "repro",
            Method::Other => "other",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Method::Training => "Trained models",
            Method::Bilinear => "Bilinear layers read from their weights",
            Method::Lib => "Local Interaction Basis (LIB against PCA)",
            Method::Sae => "Sparse autoencoders and Universal SAEs",
            Method::Readers => "Model zoos and readers (ProbeGen)",
            Method::ProbeX => "Model trees and ProbeX",
            Method::LanguageModels => "Language models and SAE dashboards",
            Method::Repro => "Paper reproductions",
            Method::Other => "Other runs",
        }
    }

    /// A short name for the navigation and the cards.
    pub fn short(self) -> &'static str {
        match self {
            Method::Training => "Trained models",
            Method::Bilinear => "Bilinear",
            Method::Lib => "LIB",
            Method::Sae => "SAEs",
            Method::Readers => "Zoos and readers",
            Method::ProbeX => "Trees and ProbeX",
            Method::LanguageModels => "Language models",
            Method::Repro => "Reproductions",
            Method::Other => "Other",
        }
    }

    /// What the group's runs show and what to look at first.
    pub fn howto(self) -> &'static str {
        match self {
            Method::Training => "The models every analysis below starts from, each trained with glassbox train and saved as a checkpoint. Check that the test accuracy is high and the curves have settled before trusting an analysis of the model: a test loss far above the training loss means the model memorised its training set rather than learning the task.",
            Method::Bilinear => "A bilinear layer computes each class's logit as a quadratic form xᵀQx of its input, so its function can be read straight from the weights. The eigenvectors of Q are the input patterns the class responds to and the eigenvalues say how strongly (positive: for the class, negative: against it). The truncation curve shows how much accuracy the top-k eigenvectors per class keep: when a few suffice, the layer is low-rank and its eigenvector images tell most of its story.",
            Method::Lib => "The Local Interaction Basis rotates each layer's activations into the directions the later layers actually use, ordered by importance, with PCA as the baseline. The fewer features and edges a basis needs to keep the accuracy (within the tolerance), the more compact the description of the model. For modular addition, a Fourier purity near 1 means a feature computes with a single frequency. Read the gaps between LIB and PCA with the caveat under each run.",
            Method::Sae => "A sparse autoencoder rewrites a layer's activations as a sparse sum of dictionary directions (latents); a Universal SAE shares one dictionary between several models. R² (explained variance) says how much of the activations the codes rebuild: in the R² matrix the diagonal is each model's own reconstruction and the other cells rebuild one model from another's codes. A firing entropy near 1 marks a latent that fires alike in every model, a concept they share; concept cards show what drives such latents.",
            Method::Readers => "A model zoo holds many small trained networks, each with a property to predict (here: which glyph an INR draws). A reader feeds learned probe inputs to every model and predicts the property from the answers; only the probes and the reader's head learn. ProbeGen makes its probes with a shared generator, vanilla probing learns them directly. The score is the test accuracy at the epoch with the best validation accuracy.",
            Method::ProbeX => "Models fine-tuned from one root form a model tree. The trees are recovered from the distances between one layer's weights (Ward clustering, the dendrogram), then one ProbeX expert per tree reads from that layer which classes each fine-tune was trained on, against the dense, StatNN, linear and mixed baselines. Chance is 0.5 per class; an expert used on another tree's models (cross-tree) should fall to chance.",
            Method::LanguageModels => "Language models and the sparse autoencoders at their hooks. An SAE evaluation splices the SAE into the model: explained variance says how much of the hook's activations it rebuilds, ce_loss_score how much of the next-token loss it keeps compared with zero-ablating the hook (1 is perfect), L0 how many latents fire per token. The feature dashboards show what each latent responds to.",
            Method::Repro => "Paper reproductions at small scale: each named check compares a measured number with the paper's threshold and passes (1) or fails (0); the numbers and figures behind them follow.",
            Method::Other => "Runs of a kind this report does not know: their numbers and figures as stored.",
        }
    }
}

/// A run's method, its place within the method's group and what kind of run it is in words.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Kind {
    pub method: Method,
    /// Order within the group (e.g. a language model before its SAE's evaluation).
    pub rank: u8,
    pub what: String,
}

fn kind(method: Method, rank: u8, what: &str) -> Kind {
    Kind { method, rank, what: what.to_string() }
}

/// The method of a run: from run.json's `kind` when it names one, otherwise from what the
/// run.json of each glassbox command holds.
pub(crate) fn classify(run: &Run) -> Kind {
    let j = &run.json;
    let has = |k: &str| j.contains_key(k);
    let metrics = metrics(run);
    let metric = |k: &str| metrics.contains_key(k);
    let name = run.name().to_lowercase();
    if let Some(k) = j.get("kind").and_then(Value::as_str).and_then(from_kind_field) {
        return k;
    }
    if has("feature_dashboards") {
        return kind(Method::LanguageModels, 3, "SAE feature dashboards");
    }
    if has("lib") {
        return kind(Method::Lib, 0, "LIB against PCA");
    }
    if has("bilinear") {
        return kind(Method::Bilinear, 0, "bilinear layer from its weights");
    }
    if has("correlation_by_k") || has("low_rank_mlp") {
        return kind(Method::LanguageModels, 4, "bilinear MLP of a language model");
    }
    if has("universality") {
        return kind(Method::Sae, 0, "Universal SAE");
    }
    if metric("ce_loss_score") || metric("kl_div_score") || metric("embedding_score") || name.starts_with("sae evaluation") {
        return kind(Method::LanguageModels, 2, "SAE evaluation");
    }
    if name.starts_with("topk sae") || (metric("explained_variance") && metric("l0")) {
        return kind(Method::Sae, 1, "TopK SAE");
    }
    if let Some((method, _)) = name.split_once(" reader on ") {
        let method = match method {
            "probegen" => "ProbeGen",
            m => m,
        };
        return kind(Method::Readers, 0, &format!("{method} reader"));
    }
    if metrics.keys().any(|k| k.starts_with("test_") && k.ends_with("_at_best_val")) {
        return kind(Method::Readers, 0, "model reader");
    }
    if name.starts_with("model trees") {
        return kind(Method::ProbeX, 0, "model trees");
    }
    if name.starts_with("probex") || metric("routing accuracy") {
        return kind(Method::ProbeX, 1, "ProbeX experts");
    }
    if has("checks") && has("rows") {
        return kind(Method::Repro, 0, "reproduction");
    }
    let config = j.get("config");
    if config.and_then(|c| c.get("architecture")).is_some() {
        if config.and_then(|c| c.get("task")).is_some() {
            return kind(Method::Training, 0, "trained model");
        }
        return kind(Method::LanguageModels, 0, "language model");
    }
    if has("history") && (metric("test_accuracy") || metric("test_loss")) {
        return kind(Method::Training, 0, "trained model");
    }
    kind(Method::Other, 0, "run")
}

/// run.json's `kind`, when it names a method the report knows.
fn from_kind_field(k: &str) -> Option<Kind> {
    let k = k.to_lowercase().replace(['_', ' '], "-");
    Some(match k.as_str() {
        "train" | "training" | "model" => kind(Method::Training, 0, "trained model"),
        "bilinear" => kind(Method::Bilinear, 0, "bilinear layer from its weights"),
        "lib" => kind(Method::Lib, 0, "LIB against PCA"),
        "usae" => kind(Method::Sae, 0, "Universal SAE"),
        "sae" => kind(Method::Sae, 1, "sparse autoencoder"),
        "zoo" | "probe" | "reader" | "probegen" => kind(Method::Readers, 0, "model reader"),
        "trees" => kind(Method::ProbeX, 0, "model trees"),
        "probex" => kind(Method::ProbeX, 1, "ProbeX experts"),
        "lm" | "lm-train" | "language-model" => kind(Method::LanguageModels, 0, "language model"),
        "sae-eval" => kind(Method::LanguageModels, 2, "SAE evaluation"),
        "sae-dashboard" | "dashboard" | "feature-dashboards" => kind(Method::LanguageModels, 3, "SAE feature dashboards"),
        "repro" | "reproduction" => kind(Method::Repro, 0, "reproduction"),
        _ => return None,
    })
}

/// Runs in report order: by method, then by rank within it, then by data set (in order of
/// first appearance) and in the order given. Returns indices into `runs` with their kinds.
pub(crate) fn order(runs: &[Run]) -> Vec<(usize, Kind)> {
    let kinds: Vec<Kind> = runs.iter().map(classify).collect();
    let datasets: Vec<String> = runs.iter().map(dataset).collect();
    let first_seen = |d: &str| datasets.iter().position(|x| x == d).unwrap_or(0);
    let mut idx: Vec<usize> = (0..runs.len()).collect();
    idx.sort_by_key(|&i| (kinds[i].method, kinds[i].rank, first_seen(&datasets[i]), i));
    idx.into_iter().map(|i| (i, kinds[i].clone())).collect()
}

/// The data set a training run used (empty when unknown).
fn dataset(run: &Run) -> String {
    run.json
        .get("config")
        .and_then(|c| c.pointer("/task/data/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn metrics(run: &Run) -> Map<String, Value> {
    run.json.get("metrics").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// One headline number of a card: label, value as shown, and optional hover text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Headline {
    pub label: String,
    pub value: String,
    pub hint: Option<String>,
}

fn headline(label: &str, value: String) -> Headline {
    Headline { label: label.to_string(), value, hint: None }
}

/// A share in [0, 1] as a percentage with one decimal (two when one would round up to 100).
pub(crate) fn pct(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let p = v * 100.0;
    if p < 100.0 && format!("{p:.1}") == "100.0" {
        format!("{p:.2} %")
    } else if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

/// A number to three significant digits (integers whole, with thin separators).
pub(crate) fn short(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push('\u{202f}');
            }
            out.push(c);
        }
        return if v < 0.0 { format!("-{out}") } else { out };
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    fmt_num(format!("{v:.decimals$}").parse().unwrap_or(v))
}

/// The 2-4 numbers that sum a run up, chosen per method; the first numeric metrics when the
/// method's own are missing.
pub(crate) fn headlines(run: &Run, kind: &Kind) -> Vec<Headline> {
    let m = metrics(run);
    let num = |k: &str| m.get(k).and_then(Value::as_f64);
    let mut out = Vec::new();
    let mut push = |label: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push(headline(label, v));
        }
    };
    match (kind.method, kind.what.as_str()) {
        (Method::Training, _) => {
            push("test accuracy", num("test_accuracy").map(pct));
            push("test loss", num("test_loss").map(short));
            push("train loss", num("train_loss").map(short));
            push("epochs", last_epoch(run).map(short));
        }
        (Method::LanguageModels, "language model") => {
            push("validation loss", num("val_loss").map(short));
            push("train loss", num("last_step_train_loss").or(num("train_loss")).map(short));
            push("steps", last_epoch(run).map(short));
        }
        (Method::Bilinear, _) => {
            // On a subset of the test split the accuracy is named for it: first{n}_test_accuracy.
            let subset = m.iter().find_map(|(k, v)| Some((k.strip_prefix("first")?.strip_suffix("_test_accuracy")?.to_string(), v.as_f64()?)));
            match (num("test_accuracy"), subset) {
                (Some(a), _) => push("test accuracy", Some(pct(a))),
                (None, Some((n, a))) => push(&format!("accuracy, first {n} test samples"), Some(pct(a))),
                (None, None) => {}
            }
            push("mean effective rank", num("mean_effective_rank").map(short));
            push("eigenvectors per class for 99 % of the accuracy", k_for_99(&m));
            let classes = run.json.get("bilinear").and_then(|b| b.get("effective_ranks")).and_then(Value::as_array).map(Vec::len);
            push("classes", classes.map(|c| c.to_string()));
        }
        (Method::Lib, _) => {
            push("accuracy of the model", num("baseline_accuracy").map(pct));
            for (what, values) in [("features needed", per_variant(&m, "features_needed")), ("edges needed", per_variant(&m, "edges_needed")), ("mean Fourier purity", fourier_purity(run))] {
                if let Some((names, values)) = values {
                    push(&format!("{what}, {names}"), Some(values));
                }
            }
        }
        (Method::Sae, "Universal SAE") => {
            let (own, cross) = r2_means(&m);
            push("R², own model (mean)", own.map(short));
            push("R², across models (mean)", cross.map(short));
            push("latents alive", num("latents_alive").map(short));
            push("latents with firing entropy ≥ 0.9", num("share_fe_above_0.9").map(pct));
        }
        (Method::Sae, _) | (Method::LanguageModels, "SAE evaluation") => {
            push("explained variance", num("explained_variance").map(short));
            push("CE loss score", num("ce_loss_score").map(short));
            push("L0 (latents per token)", num("l0").map(short));
            push("dead latents", num("dead_fraction").map(pct));
        }
        (Method::LanguageModels, "SAE feature dashboards") => {
            push("latents shown", num("latents_shown").map(short));
            push("tokens", num("tokens").map(short));
            push("dead latents", num("dead_fraction").map(pct));
        }
        (Method::LanguageModels, _) => {
            push("output features", num("features_evaluated").map(short));
            push("positions", num("positions").map(short));
            let by_k = run.json.get("correlation_by_k").and_then(Value::as_array);
            let at = |k: f64| by_k.and_then(|a| a.iter().find(|r| r.get("k").and_then(Value::as_f64) == Some(k))).and_then(|r| r.get("mean_correlation")).and_then(Value::as_f64);
            push("mean correlation at k = 2", at(2.0).map(short));
        }
        (Method::Readers, _) => {
            if let Some((k, v)) = m.iter().find(|(k, _)| k.starts_with("test_") && k.ends_with("_at_best_val")) {
                let what = k.trim_start_matches("test_").trim_end_matches("_at_best_val").replace('_', " ");
                let value = v.as_f64().map(|v| if what.contains("accuracy") { pct(v) } else { short(v) });
                push(&format!("test {what} (best validation epoch)"), value);
            }
            push("best epoch", num("best_epoch").map(short));
        }
        (Method::ProbeX, "model trees") => {
            let rows: Vec<&Value> = run.json.get("rows").and_then(Value::as_array).into_iter().flatten().collect();
            let row_num = |k: &str| rows.iter().find_map(|r| r.get(k).and_then(Value::as_f64));
            push("trees", row_num("trees").map(short));
            push("purity against the true trees", row_num("purity_vs_tree_labels").map(pct));
            if let (Some(w), Some(b)) = (row_num("mean_within"), row_num("mean_between")) {
                push("distance within / between trees", Some(format!("{} / {}", short(w), short(b))));
            }
        }
        (Method::ProbeX, _) => {
            let mean = |method: &str| num(&format!("test accuracy (mean over trees): {method}")).map(pct);
            push("ProbeX experts (test accuracy)", mean("ProbeX experts"));
            push("dense baseline", mean("dense"));
            push("cross-tree (chance 50 %)", mean("cross-tree"));
            push("routing accuracy", num("routing accuracy").map(pct));
        }
        (Method::Repro, _) => {
            let checks: Vec<bool> = run.json.get("checks").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c.get("pass").and_then(Value::as_bool)).collect();
            if !checks.is_empty() {
                push("checks passed", Some(format!("{} / {}", checks.iter().filter(|&&p| p).count(), checks.len())));
            }
        }
        (Method::Other, _) => {}
    }
    if out.is_empty() {
        out = m.iter().filter_map(|(k, v)| v.as_f64().map(|v| headline(k, short(v)))).take(3).collect();
    }
    out.truncate(4);
    out
}

/// What a trained model is, in a few words: "mlp on glyphs".
pub(crate) fn detail(run: &Run, kind: &Kind) -> Option<String> {
    if !matches!((kind.method, kind.what.as_str()), (Method::Training, _) | (Method::LanguageModels, "language model")) {
        return None;
    }
    let config = run.json.get("config")?;
    let arch = config.pointer("/architecture/kind").and_then(Value::as_str);
    let data = config.pointer("/task/data/name").and_then(Value::as_str);
    match (arch, data) {
        (Some(a), Some(d)) => Some(format!("{a} on {d}")),
        (Some(a), None) => Some(a.to_string()),
        (None, Some(d)) => Some(format!("trained on {d}")),
        (None, None) => None,
    }
}

/// The last epoch (or step) of the history, else the configured number of epochs.
fn last_epoch(run: &Run) -> Option<f64> {
    let rows = run.json.get("history").and_then(Value::as_array);
    let last = rows.and_then(|r| r.last()).and_then(|r| r.get("epoch").or(r.get("step"))).and_then(Value::as_f64);
    last.or_else(|| run.json.get("config").and_then(|c| c.pointer("/training/epochs")).and_then(Value::as_f64)).or_else(|| rows.map(|r| r.len() as f64).filter(|&n| n > 0.0))
}

/// The smallest k of the truncation curve whose accuracy is at least 99 % of the full model's.
fn k_for_99(m: &Map<String, Value>) -> Option<String> {
    let full = m.iter().find(|(k, _)| *k == "test_accuracy" || (k.starts_with("first") && k.ends_with("_test_accuracy")))?.1.as_f64()?;
    let mut ks: Vec<(u64, f64)> = m
        .iter()
        .filter_map(|(k, v)| Some((k.split_once("truncated_accuracy_k")?.1.parse().ok()?, v.as_f64()?)))
        .collect();
    ks.sort_by_key(|p| p.0);
    ks.iter().find(|(_, a)| *a >= 0.99 * full).map(|(k, _)| k.to_string())
}

/// ("LIB / PCA", "35 / 158"): a LIB metric summed over the layers, per basis (a dash when some
/// layer never reached the accuracy).
fn per_variant(m: &Map<String, Value>, what: &str) -> Option<(String, String)> {
    let mut variants: Vec<(String, Option<f64>)> = Vec::new();
    for (k, v) in m {
        let mut parts = k.splitn(3, '.');
        let (Some(variant), Some(w), Some(_layer)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if w != what {
            continue;
        }
        let entry = match variants.iter().position(|(n, _)| n == variant) {
            Some(i) => &mut variants[i],
            None => {
                variants.push((variant.to_string(), Some(0.0)));
                variants.last_mut().unwrap()
            }
        };
        entry.1 = match (entry.1, v.as_f64()) {
            (Some(sum), Some(x)) => Some(sum + x),
            _ => None,
        };
    }
    let order = |n: &str| ["lib", "pca", "neuron"].iter().position(|x| *x == n).unwrap_or(3);
    variants.sort_by_key(|(n, _)| order(n));
    let values: Vec<String> = variants.iter().map(|(_, v)| v.map_or("–".into(), short)).collect();
    pair_up(&variants.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), values)
}

/// Basis names and their values, each joined by " / ".
fn pair_up(names: &[&str], values: Vec<String>) -> Option<(String, String)> {
    let names: Vec<String> = names.iter().map(|n| label_of(n)).collect();
    (!names.is_empty()).then(|| (names.join(" / "), values.join(" / ")))
}

fn label_of(variant: &str) -> String {
    match variant {
        "lib" => "LIB".into(),
        "pca" => "PCA".into(),
        other => other.to_string(),
    }
}

/// Mean Fourier purity of the leading features, averaged over the layers, per basis.
fn fourier_purity(run: &Run) -> Option<(String, String)> {
    let extra = run.json.get("extra")?.as_object()?;
    let mut variants: Vec<(String, f64, usize)> = Vec::new();
    for (k, v) in extra {
        let (Some((variant, _)), Some(p)) = (k.split_once('.'), v.get("mean_purity").and_then(Value::as_f64)) else { continue };
        match variants.iter_mut().find(|(n, _, _)| n == variant) {
            Some(e) => (e.1, e.2) = (e.1 + p, e.2 + 1),
            None => variants.push((variant.to_string(), p, 1)),
        }
    }
    let values: Vec<String> = variants.iter().map(|(_, s, c)| format!("{:.2}", s / *c as f64)).collect();
    pair_up(&variants.iter().map(|(n, _, _)| n.as_str()).collect::<Vec<_>>(), values)
}

/// Means of the R² matrix's diagonal and off-diagonal (metrics `r2.{a}->{b}`).
fn r2_means(m: &Map<String, Value>) -> (Option<f64>, Option<f64>) {
    let (mut own, mut cross) = (Vec::new(), Vec::new());
    for (k, v) in m {
        let (Some(pair), Some(v)) = (k.strip_prefix("r2."), v.as_f64()) else { continue };
        let Some((a, b)) = pair.split_once("->") else { continue };
        if a == b { own.push(v) } else { cross.push(v) }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    (mean(&own), mean(&cross))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(dir: &str, j: Value) -> Run {
        Run { dir: std::path::PathBuf::from(dir), json: j.as_object().unwrap().clone() }
    }

    #[test]
    fn glassbox_runs_are_classified_by_what_they_hold() {
        let cases = [
            (json!({"name": "m", "config": {"architecture": {}, "task": {}}, "history": []}), Method::Training),
            (json!({"name": "lm", "config": {"architecture": {}, "training": {}}, "history": []}), Method::LanguageModels),
            (json!({"name": "bilinear m", "bilinear": {}}), Method::Bilinear),
            (json!({"name": "lib m", "lib": {}}), Method::Lib),
            (json!({"name": "USAE over a, b", "universality": {}}), Method::Sae),
            (json!({"name": "TopK SAE on x", "metrics": {"explained_variance": 0.9, "l0": 16}}), Method::Sae),
            (json!({"name": "probegen reader on z", "metrics": {"test_accuracy_at_best_val": 0.7}}), Method::Readers),
            (json!({"name": "model trees of z", "rows": [], "checks": []}), Method::ProbeX),
            (json!({"name": "ProbeX tree experts on z", "rows": [], "checks": []}), Method::ProbeX),
            (json!({"name": "SAE evaluation: sae at h", "metrics": {"ce_loss_score": 0.9}}), Method::LanguageModels),
            (json!({"name": "Feature dashboards", "feature_dashboards": {"file": "x"}}), Method::LanguageModels),
            (json!({"name": "bilinear-a", "rows": [], "checks": [{"name": "1", "pass": true, "detail": ""}]}), Method::Repro),
            (json!({"name": "x", "metrics": {"y": 1}}), Method::Other),
            (json!({"name": "x", "kind": "probex"}), Method::ProbeX),
            (json!({"name": "x", "kind": "no such kind"}), Method::Other),
        ];
        for (j, want) in cases {
            assert_eq!(classify(&run("d", j.clone())).method, want, "{j}");
        }
    }

    #[test]
    fn runs_are_ordered_by_method_then_data_set_then_as_given() {
        let train = |data: &str| json!({"config": {"architecture": {}, "task": {"data": {"name": data}}}, "history": []});
        let runs = vec![
            run("lib-a", json!({"lib": {}})),
            run("m-b", train("glyphs")),
            run("m-a", train("modadd")),
            run("m-c", train("glyphs")),
            run("dash", json!({"feature_dashboards": {"file": "x"}})),
            run("eval", json!({"name": "SAE evaluation: s", "metrics": {"ce_loss_score": 1}})),
            run("other", json!({})),
            run("bil", json!({"bilinear": {}})),
        ];
        let order: Vec<&str> = order(&runs).iter().map(|(i, _)| runs[*i].dir.to_str().unwrap()).collect();
        assert_eq!(order, ["m-b", "m-c", "m-a", "bil", "lib-a", "eval", "dash", "other"]);
    }

    #[test]
    fn headlines_sum_up_each_method() {
        let lib = run("l", json!({"lib": {}, "metrics": {"baseline_accuracy": 1.0, "lib.features_needed.a": 3, "lib.features_needed.b": 4, "pca.features_needed.a": 10, "pca.features_needed.b": null,
            "lib.edges_needed.a": 7}, "extra": {"lib.a": {"mean_purity": 0.8}, "lib.b": {"mean_purity": 0.6}, "pca.a": {"mean_purity": 0.5}}}));
        let h = headlines(&lib, &classify(&lib));
        let shown: Vec<(&str, &str)> = h.iter().map(|h| (h.label.as_str(), h.value.as_str())).collect();
        assert_eq!(shown, [("accuracy of the model", "100 %"), ("features needed, LIB / PCA", "7 / –"), ("edges needed, LIB", "7"), ("mean Fourier purity, LIB / PCA", "0.70 / 0.50")]);
        let bil = run("b", json!({"bilinear": {"effective_ranks": [1, 2]}, "metrics": {"test_accuracy": 0.9, "mean_effective_rank": 16.26, "truncated_accuracy_k2": 0.5, "truncated_accuracy_k10": 0.895, "truncated_accuracy_k5": 0.8}}));
        let h = headlines(&bil, &classify(&bil));
        assert_eq!(h[2].value, "10");
        assert_eq!(h[1].value, "16.3");
        // Scored on the first 500 test samples only: the names say so, and so does the card.
        let subset = run("b", json!({"bilinear": {}, "metrics": {"first500_test_accuracy": 0.9, "first500_test_truncated_accuracy_k3": 0.9}}));
        let h = headlines(&subset, &classify(&subset));
        assert_eq!((h[0].label.as_str(), h[0].value.as_str()), ("accuracy, first 500 test samples", "90 %"));
        assert_eq!(h[1].value, "3");
        let other = run("o", json!({"metrics": {"a": 1, "b": "text", "c": 0.123456}}));
        let h = headlines(&other, &classify(&other));
        assert_eq!(h.iter().map(|h| h.value.as_str()).collect::<Vec<_>>(), ["1", "0.123"]);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(pct(0.9511), "95.1 %");
        assert_eq!(pct(0.99951), "99.95 %");
        assert_eq!(pct(1.0), "100 %");
        assert_eq!(short(1503.0), "1\u{202f}503");
        assert_eq!(short(0.42138), "0.421");
        assert_eq!(short(5.4265e-8), "5.43e-8");
        assert_eq!(short(27.017), "27");
        assert_eq!(short(6.363), "6.36");
    }
}
