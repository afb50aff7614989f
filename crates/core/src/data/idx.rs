//! MNIST / Fashion-MNIST IDX files (big-endian header, u8 payload), gzipped or plain.

use super::{read_maybe_gz, Dataset, Split, Targets};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The raw content of an IDX image file: `count` images of `rows` x `cols` u8 pixels, row-major.
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// The `words` big-endian u32s of the header after checking the magic; the sizes they declare
/// are only trusted after [`check_len`] compares them with the bytes really present.
fn header(path: &Path, bytes: &[u8], magic: u32, words: usize) -> Result<Vec<usize>> {
    if bytes.len() < 4 * words {
        return Err(Error::format(path, format!("truncated: header needs {} bytes, file has {}", 4 * words, bytes.len())));
    }
    let values: Vec<u32> =
        bytes[..4 * words].chunks_exact(4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]])).collect();
    if values[0] != magic {
        return Err(Error::format(path, format!("wrong magic number: expected 0x{magic:08x}, found 0x{:08x}", values[0])));
    }
    Ok(values[1..].iter().map(|&v| v as usize).collect())
}

fn check_len(path: &Path, bytes: &[u8], head: usize, want: usize) -> Result<()> {
    if bytes.len() - head < want {
        return Err(Error::format(path, format!(
            "truncated: header declares {want} bytes of data, file has {}", bytes.len() - head
        )));
    }
    Ok(())
}

/// Read an IDX3 image file (magic 0x00000803), gzipped or plain.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gz(path)?;
    let h = header(path, &bytes, IMAGES_MAGIC, 4)?;
    let (count, rows, cols) = (h[0], h[1], h[2]);
    if rows == 0 || cols == 0 {
        return Err(Error::format(path, format!("header declares {rows}x{cols} images; both sizes must be positive")));
    }
    let n = count.checked_mul(rows).and_then(|v| v.checked_mul(cols)).ok_or_else(|| Error::format(path, "header sizes overflow"))?;
    check_len(path, &bytes, 16, n)?;
    Ok(IdxImages { count, rows, cols, pixels: bytes[16..16 + n].to_vec() })
}

/// Read an IDX1 label file (magic 0x00000801), gzipped or plain.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path)?;
    let count = header(path, &bytes, LABELS_MAGIC, 2)?[0];
    check_len(path, &bytes, 8, count)?;
    Ok(bytes[8..8 + count].to_vec())
}

/// `<dir>/<stem>.gz` if present, else `<dir>/<stem>`, else an error naming what is missing.
fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    if gz.is_file() {
        Ok(gz)
    } else if plain.is_file() {
        Ok(plain)
    } else {
        Err(Error::format(&gz, "missing file (neither it nor the uncompressed version exists)"))
    }
}

fn load_pair(dir: &Path, prefix: &str, name: &str) -> Result<Dataset> {
    let ipath = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lpath = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_images(&ipath)?;
    let labels = read_labels(&lpath)?;
    if labels.len() != images.count {
        return Err(Error::format(&lpath, format!(
            "{} labels but {} has {} images", labels.len(), ipath.display(), images.count
        )));
    }
    if let Some(i) = labels.iter().position(|&l| l >= 10) {
        return Err(Error::format(&lpath, format!("label {} at index {i} is not a digit class 0-9", labels[i])));
    }
    Ok(Dataset {
        name: name.to_string(),
        inputs: images.pixels.iter().map(|&p| p as f32 / 255.0).collect(),
        input_dim: images.rows * images.cols,
        image_shape: Some([1, images.rows, images.cols]),
        targets: Targets::Classes { labels: labels.into_iter().map(u32::from).collect(), n_classes: 10 },
    })
}

/// Load the four files of an MNIST-like folder; pixels scaled to [0, 1].
pub fn load_mnist_like(dir: &Path, name: &str) -> Result<Split> {
    let train = load_pair(dir, "train", name)?;
    let test = load_pair(dir, "t10k", name)?;
    if train.image_shape != test.image_shape {
        return Err(Error::format(dir, format!(
            "train images are {:?} but t10k images are {:?}; one model cannot take both",
            train.image_shape, test.image_shape
        )));
    }
    Ok(Split { train, test })
}
