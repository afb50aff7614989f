use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use glassbox_core::experiment::Outcome;
use glassbox_weightspace::fit::FitConfig;
use glassbox_weightspace::collection::Collection;
use glassbox_weightspace::probex::Ranks;
use glassbox_weightspace::saved_experts::{self, ExpertsInfo};
use glassbox_weightspace::layers::LayerSet;
use glassbox_weightspace::tree_study::{routed_logits, run_study, StudyConfig, StudyEvent, StudyResult};
use glassbox_weightspace::trees::{cut, pairwise_distances, suggest_k, ward, within_between, Merge};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What were these models trained on? ProbeX experts, one per model tree, read it from one
/// layer of their weights (ProbeX, Horwitz et al., CVPR 2025).
#[derive(Args, Debug)]
pub struct ProbexArgs {
    #[command(subcommand)]
    pub command: ProbexCommand,
}

#[derive(Subcommand, Debug)]
pub enum ProbexCommand {
    Train(ProbexTrainArgs),
    Predict(ProbexPredictArgs),
    Sweep(ProbexSweepArgs),
    Zeroshot(ProbexZeroshotArgs),
}

/// Train one ProbeX per tree for each of several layers and pick, per tree, the layer with the
/// best validation accuracy (as the reference code sweeps every layer). Prints a table of
/// validation and test accuracy per layer and tree; train the chosen layer with `probex train`.
#[derive(Args, Debug)]
pub struct ProbexSweepArgs {
    /// A zoo folder (zoo.json) or a folder of checkpoints with their labels in the safetensors
    /// metadata (see `glassbox probex train --help`).
    pub models: PathBuf,
    /// Layers to try: comma-separated names or sorted-name indices, or `all` (every weight
    /// tensor).
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// ProbeX ranks r_U,r_V,r_T: number of probes, projection rank and representation width
    /// (the paper uses 128,128,128).
    #[arg(long, default_value = "32,32,64", value_parser = parse_ranks)]
    pub ranks: Ranks,
    /// Training epochs of each expert (the checkpoint with the best validation accuracy is
    /// kept).
    #[arg(long, default_value_t = 300)]
    pub epochs: usize,
    /// The label holding each model's training classes (a Python list of names, Model-J's
    /// `dataset_chosen_targets`, or a JSON array).
    #[arg(long, default_value = "dataset_chosen_targets")]
    pub target: String,
    /// Without `tree` labels: the layer whose Ward clustering gives the trees (not a fine-tune's
    /// fresh head, which says nothing about the root).
    #[arg(long)]
    pub tree_layer: Option<String>,
    /// Number of trees when recovered by clustering: a number or auto.
    #[arg(long, default_value = "auto")]
    pub trees: String,
}

/// Zero-shot: which class was each model trained on, for classes no training model had? Each
/// model names one class under --target; classes of training-split models are seen,
/// validation and test models of other classes are zero-shot. Class embeddings (from any text
/// encoder) come from a safetensors file with one 1-D tensor per class name. Text-aligned
/// ProbeX: cosine between the model's representation and a learned projection of its class
/// embedding, cross-entropy over the seen classes; reports in-distribution top-1 (among seen
/// classes) and zero-shot top-1 (among held-out classes) at the best in-distribution and the
/// best held-out validation checkpoints.
#[derive(Args, Debug)]
pub struct ProbexZeroshotArgs {
    /// A zoo folder (zoo.json) or a folder of checkpoints with their labels in the safetensors
    /// metadata (see `glassbox probex train --help`).
    pub models: PathBuf,
    /// The probed layer: a tensor name, a LoRA pair's prefix, or an index into the
    /// lexicographically sorted weight-tensor names.
    #[arg(long)]
    pub layer: String,
    /// Class embeddings: a safetensors file, tensor name = class name.
    #[arg(long)]
    pub embeddings: PathBuf,
    /// The label naming each model's one training class (a list of one class name, as Model-J's
    /// `dataset_chosen_targets`).
    #[arg(long, default_value = "dataset_chosen_targets")]
    pub target: String,
    /// ProbeX ranks r_U,r_V,r_T: number of probes, projection rank and representation width
    /// (the paper uses 128,128,128).
    #[arg(long, default_value = "32,32,64", value_parser = parse_ranks)]
    pub ranks: Ranks,
    /// Training epochs (validated every 10; the best checkpoints are kept).
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// Models per training step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// ProbeX without the ReLU (the paper's ablation: it matters mostly for zero-shot).
    #[arg(long)]
    pub linear: bool,
    /// Predictions of every validation and test model: name, split, its class, the predicted
    /// class (among the seen classes by the best in-distribution checkpoint, or among the
    /// held-out classes by the best held-out checkpoint).
    #[arg(long, default_value = "probex-zeroshot.csv")]
    pub out: PathBuf,
}

