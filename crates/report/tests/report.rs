use glassbox_report::{image_grid_png, line_chart_svg, render_report};
use serde_json::json;
use std::path::Path;

fn write_run(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let run = json!({
        "name": name, "command": "glassbox train <x>", "seed": 1, "unknown_field": {"ignored": true},
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

fn report_err(dir: &Path) -> String {
    render_report(&[dir.to_path_buf()], &dir.join("r.html"), "t")
        .unwrap_err()
        .to_string()
}

#[test]
fn report_from_a_parent_folder_is_one_self_contained_page() {
    let root = tempfile::tempdir().unwrap();
    write_run(
        &root.path().join("b-run"),
        "second <script>alert(1)</script>",
    );
    write_run(&root.path().join("a-run"), "first");
    std::fs::create_dir_all(root.path().join("not-a-run")).unwrap();
    let figs = root.path().join("a-run/figures");
    std::fs::create_dir_all(&figs).unwrap();
    std::fs::write(
        figs.join("z.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"/>",
    )
    .unwrap();
    std::fs::write(
        figs.join("a.png"),
        image_grid_png(&[vec![0.0, 1.0]], 1, 2, 1).unwrap(),
    )
    .unwrap();
    std::fs::write(figs.join("notes.txt"), "not a figure").unwrap();
    let out = root.path().join("report.html");
    let s = render_report(&[root.path().to_path_buf()], &out, "t & <title>").unwrap();
    assert_eq!(s.runs, 2);
    // per run: loss chart, accuracy chart, lr chart, one image grid; plus two files in a-run/figures
    assert_eq!(s.figures, 10);
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.find("first").unwrap() < html.find("second &lt;script&gt;").unwrap(),
        "sorted and escaped"
    );
    assert!(!html.contains("<script") && html.contains("<title>t &amp; &lt;title&gt;</title>"));
    assert!(
        html.contains("<svg")
            && html.contains("data:image/png;base64,")
            && html.contains("data:image/svg+xml;base64,")
    );
    assert!(
        !html.contains("src=\"http")
            && !html.contains("<link")
            && !html.contains("href=\"http")
            && !html.contains("url(")
    );
    assert!(
        html.contains("training.lr") && html.contains("test_accuracy"),
        "config flattened, metrics shown"
    );
    let mut left: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["a-run", "b-run", "not-a-run", "report.html"],
        "no temporary file left behind"
    );
}

#[test]
fn run_folders_and_parent_folders_mix() {
    let root = tempfile::tempdir().unwrap();
    write_run(&root.path().join("single"), "the single run");
    write_run(&root.path().join("many/r2"), "r2");
    write_run(&root.path().join("many/r1"), "r1");
    let out = root.path().join("out/nested/report.html");
    let s = render_report(
        &[root.path().join("single"), root.path().join("many")],
        &out,
        "t",
    )
    .unwrap();
    assert_eq!(s.runs, 3);
    let html = std::fs::read_to_string(&out).unwrap();
    let (a, b, c) = (
        html.find("the single run").unwrap(),
        html.find(">r1<").unwrap(),
        html.find(">r2<").unwrap(),
    );
    assert!(a < b && b < c);
}

#[test]
fn bad_run_json_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("run.json"), "[1, 2").unwrap();
    let e = report_err(root.path());
    assert!(e.contains("run.json") && e.contains("invalid JSON"), "{e}");
    std::fs::write(root.path().join("run.json"), "[1, 2]").unwrap();
    let e = report_err(root.path());
    assert!(e.contains("run.json: expected a JSON object"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("x")).unwrap();
    let e = report_err(empty.path());
    assert!(
        e.contains(&format!(
            "{}: no run.json here or in its sub-folders",
            empty.path().display()
        )),
        "{e}"
    );
    let e = report_err(&empty.path().join("missing"));
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn a_bad_run_in_a_parent_folder_is_named() {
    let root = tempfile::tempdir().unwrap();
    write_run(&root.path().join("good"), "good");
    std::fs::create_dir_all(root.path().join("broken")).unwrap();
    std::fs::write(root.path().join("broken/run.json"), "{\"name\": ").unwrap();
    let e = report_err(root.path());
    assert!(
        e.contains("broken") && e.contains("run.json") && e.contains("invalid JSON"),
        "{e}"
    );
}

#[test]
fn wrong_image_length_names_the_run_and_the_grid() {
    let root = tempfile::tempdir().unwrap();
    let run = json!({"name": "gridrun", "image_grids": [
        {"title": "ok", "height": 1, "width": 2, "images": [[0, 1]]},
        {"title": "broken grid", "height": 2, "width": 2, "images": [[0, 1, 2, 3], [0, 1, 2]]}]});
    std::fs::write(root.path().join("run.json"), run.to_string()).unwrap();
    let e = report_err(root.path());
    assert!(
        e.contains("run.json")
            && e.contains("gridrun")
            && e.contains("image grid 1 ('broken grid')")
            && e.contains("image 1 has 3 values"),
        "{e}"
    );
}

#[test]
fn non_finite_history_is_skipped_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    // Bare NaN/Infinity (as some writers emit), nulls, a single epoch, no epoch field, non-numeric values.
    let text = r#"{"name": "nan run", "history": [
        {"train_loss": NaN, "test_accuracy": Infinity, "lr": -Infinity, "note": "x"},
        {"train_loss": 0.5, "test_accuracy": null, "lr": 0.1, "note": "NaN"}]}"#;
    std::fs::write(root.path().join("run.json"), text).unwrap();
    let out = root.path().join("r.html");
    let s = render_report(&[root.path().to_path_buf()], &out, "t").unwrap();
    assert_eq!(
        (s.runs, s.figures),
        (1, 2),
        "loss and lr charts; accuracy has no finite point"
    );
    assert!(std::fs::read_to_string(&out).unwrap().contains("<svg"));
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
    assert!(image_grid_png(&[], 1, 2, 1).is_err());
    assert!(image_grid_png(&[vec![0.0; 2]], 1, 2, 0).is_err());
}

