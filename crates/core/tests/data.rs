//! Data readers and generators: exact content, every bad-input error, and the real files.

mod common;
use common::real_data_dir;
use glassbox_core::data::glyphs::{self, GlyphWorld};
use glassbox_core::data::modadd::ModularAddition;
use glassbox_core::data::text::CharCorpus;
use glassbox_core::data::{self, digits, idx, Targets};
use std::io::Write;
use std::path::Path;

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

#[test]
fn idx_round_trip_plain_and_gzipped() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        fake_mnist(dir.path(), gzip);
        let s = idx::load_mnist_like(dir.path(), "mnist").unwrap();
        assert_eq!((s.train.len(), s.test.len(), s.train.input_dim), (3, 2, 4));
        assert_eq!(s.train.image_shape, Some([1, 2, 2]));
        assert_eq!(s.train.input(0), &[0.0, 1.0, 0.2, 0.4]);
        match &s.train.targets {
            Targets::Classes { labels, n_classes } => assert_eq!((labels.as_slice(), *n_classes), (&[7u32, 0, 9][..], 10)),
            _ => panic!("expected classes"),
        }
    }
}

fn err_of(dir: &Path) -> String {
    idx::load_mnist_like(dir, "mnist").err().expect("an error").to_string()
}

#[test]
fn idx_wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), false);
    let mut b = idx_images(3, 2, 2, &[0; 12]);
    b[3] = 0x01;
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), b).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("expected 0x00000803, found 0x00000801"), "{e}");
}

#[test]
fn idx_truncated_header_and_data() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), true);
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gz(&idx_images(3, 2, 2, &[0; 12])[..10])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("truncated: header needs 16 bytes, file has 10"), "{e}");
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gz(&idx_images(3, 2, 2, &[0; 7]))).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("truncated: header declares 12 bytes of data, file has 7"), "{e}");
}

#[test]
fn idx_label_count_mismatch_and_bad_label() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), false);
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("train-labels-idx1-ubyte: 2 labels but") && e.contains("has 3 images"), "{e}");
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[1, 2, 12])).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("label 12 at index 2"), "{e}");
}

#[test]
fn idx_missing_file_and_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    fake_mnist(dir.path(), true);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("t10k-labels-idx1-ubyte.gz: missing file"), "{e}");
    fake_mnist(dir.path(), true);
    let mut b = gz(&idx_labels(&[1, 2]));
    let n = b.len();
    b.truncate(n - 12);
    b.extend([0xde, 0xad]);
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), b).unwrap();
    let e = err_of(dir.path());
    assert!(e.contains("corrupt gzip data"), "{e}");
}

#[test]
fn digits_csv_parses_and_rejects_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv.gz");
    let row = |label: u32, px: u32| format!("{},{label}\n", vec![px.to_string(); 64].join(","));
    std::fs::write(&path, gz(format!("{}{}", row(3, 16), row(9, 8)).as_bytes())).unwrap();
    let d = digits::load_digits(&path).unwrap();
    assert_eq!((d.len(), d.input_dim), (2, 64));
    assert_eq!(d.input(1)[5], 0.5);
    std::fs::write(&path, gz(b"1,2,3\n")).unwrap();
    let e = digits::load_digits(&path).unwrap_err().to_string();
    assert!(e.contains("line 1: 3 fields, expected 65"), "{e}");
    std::fs::write(&path, gz(row(3, 17).as_bytes())).unwrap();
    let e = digits::load_digits(&path).unwrap_err().to_string();
    assert!(e.contains("value 17 in column 1 exceeds 16"), "{e}");
}

#[test]
fn modular_addition_is_complete_correct_and_deterministic() {
    let m = ModularAddition { p: 7, train_fraction: 0.4, seed: 3 };
    let s = m.generate().unwrap();
    assert_eq!((s.train.len(), s.test.len()), (20, 29));
    let mut seen = std::collections::HashSet::new();
    for set in [&s.train, &s.test] {
        let Targets::Classes { labels, n_classes } = &set.targets else { panic!() };
        assert_eq!(*n_classes, 7);
        for i in 0..set.len() {
            let x = set.input(i);
            assert_eq!(x.iter().filter(|&&v| v == 1.0).count(), 2);
            assert_eq!(x.iter().filter(|&&v| v != 0.0).count(), 2);
            let a = x[..7].iter().position(|&v| v == 1.0).unwrap();
            let b = x[7..].iter().position(|&v| v == 1.0).unwrap();
            assert_eq!(labels[i] as usize, (a + b) % 7);
            assert!(seen.insert((a, b)), "pair ({a},{b}) appears twice");
        }
    }
    assert_eq!(seen.len(), 49);
    assert_eq!(m.generate().unwrap().train.inputs, s.train.inputs);
    assert!(ModularAddition { p: 7, train_fraction: 1.0, seed: 0 }.generate().is_err());
    assert!(ModularAddition { p: 1, train_fraction: 0.5, seed: 0 }.generate().is_err());
}

