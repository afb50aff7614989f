//! One LIB analysis of a model: the bases of each variant, their interaction graphs, node and
//! edge ablations, and the run folder with its figures (after Bushnaq et al. 2024).

use crate::ablation::{edge_ablation, node_ablation, EdgeAblation, NodeAblation};
use crate::basis::{build, Basis, BasisOptions, Threshold, Variant};
use crate::edges::edges;
use crate::network::{accuracy, Integration, Network};
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::io::{write_f32, write_json, HostTensor};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct AnalysisOptions {
    pub variants: Vec<Variant>,
    pub threshold: Threshold,
    pub integration: Integration,
    /// Accuracy drop allowed when counting the features a layer needs.
    pub tolerance: f64,
    /// Accuracy drop allowed when counting the edges a layer pair needs.
    pub edge_tolerance: f64,
    /// Run the edge-ablation bisection (one section pass per output feature per step).
    pub edge_ablation: bool,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions { variants: vec![Variant::Lib, Variant::Pca], threshold: Threshold::Relative(1e-10), integration: Integration::Gradient, tolerance: 0.01, edge_tolerance: 0.01, edge_ablation: true }
    }
}

/// Everything measured for one basis variant.
#[derive(Clone, Debug, Serialize)]
pub struct VariantResult {
    pub variant: Variant,
    #[serde(skip)]
    pub basis: Basis,
    /// Edge matrices per adjacent node-layer pair (rows: features of the later layer).
    #[serde(skip)]
    pub edges: Vec<Mat<f64>>,
    pub widths: Vec<usize>,
    pub lambda: Vec<Vec<f64>>,
    pub nodes: Vec<NodeAblation>,
    pub edge_ablations: Vec<EdgeAblation>,
    pub build_seconds: f64,
    pub edge_seconds: f64,
}

