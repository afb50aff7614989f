use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_core::checkpoint;
use glassbox_core::data::Dataset;
use glassbox_core::dataspec::DataSpec;
use glassbox_core::tensor::infer_device;
use glassbox_lib_basis::analysis::{analyze, write_run, AnalysisOptions};
use glassbox_lib_basis::experiments::modadd::all_pairs;
use glassbox_lib_basis::{Integration, Network, Threshold, Variant};
use std::path::PathBuf;
use std::time::Instant;

/// Find the computationally relevant features of each layer: the Local Interaction Basis
/// (Bushnaq et al., 2024) with PCA as the baseline.
///
/// For each node layer (the input, then every hidden activation, then the logits) of an MLP or
/// bilinear checkpoint, or of a one-layer transformer read at its last position (the residual
/// stream into attention over all positions, after attention and after the MLP at the last
/// position), with biases folded in as a constant coordinate: centres and whitens the
/// activations (PCA), rotates them by the eigenvectors of E[JᵀJ], the Jacobian into the next
/// layer's LIB features, and scales feature i by √Λ_i, so its second moment is its squared
/// downstream Jacobian norm. Built backwards from the logits, in f64, with closed-form
/// Jacobians. Then the interaction graph between adjacent layers (squared gradient × activation
/// edges) and the ablation curves: accuracy when only the first k features of a layer are
/// kept, the number of features and of edges needed to stay within --tolerance of the model's
/// accuracy (bisection). Bases and graphs use training samples, ablations the test set.
///
/// Writes run.json (widths, Λ, features and edges needed), tensors.safetensors (C, C⁺, Λ and
/// the edge matrices per layer and basis) and figures/ (spectra, one ablation chart per layer
/// with LIB and PCA together, interaction graphs; for modular addition also the 2-D Fourier
/// power spectra of the leading features). Render it with `glassbox report`.
#[derive(Args, Debug)]
pub struct LibArgs {
    /// Checkpoint folder (model.json + model.safetensors) of an MLP, bilinear or one-layer
    /// transformer model.
    pub model: PathBuf,
    /// Run folder to write.
    #[arg(long, default_value = "glassbox-lib")]
    pub out: PathBuf,
    /// Bases to build and compare: lib, pca, neuron.
    #[arg(long, value_delimiter = ',', default_value = "lib,pca")]
    pub basis: Vec<Variant>,
    /// Training samples for the bases and graphs (all when 0).
    #[arg(long, default_value_t = 10_000)]
    pub basis_samples: usize,
    /// Test samples for the ablations (all when 0).
    #[arg(long, default_value_t = 0)]
    pub eval_samples: usize,
    /// Accuracy drop allowed when counting the features a layer needs.
    #[arg(long, default_value_t = 0.01)]
    pub tolerance: f64,
    /// Accuracy drop allowed when counting the edges a layer pair needs (default: --tolerance;
    /// the paper uses 0.001).
    #[arg(long)]
    pub edge_tolerance: Option<f64>,
    /// Skip the edge-ablation bisection (the slowest part on wide layers).
    #[arg(long)]
    pub no_edge_ablation: bool,
    /// Eigenvalues below this share of the largest count as zero (1e-10 in f64).
    #[arg(long, default_value_t = 1e-10)]
    pub threshold: f64,
    /// Treat --threshold as absolute, as the reference code does (its configs use 1e-15).
    #[arg(long)]
    pub absolute_threshold: bool,
    /// Integrate gradients from the zero baseline with the trapezoid rule over this many
    /// intervals instead of taking the plain gradient (the paper's configs use the gradient).
    #[arg(long)]
    pub trapezoid: Option<usize>,
}

fn first(data: &Dataset, n: usize) -> Dataset {
    if n == 0 || n >= data.len() {
        data.clone()
    } else {
        data.subset(&(0..n).collect::<Vec<_>>())
    }
}

pub fn run(cli: &Cli, a: &LibArgs) -> Result<()> {
    let start = Instant::now();
    let (model, card) = checkpoint::load(&a.model, &infer_device())?;
    let net = Network::from_model(&model).with_context(|| format!("{}", a.model.display()))?;
    let Some(task) = &card.task else { bail!("{}: model.json records no data set; LIB needs the model's data", a.model.display()) };
    let split = task.data.load(cli.data.as_deref())?;
    if split.test.is_multilabel() {
        bail!("{}: LIB's ablations score accuracy on classes; {} is multi-label", a.model.display(), split.test.name);
    }
    let edge_tolerance = a.edge_tolerance.unwrap_or(a.tolerance);
    for (flag, t) in [("--tolerance", a.tolerance), ("--edge-tolerance", edge_tolerance)] {
        if !(0.0..1.0).contains(&t) {
            bail!("{flag} must be in [0, 1), got {t}");
        }
    }
    let (basis_set, eval_set) = (first(&split.train, a.basis_samples), first(&split.test, a.eval_samples));
    let opts = AnalysisOptions {
        variants: a.basis.clone(),
        threshold: if a.absolute_threshold { Threshold::Absolute(a.threshold) } else { Threshold::Relative(a.threshold) },
        integration: a.trapezoid.map_or(Integration::Gradient, |n| Integration::Trapezoid { intervals: n }),
        tolerance: a.tolerance,
        edge_tolerance,
        edge_ablation: !a.no_edge_ablation,
    };
    let labels = glassbox_lib_basis::experiments::labels(&eval_set);
    let analysis = analyze(&net, net.fold_input(&basis_set.inputs, basis_set.len()), net.fold_input(&eval_set.inputs, eval_set.len()), &labels, &opts)?;
    let mut extra = serde_json::Value::Null;
    if let DataSpec::Modadd(m) = &task.data {
        extra = glassbox_lib_basis::analysis::write_fourier(&a.out, &net, &analysis, &all_pairs(m), m.p)?;
    }
    let name = format!("lib {}", a.model.file_name().map_or("model".into(), |n| n.to_string_lossy().to_string()));
    write_run(&a.out, &name, &super::command_line(), &analysis, extra, start.elapsed().as_secs_f64())?;
    if !cli.quiet {
        println!("accuracy {:.4} on {} test samples; bases from {} training samples", analysis.baseline_accuracy, analysis.eval_samples, analysis.basis_samples);
        for r in &analysis.results {
            let needed: Vec<String> = r.nodes.iter().map(|n| format!("{} {}/{}", n.layer, n.needed.map_or("-".into(), |k| k.to_string()), n.width)).collect();
            println!("{:6} features needed (of width): {}", r.variant.name(), needed.join("  "));
            if !r.edge_ablations.is_empty() {
                let e: Vec<String> = r.edge_ablations.iter().map(|e| format!("{}→{} {}/{}", e.from, e.to, e.needed.map_or("-".into(), |k| k.to_string()), e.total)).collect();
                println!("{:6} edges needed (of total): {}", r.variant.name(), e.join("  "));
            }
        }
        println!("wrote {}", a.out.display());
    }
    Ok(())
}
