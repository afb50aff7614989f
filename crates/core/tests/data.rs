//! Data readers and generators: exact content, every bad-input error, and the real files.

use glassbox_core::data::glyphs::{self, GlyphWorld};
use glassbox_core::data::modadd::ModularAddition;
use glassbox_core::data::text::CharCorpus;
use glassbox_core::data::{self, digits, idx, Dataset, Targets};
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use glassbox_core::experiment::test_data_dir as real_data_dir;

// ---------------------------------------------------------------------------------------------
// IDX

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut v = 0x0803u32.to_be_bytes().to_vec();
    for w in [count, rows, cols] {
        v.extend(w.to_be_bytes());
    }
    v.extend(pixels);
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = 0x0801u32.to_be_bytes().to_vec();
    v.extend((labels.len() as u32).to_be_bytes());
    v.extend(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A fake MNIST folder: 3 train and 2 test images of 2x2, gzipped or plain.
fn fake_mnist(dir: &Path, gzip: bool) {
    let files = [
        ("train-images-idx3-ubyte", idx_images(3, 2, 2, &[0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8])),
        ("train-labels-idx1-ubyte", idx_labels(&[7, 0, 9])),
        ("t10k-images-idx3-ubyte", idx_images(2, 2, 2, &[10, 20, 30, 40, 50, 60, 70, 80])),
        ("t10k-labels-idx1-ubyte", idx_labels(&[1, 2])),
    ];
    for (name, bytes) in files {
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

fn labels_of(t: &Targets) -> (&[u32], usize) {
    match t {
        Targets::Classes { labels, n_classes } => (labels, *n_classes),
        Targets::MultiLabel { .. } => panic!("expected classes"),
    }
}

#[test]
fn idx_round_trip_plain_and_gzipped() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        fake_mnist(dir.path(), gzip);
        let s = idx::load_mnist_like(dir.path(), "mnist").unwrap();
        assert_eq!((s.train.len(), s.test.len(), s.train.input_dim, s.test.input_dim), (3, 2, 4, 4));
        assert_eq!((s.train.image_shape, s.test.image_shape), (Some([1, 2, 2]), Some([1, 2, 2])));
        assert_eq!((s.train.name.as_str(), s.train.n_outputs()), ("mnist", 10));
        assert_eq!(s.train.input(0), &[0.0, 1.0, 0.2, 0.4]);
        assert_eq!(s.train.input(2), &[5.0 / 255.0, 6.0 / 255.0, 7.0 / 255.0, 8.0 / 255.0]);
        assert_eq!(s.test.input(1), &[50.0 / 255.0, 60.0 / 255.0, 70.0 / 255.0, 80.0 / 255.0]);
        assert_eq!(labels_of(&s.train.targets), (&[7u32, 0, 9][..], 10));
        assert_eq!(labels_of(&s.test.targets), (&[1u32, 2][..], 10));

        let suffix = if gzip { ".gz" } else { "" };
        let im = idx::read_images(&dir.path().join(format!("t10k-images-idx3-ubyte{suffix}"))).unwrap();
        assert_eq!((im.count, im.rows, im.cols, im.pixels), (2, 2, 2, vec![10, 20, 30, 40, 50, 60, 70, 80]));
        let lb = idx::read_labels(&dir.path().join(format!("train-labels-idx1-ubyte{suffix}"))).unwrap();
        assert_eq!(lb, [7, 0, 9]);
    }
}

#[test]
fn idx_gzip_detected_by_content_and_preferred_when_both_exist() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), false);
    // A plain file with a different label next to a gzipped one: the .gz must win.
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gz(&idx_labels(&[5, 6]))).unwrap();
    let s = idx::load_mnist_like(dir.path(), "mnist").unwrap();
    assert_eq!(labels_of(&s.test.targets).0, [5, 6]);
    // Gzipped content under a plain name is still decompressed.
    std::fs::write(dir.path().join("plain-name"), gz(&idx_labels(&[3, 4, 5]))).unwrap();
    assert_eq!(idx::read_labels(&dir.path().join("plain-name")).unwrap(), [3, 4, 5]);
}

