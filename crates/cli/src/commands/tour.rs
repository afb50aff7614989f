use crate::{Cli, Command};
use anyhow::{bail, Result};
use clap::{Args, Parser};
use std::path::PathBuf;

/// Run the guided tour on built-in data only, then write an HTML report.
///
/// Stages, each a glassbox command you could type yourself:
///   1. Modular addition (a + b mod 59, one-hot inputs, half the pairs for training): an MLP and
///      a bilinear model, trained full-batch with weight decay for at most 1,500 epochs; each
///      stops early once it solves the test set, else at that cap, which can be short of 100 %.
///   2. Glyph world (12×12 images of 8 primitive types, multi-label): two MLPs of different
///      shapes and a bilinear model.
///   3. Bilinear weights (`glassbox bilinear`): each bilinear model's function read from its
///      weights: eigenvalue spectra, the truncation curve, eigenvector images of every glyph type.
///   4. Local Interaction Basis (`glassbox lib`) of a modular-addition MLP (embedding 32, ReLU
///      128) and of Nanda et al.'s one-layer transformer on p = 31 (at most 3,000 epochs, with
///      the same early stop): LIB vs PCA ablation curves, interaction graphs, Fourier spectra
///      of the leading features.
///   5. Universal SAE over one hidden layer of the three glyph models (`glassbox acts`,
///      `glassbox sae train`, `glassbox sae cards`): R² matrix, firing entropy, concept cards with
///      top inputs and coordinated maximised inputs.
///   6. Language-model SAE (`glassbox acts --text`, `glassbox sae stream`, `sae eval`,
///      `sae dashboard`): a TopK SAE on a language model's residual stream over English text,
///      its explained variance on held-out text and feature dashboards. The model is
///      SmolLM2-135M (read after block 15 of 30) when `glassbox data fetch smollm2` has fetched
///      it, else a tiny random GPT-2 built into glassbox (it shows the steps, not features worth
///      reading); the text is Tiny Shakespeare when the data folder has it, else glassbox's
///      own documentation, built in.
///   7. Model readers (`glassbox zoo build`, `glassbox probe train`): a zoo of 2,400 INRs of
///      single glyph primitives; which primitive each one draws, read by ProbeGen and by vanilla
///      probing.
///   8. Model trees (`glassbox trees`, `glassbox probex train`): the synthetic model-tree world,
///      its trees recovered from one layer, and which classes each fine-tune was trained on,
///      read by one ProbeX expert per tree.
/// Then it renders all runs, with their training curves, accuracies and figures, into
/// report.html. Needs no data folder (a fetched model and Tiny Shakespeare are used when
/// present) and takes a few minutes on 2 cores; an interrupted tour resumes where it stopped.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct TourArgs {
    /// Folder for the runs and report.html.
    #[arg(long, default_value = "glassbox-tour")]
    pub out: PathBuf,
    /// Start again even if the folder has finished runs (otherwise finished runs are kept).
    #[arg(long)]
    pub fresh: bool,
}