/// Train one ProbeX expert per model tree on a collection of models and report, per tree, the
/// test accuracy of predicting each model's training classes (mean per-class binary accuracy,
/// chance 0.5), with baselines: the dense linear expert, StatNN, linear ProbeX, one ProbeX over
/// all trees mixed, every expert on every other tree, and the routing of test models to their
/// tree.
///
/// MODELS is a zoo folder (zoo.json) or a folder of checkpoints (NAME.safetensors or
/// NAME/model.safetensors, labels in their safetensors metadata as Model-J stores them:
/// `dataset_chosen_targets` = a Python list of class names; a `split` entry, train / val / test,
/// fixes the split, else a seeded 70/10/20 split). Trees come from a numeric `tree` label when
/// every model has one, else from Ward clustering of the layer (--trees).
///
/// Writes into --out: run.json (every number; `glassbox report` renders it), figures/
/// (cross-tree heat map, experts vs mixed, dendrogram) and the experts with their router
/// (experts.safetensors + experts.json) for `glassbox probex predict`.
#[derive(Args, Debug)]
pub struct ProbexTrainArgs {
    /// A zoo folder or a folder of checkpoints (see above).
    pub models: PathBuf,
    /// The probed layer: a tensor name, a LoRA pair's prefix (read as factors, X = B A never
    /// formed), or an index into the lexicographically sorted weight-tensor names.
    #[arg(long)]
    pub layer: String,
    /// ProbeX ranks r_U,r_V,r_T: number of probes, projection rank and representation width
    /// (the paper uses 128,128,128).
    #[arg(long, default_value = "32,32,64", value_parser = parse_ranks)]
    pub ranks: Ranks,
    /// Training epochs of each expert and baseline (the checkpoint with the best validation
    /// accuracy is kept).
    #[arg(long, default_value_t = 300)]
    pub epochs: usize,
    /// Models per training step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Validate every this many epochs and keep the best checkpoint.
    #[arg(long, default_value_t = 10)]
    pub val_every: usize,
    /// Number of trees when they are recovered by clustering: a number, or auto (the largest
    /// jump in the Ward dendrogram).
    #[arg(long, default_value = "auto")]
    pub trees: String,
    /// The label holding each model's training classes (a Python list of names, Model-J's
    /// `dataset_chosen_targets`, or a JSON array).
    #[arg(long, default_value = "dataset_chosen_targets")]
    pub target: String,
    /// A file with the full class list, one name per line (default: the zoo's declared
    /// classes, else every class some model names). A label naming another class is an error.
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Skip the baselines (dense, StatNN, linear ProbeX, mixed): experts, cross-tree matrix and
    /// routing only.
    #[arg(long)]
    pub no_baselines: bool,
    /// Output folder for run.json, figures/ and the saved experts.
    #[arg(long, default_value = "glassbox-probex")]
    pub out: PathBuf,
}

