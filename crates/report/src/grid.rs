//! Grey-scale image grids as PNG bytes (shared min-max scaling, nearest-neighbour upscaling).

use crate::ReportError;

pub fn image_grid_png(images: &[Vec<f32>], height: usize, width: usize, cols: usize) -> Result<Vec<u8>, ReportError> {
    if images.is_empty() || height == 0 || width == 0 || cols == 0 {
        return Err(ReportError::Figure("image grid needs at least one image and non-zero sizes".into()));
    }
    if let Some(i) = images.iter().position(|im| im.len() != height * width) {
        return Err(ReportError::Figure(format!("image {i} has {} values, expected {height}x{width}", images[i].len())));
    }
    let finite = || images.iter().flatten().copied().filter(|v| v.is_finite());
    let lo = finite().fold(f32::INFINITY, f32::min);
    let hi = finite().fold(f32::NEG_INFINITY, f32::max);
    let range = if hi > lo { hi - lo } else { 1.0 };
    let scale = (56 / height.max(width)).max(1);
    let (cell_h, cell_w, gap) = (height * scale, width * scale, 2);
    let rows = images.len().div_ceil(cols);
    let (w, h) = (cols * (cell_w + gap) + gap, rows * (cell_h + gap) + gap);
    let mut buf = image::GrayImage::from_pixel(w as u32, h as u32, image::Luma([128]));
    for (k, im) in images.iter().enumerate() {
        let (oy, ox) = (gap + (k / cols) * (cell_h + gap), gap + (k % cols) * (cell_w + gap));
        for y in 0..cell_h {
            for x in 0..cell_w {
                let v = im[(y / scale) * width + x / scale];
                let g = if v.is_finite() { ((v - lo) / range * 255.0).round().clamp(0.0, 255.0) as u8 } else { 0 };
                buf.put_pixel((ox + x) as u32, (oy + y) as u32, image::Luma([g]));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    buf.write_to(&mut out, image::ImageOutputFormat::Png).map_err(|e| ReportError::Figure(e.to_string()))?;
    Ok(out.into_inner())
}
