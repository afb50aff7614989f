//! Writes a sample report from two synthetic runs: `cargo run --release -p glassbox-report --example sample_report -- OUT_DIR`;
//! with folders after OUT_DIR, reports those instead: `... -- OUT_DIR RUN_OR_PARENT_DIR...`.

use serde_json::json;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "sample-report".into()),
    );
    let given: Vec<PathBuf> = std::env::args().skip(2).map(PathBuf::from).collect();
    if !given.is_empty() {
        let report = out.join("report.html");
        let s = glassbox_report::render_report(&given, &report, "glassbox report")?;
        println!(
            "{}: {} runs, {} figures",
            report.display(),
            s.runs,
            s.figures
        );
        return Ok(());
    }
    for (name, depth) in [("mlp-mnist", 1.0), ("cnn <small> & \"quoted\"", 0.6)] {
        let history: Vec<_> = (1..=12)
            .map(|e| {
                let t = e as f64;
                json!({"epoch": e, "train_loss": depth * 2.0 / t, "test_loss": depth * 2.2 / t + 0.05,
                       "train_accuracy": 1.0 - 0.5 / t, "test_accuracy": 0.98 - 0.5 / t, "lr": 0.001 * 0.9f64.powi(e), "seconds": 1.5})
            })
            .collect();
        let images: Vec<Vec<f32>> = (0..16)
            .map(|k| {
                (0..144)
                    .map(|p| {
                        let (y, x) = (p / 12, p % 12);
                        if (x + y + k) % 5 == 0 || y == k % 12 {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let labels: Vec<String> = (0..16).map(|k| format!("{}", k % 10)).collect();
        let dir = out
            .join("runs")
            .join(name.split_whitespace().next().unwrap());
        std::fs::create_dir_all(&dir)?;
        let run = json!({"name": name, "command": "glassbox train --model mlp --epochs 12", "seed": 42, "wall_time_s": 12.5,
            "versions": {"glassbox": "0.1.0", "burn": "0.22.1"},
            "config": {"model": {"kind": "mlp", "hidden": [64, 32]}, "training": {"lr": 0.001, "batch_size": 64}},
            "metrics": {"test_accuracy": 0.981, "test_loss": 0.07},
            "history": history,
            "image_grids": [{"title": "synthetic 12x12 glyphs", "height": 12, "width": 12, "cols": 8, "images": images, "labels": labels}]});
        std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&run)?)?;
    }
    let report = out.join("report.html");
    let s = glassbox_report::render_report(&[out.join("runs")], &report, "glassbox sample report")?;
    println!(
        "{}: {} runs, {} figures",
        report.display(),
        s.runs,
        s.figures
    );
    Ok(())
}
