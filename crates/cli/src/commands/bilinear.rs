use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::Args;
use glassbox_bilinear::analysis::{analyze, write_run, AnalysisOptions, EvalData};
use glassbox_bilinear::load;
use glassbox_core::dataspec::DataSpec;
use std::path::PathBuf;
use std::time::Instant;

/// Read a bilinear layer's function from its weights (Pearce et al., ICLR 2025).
///
/// For every output class c, forms the symmetric interaction matrix B_c = sym(W^T diag(P^T e_c) V)
/// and eigendecomposes it in f64, so that logit_c(x) = Σ_i λ_i (v_i·E x)². Writes to the run
/// folder: eigenvalues and pixel-space eigenvectors E^T v (tensors.safetensors), eigenvector
/// images (top positive and negative per class, blue positive, red negative), eigenvalue
/// spectra, the HOSVD singular values, and, when the test data is available, the accuracy of
/// the truncated model with the top-k eigenvectors per class and adversarial masks built from
/// the weights (pseudoinverse of the top positive eigenvectors), compared with random masks of
/// the same norm. Models with biases are analysed with the appended-constant trick.
///
/// MODEL is a glassbox checkpoint folder, or a safetensors file together with --weights-map,
/// a JSON file naming its tensors, e.g. for the reference PyTorch code, which keeps W and V
/// as one Linear of 2*d_h rows: {"wv": "mlp.W.weight", "p": "head.weight", "embed": "embed.weight"}
/// (other keys: "w", "v", "b1", "b2", "wv_bias"; all weights in PyTorch [out, in] layout).
/// --dataset names the data set such a file was trained on.
///
/// For a bilinear transformer (`glassbox lm train --arch bilinear`), reads the MLP of --block
/// through an SAE at its output (--sae-out, SAELens format, at `blocks.{L}.hook_mlp_out`): for
/// each output feature a with encoder direction u_a, Q_a = sym(W^T diag(P^T u_a) V) in the
/// residual-stream space, and the correlation, over the positions of --text where the feature
/// fires, of its activation with Σ_{i≤k} λ_i (v_i·x)² for k = 1, 2, 4, 8, 16 (x the MLP's input,
/// `blocks.{L}.ln2.hook_normalized`). With --sae-in (an SAE at that input), the strongest
/// interactions f_i^T Q_a f_j between input features of the 20 most active output features.
#[derive(Args, Debug)]
pub struct BilinearArgs {
    /// Checkpoint folder, or a safetensors file with --weights-map.
    pub model: PathBuf,
    /// JSON naming the tensors of a safetensors MODEL (see above).
    #[arg(long)]
    pub weights_map: Option<PathBuf>,
    /// Run folder to write.
    #[arg(long, default_value = "glassbox-bilinear")]
    pub out: PathBuf,
    /// Truncation curve: numbers of eigenvectors kept per class.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4,5,6,8,10,15,20,30")]
    pub ks: Vec<usize>,
    /// Eigenvector images per sign and class.
    #[arg(long, default_value_t = 4)]
    pub images: usize,
    /// Adversarial mask standard deviations.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3")]
    pub mask_std: Vec<f64>,
    /// Skip the adversarial masks (for inputs where adding a pattern means nothing, e.g. one-hot).
    #[arg(long)]
    pub no_masks: bool,
    /// Restrict masks to pixels active in < 1% of training images (for unregularised models).
    #[arg(long)]
    pub edge_masks: bool,
    /// Test samples scored (the first N; all when 0): accuracy, truncation curve and masks.
    /// Results on fewer than the whole test split are named so (`first2000_test_accuracy`).
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Only the N largest-|λ| eigenpairs per class, by Lanczos on matrix-free products: for
    /// wide layers. Eigenvalue sums such as the effective rank then cover these N only.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Also decompose Q(u) for this output direction u, given as one weight per output
    /// (e.g. "1,-1" for the difference of two logits); repeat for several. Images in
    /// figures/05-directions.png, eigenvalues in run.json.
    #[arg(long)]
    pub direction: Vec<String>,
    /// Weights only: skip everything that needs data.
    #[arg(long, conflicts_with = "dataset")]
    pub no_data: bool,
    /// Data set for the accuracy, truncation curve and masks of a safetensors MODEL (mnist,
    /// fashion-mnist, digits, ...); a checkpoint's own data set is used otherwise.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Image height and width for a safetensors MODEL (checkpoints know theirs), e.g. 28,28.
    #[arg(long, value_delimiter = ',')]
    pub image: Option<Vec<usize>>,
    /// Transformer: the block whose MLP to read.
    #[arg(long)]
    pub block: Option<usize>,
    /// Transformer: SAE (folder in SAELens format) at the MLP's output.
    #[arg(long)]
    pub sae_out: Option<PathBuf>,
    /// Transformer: SAE at the MLP's input, for input-feature interactions.
    #[arg(long)]
    pub sae_in: Option<PathBuf>,
    /// Transformer: text whose positions the correlations are measured over.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Transformer: at most this many positions of --text.
    #[arg(long, default_value_t = 100_000)]
    pub max_tokens: usize,
}

