use glassbox_report::{image_grid_png, line_chart_svg, render_report};
use serde_json::json;
use std::path::Path;

fn write_run(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let run = json!({
        "name": name, "command": "glassbox train <x>", "seed": 1,
        "metrics": {"test_accuracy": 0.9},
        "config": {"training": {"lr": 0.001}},
        "history": [
            {"epoch": 1, "train_loss": 1.0, "test_loss": 1.1, "test_accuracy": 0.5, "lr": 0.001},
            {"epoch": 2, "train_loss": 0.5, "test_loss": null, "test_accuracy": null, "lr": 0.0005},
        ],
        "image_grids": [{"title": "glyphs", "height": 2, "width": 3, "cols": 2, "images": [[0,1,2,3,4,5],[5,4,3,2,1,0],[0,0,0,1,1,1]], "labels": ["a","b","c"]}],
    });
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
}

#[test]
fn report_from_a_parent_folder_is_one_self_contained_page() {
    let root = tempfile::tempdir().unwrap();
    write_run(&root.path().join("b-run"), "second <run>");
    write_run(&root.path().join("a-run"), "first");
    std::fs::create_dir_all(root.path().join("not-a-run")).unwrap();
    let out = root.path().join("report.html");
    let s = render_report(&[root.path().to_path_buf()], &out, "t").unwrap();
    assert_eq!(s.runs, 2);
    // per run: loss chart, accuracy chart, lr chart, one image grid
    assert_eq!(s.figures, 8);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.find("first").unwrap() < html.find("second &lt;run&gt;").unwrap(), "sorted and escaped");
    assert!(html.contains("<svg") && html.contains("data:image/png;base64,"));
    assert!(!html.contains("src=\"http") && !html.contains("<link"));
    assert!(!root.path().join("report.html.tmp").exists());
}

#[test]
fn bad_run_json_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("run.json"), "[1, 2").unwrap();
    let e = render_report(&[root.path().to_path_buf()], &root.path().join("r.html"), "t").unwrap_err().to_string();
    assert!(e.contains("run.json") && e.contains("invalid JSON"), "{e}");
    std::fs::write(root.path().join("run.json"), "[1, 2]").unwrap();
    let e = render_report(&[root.path().to_path_buf()], &root.path().join("r.html"), "t").unwrap_err().to_string();
    assert!(e.contains("expected a JSON object"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = render_report(&[empty.path().to_path_buf()], &empty.path().join("r.html"), "t").unwrap_err().to_string();
    assert!(e.contains("no run.json here or in its sub-folders"), "{e}");
}

#[test]
fn image_grid_has_the_expected_size_and_values() {
    let png = image_grid_png(&[vec![0.0, 1.0], vec![1.0, 0.0], vec![0.5, 0.5]], 1, 2, 2).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    // scale = 56 / 2 = 28: cells 28x56, gaps of 2
    assert_eq!(img.dimensions(), (2 * (56 + 2) + 2, 2 * (28 + 2) + 2));
    assert_eq!(img.get_pixel(2, 2).0[0], 0);
    assert_eq!(img.get_pixel(2 + 28, 2).0[0], 255);
    assert_eq!(img.get_pixel(2 + 58, 2).0[0], 255);
    assert!(image_grid_png(&[vec![0.0; 3]], 1, 2, 1).is_err());
}

#[test]
fn chart_skips_non_finite_points() {
    let svg = line_chart_svg("t", "x", "y", &[("a".into(), vec![(1.0, 1.0), (2.0, f64::NAN), (3.0, 2.0)])]).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{}", &svg[..200.min(svg.len())]);
}