/// Predict the training classes of models with trained experts.
///
/// Each model is routed to its tree's expert by the nearest cluster centroid of its layer.
/// Writes a CSV (name, routed tree,
/// predicted classes as a Python list) and, when the models carry labels, prints the accuracy
/// (mean per-class binary accuracy) on the test models, those the experts were neither trained
/// nor validated on, and separately on the experts' training and validation models found among
/// them and on all models together. Models are matched to the experts' training and validation
/// models by name.
#[derive(Args, Debug)]
pub struct ProbexPredictArgs {
    /// The --out folder of `glassbox probex train`.
    pub experts: PathBuf,
    /// A zoo folder or a folder of checkpoints.
    pub models: PathBuf,
    /// CSV file to write (name, tree, predicted_classes).
    #[arg(long, default_value = "probex-predictions.csv")]
    pub out: PathBuf,
}

/// Recover the model trees of a collection from one layer: pairwise Euclidean distances, Ward
/// linkage, a cut into K trees. Prints each tree's members and the within-
/// and between-tree distances; writes run.json and figures/dendrogram.svg into --out.
#[derive(Args, Debug)]
pub struct TreesArgs {
    /// A zoo folder or a folder of checkpoints (no labels needed).
    pub models: PathBuf,
    /// The layer to compare: a tensor name, a LoRA prefix, or a sorted-name index.
    #[arg(long)]
    pub layer: String,
    /// Number of trees: a number, or auto (the largest jump in the dendrogram).
    #[arg(long, default_value = "auto")]
    pub trees: String,
    /// Output folder for run.json and figures/dendrogram.svg.
    #[arg(long, default_value = "glassbox-trees")]
    pub out: PathBuf,
}

/// A CSV field, quoted (inner quotes doubled) when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn read_class_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the class list {}", path.display()))?;
    let classes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if classes.is_empty() {
        bail!("{}: no class names (one per line)", path.display());
    }
    Ok(classes)
}

fn parse_ranks(s: &str) -> std::result::Result<Ranks, String> {
    let v: Vec<usize> = s.split(',').map(|p| p.trim().parse::<usize>()).collect::<std::result::Result<_, _>>().map_err(|_| format!("ranks are three positive numbers r_U,r_V,r_T, got '{s}'"))?;
    match v[..] {
        [probes, proj, rep] if probes > 0 && proj > 0 && rep > 0 => Ok(Ranks { probes, proj, rep }),
        _ => Err(format!("ranks are three positive numbers r_U,r_V,r_T, got '{s}'")),
    }
}

/// K from "auto" or a number, checked against the number of models.
fn tree_count(spec: &str, merges: &[Merge], n: usize) -> Result<usize> {
    let k = match spec {
        "auto" => suggest_k(merges, 20),
        s => s.parse::<usize>().ok().filter(|&k| k >= 1).with_context(|| format!("--trees takes a positive number or auto, got '{s}'"))?,
    };
    if k > n {
        bail!("--trees {k} asks for more trees than there are models ({n})");
    }
    Ok(k)
}

/// The trees of all models of `data`: Ward clustering cut into `spec` (a number, or auto) trees;
/// also the distances and merges it was read from.
fn recover_trees(data: &LayerSet, spec: &str) -> Result<(Vec<usize>, Vec<Merge>, Vec<f64>)> {
    let all: Vec<usize> = (0..data.len()).collect();
    let dist = pairwise_distances(data, &all);
    let merges = ward(&dist, all.len());
    let k = tree_count(spec, &merges, all.len())?;
    Ok((cut(&merges, all.len(), k), merges, dist))
}

