use crate::Cli;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use glassbox_bilinear::experiments;
use glassbox_core::experiment::{ExperimentOptions, Outcome};
use glassbox_lib_basis::experiments as lib;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Experiment {
    /// Bilinear MLPs (Pearce et al., ICLR 2025) on 5,000 MNIST images: bilinear vs ReLU, truncation, rank, overfitting,
    /// consistency, exactness, and adversarial masks (about 2 minutes).
    BilinearA,
    /// Bilinear MLPs on the scikit-learn digits, the fast version (under a minute).
    BilinearB,
    /// Bilinear MLPs on the Boolean toy (AND, XOR, OR), exact interaction matrices.
    BilinearE,
    /// A bilinear MLP on modular addition p = 31, Fourier neurons and Hankel structure.
    BilinearF,
    /// The paper's setup on full MNIST (d_h 512, noise 0.5, wd 1.0, 50 epochs; about 10
    /// minutes on 2 cores, resumable): accuracy, truncation, exactness, all figures.
    BilinearMnist,
    /// The same pipeline on Fashion-MNIST, end to end with its eigenvector images.
    BilinearFashion,
    /// The bilinear paper's language-model experiments at small scale (about an hour on 2
    /// cores, resumable): bilinear, GPT-style and SwiGLU transformers (4 layers, d_model 128) on
    /// TinyStories and Jane Austen; TopK SAEs (k 30, 4×) at the middle block's MLP input and
    /// output; each output feature's top-k eigenvector approximation (k = 1 … 16) correlated with
    /// its activation; the MLP replaced by its top-k eigenvectors per output direction and the
    /// loss that adds. Every step is a glassbox command, printed as it runs.
    BilinearLm,
    /// The Local Interaction Basis (Bushnaq et al., 2024) of a modular-addition MLP, p = 59 (embedding 32, ReLU 128), LIB vs PCA node and
    /// edge ablation and Fourier purity, thresholds 1-6 (about a minute per seed).
    LibModadd,
    /// The Local Interaction Basis on Nanda et al.'s one-layer modular-addition transformer
    /// (p = 113, 30 % of the pairs), trained until every test pair is right (resumable): LIB
    /// vs PCA node and edge ablation at the residual stream into attention, after attention and
    /// after the MLP, beside the paper's table; invariants to 1e-9 and Jacobians against finite
    /// differences to 1e-6 (about 10 minutes per seed on 2 cores).
    LibModaddTransformer,
    /// The Local Interaction Basis of a 64-64-64-10 MLP on the scikit-learn digits, thresholds 7-9.
    LibDigits,
    /// A 784-128-128-10 MLP on full MNIST (--epochs, default 50; 5 is plenty): LIB vs PCA node
    /// ablation on the full test set, curves in the run folder.
    LibMnist,
    /// Universal SAEs (Thasarathan et al., ICML 2025) on planted shared and private concepts in three "models"; the USAE
    /// against independent SAEs, with BatchNorm on and off.
    UsaePlanted,
    /// A Universal SAE over the second hidden layers of three MLPs on the glyph world, against
    /// ridge, shuffled-pairing and independent controls.
    UsaeGlyphs,
    /// Beyond the paper: a USAE (m 512, k 16) over an MLP, the bilinear model and a CNN trained
    /// on full MNIST, against ridge and shuffled-pairing controls, with concept cards for the
    /// ten most universal latents (about 8 minutes).
    UsaeMnist,
    /// ProbeGen (Kahana et al., ICLR 2025) on a digits-INR zoo (1,797 SIRENs) read by StatNN, uniform probes,
    /// vanilla probing, ProbeGen and the grid oracle; thresholds A1-A4 (pass --seeds).
    ProbegenDigitsInr,
    /// ProbeGen on a zoo of 1,200 digit MLPs labelled with their test accuracy, read
    /// by StatNN and P = 32 image probes (uniform, vanilla, ProbeGen, a non-linear generator, real
    /// digits); Kendall τ; thresholds B1-B3 (pass --seeds).
    ProbegenDigitsMlp,
    /// ProbeGen on an MNIST-INR zoo at 12k models: SIRENs of the first 1,000 training and 200 test MNIST images
    /// per digit (300 Adam steps each, built in shards that resume), ProbeGen and vanilla
    /// probing with P = 128 and StatNN (about 15 minutes on 2 cores).
    ProbegenMnistInr,
    /// ProbeX (Horwitz et al., CVPR 2025) on the synthetic Model-Tree world (4 trees × 240 fine-tuned MLPs, 128²
    /// layer) read by per-tree ProbeX experts, dense, StatNN, linear and mixed ProbeX, across
    /// trees, and Ward routing; thresholds A1-A7 (pass --seeds; about 80 s per seed).
    ProbexTreeWorld,
    /// Text-aligned (zero-shot) ProbeX on a tree of denoising autoencoders, one
    /// class each, 5 of 20 classes held out; zero-shot top-1 on the layer picked by held-out
    /// validation (pass --seeds).
    ProbexZeroshot,
    /// ProbeX on a real-data tree zoo: 4 roots (Fashion-MNIST, rotated MNIST, MNIST autoencoder,
    /// Fashion-MNIST again) × 240 fine-tunes on 5-of-10 MNIST digits, exported as checkpoints
    /// with Model-J metadata and read back; per-tree ProbeX and baselines (pass --seeds).
    ProbexMnistTrees,
    /// ProbeGen on a zoo of 10,000 small CNNs trained on MNIST with sampled recipes, labelled
    /// with their test accuracy; ProbeGen (transposed-convolution generator), vanilla, uniform and
    /// real-digit probes (P = 32, 60 epochs) and StatNN, Kendall tau; ProbeGen must beat vanilla
    /// and StatNN (pass --seeds; about 25 minutes to build the zoo, 12 per seed).
    ProbegenMnistCnn,
}