fn err_of(dir: &Path) -> String {
    idx::load_mnist_like(dir, "mnist").expect_err("an error").to_string()
}

#[test]
fn idx_wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), false);
    let mut b = idx_images(3, 2, 2, &[0; 12]);
    b[3] = 0x01;
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), b).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train-images-idx3-ubyte: wrong magic number: expected 0x00000803, found 0x00000801"), "{e}");

    fake_mnist(dir.path(), false);
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx_images(2, 1, 1, &[1, 2])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("t10k-labels-idx1-ubyte: wrong magic number: expected 0x00000801, found 0x00000803"), "{e}");
}

#[test]
fn idx_truncated_header_and_data() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), true);
    let p = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&p, gz(&idx_images(3, 2, 2, &[0; 12])[..10])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train-images-idx3-ubyte.gz: truncated: header needs 16 bytes, file has 10"), "{e}");
    std::fs::write(&p, gz(&idx_images(3, 2, 2, &[0; 7]))).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train-images-idx3-ubyte.gz: truncated: header declares 12 bytes of data, file has 7"), "{e}");

    let l = dir.path().join("labels");
    std::fs::write(&l, &idx_labels(&[1, 2, 3])[..6]).unwrap();
    let e = idx::read_labels(&l).unwrap_err().to_string();
    assert!(e.contains("truncated: header needs 8 bytes, file has 6"), "{e}");
    std::fs::write(&l, &idx_labels(&[1, 2, 3])[..10]).unwrap();
    let e = idx::read_labels(&l).unwrap_err().to_string();
    assert!(e.contains("truncated: header declares 3 bytes of data, file has 2"), "{e}");
}

#[test]
fn idx_lying_header_is_rejected_not_allocated() {
    // 4 billion 65535x65535 images would be ~1.8e19 bytes: must be a quick error, not an abort.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge");
    std::fs::write(&p, idx_images(u32::MAX, 65535, 65535, &[1, 2, 3])).unwrap();
    let e = idx::read_images(&p).err().expect("an error").to_string();
    assert!(e.contains("huge") && (e.contains("truncated") || e.contains("overflow")), "{e}");
    std::fs::write(&p, idx_images(1000, 28, 28, &[0; 100])).unwrap();
    let e = idx::read_images(&p).err().expect("an error").to_string();
    assert!(e.contains("truncated: header declares 784000 bytes of data, file has 100"), "{e}");
    std::fs::write(&p, idx_images(1, 0, 28, &[])).unwrap();
    let e = idx::read_images(&p).err().expect("an error").to_string();
    assert!(e.contains("0x28 images"), "{e}");
}

#[test]
fn idx_label_count_mismatch_and_bad_label() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), false);
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
    let e = err_of(dir.path());
    let images = dir.path().join("train-images-idx3-ubyte");
    assert!(e.contains("train-labels-idx1-ubyte: 2 labels but") && e.contains(&format!("{} has 3 images", images.display())), "{e}");
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 12])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train-labels-idx1-ubyte: label 12 at index 2 is not a digit class 0-9"), "{e}");
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[10, 2, 1])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("label 10 at index 0"), "{e}");
}

#[test]
fn idx_train_and_test_shapes_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), false);
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_images(2, 1, 4, &[0; 8])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train images are Some([1, 2, 2]) but t10k images are Some([1, 1, 4])"), "{e}");
}