/// One stage of the tour, as the `glassbox train` command line a user could type.
fn stages(out: &std::path::Path) -> Vec<(&'static str, Vec<String>)> {
    let dir = |n: &str| out.join(n).display().to_string();
    let modadd = "--dataset modadd --p 59 --train-fraction 0.5 --batch-size 4096 --optimizer adamw --weight-decay 1.0 \
                  --lr 1e-2 --schedule constant --epochs 1500 --eval-every 25 --target-accuracy 1.0";
    let glyphs = "--dataset glyphs --glyph-train 8000 --glyph-test 2000 --batch-size 128 --lr 2e-3 --epochs 15";
    vec![
        ("mlp-modadd", format!("--model mlp --hidden 256 {modadd} --out {}", dir("mlp-modadd"))),
        ("bilinear-modadd", format!("--model bilinear --hidden 256 {modadd} --out {}", dir("bilinear-modadd"))),
        // The modular-addition MLP standing in for the LIB paper's transformer (Bushnaq et al.
        // 2024): embedding 32, ReLU 128, AdamW lr 3e-3, betas (0.9, 0.98), 4000 steps.
        (
            "mlp-embed-modadd",
            format!(
                "--model mlp --embed 32 --hidden 128 --dataset modadd --p 59 --train-fraction 0.5 --batch-size 4096 --optimizer adamw \
                 --weight-decay 1.0 --beta2 0.98 --lr 3e-3 --schedule constant --epochs 4000 --eval-every 200 --save-every 1000 --out {}",
                dir("mlp-embed-modadd")
            ),
        ),
        // Nanda et al.'s one-layer transformer on a small modulus, for its LIB stage.
        (
            "transformer-modadd",
            format!(
                "--model transformer --dataset modadd --p 31 --train-fraction 0.5 --batch-size 10000 --lr 1e-3 --weight-decay 1 \
                 --beta2 0.98 --schedule constant --warmup-epochs 10 --epochs 3000 --loss-f64 --eval-every 100 --save-every 1000 \
                 --target-accuracy 1.0 --shards 1 --out {}",
                dir("transformer-modadd")
            ),
        ),
        ("mlp-glyphs", format!("--model mlp --hidden 128,64 {glyphs} --out {}", dir("mlp-glyphs"))),
        // A second, differently shaped glyph MLP for the USAE stage (like net C of the
        // USAE glyph-networks test: 256 then 32 wide).
        ("mlp-wide-glyphs", format!("--model mlp --hidden 256,32 {glyphs} --out {}", dir("mlp-wide-glyphs"))),
        // Weight decay and input noise make the eigenvectors clean strokes (as in the
        // bilinear-MLP paper, Pearce et al. 2024).
        (
            "bilinear-glyphs",
            format!("--model bilinear --hidden 128 {glyphs} --optimizer adamw --weight-decay 1.0 --input-noise 0.3 --out {}", dir("bilinear-glyphs")),
        ),
    ]
    .into_iter()
    .map(|(n, args)| (n, args.split_whitespace().map(String::from).collect()))
    .collect()
}

pub fn run(cli: &Cli, a: &TourArgs) -> Result<()> {
    if a.fresh && a.out.exists() {
        std::fs::remove_dir_all(&a.out)?;
    }
    let mut summary = Vec::new();
    for (name, args) in stages(&a.out) {
        let argv = ["glassbox", "train"].into_iter().map(String::from).chain(args);
        let Command::Train(mut train) = Cli::try_parse_from(argv)?.command else { bail!("tour stage is not a train command") };
        // Finished stages are kept, unfinished ones resume: a tour can be interrupted.
        train.resume = true;
        if !cli.quiet {
            eprintln!("\n== tour stage {name}: glassbox train {}", stage_line(&train));
        }
        let trained = super::train::train_run(cli, &train, name)?;
        if train.dataset == "glyphs" {
            add_glyph_grid(&train.out, cli.seed, &train)?;
        }
        let acc = trained.card.metrics.get("test_accuracy").copied().unwrap_or(f64::NAN);
        summary.push((name, acc, trained.card.epochs_done));
        if name.starts_with("bilinear") {
            analyse_bilinear(cli, &train.out, &a.out.join(format!("{name}-weights")), train.dataset == "modadd")?;
        }
        if name == "mlp-embed-modadd" || name == "transformer-modadd" {
            local_interaction_basis(cli, &train.out, &a.out.join(format!("{name}-lib")), name == "transformer-modadd")?;
        }
    }
    universal_sae(cli, &a.out)?;
    let lm = language_model_sae(cli, &a.out)?;
    let readers = model_readers(cli, &a.out)?;
    let trees = model_trees(cli, &a.out)?;
    let report = a.out.join("report.html");
    let s = glassbox_report::render_report(std::slice::from_ref(&a.out), &report, "glassbox tour")?;
    println!("\n{:<18} {:>14} {:>8}", "run", "test accuracy", "epochs");
    for (name, acc, epochs) in &summary {
        println!("{name:<18} {acc:>14.4} {epochs:>8}");
    }
    for (name, acc) in &readers {
        println!("{name:<18} {acc:>14.4}   (reader: which glyph does each INR draw?)");
    }
    for (name, acc) in &trees {
        println!("{name:<18} {acc:>14.4}   (which classes was each fine-tune trained on? chance 0.5)");
    }
    println!("{:<18} {:>14.4}   (SAE on {}: explained variance on held-out text)", "lm-sae", lm.0, lm.1);
    println!("report: {} ({} runs, {} figures)", report.display(), s.runs, s.figures);
    Ok(())
}

