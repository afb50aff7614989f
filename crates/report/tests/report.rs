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

/// A run.json of each kind the report groups, written under `root` in folders whose names sort
/// against the order of the work.
fn write_kinds(root: &Path) {
    let runs = [
        ("a-unknown", json!({"name": "something else", "metrics": {"x": 1.5}})),
        ("b-lib", json!({"name": "lib m", "lib": {}, "metrics": {"baseline_accuracy": 1.0, "lib.features_needed.l": 3, "pca.features_needed.l": 9}})),
        ("c-reader", json!({"name": "probegen reader on zoo", "metrics": {"test_accuracy_at_best_val": 0.77, "best_epoch": 3}})),
        ("d-usae", json!({"name": "USAE over a, b", "universality": {}, "metrics": {"r2.a->a": 0.9, "r2.a->b": 0.5, "latents_alive": 10}})),
        ("e-trees", json!({"name": "ProbeX tree experts on z", "rows": [], "checks": [], "metrics": {"routing accuracy": 1.0}})),
        ("f-bilinear", json!({"name": "bilinear m", "bilinear": {"effective_ranks": [1.0, 2.0]}, "metrics": {"mean_effective_rank": 1.5}})),
        ("g-eval", json!({"name": "SAE evaluation: s at h", "metrics": {"explained_variance": 0.8, "ce_loss_score": 0.9, "l0": 16}})),
        ("z-model", json!({"name": "z-model", "config": {"architecture": {"kind": "mlp"}, "task": {"data": {"name": "glyphs"}}},
            "metrics": {"test_accuracy": 0.95, "test_loss": 0.2}, "history": [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}]})),
    ];
    for (dir, run) in runs {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        std::fs::write(root.join(dir).join("run.json"), run.to_string()).unwrap();
    }
}

/// Every `id="…"` of the page.
fn ids(html: &str) -> Vec<String> {
    html.split(" id=\"").skip(1).map(|s| s[..s.find('"').unwrap()].to_string()).collect()
}

/// Every in-page link target inside `part` of the page.
fn anchors(part: &str) -> Vec<String> {
    part.split("href=\"#").skip(1).map(|s| s[..s.find('"').unwrap()].to_string()).collect()
}