#[test]
fn idx_missing_file_and_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), true);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = err_of(dir.path());
    let expected = dir.path().join("t10k-labels-idx1-ubyte.gz");
    assert!(e.contains(&format!("{}: missing file", expected.display())), "{e}");
    fake_mnist(dir.path(), true);
    let mut b = gz(&idx_labels(&[1, 2]));
    let n = b.len();
    b.truncate(n - 12);
    b.extend([0xde, 0xad]);
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), b).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("t10k-labels-idx1-ubyte.gz: corrupt gzip data"), "{e}");
    let e = idx::read_images(&dir.path().join("nothing-here")).err().expect("an error").to_string();
    assert!(e.contains("nothing-here"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// digits

fn digit_row(label: u32, px: u32) -> String {
    format!("{},{label}\n", vec![px.to_string(); 64].join(","))
}

#[test]
fn digits_csv_parses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv.gz");
    let mut first: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
    first.push("3".into());
    std::fs::write(&path, gz(format!("{}\n{}", first.join(","), digit_row(9, 8)).as_bytes())).unwrap();
    let d = digits::load_digits(&path).unwrap();
    assert_eq!((d.len(), d.input_dim, d.image_shape, d.n_outputs()), (2, 64, Some([1, 8, 8]), 10));
    let want: Vec<f32> = (0..64).map(|i| (i % 17) as f32 / 16.0).collect();
    assert_eq!(d.input(0), want.as_slice());
    assert!(d.input(1).iter().all(|&v| v == 0.5));
    assert_eq!(labels_of(&d.targets).0, [3, 9]);
}

#[test]
fn digits_csv_rejects_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv.gz");
    let check = |content: String, want: &str| {
        std::fs::write(&path, gz(content.as_bytes())).unwrap();
        let e = digits::load_digits(&path).unwrap_err().to_string();
        assert!(e.contains("d.csv.gz") && e.contains(want), "{e} should contain {want}");
    };
    check(format!("{}1,2,3\n", digit_row(1, 0)), "line 2: 3 fields, expected 65");
    check(format!("{}{}", digit_row(1, 0), digit_row(1, 0).replace("0,1\n", "0,1,0\n")), "line 2: 66 fields, expected 65");
    check(digit_row(3, 0).replacen('0', "x", 1), "line 1: 'x' is not an integer");
    check(digit_row(3, 0).replacen('0', "1.5", 1), "line 1: '1.5' is not an integer");
    check(digit_row(3, 17), "line 1: value 17 in column 1 exceeds 16");
    check(digit_row(10, 4), "line 1: value 10 in column 65 exceeds 9");
    check("\n\n".into(), "no samples");
    std::fs::write(&path, b"\x1f\x8bnot really gzip").unwrap();
    let e = digits::load_digits(&path).unwrap_err().to_string();
    assert!(e.contains("corrupt gzip data"), "{e}");
}

#[test]
fn digits_load_named_splits_80_20_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sklearn-digits")).unwrap();
    let csv: String = (0..10).map(|i| digit_row(i % 10, i)).collect();
    std::fs::write(dir.path().join("sklearn-digits/digits.csv.gz"), gz(csv.as_bytes())).unwrap();
    let s = data::load_named("digits", Some(dir.path()), 4).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (8, 2));
    let mut all: Vec<u32> = labels_of(&s.train.targets).0.iter().chain(labels_of(&s.test.targets).0).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..10).collect::<Vec<u32>>());
    // Each row's pixels still match its label after the shuffle (pixel value = label / 16).
    for d in [&s.train, &s.test] {
        for (i, &l) in labels_of(&d.targets).0.iter().enumerate() {
            assert_eq!(d.input(i)[0], l as f32 / 16.0);
        }
    }
    let again = data::load_named("digits", Some(dir.path()), 4).unwrap();
    assert_eq!(labels_of(&again.test.targets).0, labels_of(&s.test.targets).0);
}

// ---------------------------------------------------------------------------------------------
// Dataset, data_dir, load_named

fn toy(n: usize) -> Dataset {
    Dataset {
        name: "toy".into(),
        inputs: (0..n * 2).map(|v| v as f32).collect(),
        input_dim: 2,
        image_shape: None,
        targets: Targets::Classes { labels: (0..n as u32).collect(), n_classes: n },
    }
}