/// The bilinear stage of the tour: `glassbox bilinear` on a freshly trained model. Masks are
/// skipped for one-hot inputs, where adding a pixel pattern has no meaning.
fn analyse_bilinear(cli: &Cli, model: &std::path::Path, out: &std::path::Path, one_hot: bool) -> Result<()> {
    let mut argv: Vec<String> = ["bilinear"].into_iter().map(String::from).collect();
    argv.extend([model.display().to_string(), "--out".into(), out.display().to_string()]);
    if one_hot {
        argv.push("--no-masks".into());
    }
    run_stage(cli, &out.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string()), argv)
}

/// A LIB stage of the tour: `glassbox lib` on a modular-addition model (the MLP with its
/// embedding, or the transformer, whose edges are counted within 0.001 of its accuracy as in
/// the LIB paper's transformer experiment).
fn local_interaction_basis(cli: &Cli, model: &std::path::Path, out: &std::path::Path, transformer: bool) -> Result<()> {
    let mut argv: Vec<String> = ["lib", &model.display().to_string(), "--out", &out.display().to_string()].into_iter().map(String::from).collect();
    if transformer {
        argv.extend(["--edge-tolerance".to_string(), "0.001".to_string()]);
    }
    run_stage(cli, &out.file_name().map_or(String::new(), |n| n.to_string_lossy().to_string()), argv)
}

/// One analysis step of the tour, as the glassbox command line a user could type (without
/// `glassbox`), run with the tour's global flags.
fn run_stage(cli: &Cli, stage: &str, argv: Vec<String>) -> Result<()> {
    if !cli.quiet {
        eprintln!("\n== tour stage {stage}: glassbox {}", argv.join(" "));
    }
    match Cli::try_parse_from(std::iter::once("glassbox".to_string()).chain(argv))?.command {
        Command::Bilinear(args) => super::bilinear::run(cli, &args),
        Command::Lib(args) => super::lib::run(cli, &args),
        Command::Acts(args) => super::acts::run(cli, &args),
        Command::Sae(args) => super::sae::run(cli, &args),
        Command::Zoo(args) => super::zoo::run(cli, &args),
        Command::Probe(args) => super::probe::run(cli, &args),
        Command::Probex(args) => super::probex::run(cli, &args),
        Command::Trees(args) => super::probex::trees(cli, &args),
        _ => bail!("not a tour analysis command"),
    }
}

