//! The whole weight-based analysis of one bilinear model, written as a run folder: per-class
//! spectra, truncation curve, HOSVD, adversarial masks, and their figures (the methods of the
//! bilinear-MLP paper, Pearce et al. 2024).

use crate::adversarial::{evaluate_masks, fix_sign, normalise, pinv_masks, rare_pixels, AttackResult, Baseline};
use crate::eigen::{eigh, Spectrum};
use crate::decompose::{accuracy, decompose, decompose_top_k, model_logits, Decomposition};
use crate::hosvd::hosvd;
use crate::layer::BilinearModel;
use crate::{Error, Result};
use faer::Mat;
use glassbox_core::data::{Dataset, Targets};
use glassbox_core::io::{write_atomic, write_f32, write_json, HostTensor};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Labelled inputs for the data-dependent parts (truncation accuracy, adversarial masks).
pub struct EvalData {
    /// Test inputs `[n, d_raw]`.
    pub x: Mat<f64>,
    pub labels: Vec<usize>,
    /// Training inputs, used only to find rarely active pixels for edge masks.
    pub train_x: Option<Mat<f64>>,
    /// Size of the whole test split `x` was taken from, so results on a subset say so.
    pub test_size: usize,
}

impl EvalData {
    /// The first `max_samples` test samples (all when None) of a classification data set.
    pub fn from_datasets(test: &Dataset, train: Option<&Dataset>, max_samples: Option<usize>) -> Result<EvalData> {
        let Targets::Classes { labels, .. } = &test.targets else {
            return Err(Error::invalid(format!("data set {} is multi-label; the per-class analysis needs one class per sample", test.name)));
        };
        let n = max_samples.map_or(test.len(), |m| m.min(test.len()));
        let rows = |d: &Dataset, n: usize| Mat::from_fn(n, d.input_dim, |r, j| d.input(r)[j] as f64);
        Ok(EvalData {
            x: rows(test, n),
            labels: labels[..n].iter().map(|&l| l as usize).collect(),
            train_x: train.map(|t| rows(t, t.len())),
            test_size: test.len(),
        })
    }
}

#[derive(Clone, Debug)]
pub struct AnalysisOptions {
    /// k values of the truncation curve (eigenvectors per class).
    pub ks: Vec<usize>,
    /// Positive and negative eigenvector images per class in the figure.
    pub images_per_sign: usize,
    /// Mask standard deviations for the adversarial attack (each mask is scaled to std s).
    pub mask_strengths: Vec<f64>,
    /// Restrict masks to pixels with train mean < 0.01 (the edge masks of the paper's Fig 7B).
    pub edge_masks: bool,
    /// (height, width) of image inputs, for eigenvector images.
    pub image_shape: Option<(usize, usize)>,
    /// Compute only this many eigenpairs per class (Lanczos, matrix-free) instead of all.
    pub top_k: Option<usize>,
    /// Extra output directions u (length d_out) whose Q(u) is decomposed, e.g. e_a − e_b.
    pub directions: Vec<Vec<f64>>,
    pub seed: u64,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            ks: vec![0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30],
            images_per_sign: 4,
            mask_strengths: vec![0.1, 0.2, 0.3],
            edge_masks: false,
            image_shape: None,
            top_k: None,
            directions: Vec::new(),
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub effective_ranks: Vec<f64>,
    pub hosvd_singular_values: Vec<f64>,
    /// Accuracy of the model itself (f64 forward) on the evaluated test samples.
    pub accuracy: Option<f64>,
    /// (samples evaluated, size of the test split): the first `samples` test samples were used.
    pub evaluated: Option<(usize, usize)>,
    /// (k, accuracy) of the truncated model.
    pub truncation: Vec<(usize, f64)>,
    /// max |full-rank truncated logits − model logits| on the test inputs.
    pub full_rank_max_error: Option<f64>,
    pub adversarial: Vec<AttackResult>,
    /// Eigenvalues of Q(u) for each requested direction u, by |λ|.
    pub direction_eigenvalues: Vec<Vec<f64>>,
    #[serde(skip)]
    pub decomposition: Decomposition,
    /// Spectra of the requested directions, in the (bias-folded) layer input space.
    #[serde(skip)]
    pub directions: Vec<Spectrum>,
    /// Attacked test images at the strongest mask, one per class's top mask.
    #[serde(skip)]
    pub examples: Vec<AdversarialExample>,
}