pub fn trees(cli: &Cli, a: &TreesArgs) -> Result<()> {
    let start = Instant::now();
    let models = Collection::open(&a.models, &a.layer, false, cli.seed)?;
    let data = &models.data;
    if data.len() < 2 {
        bail!("{}: {} model; trees need at least two", a.models.display(), data.len());
    }
    let (clusters, merges, dist) = recover_trees(data, &a.trees)?;
    let k = clusters.iter().max().map_or(0, |m| m + 1);
    let (within, between) = within_between(&dist, &clusters);
    let names = &models.names;
    println!("{} models, layer '{}' ({} × {}): {k} tree{}; mean distance within trees {within:.3}, between {between:.3}", data.len(), data.name, data.d_h, data.d_w, if k == 1 { "" } else { "s" });
    let mut rows = Vec::new();
    for t in 0..k {
        let members: Vec<&String> = clusters.iter().zip(names).filter(|(c, _)| **c == t).map(|(_, n)| n).collect();
        let shown: Vec<&str> = members.iter().take(8).map(|s| s.as_str()).collect();
        println!("tree {t}: {} models: {}{}", members.len(), shown.join(", "), if members.len() > 8 { ", …" } else { "" });
        rows.push(serde_json::json!({ "tree": t, "models": members }));
    }
    if let Some(known) = models.known_trees() {
        let p = glassbox_weightspace::trees::purity(&clusters, &known);
        println!("agreement with the models' 'tree' labels (purity): {p:.3}");
        rows.push(serde_json::json!({ "purity_vs_tree_labels": p }));
    }
    rows.push(serde_json::json!({ "trees": k, "mean_within": within, "mean_between": between }));
    let outcome = Outcome { name: format!("model trees of {}", a.models.display()), rows, checks: Vec::new(), wall_time_s: start.elapsed().as_secs_f64() };
    std::fs::create_dir_all(a.out.join("figures")).with_context(|| format!("cannot create {}", a.out.join("figures").display()))?;
    outcome.write(&a.out, &super::command_line())?;
    write_dendrogram(&a.out, &merges, &clusters, "Model trees (Ward, all models)")?;
    println!("wrote {}", a.out.display());
    Ok(())
}

fn write_dendrogram(out: &Path, merges: &[Merge], groups: &[usize], title: &str) -> Result<()> {
    let m: Vec<glassbox_report::DendrogramMerge> = merges.iter().map(|m| glassbox_report::DendrogramMerge { a: m.a, b: m.b, height: m.height }).collect();
    let svg = glassbox_report::dendrogram_svg(title, "Ward distance", &m, groups)?;
    glassbox_core::io::write_atomic(&out.join("figures/dendrogram.svg"), svg.as_bytes())?;
    Ok(())
}

/// The study's figures: cross-tree heat map, experts vs mixed, dendrogram of the training
/// models coloured by tree.
pub fn write_study_figures(out: &Path, study: &StudyResult, trees_of_leaves: &[usize]) -> Result<()> {
    std::fs::create_dir_all(out.join("figures")).with_context(|| format!("cannot create {}", out.join("figures").display()))?;
    let names: Vec<String> = (0..study.cross.len()).map(|t| format!("tree {t}")).collect();
    let centred: Vec<Vec<f64>> = study.cross.iter().map(|r| r.iter().map(|v| v - 0.5).collect()).collect();
    let svg = glassbox_report::heatmap_svg("Expert of row tree on column tree: test accuracy − 0.5 (chance)", &names, &names, &centred)?;
    glassbox_core::io::write_atomic(&out.join("figures/cross-tree.svg"), svg.as_bytes())?;
    let mut bars = Vec::new();
    for r in &study.per_tree {
        bars.push((format!("tree {} expert", r.tree), r.probex.test));
        if let Some(m) = r.mixed {
            bars.push((format!("tree {} mixed", r.tree), m));
        }
    }
    let svg = glassbox_report::bar_chart_svg("ProbeX per-tree experts vs one ProbeX over all trees", "test accuracy", &bars)?;
    glassbox_core::io::write_atomic(&out.join("figures/experts-vs-mixed.svg"), svg.as_bytes())?;
    write_dendrogram(out, &study.routing.merges, trees_of_leaves, "Training models: Ward tree, coloured by tree")
}