#[test]
fn subset_and_split_keep_rows_together() {
    let d = toy(10);
    let s = d.subset(&[7, 2, 7]);
    assert_eq!((s.len(), s.inputs.as_slice()), (3, &[14.0, 15.0, 4.0, 5.0, 14.0, 15.0][..]));
    assert_eq!(labels_of(&s.targets).0, [7, 2, 7]);
    let (a, b) = d.split(0.7, 9);
    assert_eq!((a.len(), b.len()), (7, 3));
    let mut seen: Vec<u32> = labels_of(&a.targets).0.iter().chain(labels_of(&b.targets).0).copied().collect();
    for part in [&a, &b] {
        for (i, &l) in labels_of(&part.targets).0.iter().enumerate() {
            assert_eq!(part.input(i), &[2.0 * l as f32, 2.0 * l as f32 + 1.0]);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<u32>>());
    assert_eq!(labels_of(&d.split(0.7, 9).0.targets).0, labels_of(&a.targets).0);
    assert_ne!(labels_of(&d.split(0.7, 10).0.targets).0, labels_of(&a.targets).0);
    // Out-of-range fractions are clamped, not a panic.
    assert_eq!((d.split(1.5, 0).0.len(), d.split(-1.0, 0).0.len(), d.split(f64::NAN, 0).0.len()), (10, 0, 0));

    let ml = Dataset {
        name: "ml".into(),
        inputs: vec![0.0, 1.0, 2.0],
        input_dim: 1,
        image_shape: None,
        targets: Targets::MultiLabel { values: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], n_labels: 2 },
    };
    let s = ml.subset(&[2, 0]);
    let Targets::MultiLabel { values, n_labels: 2 } = &s.targets else { panic!() };
    assert_eq!((s.inputs.as_slice(), values.as_slice(), s.n_outputs()), (&[2.0, 0.0][..], &[1.0, 1.0, 1.0, 0.0][..], 2));
}

#[test]
fn missing_data_folder_is_explained() {
    let e = data::load_named("mnist", Some(Path::new("/no/such/folder")), 0).unwrap_err().to_string();
    assert!(e.contains("/no/such/folder") && e.contains("--data") && e.contains("GLASSBOX_DATA"), "{e}");
    let e = data::data_dir(Some(Path::new("/no/such/folder"))).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(data::data_dir(Some(dir.path())).unwrap(), dir.path());
    let e = data::load_named("mnist", Some(dir.path()), 0).unwrap_err().to_string();
    assert!(e.contains("mnist: not found") && e.contains("glassbox data fetch mnist"), "{e}");
}

#[test]
fn load_named_knows_its_names() {
    let e = data::load_named("cifar", None, 0).unwrap_err().to_string();
    assert!(e.contains("unknown data set 'cifar'") && e.contains("mnist, fashion-mnist, digits, modadd, glyphs"), "{e}");
    assert_eq!(data::DATASET_NAMES, ["mnist", "fashion-mnist", "digits", "modadd", "glyphs"]);
    let m = data::load_named("modadd", None, 1).unwrap();
    assert_eq!((m.train.len(), m.test.len(), m.train.name.as_str()), (3831, 8938, "modadd-p113"));
    assert_eq!(m.train.inputs, ModularAddition { seed: 1, ..Default::default() }.generate().unwrap().train.inputs);
}

// ---------------------------------------------------------------------------------------------
// modular addition