#[derive(Clone, Debug)]
pub struct AdversarialExample {
    pub clean: Vec<f64>,
    pub attacked: Vec<f64>,
    pub label: usize,
    pub target: usize,
    pub predicted: usize,
}

pub fn analyze(model: &BilinearModel, data: Option<&EvalData>, opts: &AnalysisOptions) -> Result<Analysis> {
    let decomposition = match opts.top_k {
        Some(k) => decompose_top_k(model, k)?,
        None => decompose(model)?,
    };
    let folded = model.layer.with_bias_folded();
    let svd = hosvd(&folded, model.layer.d_out())?;
    let mut directions = Vec::new();
    for u in &opts.directions {
        if u.len() != model.layer.d_out() {
            return Err(Error::invalid(format!("a direction needs {} numbers (one per output), got {}", model.layer.d_out(), u.len())));
        }
        directions.push(eigh(&folded.interaction(u))?);
    }
    let mut out = Analysis {
        effective_ranks: decomposition.effective_ranks(),
        hosvd_singular_values: svd.singular_values,
        accuracy: None,
        evaluated: None,
        truncation: Vec::new(),
        full_rank_max_error: None,
        adversarial: Vec::new(),
        direction_eigenvalues: directions.iter().map(|d| d.values.clone()).collect(),
        decomposition,
        directions,
        examples: Vec::new(),
    };
    let Some(data) = data else { return Ok(out) };
    if data.x.ncols() != model.d_raw() || data.x.nrows() != data.labels.len() {
        return Err(Error::invalid(format!(
            "evaluation data has {} inputs of width {} and {} labels; the model reads width {}",
            data.x.nrows(), data.x.ncols(), data.labels.len(), model.d_raw()
        )));
    }
    let logits = model_logits(model, &data.x);
    out.accuracy = Some(accuracy(&logits, &data.labels));
    out.evaluated = Some((data.labels.len(), data.test_size.max(data.labels.len())));
    let dec = &out.decomposition;
    if opts.top_k.is_none() {
        let full = dec.truncated_logits(&data.x, usize::MAX);
        out.full_rank_max_error = Some((0..full.nrows()).flat_map(|r| (0..full.ncols()).map(move |c| (r, c))).map(|(r, c)| (full[(r, c)] - logits[(r, c)]).abs()).fold(0.0, f64::max));
    }
    out.truncation = dec.truncation_curve(&data.x, &data.labels, &opts.ks);
    if !dec.bias_folded && !opts.mask_strengths.is_empty() {
        let per_class = 10usize.min(model.layer.d_hidden() / model.layer.d_out().max(1));
        let masks = pinv_masks(model, dec, per_class, 3)?;
        let support = match (&data.train_x, opts.edge_masks) {
            (Some(t), true) => Some(rare_pixels(t, 0.01)),
            (None, true) => return Err(Error::invalid("edge masks need the training inputs to find rare pixels")),
            _ => None,
        };
        let baseline = if opts.edge_masks { Baseline::Gaussian } else { Baseline::Permuted };
        for &s in &opts.mask_strengths {
            out.adversarial.push(evaluate_masks(model, &masks, &data.x, &data.labels, s, support.as_deref(), baseline, opts.seed));
        }
        let strongest = opts.mask_strengths.iter().copied().fold(0.0, f64::max);
        out.examples = examples(model, &masks, data, strongest, support.as_deref());
    }
    Ok(out)
}