fn train(cli: &Cli, t: &ProbexTrainArgs) -> Result<()> {
    let start = Instant::now();
    let baselines = !t.no_baselines;
    let models = Collection::open(&t.models, &t.layer, baselines, cli.seed)?;
    let data = &models.data;
    let key = t.target.as_str();
    let classes = match &t.classes {
        Some(path) => Some(read_class_list(path)?),
        None => None,
    };
    let targets = models.targets(key, classes)?;
    let splits = models.splits.clone();
    let recovered = models.known_trees().is_none();
    let trees: Vec<usize> = match models.known_trees() {
        Some(known) => known,
        None => {
            let (clusters, _, _) = recover_trees(data, &t.trees)?;
            if !cli.quiet {
                eprintln!("no 'tree' labels: {} trees recovered by Ward clustering of '{}'", clusters.iter().max().map_or(0, |m| m + 1), data.name);
            }
            clusters
        }
    };
    let fit = FitConfig { epochs: t.epochs, batch: t.batch, val_every: t.val_every, ..FitConfig::probex(cli.seed) };
    let statnn = if baselines { Some(models.statnn()?) } else { None };
    let config = StudyConfig {
        ranks: t.ranks,
        probex: fit.clone(),
        dense: baselines.then(|| FitConfig { epochs: t.epochs, batch: t.batch, val_every: t.val_every, ..FitConfig::dense(cli.seed) }),
        statnn: baselines.then(|| FitConfig { epochs: t.epochs, batch: t.batch, val_every: t.val_every, ..FitConfig::statnn(cli.seed) }),
        linear: baselines,
        mixed: baselines,
    };
    let bar = glassbox_core::train::progress_bar(!cli.quiet, t.epochs as u64, 0);
    let study = run_study(data, &targets, &trees, &splits, statnn.as_ref(), &config, |event| match event {
        StudyEvent::Line(line) => bar.println(line),
        StudyEvent::Epoch { expert, epoch, epochs } => {
            bar.set_length(epochs as u64);
            bar.set_position(epoch as u64);
            bar.set_message(format!("epochs: {expert}"));
        }
    })?;
    bar.finish_and_clear();
    print_study(&study);
    if recovered {
        println!("(the trees were recovered by clustering this layer, so routing accuracy compares two clusterings of it)");
    }
    let names_of = |idx: &[usize]| idx.iter().map(|&i| models.names[i].clone()).collect::<Vec<_>>();
    let info = ExpertsInfo {
        layer: data.name.clone(),
        d_h: data.d_h,
        d_w: data.d_w,
        classes: targets.classes.clone(),
        ranks: t.ranks,
        relu: true,
        cluster_tree: study.cluster_tree.clone(),
        n_experts: study.experts.len(),
        target: key.to_string(),
        trained_on: t.models.display().to_string(),
        train_models: names_of(&splits.train),
        val_models: names_of(&splits.val),
    };
    saved_experts::save(&t.out, &info, &study.experts, &study.router)?;
    let outcome = Outcome { name: format!("ProbeX tree experts on {} (layer {})", t.models.display(), data.name), rows: study_rows(&study), checks: Vec::new(), wall_time_s: start.elapsed().as_secs_f64() };
    outcome.write(&t.out, &super::command_line())?;
    add_tree_metrics(&t.out, &study)?;
    let leaf_trees: Vec<usize> = study.routing.leaves.iter().map(|&i| trees[i]).collect();
    write_study_figures(&t.out, &study, &leaf_trees)?;
    println!("wrote {}", t.out.display());
    Ok(())
}

/// The per-tree accuracies as run.json metrics, so the report's table shows them.
fn add_tree_metrics(out: &Path, study: &StudyResult) -> Result<()> {
    let path = out.join("run.json");
    let mut run: serde_json::Value = glassbox_core::io::read_json(&path)?;
    for r in &study.per_tree {
        let t = r.tree;
        let mut put = |name: &str, v: Option<f64>| {
            if let Some(v) = v {
                run["metrics"][format!("tree {t}: {name}")] = serde_json::json!(v);
            }
        };
        put("ProbeX test", Some(r.probex.test));
        put("ProbeX train", Some(r.probex.train));
        put("dense test", r.dense.as_ref().map(|s| s.test));
        put("StatNN test", r.statnn.as_ref().map(|s| s.test));
        put("linear ProbeX test", r.linear.as_ref().map(|s| s.test));
        put("mixed ProbeX test", r.mixed);
    }
    run["metrics"]["routing accuracy"] = serde_json::json!(study.routing.accuracy);
    glassbox_core::io::write_json(&path, &run)?;
    Ok(())
}

