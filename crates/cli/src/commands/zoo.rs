use crate::Cli;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use glassbox_zoo::build::{build, Recipe, ShardJob};
use glassbox_zoo::import::{import, Family, ImportOptions};
use glassbox_zoo::inr::FitOptions;
use glassbox_zoo::inr_zoo::{digits_inr, glyph_inr, image_inr};
use glassbox_zoo::accuracy_zoo::{digits_mlp_acc, mnist_cnn_acc};
use glassbox_zoo::mnist_trees::{MnistTrees, MnistTreesConfig};
use glassbox_zoo::store;
use glassbox_zoo::tree_world::{TreeWorld, TreeWorldConfig, ZeroShotWorld};
use std::path::PathBuf;

/// Model zoos: many small trained networks stored together with the properties to predict.
#[derive(Args, Debug)]
pub struct ZooArgs {
    #[command(subcommand)]
    pub command: ZooCommand,
}

#[derive(Subcommand, Debug)]
pub enum ZooCommand {
    Build(ZooBuildArgs),
    Import(ZooImportArgs),
    Export(ZooExportArgs),
    Info(ZooInfoArgs),
}

/// Write every model of a zoo as a standalone checkpoint OUT/NAME.safetensors, with its labels,
/// split and measured values, and the zoo's default target, as safetensors metadata (Model-J's
/// way); `zoo import OUT` without --labels reads them back into the same zoo.
#[derive(Args, Debug)]
pub struct ZooExportArgs {
    /// Zoo folder (from `zoo build` or `zoo import`).
    pub zoo: PathBuf,
    /// Folder to write the checkpoints into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Turn a folder of checkpoints and their labels (a CSV, or each file's safetensors metadata)
/// into a zoo that readers can train on or predict for.
///
/// Checkpoints: `NAME.safetensors` files or `NAME/model.safetensors` run folders, all with the
/// same tensors. SIREN 2-32-32-1 INRs (`layers.0.weight [32, 2]` … `head.bias [1]`) become an
/// INR zoo; MLPs (`layers.i.weight/bias`, `head.weight/bias`) an MLP zoo, and CNNs
/// (`convs.i.weight [out, in, 3, 3]` and `convs.i.bias` from one input channel, then
/// `head.weight/bias`: the mnist-cnn-acc layout) a CNN zoo read as 28×28 grey-image
/// classifiers with stride 2 and padding 1. Their activation (relu or tanh) comes from an
/// `activation` column, the file's metadata or a model.json.
/// Any other set of identical tensors becomes a `weights` zoo (for ProbeX and `glassbox trees`).
/// labels.csv: a header, then one row per model: its NAME first, then its labels (numbers
/// where they parse). Without --labels every metadata entry of a file is a label; the default
/// target is the one `zoo export` recorded, else Model-J's `dataset_chosen_targets` (a Python
/// list of class names) when every file has it, else none (give --target). A `split`
/// label (train, val, test) fixes the split; else a seeded 70/10/20 split. Everything is
/// checked before anything is written.
#[derive(Args, Debug)]
pub struct ZooImportArgs {
    /// Folder of checkpoints: NAME.safetensors files or NAME/model.safetensors run folders.
    pub dir: PathBuf,
    /// Labels CSV (default: each checkpoint's safetensors metadata).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Zoo folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The label readers predict by default (default: the CSV's second column; without a CSV,
    /// the target `zoo export` recorded, else dataset_chosen_targets).
    #[arg(long)]
    pub target: Option<String>,
    /// Model family: auto (the SIREN layout is an INR, the MLP layout an MLP, the CNN layout a
    /// CNN, anything else plain weights), inr, mlp, cnn or weights.
    #[arg(long, default_value = "auto")]
    pub family: String,
}

/// Build a zoo from a preset into a folder (zoo.json, labels.json, models-NNNNN.safetensors).
///
/// Presets:
///   digits-inr           one SIREN INR (2-32-32-1, sin 30·, +0.5) per scikit-learn digit
///                        (1,797 images, 8×8, 100 full-batch Adam steps); label = the digit;
///                        split 70/10/20.
///   mnist-inr,           one SIREN per 28×28 MNIST / Fashion-MNIST image: all 70,000, or the
///   fmnist-inr           first --per-class TRAIN,TEST images of each class; models of training
///                        images split 11:1 into train and validation, models of test images are
///                        the test split; --fit-steps Adam steps each.
///   glyph-inr            built-in data, no data folder needed: one SIREN per 12×12 image of a
///                        single glyph primitive (8 classes, --count in all, rounded down to a
///                        multiple of 8), 100 Adam steps; split 70/10/20.
///   digits-mlp-acc       --count (1,200) MLPs 64-16-16-10, ReLU or tanh, each trained on the
///                        digits with sampled learning rate, init scale, L2, data fraction, steps
///                        and label noise; label = test accuracy on 597 held-out digits;
///                        split 60/10/30.
///   mnist-cnn-acc        --count (10,000) CNNs (3×3 stride-2 convolutions 1→8→8→8 on 28×28, GAP,
///                        Linear 8→10), each trained like digits-mlp-acc on a 6,000-image MNIST
///                        pool; label = test accuracy on the first 1,000 test images.
///   tree-world           built-in data: --trees (4) root MLPs 32-h-h-64 (h = --hidden, 128), each
///                        pre-trained on its own task, then fine-tuned --per-tree (240) times on a
///                        random 10 of 20 classes with sampled lr, steps, weight decay and input
///                        noise; label dataset_chosen_targets (Model-J style); split 160/30/50
///                        per tree.
///   tree-world-zeroshot  built-in data: one tree of denoising autoencoders, each fine-tuned on
///                        one class (12 per class; 5 of the 20 classes only in validation and
///                        test), and the classes' synthetic text embeddings in
///                        class-embeddings.safetensors.
///   mnist-trees          four MLP roots 784-h-h-64 pre-trained on Fashion-MNIST, rotated MNIST,
///                        an MNIST autoencoder and Fashion-MNIST from another seed, each
///                        fine-tuned --per-tree (240) times on a random 5 of the 10 MNIST digits
///                        with sampled lr, steps, weight decay and input noise; labels Model-J
///                        style (`zoo export` writes them as checkpoint metadata).
///
/// Every model is fitted from (--seed, its index) alone, so `--shard i/n` lets n jobs build
/// disjoint shards of the same zoo into one folder (or folders merged afterwards); run the same
/// command again to resume an interrupted build.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ZooBuildArgs {
    /// Preset name (see the list above).
    pub preset: String,
    /// Zoo folder to write (created if missing; shards already in it are kept).
    #[arg(long)]
    pub out: PathBuf,
    /// i/n: build only the shards s with s % n == i (default: all).
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// mnist-inr / fmnist-inr: the first TRAIN and TEST images of each class (default: all).
    #[arg(long, value_name = "TRAIN,TEST")]
    pub per_class: Option<String>,
    /// mnist-inr / fmnist-inr: full-batch Adam steps per INR (lr 1e-3).
    #[arg(long, default_value_t = 300)]
    pub fit_steps: usize,
    /// digits-mlp-acc, mnist-cnn-acc and glyph-inr: number of models (default 1,200; 10,000 for
    /// mnist-cnn-acc).
    #[arg(long)]
    pub count: Option<usize>,
    /// tree-world: number of trees (roots).
    #[arg(long, default_value_t = 4)]
    pub trees: usize,
    /// tree-world, mnist-trees: fine-tuned models per tree.
    #[arg(long, default_value_t = 240)]
    pub per_tree: usize,
    /// tree-world, tree-world-zeroshot, mnist-trees: width of the two hidden layers (the probed
    /// layer is hidden × hidden).
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
}