/// For each class's top mask: the first test image of another class that the mask pushes into
/// the mask's class (or the first of another class when none flips), clean and attacked.
fn examples(model: &BilinearModel, masks: &[crate::adversarial::Mask], data: &EvalData, strength: f64, support: Option<&[bool]>) -> Vec<AdversarialExample> {
    let predict = |x: &[f64]| crate::decompose::argmax_row(&model_logits(model, &Mat::from_fn(1, x.len(), |_, j| x[j])), 0);
    let mut out = Vec::new();
    for mask in masks.iter().filter(|m| m.rank == 0) {
        let mut m = mask.clone();
        fix_sign(&mut m, &data.x, &data.labels);
        let delta = normalise(&m.pixels, strength, support);
        let row = |r: usize| (0..data.x.ncols()).map(|j| data.x[(r, j)]).collect::<Vec<f64>>();
        let others: Vec<usize> = (0..data.labels.len()).filter(|&r| data.labels[r] != mask.class).take(200).collect();
        let attacked_row = |r: usize| row(r).iter().zip(&delta).map(|(a, b)| a + b).collect::<Vec<f64>>();
        let pick = others.iter().copied().find(|&r| predict(&attacked_row(r)) == mask.class).or(others.first().copied());
        if let Some(r) = pick {
            let attacked = attacked_row(r);
            out.push(AdversarialExample { clean: row(r), predicted: predict(&attacked), attacked, label: data.labels[r], target: mask.class });
        }
    }
    out
}

/// Pixel-space eigenvector of class c, index i, unit-normalised, without the bias coordinate.
pub fn pixel_image(dec: &Decomposition, c: usize, i: usize, d_raw: usize) -> Vec<f32> {
    let px = &dec.pixel_vectors[c];
    let v: Vec<f64> = (0..d_raw).map(|r| px[(r, i)]).collect();
    let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
    v.iter().map(|a| (a / norm) as f32).collect()
}

/// Write run.json, tensors.safetensors and figures/ into `dir`.
pub fn write_run(dir: &Path, name: &str, command: &str, model: &BilinearModel, analysis: &Analysis, opts: &AnalysisOptions, wall: f64) -> Result<()> {
    let dec = &analysis.decomposition;
    let d_raw = model.d_raw();
    let mut metrics = serde_json::Map::new();
    let n = analysis.effective_ranks.len().max(1) as f64;
    metrics.insert("mean_effective_rank".into(), (analysis.effective_ranks.iter().sum::<f64>() / n).into());
    // The names say what was scored: the whole test split, or only its first n samples.
    let subset = analysis.evaluated.filter(|&(n, total)| n < total);
    let (accuracy_name, truncated_prefix) = match subset {
        Some((n, _)) => (format!("first{n}_test_accuracy"), format!("first{n}_test_truncated_accuracy_k")),
        None => ("test_accuracy".to_string(), "truncated_accuracy_k".to_string()),
    };
    if let Some(a) = analysis.accuracy {
        metrics.insert(accuracy_name, a.into());
    }
    if let Some((n, total)) = analysis.evaluated {
        metrics.insert("test_samples_evaluated".into(), n.into());
        metrics.insert("test_split_size".into(), total.into());
    }
    for (k, a) in &analysis.truncation {
        metrics.insert(format!("{truncated_prefix}{k}"), (*a).into());
    }
    if let Some(e) = analysis.full_rank_max_error {
        metrics.insert("full_rank_max_error".into(), e.into());
    }
    if let Some(a) = analysis.adversarial.last() {
        metrics.insert(format!("adversarial_accuracy_std{}", a.strength), a.accuracy.into());
        metrics.insert(format!("random_mask_accuracy_std{}", a.strength), a.random_accuracy.into());
    }
    let run = serde_json::json!({
        "name": name,
        "command": command,
        "seed": opts.seed,
        "wall_time_s": wall,
        "versions": { "glassbox": env!("CARGO_PKG_VERSION") },
        "config": { "ks": opts.ks, "mask_strengths": opts.mask_strengths, "edge_masks": opts.edge_masks, "bias_folded": dec.bias_folded },
        "metrics": metrics,
        "bilinear": analysis,
    });
    let mut run = run;
    if let (Some((h, w)), false) = (opts.image_shape, analysis.examples.is_empty()) {
        let images: Vec<Vec<f32>> = analysis.examples.iter().flat_map(|e| [&e.clean, &e.attacked]).map(|v| v.iter().map(|&a| a as f32).collect()).collect();
        let labels: Vec<String> = analysis
            .examples
            .iter()
            .flat_map(|e| [format!("{}", e.label), format!("mask {}: {}", e.target, e.predicted)])
            .collect();
        run["image_grids"] = serde_json::json!([{
            "title": format!("adversarial examples: clean, then + the top mask of a class (std {}) and the prediction", opts.mask_strengths.iter().copied().fold(0.0, f64::max)),
            "height": h, "width": w, "cols": 10, "images": images, "labels": labels,
        }]);
    }
    // Tensors: eigenvalues per class and the pixel-space eigenvectors (columns) per class.
    let mut tensors = Vec::new();
    for (c, s) in dec.classes.iter().enumerate() {
        tensors.push(HostTensor { name: format!("class.{c}.eigenvalues"), shape: vec![s.len()], data: s.values.iter().map(|&v| v as f32).collect() });
        let px = &dec.pixel_vectors[c];
        tensors.push(HostTensor {
            name: format!("class.{c}.pixel_eigenvectors"),
            shape: vec![px.ncols(), px.nrows()],
            data: (0..px.ncols()).flat_map(|i| (0..px.nrows()).map(move |r| px[(r, i)] as f32)).collect(),
        });
    }
    let meta = HashMap::from([("producer".to_string(), "glassbox bilinear".to_string())]);
    write_f32(&dir.join("tensors.safetensors"), &tensors, meta)?;
    write_figures(dir, model, analysis, opts, d_raw)?;
    write_json(&dir.join("run.json"), &run)
}