/// Run a paper reproduction at small scale and check it against its thresholds.
///
/// Each experiment trains its small models, measures what the paper's experiment measures, and
/// writes a run folder (run.json with every number and each threshold's verdict, plus the
/// trained checkpoints). With --check the command fails when any threshold is missed.
#[derive(Args, Debug)]
pub struct ReproArgs {
    /// The experiment to run (one of the names below).
    pub experiment: Experiment,
    /// Run folder to write.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seeds to average over.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub seeds: Vec<u64>,
    /// Epochs for the full-data paper setups.
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Exit with an error when a threshold is missed.
    #[arg(long)]
    pub check: bool,
}

pub fn run(cli: &Cli, a: &ReproArgs) -> Result<()> {
    let name = format!("{:?}", a.experiment).to_lowercase();
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("glassbox-repro-{name}")));
    let opts = ExperimentOptions { data_dir: cli.data.clone(), out: out.clone(), seeds: a.seeds.clone(), progress: !cli.quiet };
    let outcome: Outcome = match a.experiment {
        Experiment::BilinearA => experiments::mnist5k::run(&opts)?,
        Experiment::BilinearB => experiments::digits::run(&opts)?,
        Experiment::BilinearE => experiments::boolean::run(&opts)?,
        Experiment::BilinearF => experiments::modadd::run(&opts)?,
        Experiment::BilinearMnist => experiments::paper::run(&opts, false, a.epochs)?,
        Experiment::BilinearFashion => experiments::paper::run(&opts, true, a.epochs)?,
        Experiment::BilinearLm => super::repro_bilinear_lm::run(cli, &opts, super::repro_bilinear_lm::Scale::FULL)?,
        Experiment::LibModadd => lib::modadd::run(&opts)?,
        Experiment::LibModaddTransformer => lib::modadd_transformer::run(&opts, lib::modadd_transformer::Scale::FULL)?,
        Experiment::LibDigits => lib::digits::run(&opts)?,
        Experiment::LibMnist => lib::mnist::run(&opts, a.epochs)?,
        Experiment::UsaePlanted => glassbox_sae::experiments::planted_concepts::run(&opts)?,
        Experiment::UsaeGlyphs => glassbox_sae::experiments::glyph_networks::run(&opts)?,
        Experiment::ProbegenDigitsInr => glassbox_weightspace::experiments::digits_inr::run(&opts)?,
        Experiment::ProbegenDigitsMlp => glassbox_weightspace::experiments::digits_mlp::run(&opts)?,
        Experiment::ProbegenMnistInr => glassbox_weightspace::experiments::mnist_inr::run(&opts)?,
        Experiment::ProbexTreeWorld => glassbox_weightspace::experiments::tree_world::run(&opts, glassbox_weightspace::experiments::tree_world::Scale::FULL)?,
        Experiment::ProbexZeroshot => glassbox_weightspace::experiments::tree_world_zeroshot::run(&opts)?,
        Experiment::ProbexMnistTrees => glassbox_weightspace::experiments::mnist_trees::run(&opts, glassbox_weightspace::experiments::mnist_trees::Scale::FULL)?,
        Experiment::ProbegenMnistCnn => glassbox_weightspace::experiments::mnist_cnn::run(&opts, glassbox_weightspace::experiments::mnist_cnn::Scale::FULL)?,
        Experiment::UsaeMnist => glassbox_sae::experiments::mnist_models::run(&opts, glassbox_sae::experiments::mnist_models::Scale::FULL)?,
    };
    outcome.write(&out, &super::command_line())?;
    for (k, (metric, bars)) in outcome.method_bars().into_iter().enumerate() {
        std::fs::create_dir_all(out.join("figures")).with_context(|| format!("cannot create {}", out.join("figures").display()))?;
        let svg = glassbox_report::bar_chart_svg(&format!("{} by method", metric), &metric, &bars)?;
        glassbox_core::io::write_atomic(&out.join(format!("figures/methods-{k}.svg")), svg.as_bytes())?;
    }
    if let Some(zoo_dir) = match a.experiment {
        Experiment::ProbexTreeWorld => Some("tree-world-zoo"),
        Experiment::ProbexMnistTrees => Some("mnist-trees-zoo"),
        _ => None,
    } {
        // The first seed's study (with its dendrogram) was written beside run.json.
        let path = out.join(format!("study-seed{}.json", a.seeds.first().copied().unwrap_or(0)));
        let study: glassbox_weightspace::tree_study::StudyResult = glassbox_core::io::read_json(&path)?;
        let zoo = glassbox_zoo::store::load(&out.join(zoo_dir))?;
        let trees = zoo.values("tree")?;
        let leaf_trees: Vec<usize> = study.routing.leaves.iter().map(|&i| trees[i] as usize).collect();
        super::probex::write_study_figures(&out, &study, &leaf_trees)?;
    }
    if !cli.quiet {
        for row in &outcome.rows {
            println!("{row}");
        }
    }
    for c in &outcome.checks {
        println!("{} {}: {}", if c.pass { "PASS" } else { "FAIL" }, c.name, c.detail);
    }
    println!("{} in {:.1} s; wrote {}", outcome.name, outcome.wall_time_s, out.display());
    if a.check && !outcome.passed() {
        bail!("{} of {} checks failed", outcome.checks.iter().filter(|c| !c.pass).count(), outcome.checks.len());
    }
    Ok(())
}