/// The USAE stage: `glassbox acts` of one hidden layer of the three glyph models, `glassbox sae
/// train` over them, and `glassbox sae cards` for the most universal latents.
fn universal_sae(cli: &Cli, out: &std::path::Path) -> Result<()> {
    let usae_dir = out.join("usae-glyphs");
    let done = glassbox_core::io::read_json::<serde_json::Value>(&usae_dir.join("run.json")).is_ok_and(|r| r.get("concept_cards").is_some());
    if done {
        return Ok(());
    }
    let models = [("mlp-glyphs", "layers.1.post"), ("mlp-wide-glyphs", "layers.1.post"), ("bilinear-glyphs", "layers.0.post")];
    let acts_dir = out.join("usae-glyphs-acts");
    let path = |split: &str, name: &str| acts_dir.join(split).join(format!("{name}.safetensors")).display().to_string();
    let mut commands: Vec<Vec<String>> = Vec::new();
    for (name, site) in models {
        for split in ["train", "test"] {
            let mut argv = vec!["acts".to_string(), out.join(name).display().to_string(), "--sites".into(), site.into(), "--out".into(), path(split, name)];
            if split == "train" {
                argv.push("--train-split".into());
            }
            commands.push(argv);
        }
    }
    let sites = models.map(|m| m.1).join(",");
    let files = |split: &str| models.iter().map(|m| path(split, m.0)).collect::<Vec<_>>();
    let mut train = vec!["sae".to_string(), "train".into()];
    train.extend(files("train"));
    train.extend(["--site".into(), sites.clone(), "--eval".into(), files("test").join(","), "--out".into(), usae_dir.display().to_string()]);
    train.extend("--m 256 --k 16 --steps 2000 --lr 2e-3 --tied-init --global-schedule".split_whitespace().map(String::from));
    commands.push(train);
    let checkpoints = models.map(|m| out.join(m.0).display().to_string()).join(",");
    commands.push(["sae", "cards", &usae_dir.display().to_string(), "--model", &checkpoints, "--site", &sites, "--cards", "6", "--steps", "100"].map(String::from).to_vec());
    for argv in commands {
        std::fs::create_dir_all(acts_dir.join("train"))?;
        std::fs::create_dir_all(acts_dir.join("test"))?;
        run_stage(cli, "usae-glyphs", argv)?;
    }
    let note = "Tour: the bilinear model's hidden layer holds signed products with heavy tails (values to about ±15 at a standard deviation of 0.7, after weight decay and input noise); non-negative TopK codes reconstruct it less well than the ReLU layers (its column of the R² matrix), with k 8, 16 or 32 alike.";
    glassbox_sae::analysis::extend_run(&usae_dir, serde_json::json!({ "notes": [note] }))?;
    Ok(())
}

/// The language-model stage: activations of a middle block over some English text, a TopK SAE
/// trained on them, evaluated on held-out text and shown as feature dashboards. The model is
/// SmolLM2-135M when `glassbox data fetch smollm2` has fetched it, else a tiny random GPT-2 built
/// into glassbox (which shows the steps, not features worth reading). The text is the first
/// 240,000 characters of Tiny Shakespeare when the data folder has it, else glassbox's own
/// documentation, built into the binary ([`BUILT_IN_TEXT`]). Returns the held-out explained
/// variance and the model's name.
fn language_model_sae(cli: &Cli, out: &std::path::Path) -> Result<(f64, String)> {
    let dir = out.join("lm-sae");
    let models = glassbox_fetch::default_models_dir();
    let smollm = models.map(|m| m.join("SmolLM2-135M-Instruct.Q4_1.gguf")).filter(|p| p.is_file());
    let (model, hook, name) = match smollm {
        Some(path) => (path, "blocks.15.hook_resid_post", "SmolLM2-135M"),
        None => {
            let tiny = dir.join("tiny-gpt2");
            std::fs::create_dir_all(&tiny)?;
            for (file, bytes) in TINY_GPT2 {
                std::fs::write(tiny.join(file), bytes)?;
            }
            (tiny, "blocks.1.hook_resid_post", "a tiny random GPT-2")
        }
    };
    let text = glassbox_core::data::data_dir(cli.data.as_deref()).ok().map(|d| d.join("tinyshakespeare/input.txt")).filter(|p| p.is_file());
    let text = match text {
        Some(p) => std::fs::read_to_string(&p)?.chars().take(240_000).collect::<String>(),
        None => built_in_text(),
    };
    // The last sixth, from a line break on, is held out.
    let five_sixths = (0..=text.len() * 5 / 6).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let cut = text[..five_sixths].rfind('\n').unwrap_or(five_sixths);
    std::fs::create_dir_all(&dir)?;
    let (train, heldout) = (dir.join("train.txt"), dir.join("heldout.txt"));
    std::fs::write(&train, &text[..cut])?;
    std::fs::write(&heldout, &text[cut..])?;
    let (model, store, sae) = (model.display().to_string(), dir.join("acts").display().to_string(), dir.join("sae").display().to_string());
    let (train, heldout) = (train.display().to_string(), heldout.display().to_string());
    let eval_dir = out.join("lm-sae-eval");
    let commands = [
        format!("acts {model} --text {train} --hooks {hook} --context 64 --out {store}"),
        format!("sae stream {store} --hook {hook} --k 16 --expansion 4 --batch 256 --lr 1e-3 --tokens 150000 --checkpoint-every 0 --out {sae}"),
        format!("sae eval {sae} --model {model} --text {heldout} --context 64 --contexts 24 --out {}", eval_dir.display()),
        format!("sae dashboard {sae} --model {model} --text {heldout} --context 64 --mix-latents 12 --out {}", out.join("lm-sae-dashboards").display()),
    ];
    let finished = glassbox_core::io::read_json::<serde_json::Value>(&out.join("lm-sae-dashboards/run.json")).is_ok();
    if !finished {
        if !cli.quiet {
            eprintln!("\n== tour stage lm-sae: {name}");
        }
        if std::path::Path::new(&sae).exists() {
            // An interrupted tour trains its small SAE again (the store resumes by itself).
            std::fs::remove_dir_all(&sae)?;
        }
        for command in commands {
            run_stage(cli, "lm-sae", command.split_whitespace().map(String::from).collect())?;
        }
    }
    let eval: serde_json::Value = glassbox_core::io::read_json(&eval_dir.join("run.json"))?;
    Ok((eval["metrics"]["explained_variance"].as_f64().unwrap_or(f64::NAN), name.to_string()))
}

