//! Image grids as PNG bytes, nearest-neighbour upscaled so each image is at least 56 px on its
//! longer side: grey-scale (one shared [min, max] per grid mapped to black..white), diverging
//! (RdBu, a symmetric range per image) and 2-D power spectra (log scale, magma colour map).

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
        GridLayout::sized(n, height, width, cols, 56)
    }

    /// Each image upscaled by a whole factor to at least `min_px` on its longer side.
    pub fn sized(n: usize, height: usize, width: usize, cols: usize, min_px: usize) -> GridLayout {
        let scale = min_px.div_ceil(height.max(width).max(1)).max(1);
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

    /// The layout of a grid PNG of `width` × `height` pixels drawn here with `cols` columns and
    /// `rows` rows (for labelling a figure file written earlier).
    pub fn from_size(width: usize, height: usize, cols: usize, rows: usize) -> Option<GridLayout> {
        let gap = 2;
        let (cols, rows) = (cols.max(1), rows.max(1));
        let cell_w = width.checked_sub(gap)? / cols;
        let cell_h = height.checked_sub(gap)? / rows;
        (cell_w > gap && cell_h > gap).then_some(GridLayout { scale: 1, gap, cell_w: cell_w - gap, cell_h: cell_h - gap, cols, rows })
    }

    pub fn size(&self) -> (usize, usize) {
        (
            self.cols * (self.cell_w + self.gap) + self.gap,
            self.rows * (self.cell_h + self.gap) + self.gap,
        )
    }

    /// Image `k`'s box as percentages of the whole grid: (left, top, width, height).
    pub fn cell_percent(&self, k: usize) -> (f64, f64, f64, f64) {
        let (w, h) = self.size();
        let (r, c) = (k / self.cols, k % self.cols);
        let x = self.gap + c * (self.cell_w + self.gap);
        let y = self.gap + r * (self.cell_h + self.gap);
        let pct = |v: usize, of: usize| 100.0 * v as f64 / of.max(1) as f64;
        (pct(x, w), pct(y, h), pct(self.cell_w, w), pct(self.cell_h, h))
    }
}

/// The colour maps of the figures, for images and the report's colour bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    /// Black (low) to white (high).
    Gray,
    /// ColorBrewer RdBu: dark red (most negative) through near-white (zero) to dark blue.
    Rdbu,
    /// Matplotlib's magma: black through purple and orange to pale yellow (perceptually even).
    Magma,
}

impl Colormap {
    /// The colour at `t` in [0, 1] along the map (RdBu: 0 is −limit, 0.5 zero, 1 +limit).
    pub fn at(self, t: f32) -> [u8; 3] {
        let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
        match self {
            Colormap::Gray => {
                let g = (t * 255.0).round() as u8;
                [g, g, g]
            }
            Colormap::Rdbu => rdbu(2.0 * t - 1.0),
            Colormap::Magma => interpolate(&MAGMA, t),
        }
    }

    /// A CSS linear gradient from the low end (left) to the high end (right).
    pub(crate) fn css_gradient(self) -> String {
        let stops: Vec<String> = (0..=10)
            .map(|i| {
                let [r, g, b] = self.at(i as f32 / 10.0);
                format!("#{r:02x}{g:02x}{b:02x}")
            })
            .collect();
        format!("linear-gradient(to right,{})", stops.join(","))
    }
}

/// Matplotlib's magma at 0, 0.1, …, 1.
const MAGMA: [[f32; 3]; 11] = [
    [0.0, 0.0, 4.0],
    [20.0, 14.0, 54.0],
    [59.0, 15.0, 112.0],
    [100.0, 26.0, 128.0],
    [140.0, 41.0, 129.0],
    [183.0, 55.0, 121.0],
    [222.0, 73.0, 104.0],
    [247.0, 112.0, 92.0],
    [254.0, 159.0, 109.0],
    [254.0, 207.0, 146.0],
    [252.0, 253.0, 191.0],
];

fn interpolate(stops: &[[f32; 3]], t: f32) -> [u8; 3] {
    let x = t * (stops.len() - 1) as f32;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f32;
    let c = |j: usize| (stops[i][j] + (stops[i + 1][j] - stops[i][j]) * f).round() as u8;
    [c(0), c(1), c(2)]
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

/// 2-D power spectra (each `p * p` values, row-major, frequency (u, v) at index u·p + v, as
/// |DFT|² is usually stored) as a grid of images at least 160 px wide. Each image is shifted so
/// that frequency (0, 0) sits at row and column ⌊p/2⌋, frequencies −⌊p/2⌋ … ⌈p/2⌉ − 1 running
/// from top to bottom (u) and from left to right (v), and drawn in magma on a log scale of
/// `decades` below the image's own peak: the peak is pale yellow, 10^−decades of it or less
/// black, so weak power spread over many frequencies stays visible next to a sharp peak. The
/// (0, 0) term itself is drawn mid-grey (a spectrum with the mean removed has none).
pub fn power_spectrum_grid_png(images: &[Vec<f32>], p: usize, cols: usize, decades: f32) -> Result<Vec<u8>, ReportError> {
    check(images, p, p, cols)?;
    if decades.is_nan() || decades <= 0.0 {
        return Err(ReportError::Figure(format!("power spectra need a positive number of decades, got {decades}")));
    }
    let centre = p / 2;
    let shifted: Vec<Vec<f32>> = images
        .iter()
        .map(|im| {
            (0..p * p)
                .map(|k| {
                    let (u, v) = (((k / p) + p - centre) % p, ((k % p) + p - centre) % p);
                    if (u, v) == (0, 0) { f32::NAN } else { im[u * p + v] }
                })
                .collect()
        })
        .collect();
    let peaks: Vec<f32> = shifted.iter().map(|im| im.iter().filter(|v| v.is_finite()).fold(0f32, |m, &v| m.max(v))).collect();
    let layout = GridLayout::sized(images.len(), p, p, cols, 160);
    draw_with(&shifted, p, layout, |k, v| {
        if v.is_nan() {
            return [128, 128, 128];
        }
        if !v.is_finite() || v <= 0.0 || peaks[k] <= 0.0 {
            return Colormap::Magma.at(0.0);
        }
        Colormap::Magma.at(1.0 + (v / peaks[k]).log10() / decades)
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
    draw_with(images, width, GridLayout::new(images.len(), height, width, cols), colour)
}

/// Like [`draw`] with a given layout (`width`: values per image row).
fn draw_with(
    images: &[Vec<f32>],
    width: usize,
    layout: GridLayout,
    colour: impl Fn(usize, f32) -> [u8; 3],
) -> Result<Vec<u8>, ReportError> {
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
