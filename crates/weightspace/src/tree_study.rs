//! The tree experiments of ProbeX's reproduction on any collection of models with known or
//! recovered trees: one ProbeX expert per tree (and the dense, StatNN and linear-ProbeX
//! baselines), one ProbeX over all trees mixed, every expert on every other tree, and routing
//! of test models to their tree by Ward clustering and nearest centroids.

use crate::fit::{accuracy, binary_accuracy, fit, predict, FitConfig, Fitted};
use crate::layers::{LayerSet, MultiHot};
use crate::probex::{DenseExpert, Expert, Probex, Ranks};
use crate::trees::{cut, majority_map, pairwise_distances, purity, ward, within_between, Merge, Router};
use glassbox_zoo::store::Splits;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct StudyConfig {
    pub ranks: Ranks,
    pub probex: FitConfig,
    /// The dense logistic regression on the raw layer (None: skipped).
    pub dense: Option<FitConfig>,
    /// StatNN (needs features).
    pub statnn: Option<FitConfig>,
    /// ProbeX without its ReLU, per tree (the ablation).
    pub linear: bool,
    /// One ProbeX (and dense, when on) over the union of all trees.
    pub mixed: bool,
}

/// Accuracies of one trained expert.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Score {
    pub train: f64,
    pub val: f64,
    pub test: f64,
    pub best_epoch: usize,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TreeResult {
    pub tree: usize,
    pub models: [usize; 3],
    pub probex: Score,
    pub dense: Option<Score>,
    pub statnn: Option<Score>,
    pub linear: Option<Score>,
    /// The mixed ProbeX (and dense) on this tree's test models.
    pub mixed: Option<f64>,
    pub mixed_dense: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Routing {
    /// Ward clusters of the training models (K = number of trees) against the trees.
    pub purity: f64,
    /// Nearest-centroid routing of the test models, clusters mapped to their majority tree.
    pub accuracy: f64,
    pub mean_within: f64,
    pub mean_between: f64,
    /// Ward merges of the training models (for the dendrogram).
    pub merges: Vec<Merge>,
    /// The training models, in the order of the merges' leaf labels.
    pub leaves: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyResult {
    pub per_tree: Vec<TreeResult>,
    /// `cross[a][b]`: the expert of tree a on the test models of tree b.
    pub cross: Vec<Vec<f64>>,
    pub routing: Routing,
    /// Routed mixture of experts on all test models (each routed to the expert of its
    /// cluster's majority tree).
    pub routed_test: f64,
    pub params: serde_json::Value,
    #[serde(skip)]
    pub experts: Vec<Probex>,
    #[serde(skip)]
    pub router: Router,
    /// The majority tree of each router cluster.
    pub cluster_tree: Vec<usize>,
}

/// The models of a split that belong to tree t.
fn of_tree(split: &[usize], trees: &[usize], t: usize) -> Vec<usize> {
    split.iter().copied().filter(|&i| trees[i] == t).collect()
}

fn score<E: Expert>(f: &Fitted<E>, data: &LayerSet, targets: &MultiHot, train: &[usize], test: &[usize]) -> Score {
    Score {
        train: accuracy(&f.expert, data, targets, train),
        val: f.best_val,
        test: accuracy(&f.expert, data, targets, test),
        best_epoch: f.best_epoch,
        seconds: f.seconds,
    }
}

/// What a running study reports: a line per trained expert, and every finished epoch.
pub enum StudyEvent<'a> {
    Line(&'a str),
    Epoch { expert: &'a str, epoch: usize, epochs: usize },
}

/// Run the study. `trees[i]` is model i's tree (0..T); `statnn` the standardised StatNN
/// features when `config.statnn` is on; `log` receives the study's events.
pub fn run_study(
    data: &LayerSet,
    targets: &MultiHot,
    trees: &[usize],
    splits: &Splits,
    statnn: Option<&LayerSet>,
    config: &StudyConfig,
    mut log: impl FnMut(StudyEvent),
) -> crate::Result<StudyResult> {
    let n_trees = trees.iter().max().map_or(0, |m| m + 1);
    let d_y = targets.n_classes();
    if d_y == 0 || n_trees == 0 {
        return Err(crate::Error::invalid(format!("nothing to learn: {d_y} classes and {n_trees} trees")));
    }
    let new_probex = |relu: bool, seed: u64| Probex::new(data.d_h, data.d_w, d_y, config.ranks, relu, seed);
    let mut per_tree = Vec::new();
    let mut experts = Vec::new();
    for t in 0..n_trees {
        let (train, val, test) = (of_tree(&splits.train, trees, t), of_tree(&splits.val, trees, t), of_tree(&splits.test, trees, t));
        if train.is_empty() || val.is_empty() || test.is_empty() {
            return Err(crate::Error::invalid(format!("tree {t} has {} train, {} val and {} test models; every tree needs some of each", train.len(), val.len(), test.len())));
        }
        let seed = config.probex.seed.wrapping_add(t as u64);
        let f = fit(new_probex(true, seed), data, targets, &train, &val, &config.probex, |epoch, epochs| log(StudyEvent::Epoch { expert: &format!("tree {t}: ProbeX"), epoch, epochs }));
        let probex = score(&f, data, targets, &train, &test);
        log(StudyEvent::Line(&format!("tree {t}: ProbeX test {:.3} (train {:.3}, best val {:.3} at epoch {}), {:.1} s", probex.test, probex.train, probex.val, probex.best_epoch, probex.seconds)));
        experts.push(f.expert);
        let dense = config.dense.as_ref().map(|c| {
            let f = fit(DenseExpert::new(data.d_h * data.d_w, d_y, seed), data, targets, &train, &val, c, |epoch, epochs| log(StudyEvent::Epoch { expert: &format!("tree {t}: dense"), epoch, epochs }));
            score(&f, data, targets, &train, &test)
        });
        let statnn = match (&config.statnn, statnn) {
            (Some(c), Some(feats)) => {
                let f = fit(DenseExpert::new(feats.d_w, d_y, seed), feats, targets, &train, &val, c, |epoch, epochs| log(StudyEvent::Epoch { expert: &format!("tree {t}: StatNN"), epoch, epochs }));
                Some(score(&f, feats, targets, &train, &test))
            }
            _ => None,
        };
        let linear = config.linear.then(|| {
            let f = fit(new_probex(false, seed), data, targets, &train, &val, &config.probex, |epoch, epochs| log(StudyEvent::Epoch { expert: &format!("tree {t}: linear ProbeX"), epoch, epochs }));
            score(&f, data, targets, &train, &test)
        });
        let opt = |s: &Option<Score>| s.as_ref().map_or("-".into(), |s| format!("{:.3}", s.test));
        log(StudyEvent::Line(&format!("tree {t}: dense {}, StatNN {}, linear ProbeX {}", opt(&dense), opt(&statnn), opt(&linear))));
        per_tree.push(TreeResult { tree: t, models: [train.len(), val.len(), test.len()], probex, dense, statnn, linear, mixed: None, mixed_dense: None });
    }
    if config.mixed {
        let f = fit(new_probex(true, config.probex.seed ^ 0x313D), data, targets, &splits.train, &splits.val, &config.probex, |epoch, epochs| log(StudyEvent::Epoch { expert: "mixed ProbeX", epoch, epochs }));
        let d = config.dense.as_ref().map(|c| fit(DenseExpert::new(data.d_h * data.d_w, d_y, config.probex.seed ^ 0x313D), data, targets, &splits.train, &splits.val, c, |epoch, epochs| log(StudyEvent::Epoch { expert: "mixed dense", epoch, epochs })));
        for r in per_tree.iter_mut() {
            let test = of_tree(&splits.test, trees, r.tree);
            r.mixed = Some(accuracy(&f.expert, data, targets, &test));
            r.mixed_dense = d.as_ref().map(|d| accuracy(&d.expert, data, targets, &test));
        }
        log(StudyEvent::Line(&format!("mixed ProbeX over all trees: {:.1} s", f.seconds)));
    }
    let cross: Vec<Vec<f64>> = experts
        .iter()
        .map(|e| (0..n_trees).map(|b| accuracy(e, data, targets, &of_tree(&splits.test, trees, b))).collect())
        .collect();
    // Routing: Ward clusters of the training models, their centroids, the test models routed.
    let dist = pairwise_distances(data, &splits.train);
    let merges = ward(&dist, splits.train.len());
    let clusters = cut(&merges, splits.train.len(), n_trees);
    let train_trees: Vec<usize> = splits.train.iter().map(|&i| trees[i]).collect();
    let cluster_tree = majority_map(&clusters, &train_trees);
    let router = Router::new(data, &splits.train, &clusters);
    let routed: Vec<usize> = router.route(data, &splits.test).into_iter().map(|c| cluster_tree[c]).collect();
    let route_acc = routed.iter().zip(&splits.test).filter(|(r, &i)| **r == trees[i]).count() as f64 / splits.test.len().max(1) as f64;
    let (within, between) = within_between(&dist, &train_trees);
    // The routed mixture: every test model read by the expert of the tree it was routed to.
    let routed_test = binary_accuracy(&routed_logits(&experts, data, &splits.test, &routed), targets, &splits.test);
    let params = serde_json::json!({
        "probex": experts.first().map_or(0, |e| e.n_params()),
        "dense": data.d_h * data.d_w * d_y + d_y,
        "statnn": statnn.map_or(0, |f| f.d_w * d_y + d_y),
    });
    Ok(StudyResult {
        per_tree,
        cross,
        routing: Routing { purity: purity(&clusters, &train_trees), accuracy: route_acc, mean_within: within, mean_between: between, merges, leaves: splits.train.clone() },
        routed_test,
        params,
        experts,
        router,
        cluster_tree,
    })
}

/// The mixture of experts with hard routing: logits of the models `idx` (rows in that order),
/// model `idx[j]` read by `experts[routed[j]]`, each expert's models in batches.
pub fn routed_logits(experts: &[Probex], data: &LayerSet, idx: &[usize], routed: &[usize]) -> faer::Mat<f32> {
    let d_y = experts.first().map_or(0, |e| e.d_y);
    let mut out = faer::Mat::<f32>::zeros(idx.len(), d_y);
    for (t, expert) in experts.iter().enumerate() {
        let rows: Vec<usize> = (0..idx.len()).filter(|&r| routed[r] == t).collect();
        let members: Vec<usize> = rows.iter().map(|&r| idx[r]).collect();
        let y = predict(expert, data, &members, 128);
        for (k, &r) in rows.iter().enumerate() {
            for c in 0..d_y {
                out[(r, c)] = y[(k, c)];
            }
        }
    }
    out
}

impl StudyResult {
    /// The result as JSON without the dendrogram (which is long): for run.json rows.
    pub fn summary(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("plain numbers");
        if let Some(r) = v.get_mut("routing").and_then(|r| r.as_object_mut()) {
            r.remove("merges");
            r.remove("leaves");
        }
        v
    }

    pub fn mean<F: Fn(&TreeResult) -> Option<f64>>(&self, f: F) -> f64 {
        let v: Vec<f64> = self.per_tree.iter().filter_map(f).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }

    /// Mean and largest off-diagonal entry of the cross-tree matrix.
    pub fn cross_off_diagonal(&self) -> (f64, f64) {
        let v: Vec<f64> = self.cross.iter().enumerate().flat_map(|(a, row)| row.iter().enumerate().filter(move |(b, _)| *b != a).map(|(_, &x)| x)).collect();
        (v.iter().sum::<f64>() / v.len().max(1) as f64, v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }
}