/// The per-tree table and the method comparison, as run.json rows.
pub fn study_rows(study: &StudyResult) -> Vec<serde_json::Value> {
    let mean = |f: &dyn Fn(&glassbox_weightspace::tree_study::TreeResult) -> Option<f64>| study.mean(f);
    let mut bars = vec![("ProbeX experts".to_string(), mean(&|r| Some(r.probex.test)))];
    for (name, v) in [
        ("linear ProbeX", mean(&|r| r.linear.as_ref().map(|s| s.test))),
        ("dense", mean(&|r| r.dense.as_ref().map(|s| s.test))),
        ("StatNN", mean(&|r| r.statnn.as_ref().map(|s| s.test))),
        ("mixed ProbeX", mean(&|r| r.mixed)),
        ("mixed dense", mean(&|r| r.mixed_dense)),
    ] {
        if v > 0.0 {
            bars.push((name.to_string(), v));
        }
    }
    bars.push(("cross-tree".into(), study.cross_off_diagonal().0));
    vec![serde_json::json!({ "study": study.summary() }), serde_json::json!({ "methods": { "metric": "test accuracy (mean over trees)", "bars": bars } })]
}

fn print_study(study: &StudyResult) {
    let opt = |s: Option<f64>| s.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!("| tree | models (train/val/test) | ProbeX | train | dense | StatNN | linear | mixed |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &study.per_tree {
        println!(
            "| {} | {}/{}/{} | {:.3} | {:.3} | {} | {} | {} | {} |",
            r.tree, r.models[0], r.models[1], r.models[2], r.probex.test, r.probex.train,
            opt(r.dense.as_ref().map(|s| s.test)), opt(r.statnn.as_ref().map(|s| s.test)), opt(r.linear.as_ref().map(|s| s.test)), opt(r.mixed)
        );
    }
    let (cross, cross_max) = study.cross_off_diagonal();
    println!("cross-tree (expert on another tree's models): mean {cross:.3}, largest {cross_max:.3}");
    println!(
        "routing: Ward purity {:.3}, nearest-centroid accuracy on test models {:.3}; distance within trees {:.3}, between {:.3}; routed experts on all test models {:.3}",
        study.routing.purity, study.routing.accuracy, study.routing.mean_within, study.routing.mean_between, study.routed_test
    );
    println!("parameters: ProbeX {}, dense {}, StatNN {}", study.params["probex"], study.params["dense"], study.params["statnn"]);
}