/// The recipe of a preset, reading its data from the data folder.
fn recipe(cli: &Cli, b: &ZooBuildArgs) -> Result<Box<dyn Recipe>> {
    let digits = || -> Result<_> { Ok(glassbox_core::data::load_all_digits(cli.data.as_deref())?) };
    Ok(match b.preset.as_str() {
        "digits-inr" => Box::new(digits_inr(&digits()?, cli.seed)?),
        "glyph-inr" => {
            let count = b.count.unwrap_or(1200);
            if count < 80 {
                bail!("--count must be at least 80 (10 INRs of each of the 8 glyph primitives)");
            }
            Box::new(glyph_inr(count / 8, cli.seed)?)
        }
        "digits-mlp-acc" | "mnist-cnn-acc" if b.count.is_some_and(|c| c < 10) => bail!("--count must be at least 10 for a train / val / test split"),
        "digits-mlp-acc" => Box::new(digits_mlp_acc(&digits()?, b.count.unwrap_or(1200), cli.seed)?),
        "mnist-cnn-acc" => Box::new(mnist_cnn_acc(&glassbox_core::data::load_named("mnist", cli.data.as_deref(), cli.seed)?, b.count.unwrap_or(10_000), cli.seed)?),
        name @ ("mnist-inr" | "fmnist-inr") => {
            let per_class = match &b.per_class {
                None => None,
                Some(s) => {
                    let bad = || anyhow::anyhow!("--per-class takes TRAIN,TEST (images per class), got '{s}'");
                    let (a, c) = s.split_once(',').ok_or_else(bad)?;
                    let (a, c): (usize, usize) = (a.trim().parse().map_err(|_| bad())?, c.trim().parse().map_err(|_| bad())?);
                    if a < 2 || c < 1 {
                        return Err(bad());
                    }
                    Some((a, c))
                }
            };
            if b.fit_steps == 0 {
                bail!("--fit-steps must be at least 1");
            }
            let data = glassbox_core::data::load_named(if name == "mnist-inr" { "mnist" } else { "fashion-mnist" }, cli.data.as_deref(), cli.seed)?;
            Box::new(image_inr(name, &data, per_class, FitOptions { steps: b.fit_steps, lr: 1e-3 }, cli.seed)?)
        }
        "tree-world" => {
            if b.trees < 1 || b.per_tree < 8 || b.hidden < 1 {
                bail!("tree-world needs --trees ≥ 1, --per-tree ≥ 8 (for a train / val / test split) and --hidden ≥ 1");
            }
            let config = TreeWorldConfig { trees: b.trees, per_tree: b.per_tree, hidden: b.hidden, ..TreeWorldConfig::spec(cli.seed) };
            Box::new(TreeWorld::new(config))
        }
        "tree-world-zeroshot" | "mnist-trees" if b.hidden < 1 => bail!("--hidden must be at least 1"),
        "tree-world-zeroshot" => Box::new(ZeroShotWorld::new(TreeWorldConfig { trees: 1, hidden: b.hidden, ..TreeWorldConfig::spec(cli.seed) })),
        "mnist-trees" => {
            if b.per_tree < 8 {
                bail!("mnist-trees needs --per-tree >= 8 (for a train / val / test split)");
            }
            let dir = cli.data.as_deref();
            let (mnist, fashion) = (glassbox_core::data::load_named("mnist", dir, cli.seed)?, glassbox_core::data::load_named("fashion-mnist", dir, cli.seed)?);
            Box::new(MnistTrees::new(MnistTreesConfig { per_tree: b.per_tree, hidden: b.hidden, ..MnistTreesConfig::full(cli.seed) }, &mnist, &fashion)?)
        }
        other => bail!("unknown zoo preset '{other}'; available: digits-inr, mnist-inr, fmnist-inr, glyph-inr, digits-mlp-acc, mnist-cnn-acc, tree-world, tree-world-zeroshot, mnist-trees"),
    })
}