#[test]
fn modular_addition_is_complete_correct_and_deterministic() {
    let m = ModularAddition { p: 7, train_fraction: 0.4, seed: 3, tokens: false };
    let s = m.generate().unwrap();
    assert_eq!((s.train.len(), s.test.len()), (20, 29)); // round(0.4 * 49) = 20
    assert_eq!((s.train.input_dim, s.train.image_shape, s.train.name.as_str()), (14, None, "modadd-p7"));
    let mut seen = std::collections::HashSet::new();
    let mut train_pairs = std::collections::HashSet::new();
    for (which, set) in [&s.train, &s.test].into_iter().enumerate() {
        let (labels, n_classes) = labels_of(&set.targets);
        assert_eq!((n_classes, labels.len()), (7, set.len()));
        for (i, &label) in labels.iter().enumerate() {
            let x = set.input(i);
            // Exactly one 1.0 in each half, zeros elsewhere.
            assert_eq!(x[..7].iter().filter(|&&v| v == 1.0).count(), 1);
            assert_eq!(x[7..].iter().filter(|&&v| v == 1.0).count(), 1);
            assert_eq!(x.iter().filter(|&&v| v != 0.0).count(), 2);
            let a = x[..7].iter().position(|&v| v == 1.0).unwrap();
            let b = x[7..].iter().position(|&v| v == 1.0).unwrap();
            assert_eq!(label as usize, (a + b) % 7);
            assert!(seen.insert((a, b)), "pair ({a},{b}) appears twice");
            if which == 0 {
                train_pairs.insert((a, b));
            } else {
                assert!(!train_pairs.contains(&(a, b)));
            }
        }
    }
    assert_eq!(seen.len(), 49);
    let again = m.generate().unwrap();
    assert_eq!((&again.train.inputs, &again.test.inputs), (&s.train.inputs, &s.test.inputs));
    assert_eq!(labels_of(&again.test.targets).0, labels_of(&s.test.targets).0);
    let other = ModularAddition { seed: 4, ..m.clone() }.generate().unwrap();
    assert_ne!(other.train.inputs, s.train.inputs);
}

#[test]
fn modular_addition_rejects_bad_settings() {
    let err = |p: usize, f: f64| ModularAddition { p, train_fraction: f, seed: 0, tokens: false }.generate().expect_err("an error").to_string();
    assert!(err(1, 0.5).contains("p >= 2, got 1"));
    assert!(err(0, 0.5).contains("p >= 2, got 0"));
    for f in [0.0, 1.0, -0.2, 1.5, f64::NAN] {
        assert!(err(7, f).contains("leaves an empty train or test split"), "{f}");
    }
    // round(0.1 * 4) = 0 train samples, round(0.9 * 4) = 4 train samples: one side empty.
    assert!(err(2, 0.1).contains("empty"));
    assert!(err(2, 0.9).contains("empty"));
    assert!(err(100_000, 0.5).contains("GiB"));
    let s = ModularAddition { p: 2, train_fraction: 0.5, seed: 0, tokens: false }.generate().unwrap();
    assert_eq!((s.train.len(), s.test.len()), (2, 2));
    let json = serde_json::to_string(&ModularAddition::default()).unwrap();
    let back: ModularAddition = serde_json::from_str(&json).unwrap();
    assert_eq!((back.p, back.train_fraction, back.seed), (113, 0.3, 0));
}

// ---------------------------------------------------------------------------------------------
// glyph world