impl VariantResult {
    /// Features needed at node layer `name` (None: not reached, or no such layer).
    pub fn needed(&self, name: &str) -> Option<usize> {
        self.nodes.iter().find(|n| n.layer == name).and_then(|n| n.needed)
    }
    /// Edges needed from node layer `from` to the next one.
    pub fn edges_needed(&self, from: &str) -> Option<usize> {
        self.edge_ablations.iter().find(|e| e.from == from).and_then(|e| e.needed)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub node_names: Vec<String>,
    /// Accuracy of the unablated model on the evaluation set.
    pub baseline_accuracy: f64,
    pub basis_samples: usize,
    pub eval_samples: usize,
    pub results: Vec<VariantResult>,
}

impl Analysis {
    pub fn variant(&self, v: Variant) -> Option<&VariantResult> {
        self.results.iter().find(|r| r.variant == v)
    }
}

/// Bases from `basis_inputs` (folded, N × D), graphs over the same samples, ablations scored on
/// `eval_inputs` against `eval_labels`.
pub fn analyze(net: &Network, basis_inputs: Mat<f64>, eval_inputs: Mat<f64>, eval_labels: &[usize], opts: &AnalysisOptions) -> Result<Analysis> {
    if net.samples(eval_inputs.nrows()) != eval_labels.len() {
        return Err(Error::invalid(format!("{} evaluation inputs but {} labels", net.samples(eval_inputs.nrows()), eval_labels.len())));
    }
    let basis_samples = net.samples(basis_inputs.nrows());
    let acts = net.node_activations(basis_inputs);
    let eval_acts = net.node_activations(eval_inputs);
    let baseline = accuracy(eval_acts.last().unwrap(), eval_labels);
    let mut results = Vec::new();
    for &variant in &opts.variants {
        let t = Instant::now();
        let options = BasisOptions { threshold: opts.threshold, integration: opts.integration.clone(), ..BasisOptions::new(variant) };
        let basis = build(net, &acts, &options)?;
        let build_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let graphs: Vec<Mat<f64>> = (0..net.sections.len()).map(|l| edges(net, &basis, l, &acts[l], &opts.integration)).collect();
        let edge_seconds = t.elapsed().as_secs_f64();
        let nodes = (0..net.sections.len()).map(|l| node_ablation(net, &basis, l, &eval_acts[l], eval_labels, baseline, opts.tolerance)).collect();
        let edge_ablations = if opts.edge_ablation {
            (0..net.sections.len()).map(|l| edge_ablation(net, &basis, l, &eval_acts[l], &graphs[l], eval_labels, baseline, opts.edge_tolerance)).collect()
        } else {
            vec![]
        };
        results.push(VariantResult {
            variant,
            widths: basis.layers.iter().map(|b| b.width()).collect(),
            lambda: basis.layers.iter().map(|b| b.lambda.clone()).collect(),
            basis,
            edges: graphs,
            nodes,
            edge_ablations,
            build_seconds,
            edge_seconds,
        });
    }
    Ok(Analysis { node_names: net.node_names.clone(), baseline_accuracy: baseline, basis_samples, eval_samples: eval_labels.len(), results })
}

fn figure_error(e: glassbox_report::ReportError) -> Error {
    Error::invalid(format!("figure: {e}"))
}

fn mat_tensor(name: String, m: &Mat<f64>) -> HostTensor {
    HostTensor { name, shape: vec![m.nrows(), m.ncols()], data: (0..m.nrows()).flat_map(|r| (0..m.ncols()).map(move |c| m[(r, c)] as f32)).collect() }
}

/// run.json (every number), tensors.safetensors (C, C⁺, Λ and edges per layer and variant) and
/// figures/: spectra, ablation curves per layer, and the interaction graph of each variant.
pub fn write_run(dir: &Path, name: &str, command: &str, analysis: &Analysis, extra: serde_json::Value, wall: f64) -> Result<()> {
    std::fs::create_dir_all(dir.join("figures")).map_err(|e| Error::io(dir, e))?;
    let mut metrics = serde_json::Map::new();
    metrics.insert("baseline_accuracy".into(), analysis.baseline_accuracy.into());
    let mut tensors = Vec::new();
    for r in &analysis.results {
        let v = r.variant.name();
        for n in &r.nodes {
            metrics.insert(format!("{v}.features_needed.{}", n.layer), n.needed.map_or(serde_json::Value::Null, |k| k.into()));
        }
        for e in &r.edge_ablations {
            metrics.insert(format!("{v}.edges_needed.{}", e.from), e.needed.map_or(serde_json::Value::Null, |k| k.into()));
        }
        for (l, b) in r.basis.layers.iter().enumerate() {
            tensors.push(mat_tensor(format!("{v}.{l}.c"), &b.c));
            tensors.push(mat_tensor(format!("{v}.{l}.c_plus"), &b.c_plus));
            tensors.push(HostTensor { name: format!("{v}.{l}.lambda"), shape: vec![b.lambda.len()], data: b.lambda.iter().map(|&x| x as f32).collect() });
        }
        for (l, e) in r.edges.iter().enumerate() {
            tensors.push(mat_tensor(format!("{v}.{l}.edges"), e));
        }
    }
    let run = serde_json::json!({
        "name": name,
        "command": command,
        "wall_time_s": wall,
        "versions": { "glassbox": env!("CARGO_PKG_VERSION") },
        "metrics": metrics,
        "lib": analysis,
        "extra": extra,
        "notes": [CAVEAT],
    });
    let meta = HashMap::from([("producer".to_string(), "glassbox lib".to_string())]);
    write_f32(&dir.join("tensors.safetensors"), &tensors, meta)?;
    write_figures(dir, analysis)?;
    write_json(&dir.join("run.json"), &run)
}

/// The honest reading of LIB-vs-PCA gaps, stored with every run.
pub const CAVEAT: &str = "On the paper's modular-addition transformer LIB and PCA need the same number of features in node ablation and LIB needs only 10-25% fewer edges. Large LIB-vs-PCA gaps in MLP toys come mostly from layers whose PCA spectrum is flat (one-hot inputs, pixels) and from the Jacobian-rank truncation (LIB drops directions the next layer cannot see, which PCA cannot do). Edge-mass metrics favour LIB because its features are scaled by √Λ; the functional edge-ablation counts are the fairer comparison.";

fn write_figures(dir: &Path, analysis: &Analysis) -> Result<()> {
    let figs = dir.join("figures");
    let write = |file: &str, svg: String| std::fs::write(figs.join(file), svg).map_err(|e| Error::io(figs.join(file), e));
    let layers = analysis.node_names.len() - 1;
    for l in 0..layers {
        let layer = &analysis.node_names[l];
        let spectra: Vec<(String, Vec<(f64, f64)>)> = analysis
            .results
            .iter()
            .filter(|r| r.variant != crate::Variant::Neuron)
            .map(|r| {
                let lam = &r.lambda[l];
                let max = lam.iter().cloned().fold(0.0, f64::max);
                (format!("{} ({} features)", r.variant.name(), lam.len()), lam.iter().enumerate().map(|(i, &x)| (i as f64, (x / max).log10())).collect())
            })
            .collect();
        write(&format!("{l}-spectrum-{layer}.svg"), glassbox_report::line_chart_svg(&format!("{layer}: Λ (LIB) and variance (PCA) / max"), "feature", "log10 share of max", &spectra).map_err(figure_error)?)?;
        let curves: Vec<(String, Vec<(f64, f64)>)> = analysis
            .results
            .iter()
            .filter_map(|r| r.nodes.get(l).map(|n| (r.variant.name().to_string(), n.curve.iter().map(|&(k, a)| (k as f64, a)).collect())))
            .collect();
        write(&format!("{l}-ablation-{layer}.svg"), glassbox_report::line_chart_svg(&format!("{layer}: keep the first k features"), "features kept", "accuracy", &curves).map_err(figure_error)?)?;
    }
    for r in &analysis.results {
        let (sizes, edges) = strongest_edges(r, 16, 40);
        let names: Vec<String> = analysis.node_names.clone();
        let svg = glassbox_report::layered_graph_svg(&format!("{} interaction graph: first 16 features, strongest 40 edges per pair", r.variant.name()), &names, &sizes, &edges).map_err(figure_error)?;
        write(&format!("graph-{}.svg", r.variant.name()), svg)?;
    }
    Ok(())
}

/// The first `nodes` features of each layer (constant excluded) and the strongest `per_pair`
/// edges among them.
fn strongest_edges(r: &VariantResult, nodes: usize, per_pair: usize) -> (Vec<usize>, Vec<glassbox_report::GraphEdge>) {
    let offset = |l: usize| r.basis.layers[l].const_first as usize;
    let sizes: Vec<usize> = r.basis.layers.iter().map(|b| (b.width() - b.const_first as usize).min(nodes)).collect();
    let mut all = Vec::new();
    for (l, e) in r.edges.iter().enumerate() {
        let mut pair: Vec<glassbox_report::GraphEdge> = (0..sizes[l + 1])
            .flat_map(|to| (0..sizes[l]).map(move |from| (from, to)))
            .map(|(from, to)| glassbox_report::GraphEdge { layer: l, from, to, weight: e[(to + offset(l + 1), from + offset(l))] })
            .collect();
        pair.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        pair.truncate(per_pair);
        all.extend(pair);
    }
    (sizes, all)
}

/// For modular addition: the Fourier purity and dominant frequency of the first 20 features of
/// every hidden node layer per basis (returned for run.json), and figures of the 2-D power
/// spectra of the first 8 (`figures/fourier-*.png`: frequency (0, 0) at the centre, log scale,
/// with a note beside each telling the report what the colours and labels mean). A
/// transformer's first node layer (the embedded tokens) counts as hidden; an MLP's one-hot
/// input does not.
pub fn write_fourier(dir: &Path, net: &Network, analysis: &Analysis, all_pairs: &[f32], p: usize) -> Result<serde_json::Value> {
    let figs = dir.join("figures");
    std::fs::create_dir_all(&figs).map_err(|e| Error::io(&figs, e))?;
    let acts = net.node_activations(net.fold_input(all_pairs, p * p));
    let mut out = serde_json::Map::new();
    for r in &analysis.results {
        let first = matches!(net.input, crate::network::Input::Features) as usize;
        for (l, acts_l) in acts.iter().enumerate().take(acts.len() - 1).skip(first) {
            let spectra = crate::fourier::layer_spectra(acts_l, &r.basis.layers[l], p, 20);
            let layer = &analysis.node_names[l];
            let purity: Vec<f64> = spectra.iter().map(|s| s.0).collect();
            out.insert(format!("{}.{layer}", r.variant.name()), serde_json::json!({
                "purity": purity,
                "frequency": spectra.iter().map(|s| s.1).collect::<Vec<_>>(),
                "mean_purity": purity.iter().sum::<f64>() / purity.len().max(1) as f64,
            }));
            let images: Vec<Vec<f32>> = spectra.iter().take(8).map(|s| s.2.clone()).collect();
            if !images.is_empty() {
                let png = glassbox_report::power_spectrum_grid_png(&images, p, 4, FOURIER_DECADES).map_err(figure_error)?;
                let file = figs.join(format!("fourier-{}-{l}-{layer}.png", r.variant.name()));
                std::fs::write(&file, png).map_err(|e| Error::io(&file, e))?;
                fourier_note(&spectra[..images.len()], r.variant.name(), layer, p).write_beside(&file).map_err(figure_error)?;
            }
        }
    }
    Ok(serde_json::Value::Object(out))
}

/// Decades of power below each spectrum's peak that the Fourier figures show.
const FOURIER_DECADES: f32 = 3.0;

/// What a `fourier-*.png` shows, for the report: one image per feature, labelled with its
/// dominant frequency and purity, and what the colours mean.
fn fourier_note(spectra: &[(f64, usize, Vec<f32>)], basis: &str, layer: &str, p: usize) -> glassbox_report::FigureNote {
    use glassbox_report::{ColourScale, Colormap, FigureKind, FigureNote, GridLabels};
    let basis = if basis == "lib" || basis == "pca" { basis.to_uppercase() } else { basis.to_string() };
    FigureNote {
        kind: Some(FigureKind::FourierSpectra),
        caption: format!(
            "The first {n} {basis} features at layer {layer}: 2-D Fourier power over all {p} × {p} input pairs (a, b), frequency (0, 0) at the centre (grey), \
             frequencies −{h} … {last} in a downwards and in b across. Colour: power relative to the image's peak, on a log scale. \
             Label: rank: dominant frequency w · Fourier purity.",
            n = spectra.len(),
            h = p / 2,
            last = p - 1 - p / 2
        ),
        colours: Some(ColourScale { colormap: Colormap::Magma, low: format!("≤ 1e-{FOURIER_DECADES} of the peak"), mid: (FOURIER_DECADES % 2.0 == 0.0).then(|| format!("1e-{}", FOURIER_DECADES / 2.0)), high: "peak".into() }),
        grid: Some(GridLabels {
            cols: spectra.len().min(4),
            rows: spectra.len().div_ceil(4),
            cells: spectra.iter().enumerate().map(|(k, (purity, w, _))| format!("{}: w {w} · {purity:.2}", k + 1)).collect(),
            row_labels: Vec::new(),
            col_labels: Vec::new(),
        }),
    }
}
