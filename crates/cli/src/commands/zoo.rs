use crate::Cli;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use glassbox_zoo::build::{build, digits_inr, ShardJob};
use glassbox_zoo::store;
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
    Info(ZooInfoArgs),
}

/// Build a zoo from a preset into a folder (zoo.json, labels.json, models-NNNNN.safetensors).
///
/// Presets: `digits-inr` — one SIREN INR (2-32-32-1, sin 30·, +0.5; spec/probegen.md 2.7) per
/// scikit-learn digit (1,797 images, 8×8, 100 full-batch Adam steps), label = the digit,
/// split 70/10/20. Every model is fitted from (--seed, its index) alone, so `--shard i/n` lets n
/// jobs build disjoint shards of the same zoo into one folder (or folders merged afterwards);
/// run the same command again to resume an interrupted build.
#[derive(Args, Debug)]
pub struct ZooBuildArgs {
    /// Preset name.
    pub preset: String,
    #[arg(long)]
    pub out: PathBuf,
    /// Build only shards s with s % n == i.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
}

/// Summarise a complete zoo folder: models, parameters, shards, splits, target and fit errors
/// (a missing shard is reported as an error naming it).
#[derive(Args, Debug)]
pub struct ZooInfoArgs {
    pub zoo: PathBuf,
}

pub fn run(cli: &Cli, a: &ZooArgs) -> Result<()> {
    match &a.command {
        ZooCommand::Build(b) => {
            let job = ShardJob::parse(&b.shard)?;
            let zoo = match b.preset.as_str() {
                "digits-inr" => {
                    let dir = glassbox_core::data::data_dir(cli.data.as_deref())?;
                    digits_inr(&glassbox_core::data::digits::load_digits(&dir.join("sklearn-digits/digits.csv.gz"))?, cli.seed)?
                }
                other => bail!("unknown zoo preset '{other}'; available: digits-inr"),
            };
            let mine = (0..zoo.spec().n_shards()).filter(|s| s % job.of == job.index).count();
            let progress = glassbox_core::train::progress_bar(!cli.quiet, mine as u64, 0);
            let report = build(&b.out, &zoo, job, |done, _| progress.set_position(done as u64))?;
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
        ZooCommand::Info(i) => {
            let zoo = store::load(&i.zoo)?;
            let fit = store::FitSummary::of(&zoo.fit_mse);
            println!("{}: {} models of family '{}', {} parameters each, {} shards", i.zoo.display(), zoo.spec.count, zoo.spec.family, zoo.spec.n_params(), zoo.spec.n_shards());
            println!("splits: train {}, val {}, test {}; target '{}'", zoo.spec.splits.train.len(), zoo.spec.splits.val.len(), zoo.spec.splits.test.len(), zoo.spec.target);
            println!("fit MSE: mean {:.2e}, 90th percentile {:.2e}, worst {:.2e}{}", fit.mean, fit.p90, fit.worst, if fit.all_finite { "" } else { " (some fits are not finite)" });
            Ok(())
        }
    }
}