#[test]
fn glyph_world_is_deterministic_and_well_formed() {
    let g = GlyphWorld { n_train: 300, n_test: 50, seed: 5 };
    let a = g.generate();
    let b = g.generate();
    assert_eq!((&a.train.inputs, &a.test.inputs), (&b.train.inputs, &b.test.inputs));
    assert_ne!(a.train.inputs, GlyphWorld { seed: 6, ..g.clone() }.generate().train.inputs);
    assert_eq!((a.train.len(), a.test.len(), a.train.input_dim), (300, 50, 144));
    assert_eq!((a.train.image_shape, a.train.n_outputs(), a.train.name.as_str()), (Some([1, 12, 12]), 8, "glyphs"));
    let mut type_counts = [0; 8];
    for set in [&a.train, &a.test] {
        let Targets::MultiLabel { values, n_labels: 8 } = &set.targets else { panic!() };
        for i in 0..set.len() {
            let row = &values[i * 8..(i + 1) * 8];
            assert!(row.iter().all(|&v| v == 0.0 || v == 1.0));
            let n = row.iter().filter(|&&v| v == 1.0).count();
            assert!((1..=3).contains(&n), "image {i} has {n} labels");
            for (k, &v) in row.iter().enumerate() {
                type_counts[k] += v as usize;
            }
            assert!(set.input(i).iter().all(|&p| (-0.5..=1.7).contains(&p)));
        }
    }
    assert!(type_counts.iter().all(|&c| c > 20), "{type_counts:?}");
    // Train then test come from one stream: the test set is the continuation of the train set.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for i in 0..350 {
        let (img, labels) = glyphs::sample(&mut rng);
        let (set, j) = if i < 300 { (&a.train, i) } else { (&a.test, i - 300) };
        assert_eq!(set.input(j), img.as_slice());
        let Targets::MultiLabel { values, .. } = &set.targets else { panic!() };
        assert_eq!(&values[j * 8..j * 8 + 8], &labels);
    }
}

#[test]
fn glyph_world_bytes_are_stable_across_versions() {
    // Saved models regenerate their data from the seed, so the stream must never change.
    let s = GlyphWorld { n_train: 200, n_test: 50, seed: 7 }.generate();
    let mut h: u64 = 0xcbf29ce484222325;
    for d in [&s.train, &s.test] {
        let Targets::MultiLabel { values, .. } = &d.targets else { panic!() };
        for v in d.inputs.iter().chain(values) {
            h = (h ^ v.to_bits() as u64).wrapping_mul(0x100000001b3);
        }
    }
    assert_eq!(h, 0x873ebcce1bda6198);
}