#[test]
fn small_glyphs_are_upscaled_to_at_least_56_px() {
    let images = vec![vec![0.5f32; 144]; 10];
    let img = image::load_from_memory(&image_grid_png(&images, 12, 12, 8).unwrap())
        .unwrap()
        .to_luma8();
    // scale = ceil(56 / 12) = 5: 60 px cells, 8 columns, 2 rows
    assert_eq!(img.dimensions(), (8 * 62 + 2, 2 * 62 + 2));
    let mnist = vec![vec![0.0f32; 784]; 3];
    let img = image::load_from_memory(&image_grid_png(&mnist, 28, 28, 8).unwrap())
        .unwrap()
        .to_luma8();
    assert_eq!(
        img.dimensions(),
        (3 * 58 + 2, 58 + 2),
        "columns never exceed the image count"
    );
}

#[test]
fn chart_skips_non_finite_points() {
    let svg = line_chart_svg(
        "t",
        "x",
        "y",
        &[("a".into(), vec![(1.0, 1.0), (2.0, f64::NAN), (3.0, 2.0)])],
    )
    .unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    assert!(
        svg.contains(">\nt\n</text>") || svg.contains(">t</text>"),
        "title drawn"
    );
    for series in [
        vec![],
        vec![(
            "nan".to_string(),
            vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)],
        )],
        vec![("one".to_string(), vec![(3.0, 0.0)])],
    ] {
        assert!(line_chart_svg("t", "x", "y", &series)
            .unwrap()
            .starts_with("<svg"));
    }
}

#[test]
fn diverging_grid_is_symmetric_per_image() {
    use glassbox_report::diverging_grid_png;
    // Image 0 spans [-2, 2], image 1 only [0, 0.5]: each gets its own symmetric range.
    let png = diverging_grid_png(&[vec![-2.0, 0.0, 2.0], vec![0.0, 0.25, 0.5]], 1, 3, 2).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    let scale = 56usize.div_ceil(3) as u32; // 19
    let px = |image: u32, col: u32| img.get_pixel(2 + image * (3 * scale + 2) + col * scale, 2).0;
    assert_eq!(px(0, 0), [103, 0, 31], "most negative: dark red");
    assert_eq!(px(0, 1), [247, 247, 247], "zero: white");
    assert_eq!(px(0, 2), [5, 48, 97], "most positive: dark blue");
    assert_eq!(px(1, 0), [247, 247, 247]);
    assert_eq!(px(1, 2), [5, 48, 97], "the second image's own maximum is dark blue too");
    assert!(diverging_grid_png(&[vec![0.0; 2]], 1, 3, 1).is_err());
}

#[test]
fn notes_are_shown_escaped_under_the_command() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let run = json!({"name": "n", "command": "glassbox lib x", "notes": ["LIB ≈ PCA <here>", 3]});
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    render_report(std::slice::from_ref(&dir), &dir.join("r.html"), "t").unwrap();
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    assert!(html.contains("<p class=\"note\">LIB ≈ PCA &lt;here&gt;</p>"));
}

#[test]
fn layered_graph_draws_every_node_and_rejects_edges_outside_the_layers() {
    use glassbox_report::{layered_graph_svg, GraphEdge};
    let names = vec!["a".to_string(), "b".to_string()];
    let edge = |to| GraphEdge { layer: 0, from: 1, to, weight: 2.0 };
    let svg = layered_graph_svg("g", &names, &[3, 2], &[edge(0), edge(1)]).unwrap();
    assert_eq!(svg.matches("<circle").count(), 5);
    assert!(layered_graph_svg("g", &names, &[3, 2], &[edge(2)]).unwrap_err().to_string().contains("outside"));
}

#[test]
fn a_scatter_chart_draws_one_circle_per_finite_point() {
    let points = [(0.0, 1.0), (1.0, 2.5), (f64::NAN, 1.0), (2.0, 0.5)];
    let svg = glassbox_report::scatter_chart_svg("cloud", "x", "y", &points).unwrap();
    assert_eq!(svg.matches("<circle").count(), 3, "three finite points");
    assert!(svg.contains("cloud"));
}

#[test]
fn a_bar_chart_names_every_bar_and_prints_its_value() {
    let svg = glassbox_report::bar_chart_svg("methods", "accuracy", &[("probegen".into(), 87.9), ("vanilla".into(), 78.5), ("broken".into(), f64::NAN)]).unwrap();
    for text in ["probegen", "vanilla", "broken", "87.9", "78.5"] {
        assert!(svg.contains(text), "{text} missing");
    }
    assert_eq!(svg.matches("<rect").count() - glassbox_report::bar_chart_svg("methods", "accuracy", &[]).unwrap().matches("<rect").count(), 2, "one bar per finite value");
}