/// English text for the language-model stage when the data folder has no Tiny Shakespeare:
/// glassbox's own guides (about 120,000 characters), compiled into the binary.
const BUILT_IN_TEXT: [&str; 8] = [
    include_str!("../../../../docs/getting-started.md"),
    include_str!("../../../../docs/methods/bilinear.md"),
    include_str!("../../../../docs/methods/lib.md"),
    include_str!("../../../../docs/methods/usae.md"),
    include_str!("../../../../docs/methods/probegen.md"),
    include_str!("../../../../docs/methods/probex.md"),
    include_str!("../../../../docs/methods/language-models.md"),
    include_str!("../../../../docs/methods/sae-language-models.md"),
];

/// [`BUILT_IN_TEXT`] as one text, pages separated by blank lines, without the fenced code
/// blocks (command lines and program output rather than English).
fn built_in_text() -> String {
    let mut text = String::new();
    for page in BUILT_IN_TEXT {
        let mut in_code = false;
        for line in page.lines() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            } else if !in_code {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push('\n');
    }
    text
}

/// The random tiny GPT-2 the tour uses when no real language model has been fetched (the same
/// files the language-model tests read).
const TINY_GPT2: [(&str, &[u8]); 4] = [
    ("config.json", include_bytes!("../../../lm/tests/fixtures/tiny-gpt2/config.json")),
    ("model.safetensors", include_bytes!("../../../lm/tests/fixtures/tiny-gpt2/model.safetensors")),
    ("tokenizer.json", include_bytes!("../../../lm/tests/fixtures/tiny-gpt2/tokenizer.json")),
    ("tokenizer_config.json", include_bytes!("../../../lm/tests/fixtures/tiny-gpt2/tokenizer_config.json")),
];