/// Summarise a complete zoo folder: models, parameters, shards, splits, target and fit errors
/// (a missing shard is reported as an error naming it).
#[derive(Args, Debug)]
pub struct ZooInfoArgs {
    /// Zoo folder.
    pub zoo: PathBuf,
}

/// "target 'NAME'", or that the zoo has none.
fn target_phrase(target: &str) -> String {
    if target.is_empty() {
        "no default target".to_string()
    } else {
        format!("target '{target}'")
    }
}

pub fn run(cli: &Cli, a: &ZooArgs) -> Result<()> {
    match &a.command {
        ZooCommand::Build(b) => {
            let job = ShardJob::parse(&b.shard)?;
            let zoo = recipe(cli, b)?;
            let mine = (0..zoo.spec().n_shards())
                .filter(|s| s % job.of == job.index)
                .count();
            let progress = glassbox_core::train::progress_bar(!cli.quiet, mine as u64, 0);
            let report = build(&b.out, zoo.as_ref(), job, |done, _| {
                progress.set_position(done as u64)
            })?;
            progress.finish_and_clear();
            println!(
                "{} models fitted in {:.1} s ({:.1} models/s); {} shards written, {} already there; wrote {}",
                report.models_fitted,
                report.seconds,
                report.models_fitted as f64 / report.seconds.max(1e-9),
                report.shards_written,
                report.shards_skipped,
                b.out.display()
            );
            Ok(())
        }
        ZooCommand::Import(i) => {
            let family = match i.family.as_str() {
                "auto" => Family::Auto,
                "inr" => Family::Inr,
                "mlp" => Family::Mlp,
                "cnn" => Family::Cnn,
                "weights" => Family::Weights,
                other => bail!("--family takes auto, inr, mlp, cnn or weights, not '{other}'"),
            };
            let r = import(
                &i.dir,
                i.labels.as_deref(),
                &i.out,
                &ImportOptions {
                    family,
                    target: i.target.clone(),
                    seed: cli.seed,
                },
            )?;
            println!("imported {} {} models ({}) into {}", r.models, r.family, target_phrase(&r.target), i.out.display());
            if r.target.is_empty() && !cli.quiet {
                eprintln!("note: no label was chosen as the default target, which `glassbox probe train` needs; import again with --target LABEL to choose one");
            }
            Ok(())
        }
        ZooCommand::Export(e) => {
            let zoo = store::load(&e.zoo)?;
            let n = glassbox_zoo::export::export(&zoo, &e.out)?;
            println!("wrote {n} checkpoints to {}", e.out.display());
            Ok(())
        }
        ZooCommand::Info(i) => {
            let zoo = store::load(&i.zoo)?;
            println!(
                "{}: {} models of family '{}', {} parameters each, {} shards",
                i.zoo.display(),
                zoo.spec.count,
                zoo.spec.family,
                zoo.spec.n_params(),
                zoo.spec.n_shards()
            );
            println!(
                "splits: train {}, val {}, test {}; {}",
                zoo.spec.splits.train.len(),
                zoo.spec.splits.val.len(),
                zoo.spec.splits.test.len(),
                target_phrase(&zoo.spec.target)
            );
            for (name, values) in &zoo.measured {
                let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
                let v = store::FitSummary::of(&finite);
                let bad = values.len() - finite.len();
                println!("{name}: min {:.3e}, median {:.3e}, mean {:.3e}, 90th percentile {:.3e}, max {:.3e}{}", v.min, v.median, v.mean, v.p90, v.worst, if bad > 0 { format!(" ({bad} not finite)") } else { String::new() });
            }
            Ok(())
        }
    }
}