fn predict_cmd(cli: &Cli, p: &ProbexPredictArgs) -> Result<()> {
    let (info, experts, router) = saved_experts::load(&p.experts)?;
    let models = Collection::open(&p.models, &info.layer, false, cli.seed)?;
    let data = &models.data;
    if (data.d_h, data.d_w) != (info.d_h, info.d_w) {
        bail!("{}: layer '{}' is {} × {}, but the experts in {} read {} × {} layers", p.models.display(), info.layer, data.d_h, data.d_w, p.experts.display(), info.d_h, info.d_w);
    }
    let all: Vec<usize> = (0..data.len()).collect();
    let routed: Vec<usize> = router.route(data, &all).into_iter().map(|c| info.cluster_tree[c]).collect();
    let names = &models.names;
    let logits = routed_logits(&experts, data, &all, &routed);
    let mut csv = String::from("name,tree,predicted_classes\n");
    for (r, (&i, &t)) in all.iter().zip(&routed).enumerate() {
        let chosen: Vec<String> = (0..info.classes.len()).filter(|&c| logits[(r, c)] > 0.0).map(|c| info.classes[c].clone()).collect();
        csv.push_str(&format!("{},{},{}\n", csv_field(&names[i]), t, csv_field(&glassbox_zoo::tree_world::python_list(&chosen))));
    }
    glassbox_core::io::write_atomic(&p.out, csv.as_bytes())?;
    println!("predicted the classes of {} models; wrote {}", all.len(), p.out.display());
    if models.class_lists(&info.target).is_ok() {
        let targets = models.targets(&info.target, Some(info.classes.clone()))?;
        // `logits` has one row per model (`all` is 0..n); binary_accuracy wants the rows of `idx`.
        let acc = |idx: &[usize]| {
            let rows = faer::Mat::from_fn(idx.len(), logits.ncols(), |r, c| logits[(idx[r], c)]);
            glassbox_weightspace::fit::binary_accuracy(&rows, &targets, idx)
        };
        println!("accuracy against their '{}' labels (mean per-class binary accuracy, chance 0.5):", info.target);
        if info.train_models.is_empty() {
            println!("  all {} models: {:.3} (these experts record no training models, so some of these may have trained them)", all.len(), acc(&all));
        } else {
            let in_list = |list: &[String]| -> Vec<usize> {
                let list: std::collections::HashSet<&String> = list.iter().collect();
                all.iter().copied().filter(|&i| list.contains(&names[i])).collect()
            };
            let (train, val) = (in_list(&info.train_models), in_list(&info.val_models));
            let test: Vec<usize> = all.iter().copied().filter(|i| !train.contains(i) && !val.contains(i)).collect();
            if test.is_empty() {
                println!("  test models (not used to train the experts or choose their checkpoints): none among these");
            } else {
                println!("  {} test models (not used to train the experts or choose their checkpoints): {:.3}", test.len(), acc(&test));
            }
            if !train.is_empty() {
                println!("  {} of the experts' training models: {:.3}", train.len(), acc(&train));
            }
            if !val.is_empty() {
                println!("  {} of the experts' validation models: {:.3}", val.len(), acc(&val));
            }
            if test.len() != all.len() {
                println!("  all {} models (training, validation and test together): {:.3}", all.len(), acc(&all));
            }
        }
    }
    Ok(())
}

fn sweep(cli: &Cli, s: &ProbexSweepArgs) -> Result<()> {
    let first = Collection::open(&s.models, "0", false, cli.seed)?;
    let layers: Vec<String> = if s.layers == "all" {
        glassbox_weightspace::layers::sorted_weight_names(&first.tensor_names)
    } else {
        s.layers.split(',').map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
    };
    if layers.is_empty() {
        bail!("--layers names no layer");
    }
    let fit = FitConfig { epochs: s.epochs, ..FitConfig::probex(cli.seed) };
    let config = StudyConfig { ranks: s.ranks, probex: fit, dense: None, statnn: None, linear: false, mixed: false };
    let trees = match (first.known_trees(), &s.tree_layer) {
        (Some(known), _) => known,
        (None, Some(layer)) => recover_trees(&Collection::open(&s.models, layer, false, cli.seed)?.data, &s.trees)?.0,
        (None, None) => bail!("{}: the models have no 'tree' labels; give --tree-layer (a layer of the shared trunk) to recover the trees", s.models.display()),
    };
    // Per layer: per tree (val, test).
    let mut results: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for layer in &layers {
        let models = Collection::open(&s.models, layer, false, cli.seed)?;
        let targets = models.targets(&s.target, None)?;
        let study = run_study(&models.data, &targets, &trees, &models.splits, None, &config, |_| {})?;
        if !cli.quiet {
            eprintln!("{} ({} × {}): ProbeX test {}", models.data.name, models.data.d_h, models.data.d_w, study.per_tree.iter().map(|r| format!("{:.3}", r.probex.test)).collect::<Vec<_>>().join(" / "));
        }
        results.push((models.data.name.clone(), study.per_tree.iter().map(|r| (r.probex.val, r.probex.test)).collect()));
    }
    let n_trees = results[0].1.len();
    println!("| layer | {} |", (0..n_trees).map(|t| format!("tree {t} val / test")).collect::<Vec<_>>().join(" | "));
    println!("|---|{}", "---|".repeat(n_trees));
    for (name, per_tree) in &results {
        println!("| {name} | {} |", per_tree.iter().map(|(v, t)| format!("{v:.3} / {t:.3}")).collect::<Vec<_>>().join(" | "));
    }
    for t in 0..n_trees {
        let best = (0..results.len()).fold(0, |b, l| if results[l].1[t].0 > results[b].1[t].0 { l } else { b });
        println!("tree {t}: best validation with '{}' (val {:.3}, test {:.3})", results[best].0, results[best].1[t].0, results[best].1[t].1);
    }
    Ok(())
}