#[test]
fn glyph_render_of_known_primitives() {
    let hbar: Vec<(usize, usize)> = (2..8).map(|c| (3, c)).collect();
    let vbar: Vec<(usize, usize)> = (0..12).map(|r| (r, 5)).collect();
    let img = glyphs::render(&[(&hbar, 0.8)]).unwrap();
    for r in 0..12 {
        for c in 0..12 {
            let want = if r == 3 && (2..8).contains(&c) { 0.8 } else { 0.0 };
            assert_eq!(img[r * 12 + c], want, "({r}, {c})");
        }
    }
    // Overlaps add and are clipped at 1.5.
    let img = glyphs::render(&[(&hbar, 0.8), (&vbar, 0.9)]).unwrap();
    assert_eq!((img[3 * 12 + 5], img[3 * 12 + 4], img[7 * 12 + 5], img[0]), (1.5, 0.8, 0.9, 0.0));
    let img = glyphs::render(&[(&hbar, 0.6), (&vbar, 0.7)]).unwrap();
    assert!((img[3 * 12 + 5] - 1.3).abs() < 1e-6);
    let e = glyphs::render(&[(&[(12, 0)], 1.0)]).unwrap_err().to_string();
    assert!(e.contains("(12, 0) is outside the 12x12 image"), "{e}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let e = glyphs::primitive_pixels(8, &mut rng).unwrap_err().to_string();
    assert!(e.contains("glyph type 8 does not exist"), "{e}");
    assert_eq!(GlyphWorld::TYPE_NAMES, glyphs::TYPE_NAMES);
    assert_eq!(glyphs::TYPE_NAMES, ["hbar", "vbar", "diag", "antidiag", "square3", "hollow5", "plus", "checker4"]);
}

/// Every placement of primitive `kind` the glyph world allows, written out independently of the
/// library.
fn placements(kind: usize) -> Vec<BTreeSet<(usize, usize)>> {
    let mut out = Vec::new();
    let n = 12;
    for r in 0..n {
        for c in 0..n {
            let mut push = |cells: Vec<(isize, isize)>| {
                if cells.iter().all(|&(y, x)| (0..n as isize).contains(&y) && (0..n as isize).contains(&x)) {
                    out.push(cells.iter().map(|&(y, x)| (y as usize, x as usize)).collect());
                }
            };
            let (r, c) = (r as isize, c as isize);
            match kind {
                0..=3 => {
                    for len in 4..=10 {
                        push((0..len).map(|i| [(r, c + i), (r + i, c), (r + i, c + i), (r + i, c - i)][kind]).collect());
                    }
                }
                4 => push((0..9).map(|i| (r + i / 3, c + i % 3)).collect()),
                5 => push((0..25).map(|i| (r + i / 5, c + i % 5)).filter(|&(y, x)| y == r || y == r + 4 || x == c || x == c + 4).collect()),
                6 => {
                    for arm in 2..=3 {
                        push((-arm..=arm).map(|d| (r, c + d)).chain((-arm..=arm).map(|d| (r + d, c))).collect());
                    }
                }
                7 => push((0..16).map(|i| (r + i / 4, c + i % 4)).filter(|&(y, x)| (y + x) % 2 == 0).collect()),
                _ => unreachable!(),
            }
        }
    }
    out
}

#[test]
fn glyph_labels_match_what_is_drawn() {
    // In single-primitive images the bright pixels (noise is 0.05, intensity >= 0.6) must form
    // exactly one allowed placement of the labelled type, and of no other type.
    let all: Vec<Vec<BTreeSet<(usize, usize)>>> = (0..8).map(placements).collect();
    let s = GlyphWorld { n_train: 3000, n_test: 0, seed: 11 }.generate();
    let Targets::MultiLabel { values, .. } = &s.train.targets else { panic!() };
    let mut checked = [0; 8];
    for i in 0..s.train.len() {
        let row = &values[i * 8..(i + 1) * 8];
        if row.iter().sum::<f32>() != 1.0 {
            continue;
        }
        let kind = row.iter().position(|&v| v == 1.0).unwrap();
        let img = s.train.input(i);
        let bright: BTreeSet<(usize, usize)> = (0..144).filter(|&p| img[p] > 0.3).map(|p| (p / 12, p % 12)).collect();
        for (k, places) in all.iter().enumerate() {
            assert_eq!(places.contains(&bright), k == kind, "image {i} labelled {} drew {bright:?}", glyphs::TYPE_NAMES[kind]);
        }
        let mean = bright.iter().map(|&(r, c)| img[r * 12 + c]).sum::<f32>() / bright.len() as f32;
        assert!((0.55..=1.05).contains(&mean), "image {i}: mean intensity {mean}");
        checked[kind] += 1;
    }
    assert!(checked.iter().all(|&c| c >= 30), "{checked:?}");
}

#[test]
fn glyph_primitives_stay_inside_the_image() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let all: Vec<Vec<BTreeSet<(usize, usize)>>> = (0..8).map(placements).collect();
    for _ in 0..200 {
        for (kind, places) in all.iter().enumerate() {
            let px = glyphs::primitive_pixels(kind, &mut rng).unwrap();
            let set: BTreeSet<_> = px.iter().copied().collect();
            assert_eq!(set.len(), px.len(), "kind {kind} repeats a pixel");
            assert!(places.contains(&set), "kind {kind}: {px:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// text

#[test]
fn char_corpus_round_trip_and_windows() {
    let c = CharCorpus::from_text("abcab");
    assert_eq!(c.vocab, ['a', 'b', 'c']);
    assert_eq!(c.tokens, [0, 1, 2, 0, 1]);
    assert_eq!(c.encode("cab").unwrap(), [2, 0, 1]);
    assert_eq!(c.decode(&c.encode("abccba").unwrap()), "abccba");
    assert_eq!(c.decode(&[1, 2, 9]), "bc\u{fffd}");
    let e = c.encode("az").unwrap_err().to_string();
    assert!(e.contains("'z' is not in the vocabulary"), "{e}");

    let d = c.next_char_dataset(2, 1, 10);
    assert_eq!((d.len(), d.input_dim, d.n_outputs()), (3, 6, 3));
    assert_eq!(d.input(0), &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]); // "ab"
    assert_eq!(d.input(1), &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]); // "bc"
    assert_eq!(d.input(2), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]); // "ca"
    assert_eq!(labels_of(&d.targets).0, [2, 0, 1]);
    let d = c.next_char_dataset(2, 2, 10);
    assert_eq!(labels_of(&d.targets).0, [2, 1]);
    let d = c.next_char_dataset(1, 1, 2);
    assert_eq!(labels_of(&d.targets).0, [1, 2]);
    assert_eq!(c.next_char_dataset(5, 1, 10).len(), 0);

    let u = CharCorpus::from_text("héé→h");
    assert_eq!(u.vocab, ['h', 'é', '→']);
    assert_eq!(u.decode(&u.tokens), "héé→h");
}

#[test]
fn char_corpus_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.txt");
    std::fs::write(&p, "").unwrap();
    let e = CharCorpus::from_file(&p).err().expect("an error").to_string();
    assert!(e.contains("t.txt: empty text file"), "{e}");
    std::fs::write(&p, b"ok\xff\xfe").unwrap();
    let e = CharCorpus::from_file(&p).err().expect("an error").to_string();
    assert!(e.contains("t.txt: not UTF-8 at byte 2"), "{e}");
    let e = CharCorpus::from_file(&dir.path().join("none.txt")).err().expect("an error").to_string();
    assert!(e.contains("none.txt"), "{e}");
    std::fs::write(&p, "hello").unwrap();
    assert_eq!(CharCorpus::from_file(&p).unwrap().vocab, ['e', 'h', 'l', 'o']);
}