/// Colours of the signed pixel figures: RdBu on each image's own symmetric range.
fn signed_colours() -> glassbox_report::ColourScale {
    glassbox_report::ColourScale { colormap: glassbox_report::Colormap::Rdbu, low: "−max |value| of the image".into(), mid: Some("0".into()), high: "+max |value|".into() }
}

/// The report's note for an eigenvector figure: a row per spectrum, its top `n` positive then
/// top `n` negative eigenvectors (blank cells where it has fewer), each labelled with λ.
fn eigen_note(spectra: &[&Spectrum], row_labels: Vec<String>, n: usize, caption: String) -> glassbox_report::FigureNote {
    let lambda = |v: f64| if v.abs() >= 10.0 { format!("λ {v:+.1}") } else if v.abs() >= 1.0 { format!("λ {v:+.2}") } else { format!("λ {v:+.3}") };
    let mut cells = Vec::new();
    for s in spectra {
        let mut row: Vec<String> = s.top_positive(n).into_iter().chain(s.top_negative(n)).map(|i| lambda(s.values[i])).collect();
        row.resize(2 * n, String::new());
        cells.extend(row);
    }
    let col_labels = (1..=n).map(|k| format!("+{k}")).chain((1..=n).map(|k| format!("−{k}"))).collect();
    glassbox_report::FigureNote {
        kind: Some(glassbox_report::FigureKind::Eigenvectors),
        caption,
        colours: Some(signed_colours()),
        grid: Some(glassbox_report::GridLabels { cols: 2 * n, rows: spectra.len(), cells, row_labels, col_labels }),
    }
}

fn figure_error(e: glassbox_report::ReportError) -> Error {
    Error::invalid(format!("figure: {e}"))
}