fn zeroshot(cli: &Cli, z: &ProbexZeroshotArgs) -> Result<()> {
    use glassbox_weightspace::zeroshot::{fit_zeroshot, read_class_embeddings, ZeroShot, ZeroShotConfig, ZeroShotData, ZeroShotProblem};
    let models = Collection::open(&z.models, &z.layer, false, cli.seed)?;
    let problem = ZeroShotProblem::new(&models, &z.target)?;
    let texts = read_class_embeddings(&z.embeddings, &problem.classes)?;
    let data = ZeroShotData { data: &models.data, class_of: &problem.class_of, texts: &texts, seen: &problem.seen, held_out: &problem.held_out };
    let model = ZeroShot::new(models.data.d_h, models.data.d_w, texts.ncols(), z.ranks, !z.linear, cli.seed);
    let params = model.n_params();
    let cfg = ZeroShotConfig { epochs: z.epochs, batch: z.batch, ..ZeroShotConfig::spec(cli.seed) };
    let (s, best_val, best_holdout) = fit_zeroshot(model, &data, &problem.split(), &cfg);
    println!("{} seen classes ({} training models), {} held-out classes; layer '{}' ({} × {}), {params} parameters", problem.seen.len(), problem.train.len(), problem.held_out.len(), models.data.name, models.data.d_h, models.data.d_w);
    println!("best in-distribution validation (epoch {}): in-distribution test top-1 {:.3} (chance {:.3}), zero-shot test top-1 {:.3}", s.best_val_epoch, s.in_dist_test, 1.0 / problem.seen.len() as f64, s.zero_shot_test_at_best_val);
    println!("best held-out validation (epoch {}, val {:.3}): zero-shot test top-1 {:.3} (chance {:.3}), in-distribution test top-1 {:.3}", s.best_holdout_epoch, s.best_holdout_val, s.zero_shot_test, 1.0 / problem.held_out.len() as f64, s.in_dist_test_at_best_holdout);
    let mut csv = String::from("name,split,class,predicted\n");
    for (split, idx, model, candidates) in [
        ("val", &problem.val, &best_val, &problem.seen),
        ("test", &problem.test, &best_val, &problem.seen),
        ("val-holdout", &problem.val_holdout, &best_holdout, &problem.held_out),
        ("test-holdout", &problem.test_holdout, &best_holdout, &problem.held_out),
    ] {
        for (&i, p) in idx.iter().zip(model.predict(&models.data, idx, candidates, &texts)) {
            csv.push_str(&format!("{},{split},{},{}\n", csv_field(&models.names[i]), csv_field(&problem.classes[problem.class_of[i]]), csv_field(&problem.classes[p])));
        }
    }
    glassbox_core::io::write_atomic(&z.out, csv.as_bytes())?;
    println!("wrote the predictions to {}", z.out.display());
    Ok(())
}

pub fn run(cli: &Cli, a: &ProbexArgs) -> Result<()> {
    match &a.command {
        ProbexCommand::Train(t) => train(cli, t),
        ProbexCommand::Predict(p) => predict_cmd(cli, p),
        ProbexCommand::Sweep(s) => sweep(cli, s),
        ProbexCommand::Zeroshot(z) => zeroshot(cli, z),
    }
}