// ---------------------------------------------------------------------------------------------
// real data (GLASSBOX_DATA)

fn class_counts(t: &Targets) -> Vec<usize> {
    let (labels, n_classes) = labels_of(t);
    let mut c = vec![0; n_classes];
    for &l in labels {
        c[l as usize] += 1;
    }
    c
}

#[test]
fn real_mnist() {
    let Some(dir) = real_data_dir() else { return };
    let m = data::load_named("mnist", Some(&dir), 0).unwrap();
    assert_eq!((m.train.len(), m.test.len(), m.train.input_dim, m.train.image_shape), (60000, 10000, 784, Some([1, 28, 28])));
    assert_eq!(class_counts(&m.train.targets), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(class_counts(&m.test.targets), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert!(m.train.inputs.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(m.train.inputs.iter().cloned().fold(0.0f32, f32::max), 1.0);
}

#[test]
fn real_fashion_mnist() {
    let Some(dir) = real_data_dir() else { return };
    let f = data::load_named("fashion-mnist", Some(&dir), 0).unwrap();
    assert_eq!((f.train.len(), f.test.len(), f.train.input_dim), (60000, 10000, 784));
    assert_eq!(class_counts(&f.train.targets), [6000; 10]);
    assert_eq!(class_counts(&f.test.targets), [1000; 10]);
}

#[test]
fn real_digits() {
    let Some(dir) = real_data_dir() else { return };
    let d = digits::load_digits(&dir.join("sklearn-digits/digits.csv.gz")).unwrap();
    assert_eq!((d.len(), d.input_dim), (1797, 64));
    assert_eq!(class_counts(&d.targets), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    let s = data::load_named("digits", Some(&dir), 0).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (1438, 359));
}

#[test]
fn real_tinyshakespeare() {
    let Some(dir) = real_data_dir() else { return };
    let c = CharCorpus::from_file(&dir.join("tinyshakespeare/input.txt")).unwrap();
    assert_eq!((c.vocab.len(), c.tokens.len()), (65, 1115394));
    assert_eq!(c.decode(&c.tokens[..14]), "First Citizen:");
}