/// The ProbeGen stage: a zoo of INRs of single glyph primitives (8 classes), read by ProbeGen
/// and by vanilla probing with 64 probes: which primitive does each INR draw? (ProbeGen about
/// 77 % against vanilla 39 %, chance 12.5 %.)
fn model_readers(cli: &Cli, out: &std::path::Path) -> Result<Vec<(String, f64)>> {
    let zoo = out.join("glyph-inr-zoo").display().to_string();
    let argv = |line: &str, out: &str| -> Vec<String> { line.split_whitespace().map(String::from).chain(["--out".to_string(), out.to_string()]).collect() };
    let mut commands = vec![argv("zoo build glyph-inr --count 2400", &zoo)];
    for method in ["probegen", "vanilla"] {
        let dir = out.join(format!("glyph-inr-{method}"));
        if !dir.join("reader.json").is_file() {
            let mut c = argv(&format!("probe train --method {method} --probes 64 --epochs 30"), &dir.display().to_string());
            c.insert(2, zoo.clone());
            commands.push(c);
        }
    }
    for args in commands {
        run_stage(cli, "glyph-inr", args)?;
    }
    let accuracy = |method: &str| -> f64 {
        let run: Option<serde_json::Value> = glassbox_core::io::read_json(&out.join(format!("glyph-inr-{method}/run.json"))).ok();
        run.and_then(|r| r["metrics"]["test_accuracy_at_best_val"].as_f64()).unwrap_or(f64::NAN)
    };
    Ok(["probegen", "vanilla"].map(|m| (format!("glyph-inr-{m}"), accuracy(m))).to_vec())
}

/// The ProbeX stage: the synthetic model-tree world (4 roots × 240 fine-tunes on 10 of 20
/// classes), its trees recovered from one layer (`glassbox trees`), and one
/// ProbeX expert per tree against the baselines (`glassbox probex train`): which classes was
/// each fine-tune trained on? (ProbeX about 0.75, StatNN 0.55, experts on other trees 0.50.)
fn model_trees(cli: &Cli, out: &std::path::Path) -> Result<Vec<(String, f64)>> {
    let zoo = out.join("tree-world-zoo").display().to_string();
    let argv = |line: &str| -> Vec<String> { line.split_whitespace().map(String::from).collect() };
    let experts = out.join("tree-world-probex");
    let mut commands = vec![argv(&format!("zoo build tree-world --out {zoo}"))];
    if !out.join("tree-world-trees/run.json").is_file() {
        commands.push(argv(&format!("trees {zoo} --layer layers.1.weight --out {}", out.join("tree-world-trees").display())));
    }
    if !experts.join("experts.json").is_file() {
        commands.push(argv(&format!("probex train {zoo} --layer layers.1.weight --out {}", experts.display())));
    }
    for args in commands {
        run_stage(cli, "tree-world", args)?;
    }
    let run: Option<serde_json::Value> = glassbox_core::io::read_json(&experts.join("run.json")).ok();
    let mean = run.and_then(|r| r["metrics"]["test accuracy (mean over trees): ProbeX experts"].as_f64()).unwrap_or(f64::NAN);
    Ok(vec![("tree-world-probex".to_string(), mean)])
}

fn stage_line(t: &super::train::TrainArgs) -> String {
    format!("--model {:?} --dataset {} --out {}", t.model, t.dataset, t.out.display()).to_lowercase()
}

/// Put the first test images, with their label names, into the run's report section.
fn add_glyph_grid(dir: &std::path::Path, seed: u64, t: &super::train::TrainArgs) -> Result<()> {
    use glassbox_core::data::{glyphs, Targets};
    let split = glyphs::GlyphWorld { n_train: t.glyph_train, n_test: t.glyph_test, seed }.generate();
    let n = split.test.len().min(16);
    let images: Vec<Vec<f32>> = (0..n).map(|i| split.test.input(i).to_vec()).collect();
    let Targets::MultiLabel { values, n_labels } = &split.test.targets else { bail!("glyph targets are multi-label") };
    let labels: Vec<String> = (0..n)
        .map(|i| (0..*n_labels).filter(|&k| values[i * n_labels + k] > 0.5).map(|k| glyphs::TYPE_NAMES[k]).collect::<Vec<_>>().join("+"))
        .collect();
    let path = dir.join("run.json");
    let mut run: serde_json::Value = glassbox_core::io::read_json(&path)?;
    run["image_grids"] = serde_json::json!([{ "title": "first test images", "height": 12, "width": 12, "cols": 8, "images": images, "labels": labels }]);
    glassbox_core::io::write_json(&path, &run)?;
    Ok(())
}
