//! A bilinear layer y = P((W x + b1) ⊙ (V x + b2)) and the image model logits = layer(E x)
//! (the bilinear MLP of Pearce et al. 2024), held in f64 for exact analysis.

use faer::Mat;

/// One bilinear layer. W and V are `[d_hidden, d_in]` (PyTorch layout, row h is w_h), P is
/// `[d_out, d_hidden]`; the biases, when present, have length d_hidden.
#[derive(Clone, Debug)]
pub struct BilinearLayer {
    pub w: Mat<f64>,
    pub v: Mat<f64>,
    pub p: Mat<f64>,
    pub b1: Option<Vec<f64>>,
    pub b2: Option<Vec<f64>>,
}

/// A bilinear layer behind an optional linear embedding E (`[d_in, d_raw]`, no bias).
#[derive(Clone, Debug)]
pub struct BilinearModel {
    pub embed: Option<Mat<f64>>,
    pub layer: BilinearLayer,
}

impl BilinearLayer {
    pub fn d_in(&self) -> usize {
        self.w.ncols()
    }
    pub fn d_hidden(&self) -> usize {
        self.w.nrows()
    }
    pub fn d_out(&self) -> usize {
        self.p.nrows()
    }
    pub fn has_bias(&self) -> bool {
        self.b1.is_some() || self.b2.is_some()
    }

    /// The hidden activations g(x) = (W x + b1) ⊙ (V x + b2).
    pub fn hidden(&self, x: &[f64]) -> Vec<f64> {
        (0..self.d_hidden())
            .map(|h| {
                let a = dot_row(&self.w, h, x) + self.b1.as_ref().map_or(0.0, |b| b[h]);
                let b = dot_row(&self.v, h, x) + self.b2.as_ref().map_or(0.0, |b| b[h]);
                a * b
            })
            .collect()
    }

    /// y = P g(x).
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let g = self.hidden(x);
        (0..self.d_out()).map(|c| dot_row(&self.p, c, &g)).collect()
    }

    /// The same function as a bias-free layer on x' = [x; 1] (the paper's App L): W' = [W | b1],
    /// V' = [V | b2]. A layer without biases gets a zero column, so the shapes stay uniform.
    pub fn with_bias_folded(&self) -> BilinearLayer {
        let (h, d) = (self.d_hidden(), self.d_in());
        let fold = |m: &Mat<f64>, b: &Option<Vec<f64>>| {
            Mat::from_fn(h, d + 1, |i, j| if j < d { m[(i, j)] } else { b.as_ref().map_or(0.0, |b| b[i]) })
        };
        BilinearLayer { w: fold(&self.w, &self.b1), v: fold(&self.v, &self.b2), p: self.p.clone(), b1: None, b2: None }
    }
}

impl BilinearModel {
    /// Width of the raw input (pixels for image models).
    pub fn d_raw(&self) -> usize {
        self.embed.as_ref().map_or(self.layer.d_in(), |e| e.ncols())
    }

    /// The layer's input for a raw input x: E x, or x itself without an embedding.
    pub fn embed_input(&self, x: &[f64]) -> Vec<f64> {
        match &self.embed {
            Some(e) => (0..e.nrows()).map(|i| dot_row(e, i, x)).collect(),
            None => x.to_vec(),
        }
    }

    pub fn logits(&self, x: &[f64]) -> Vec<f64> {
        self.layer.forward(&self.embed_input(x))
    }

    /// The bias-free equivalent on x' = [x; 1]: the layer folded as in
    /// [`BilinearLayer::with_bias_folded`] and E' = blockdiag(E, 1) (as the authors'
    /// Casper-task code does).
    pub fn with_bias_folded(&self) -> BilinearModel {
        let embed = self.embed.as_ref().map(|e| {
            let (r, c) = (e.nrows(), e.ncols());
            Mat::from_fn(r + 1, c + 1, |i, j| match (i < r, j < c) {
                (true, true) => e[(i, j)],
                (false, false) => 1.0,
                _ => 0.0,
            })
        });
        BilinearModel { embed, layer: self.layer.with_bias_folded() }
    }
}

pub(crate) fn dot_row(m: &Mat<f64>, row: usize, x: &[f64]) -> f64 {
    (0..m.ncols()).map(|j| m[(row, j)] * x[j]).sum()
}