#[test]
fn runs_are_grouped_by_method_in_the_order_of_the_work() {
    let root = tempfile::tempdir().unwrap();
    write_kinds(root.path());
    let out = root.path().join("report.html");
    let s = render_report(&[root.path().to_path_buf()], &out, "t").unwrap();
    assert_eq!(s.runs, 8);
    let html = std::fs::read_to_string(&out).unwrap();
    let groups = ["training", "bilinear", "lib", "sae", "readers", "probex", "lm", "other"];
    let at: Vec<usize> = groups.iter().map(|g| html.find(&format!("<section class=\"group\" id=\"group-{g}\">")).unwrap_or_else(|| panic!("no group {g}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "groups out of order: {at:?}");
    // The run sections follow the groups: the trained model first, the unknown run last.
    let section = |name: &str| html.find(&format!("<h3>{name}</h3>")).unwrap_or_else(|| panic!("no section {name}"));
    let order = ["z-model", "f-bilinear", "b-lib", "d-usae", "c-reader", "e-trees", "g-eval", "a-unknown"].map(section);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "sections out of order: {order:?}");
    assert!(at[0] < order[0] && order[7] > at[7]);
    // Each group says how to read it.
    assert_eq!(html.matches("<div class=\"howto\"><h3>How to read this</h3>").count(), groups.len());
}

#[test]
fn the_overview_is_cards_not_a_union_table_and_every_link_resolves() {
    let root = tempfile::tempdir().unwrap();
    write_kinds(root.path());
    let out = root.path().join("report.html");
    render_report(&[root.path().to_path_buf()], &out, "t").unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    // One card per run, each linking to its run's section; no table of every run's metrics.
    let overview = &html[html.find("<section id=\"overview\">").unwrap()..html.find("<section class=\"group\"").unwrap()];
    assert_eq!(overview.matches("<a class=\"card\" href=\"#run-").count(), 8);
    assert!(!html.contains("<table") && !html.contains("<th>run</th>"), "no union table");
    // Cards carry the method's headline numbers in plain words.
    assert!(overview.contains("<dt>test accuracy</dt><dd>95 %</dd>"), "{overview}");
    assert!(overview.contains("<dt>features needed, LIB / PCA</dt><dd>3 / 9</dd>"));
    assert!(overview.contains("<span class=\"card-name\" title=\"mlp on glyphs\">mlp on glyphs</span>"), "what a trained model is");
    assert!(overview.contains("<dt>explained variance</dt><dd>0.8</dd>"));
    assert!(overview.contains("<dt>R², across models (mean)</dt><dd>0.5</dd>"));
    // The navigation lists the overview, every group and every run; every in-page link lands.
    let nav = &html[html.find("<nav class=\"toc\"").unwrap()..html.find("</nav>").unwrap()];
    let targets = anchors(nav);
    assert_eq!(targets.iter().filter(|t| t.starts_with("run-")).count(), 8);
    assert_eq!(targets.iter().filter(|t| t.starts_with("group-")).count(), 8);
    assert!(targets.contains(&"overview".to_string()) && targets.contains(&"top".to_string()));
    let ids = ids(&html);
    for t in anchors(&html) {
        assert!(ids.contains(&t), "link to #{t} has no target");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
}

#[test]
fn a_figure_note_labels_its_grid_and_explains_its_colours() {
    use glassbox_report::{power_spectrum_grid_png, ColourScale, Colormap, FigureKind, FigureNote, GridLabels};
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("run.json"), json!({"name": "lib m", "lib": {}}).to_string()).unwrap();
    let figs = root.path().join("figures");
    std::fs::create_dir_all(&figs).unwrap();
    let p = 5;
    let spectrum = |u: usize, v: usize| (0..p * p).map(|k| if k == u * p + v || k == (p - u) % p * p + (p - v) % p { 1.0 } else { 1e-5 }).collect::<Vec<f32>>();
    let file = figs.join("fourier-lib-1-embed.png");
    std::fs::write(&file, power_spectrum_grid_png(&[spectrum(1, 0), spectrum(2, 2)], p, 2, 3.0).unwrap()).unwrap();
    let note = FigureNote {
        kind: Some(FigureKind::FourierSpectra),
        caption: "two <features>".into(),
        colours: Some(ColourScale { colormap: Colormap::Magma, low: "≤ 1e-3 of the peak".into(), mid: None, high: "peak".into() }),
        grid: Some(GridLabels { cols: 2, rows: 1, cells: vec!["w 1".into(), "w 2".into()], ..Default::default() }),
    };
    note.write_beside(&file).unwrap();
    let out = root.path().join("r.html");
    let s = render_report(&[root.path().to_path_buf()], &out, "t").unwrap();
    assert_eq!(s.figures, 1, "the note is not a figure");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("two &lt;features&gt;") && html.contains("<b>w 1</b>") && html.contains("<b>w 2</b>"));
    assert!(html.contains("class=\"cbar\"") && html.contains("linear-gradient(to right,#000004") && html.contains("<span>≤ 1e-3 of the peak</span>"));
    // The group explains Fourier images.
    assert!(html.contains("<dt>Fourier images</dt>"));
}

#[test]
fn power_spectra_are_centred_on_a_log_scale() {
    let p = 5;
    // Power 1 at frequency (1, 0) and (4, 0) = (−1, 0), 1e-2 at (0, 1), 1e-6 elsewhere.
    let mut im = vec![1e-6f32; p * p];
    im[0] = 0.0;
    im[p] = 1.0;
    im[4 * p] = 1.0;
    im[1] = 1e-2;
    let png = glassbox_report::power_spectrum_grid_png(&[im], p, 1, 4.0).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    let scale = 160usize.div_ceil(p) as u32; // 32 px per frequency
    let at = |row: u32, col: u32| img.get_pixel(2 + col * scale + scale / 2, 2 + row * scale + scale / 2).0;
    assert_eq!(at(2, 2), [128, 128, 128], "frequency (0, 0) at the centre, grey");
    assert_eq!(at(3, 2), [252, 253, 191], "the peak at (1, 0), below the centre, pale yellow");
    assert_eq!(at(1, 2), [252, 253, 191], "and its mirror (−1, 0) above");
    assert_eq!(at(2, 3), Colormap::Magma.at(0.5), "1e-2 of the peak: half way along 4 decades");
    assert_eq!(at(0, 0), Colormap::Magma.at(0.0), "1e-6: below the scale, black");
    use glassbox_report::Colormap;
    assert!(glassbox_report::power_spectrum_grid_png(&[vec![0.0; 4]], 2, 1, 0.0).is_err());
}

#[test]
fn charts_show_their_values_on_hover_and_only_safe_svg_is_inlined() {
    let names = vec!["a".to_string(), "b".to_string()];
    let chart = line_chart_svg("t", "epoch", "loss", &[("train_loss".into(), vec![(1.0, 0.5), (2.0, 0.25)])]).unwrap();
    assert!(chart.contains("<title>train_loss at epoch 2: 0.25</title>"), "{chart}");
    let heat = glassbox_report::heatmap_svg("R²", &names, &names, &[vec![0.9, -0.25], vec![0.5, 1.0]]).unwrap();
    assert!(heat.contains("<title>a → b: -0.250</title>"));
    let edge = glassbox_report::GraphEdge { layer: 0, from: 1, to: 0, weight: 2.0 };
    let graph = glassbox_report::layered_graph_svg("g", &names, &[3, 2], &[edge]).unwrap();
    assert!(graph.contains("<title>a feature 2 → b feature 1: 2</title>"));
    // In the page: glassbox's chart inline (its tooltips work), an SVG that could run a script as an image.
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("run.json"), json!({"name": "r"}).to_string()).unwrap();
    std::fs::create_dir_all(root.path().join("figures")).unwrap();
    std::fs::write(root.path().join("figures/chart.svg"), &chart).unwrap();
    std::fs::write(root.path().join("figures/evil.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\"><title>x</title><script>alert(1)</script></svg>").unwrap();
    std::fs::write(root.path().join("figures/handler.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><title>x</title></svg>").unwrap();
    let out = root.path().join("r.html");
    render_report(&[root.path().to_path_buf()], &out, "t").unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("<title>train_loss at epoch 2: 0.25</title>"));
    assert!(!html.contains("<script") && !html.contains("onload"));
    assert_eq!(html.matches("data:image/svg+xml;base64,").count(), 2);
}