fn write_figures(dir: &Path, model: &BilinearModel, analysis: &Analysis, opts: &AnalysisOptions, d_raw: usize) -> Result<()> {
    let figs = dir.join("figures");
    let dec = &analysis.decomposition;
    let spectra: Vec<(String, Vec<(f64, f64)>)> = dec
        .classes
        .iter()
        .enumerate()
        .map(|(c, s)| (format!("class {c}"), s.values.iter().take(40).enumerate().map(|(i, &v)| ((i + 1) as f64, v)).collect()))
        .collect();
    let svg = glassbox_report::line_chart_svg("Eigenvalues per class, by |λ|", "rank", "eigenvalue", &spectra).map_err(figure_error)?;
    write_atomic(&figs.join("02-spectra.svg"), svg.as_bytes())?;
    if !analysis.truncation.is_empty() {
        let mut series = vec![("truncated model".to_string(), analysis.truncation.iter().map(|&(k, a)| (k as f64, a)).collect::<Vec<_>>())];
        if let Some(a) = analysis.accuracy {
            let kmax = analysis.truncation.last().map_or(1, |t| t.0) as f64;
            series.push(("full model".into(), vec![(0.0, a), (kmax, a)]));
        }
        let y_label = match analysis.evaluated {
            Some((n, total)) if n < total => format!("accuracy, first {n} of {total} test samples"),
            _ => "test accuracy".to_string(),
        };
        let svg = glassbox_report::line_chart_svg("Accuracy with the top-k eigenvectors per class", "k", &y_label, &series).map_err(figure_error)?;
        write_atomic(&figs.join("03-truncation.svg"), svg.as_bytes())?;
    }
    if let Some((h, w)) = opts.image_shape.filter(|(h, w)| h * w == d_raw) {
        let n = opts.images_per_sign;
        let mut images = Vec::new();
        for (c, s) in dec.classes.iter().enumerate() {
            let mut row: Vec<Vec<f32>> = s.top_positive(n).into_iter().chain(s.top_negative(n)).map(|i| pixel_image(dec, c, i, d_raw)).collect();
            row.resize(2 * n, vec![0.0; d_raw]);
            images.extend(row);
        }
        let png = glassbox_report::diverging_grid_png(&images, h, w, 2 * n).map_err(figure_error)?;
        write_atomic(&figs.join("01-eigenvectors.png"), &png)?;
        let classes: Vec<&Spectrum> = dec.classes.iter().collect();
        let caption = format!("One row per class: the eigenvectors with the {n} largest positive eigenvalues, then those with the {n} most negative, each labelled with its eigenvalue λ.");
        eigen_note(&classes, (0..classes.len()).map(|c| format!("class {c}")).collect(), n, caption).write_beside(&figs.join("01-eigenvectors.png")).map_err(figure_error)?;
        if !analysis.directions.is_empty() {
            let mut images = Vec::new();
            for s in &analysis.directions {
                let px = |i: usize| {
                    let v: Vec<f64> = s.vector(i);
                    let p: Vec<f64> = match &model.embed {
                        Some(e) => (0..d_raw).map(|r| (0..v.len().min(e.nrows())).map(|k| e[(k, r)] * v[k]).sum()).collect(),
                        None => v[..d_raw].to_vec(),
                    };
                    let norm = p.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
                    p.iter().map(|a| (a / norm) as f32).collect::<Vec<f32>>()
                };
                let mut row: Vec<Vec<f32>> = s.top_positive(n).into_iter().chain(s.top_negative(n)).map(px).collect();
                row.resize(2 * n, vec![0.0; d_raw]);
                images.extend(row);
            }
            let png = glassbox_report::diverging_grid_png(&images, h, w, 2 * n).map_err(figure_error)?;
            write_atomic(&figs.join("05-directions.png"), &png)?;
            let directions: Vec<&Spectrum> = analysis.directions.iter().collect();
            let caption = format!("Eigenvectors of Q(u), one row per output direction u given: the {n} largest positive eigenvalues, then the {n} most negative, each labelled with λ.");
            eigen_note(&directions, (1..=directions.len()).map(|d| format!("u {d}")).collect(), n, caption).write_beside(&figs.join("05-directions.png")).map_err(figure_error)?;
        }
        if !dec.bias_folded && !analysis.adversarial.is_empty() {
            let per_class = 10usize.min(model.layer.d_hidden() / model.layer.d_out().max(1));
            let masks = pinv_masks(model, dec, per_class, 1)?;
            let imgs: Vec<Vec<f32>> = masks.iter().map(|m| m.pixels.iter().map(|&v| v as f32).collect()).collect();
            let png = glassbox_report::diverging_grid_png(&imgs, h, w, imgs.len().min(10)).map_err(figure_error)?;
            write_atomic(&figs.join("04-adversarial-masks.png"), &png)?;
            let cols = imgs.len().min(10);
            glassbox_report::FigureNote {
                kind: Some(glassbox_report::FigureKind::SignedImages),
                caption: "One adversarial mask per class, labelled with its class: the pixel pattern that excites only that class's top eigenvector; added to an image it pushes the prediction towards the class.".into(),
                colours: Some(signed_colours()),
                grid: Some(glassbox_report::GridLabels { cols, rows: imgs.len().div_ceil(cols.max(1)), cells: masks.iter().map(|m| format!("class {}", m.class)).collect(), ..Default::default() }),
            }
            .write_beside(&figs.join("04-adversarial-masks.png"))
            .map_err(figure_error)?;
        }
    }
    Ok(())
}