pub fn run(cli: &Cli, a: &BilinearArgs) -> Result<()> {
    let start = Instant::now();
    let card_path = a.model.join(glassbox_core::checkpoint::CARD_FILE);
    if a.weights_map.is_none() && card_path.is_file() {
        let card: glassbox_core::checkpoint::ModelCard = glassbox_core::io::read_json(&card_path)?;
        if matches!(card.architecture, glassbox_core::model::Architecture::Transformer(_)) {
            let (model, _) = glassbox_core::checkpoint::load(&a.model, &glassbox_core::tensor::infer_device())?;
            return super::bilinear_lm::run(cli, a, &model);
        }
    }
    let (model, card) = match &a.weights_map {
        Some(map) => (load::from_safetensors(&a.model, map)?, None),
        None if a.model.is_dir() => {
            let (m, c) = load::from_checkpoint(&a.model)?;
            (m, Some(c))
        }
        None => bail!("{}: not a checkpoint folder; for a safetensors file pass --weights-map", a.model.display()),
    };
    let spec = match (&a.dataset, &card) {
        (Some(name), _) => Some(DataSpec::from_name(name, cli.seed, None, None)?),
        (None, Some(card)) => card.task.as_ref().map(|t| t.data.clone()),
        (None, None) => None,
    };
    let split = match spec {
        Some(spec) if !a.no_data => Some(spec.load(cli.data.as_deref()).with_context(|| "loading the model's data set (use --no-data for a weights-only analysis)")?),
        _ => None,
    };
    if split.is_none() && !a.no_data && !cli.quiet {
        eprintln!("{}: no data set known, so a weights-only analysis; --dataset NAME adds the accuracy, the truncation curve and the masks", a.model.display());
    }
    if let Some(s) = &split {
        let (outputs, classes) = (model.layer.d_out(), s.test.n_outputs());
        if outputs != classes {
            bail!("{}: the model has {outputs} outputs but data set {} has {classes} classes", a.model.display(), s.test.name);
        }
    }
    let image_shape = match (&a.image, &split) {
        (Some(v), _) if v.len() == 2 => Some((v[0], v[1])),
        (Some(v), _) => bail!("--image takes height,width (got {} numbers)", v.len()),
        (None, Some(s)) => s.test.image_shape.map(|[_, h, w]| (h, w)),
        (None, None) => None,
    };
    let data = match &split {
        Some(s) if s.test.is_multilabel() => {
            if !cli.quiet {
                eprintln!("{} is multi-label: weights-only analysis (no truncation accuracy or masks)", s.test.name);
            }
            None
        }
        Some(s) => Some(EvalData::from_datasets(&s.test, Some(&s.train), (a.samples > 0).then_some(a.samples))?),
        None => None,
    };
    let directions = a
        .direction
        .iter()
        .map(|d| d.split(',').map(|v| v.trim().parse::<f64>().with_context(|| format!("--direction '{d}': '{v}' is not a number"))).collect())
        .collect::<Result<Vec<Vec<f64>>>>()?;
    let opts = AnalysisOptions {
        ks: a.ks.clone(),
        images_per_sign: a.images,
        mask_strengths: if a.no_masks { Vec::new() } else { a.mask_std.clone() },
        edge_masks: a.edge_masks,
        image_shape,
        top_k: a.top_k,
        directions,
        seed: cli.seed,
    };
    // analyze checks the data's width against the model; the context names the file.
    let analysis = analyze(&model, data.as_ref(), &opts).with_context(|| a.model.display().to_string())?;
    let command = super::command_line();
    let name = format!("bilinear {}", a.model.file_name().map_or("model".into(), |n| n.to_string_lossy().to_string()));
    write_run(&a.out, &name, &command, &model, &analysis, &opts, start.elapsed().as_secs_f64())?;
    if !cli.quiet {
        let ranks = &analysis.effective_ranks;
        println!("classes {}  mean effective rank {:.2}", ranks.len(), ranks.iter().sum::<f64>() / ranks.len().max(1) as f64);
        if let Some(acc) = analysis.accuracy {
            let scope = match analysis.evaluated {
                Some((n, total)) if n < total => format!("accuracy on the first {n} of {total} test samples (--samples 0 for all)"),
                _ => "test accuracy".into(),
            };
            println!("{scope} {acc:.4}  full-rank max |Δlogit| {:.2e}", analysis.full_rank_max_error.unwrap_or(f64::NAN));
            let curve: Vec<String> = analysis.truncation.iter().map(|(k, a)| format!("k={k}: {a:.4}")).collect();
            println!("truncation  {}", curve.join("  "));
        }
        for r in &analysis.adversarial {
            println!(
                "mask std {:.3}: accuracy {:.4} (random {:.4})  misclassified to target {:.4} (random {:.4})",
                r.strength, r.accuracy, r.random_accuracy, r.misclassified_to_target, r.random_misclassified_to_target
            );
        }
        println!("wrote {}", a.out.display());
    }
    Ok(())
}