#[test]
fn glyph_world_is_deterministic_and_well_formed() {
    let g = GlyphWorld { n_train: 300, n_test: 50, seed: 5 };
    let a = g.generate();
    assert_eq!(a.train.inputs, g.generate().train.inputs);
    assert_ne!(a.train.inputs, GlyphWorld { seed: 6, ..g.clone() }.generate().train.inputs);
    assert_eq!((a.train.len(), a.test.len(), a.train.input_dim), (300, 50, 144));
    let Targets::MultiLabel { values, n_labels: 8 } = &a.train.targets else { panic!() };
    let mut type_counts = [0; 8];
    for i in 0..300 {
        let row = &values[i * 8..(i + 1) * 8];
        let n = row.iter().filter(|&&v| v == 1.0).count();
        assert!((1..=3).contains(&n));
        for (k, &v) in row.iter().enumerate() {
            type_counts[k] += v as usize;
        }
        assert!(a.train.input(i).iter().all(|&p| (-0.5..=1.7).contains(&p)));
    }
    assert!(type_counts.iter().all(|&c| c > 20), "{type_counts:?}");
}

#[test]
fn glyph_primitives_have_their_shapes() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for _ in 0..50 {
        let sq = glyphs::primitive_pixels(4, &mut rng);
        assert_eq!(sq.len(), 9);
        let hollow = glyphs::primitive_pixels(5, &mut rng);
        assert_eq!(hollow.len(), 16);
        let checker = glyphs::primitive_pixels(7, &mut rng);
        assert_eq!(checker.len(), 8);
        let bar = glyphs::primitive_pixels(0, &mut rng);
        assert!(bar.iter().all(|&(r, _)| r == bar[0].0) && (4..=10).contains(&bar.len()));
        let vbar = glyphs::primitive_pixels(1, &mut rng);
        assert!(vbar.iter().all(|&(_, c)| c == vbar[0].1));
        let diag = glyphs::primitive_pixels(2, &mut rng);
        assert!(diag.windows(2).all(|w| w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1));
        let anti = glyphs::primitive_pixels(3, &mut rng);
        assert!(anti.windows(2).all(|w| w[1].0 == w[0].0 + 1 && w[1].1 + 1 == w[0].1));
        let plus = glyphs::primitive_pixels(6, &mut rng);
        assert!(plus.len() == 9 || plus.len() == 13);
        for (r, c) in sq.iter().chain(&hollow).chain(&checker).chain(&plus).chain(&bar).chain(&diag).chain(&anti) {
            assert!(*r < 12 && *c < 12);
        }
    }
    assert_eq!(glyphs::TYPE_NAMES.len(), 8);
}

#[test]
fn char_corpus_round_trip_and_windows() {
    let c = CharCorpus::from_text("abcab");
    assert_eq!(c.vocab, ['a', 'b', 'c']);
    assert_eq!(c.encode("cab").unwrap(), [2, 0, 1]);
    assert_eq!(c.decode(&[1, 2]), "bc");
    assert!(c.encode("z").is_err());
    let d = c.next_char_dataset(2, 1, 10);
    assert_eq!((d.len(), d.input_dim), (3, 6));
    assert_eq!(d.input(0), &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let Targets::Classes { labels, .. } = &d.targets else { panic!() };
    assert_eq!(labels, &[2, 0, 1]);
}

#[test]
fn missing_data_folder_is_explained() {
    let e = data::load_named("mnist", Some(Path::new("/no/such/folder")), 0).unwrap_err().to_string();
    assert!(e.contains("/no/such/folder") && e.contains("--data"), "{e}");
}

fn class_counts(t: &Targets) -> Vec<usize> {
    let Targets::Classes { labels, n_classes } = t else { panic!() };
    let mut c = vec![0; *n_classes];
    for &l in labels {
        c[l as usize] += 1;
    }
    c
}

#[test]
fn real_mnist_fashion_digits_and_text() {
    let Some(dir) = real_data_dir() else { return };
    let m = data::load_named("mnist", Some(&dir), 0).unwrap();
    assert_eq!((m.train.len(), m.test.len(), m.train.input_dim), (60000, 10000, 784));
    assert_eq!(class_counts(&m.train.targets), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(class_counts(&m.test.targets), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    let f = data::load_named("fashion-mnist", Some(&dir), 0).unwrap();
    assert_eq!(class_counts(&f.train.targets), [6000; 10]);
    assert_eq!(class_counts(&f.test.targets), [1000; 10]);
    let d = digits::load_digits(&dir.join("sklearn-digits/digits.csv.gz")).unwrap();
    assert_eq!(class_counts(&d.targets), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    let c = CharCorpus::from_file(&dir.join("tinyshakespeare/input.txt")).unwrap();
    assert_eq!((c.vocab.len(), c.tokens.len()), (65, 1115394));
}
