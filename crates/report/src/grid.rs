//! Grey-scale image grids as PNG bytes: one shared [min, max] per grid mapped to black..white,
//! nearest-neighbour upscaling so each image is at least 56 px on its longer side.

use crate::ReportError;

/// Where each image sits in the PNG (pixels); the HTML page uses it to place labels on the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GridLayout {
    pub scale: usize,
    pub gap: usize,
    pub cell_w: usize,
    pub cell_h: usize,
    pub cols: usize,
    pub rows: usize,
}

impl GridLayout {
    pub fn new(n: usize, height: usize, width: usize, cols: usize) -> GridLayout {
        let scale = 56usize.div_ceil(height.max(width).max(1)).max(1);
        let cols = cols.clamp(1, n.max(1));
        GridLayout {
            scale,
            gap: 2,
            cell_w: width * scale,
            cell_h: height * scale,
            cols,
            rows: n.div_ceil(cols),
        }
    }

    pub fn size(&self) -> (usize, usize) {
        (
            self.cols * (self.cell_w + self.gap) + self.gap,
            self.rows * (self.cell_h + self.gap) + self.gap,
        )
    }
}

/// PNG of `images` (each `height * width` values, row-major) laid out `cols` to a row. Non-finite values are drawn black.
pub fn image_grid_png(
    images: &[Vec<f32>],
    height: usize,
    width: usize,
    cols: usize,
) -> Result<Vec<u8>, ReportError> {
    check(images, height, width, cols)?;
    let finite = || images.iter().flatten().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f32::INFINITY, f32::min);
    let hi = finite().fold(f32::NEG_INFINITY, f32::max);
    let range = if hi > lo { hi - lo } else { 1.0 };
    draw(images, height, width, cols, |_, v| {
        if v.is_finite() {
            let g = ((v - lo) / range * 255.0).round().clamp(0.0, 255.0) as u8;
            [g, g, g]
        } else {
            [0, 0, 0]
        }
    })
}

/// Like [`image_grid_png`] with the diverging RdBu colour map on a symmetric range per image:
/// positive values blue, negative red, zero white (the convention of eigenvector images, whose
/// sign and scale are their own). Non-finite values are drawn black.
pub fn diverging_grid_png(
    images: &[Vec<f32>],
    height: usize,
    width: usize,
    cols: usize,
) -> Result<Vec<u8>, ReportError> {
    check(images, height, width, cols)?;
    let limits: Vec<f32> = images
        .iter()
        .map(|im| im.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs())))
        .collect();
    draw(images, height, width, cols, |k, v| {
        if !v.is_finite() {
            return [0, 0, 0];
        }
        let t = if limits[k] > 0.0 { (v / limits[k]).clamp(-1.0, 1.0) } else { 0.0 };
        rdbu(t)
    })
}

/// ColorBrewer RdBu: t = -1 dark red, 0 near-white, +1 dark blue.
pub(crate) fn rdbu(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [103.0, 0.0, 31.0],
        [214.0, 96.0, 77.0],
        [247.0, 247.0, 247.0],
        [67.0, 147.0, 195.0],
        [5.0, 48.0, 97.0],
    ];
    let x = (t + 1.0) * 2.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    let c = |j: usize| (STOPS[i][j] + (STOPS[i + 1][j] - STOPS[i][j]) * f).round() as u8;
    [c(0), c(1), c(2)]
}

fn check(images: &[Vec<f32>], height: usize, width: usize, cols: usize) -> Result<(), ReportError> {
    if images.is_empty() || height == 0 || width == 0 || cols == 0 {
        return Err(ReportError::Figure(format!(
            "image grid needs at least one image and non-zero sizes (got {} images, height {height}, width {width}, cols {cols})",
            images.len()
        )));
    }
    if let Some(i) = images.iter().position(|im| im.len() != height * width) {
        return Err(ReportError::Figure(format!(
            "image {i} has {} values, expected height*width = {height}*{width} = {}",
            images[i].len(),
            height * width
        )));
    }
    Ok(())
}

/// Lay the images out and colour each value with `colour(image index, value)`.
fn draw(
    images: &[Vec<f32>],
    height: usize,
    width: usize,
    cols: usize,
    colour: impl Fn(usize, f32) -> [u8; 3],
) -> Result<Vec<u8>, ReportError> {
    let layout = GridLayout::new(images.len(), height, width, cols);
    let (w, h) = layout.size();
    if w.saturating_mul(h) > 100_000_000 {
        return Err(ReportError::Figure(format!(
            "image grid of {w}x{h} pixels is too large"
        )));
    }
    let GridLayout {
        scale,
        gap,
        cell_w,
        cell_h,
        cols,
        ..
    } = layout;
    let mut buf = image::RgbImage::from_pixel(w as u32, h as u32, image::Rgb([160, 160, 160]));
    for (k, im) in images.iter().enumerate() {
        let (oy, ox) = (
            gap + (k / cols) * (cell_h + gap),
            gap + (k % cols) * (cell_w + gap),
        );
        for y in 0..cell_h {
            for x in 0..cell_w {
                let v = im[(y / scale) * width + x / scale];
                buf.put_pixel((ox + x) as u32, (oy + y) as u32, image::Rgb(colour(k, v)));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    buf.write_to(&mut out, image::ImageOutputFormat::Png)
        .map_err(|e| ReportError::Figure(format!("image grid: PNG encoding: {e}")))?;
    Ok(out.into_inner())
}
