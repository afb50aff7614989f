//! ProbeX (Horwitz et al. 2025, "Learning on Model Weights using Tree Experts") and the dense
//! linear expert it is compared with (logistic regression on the raw layer), with hand-written
//! backward passes.
//!
//! ProbeX for one model: Z = X U (probes), A = Zᵀ V (shared projection, no bias), H = ReLU(A),
//! e = M · flatten(H) + b_M (per-probe encoders as one linear layer over the probe-major
//! flatten), y = T e + b_T. Parameters are stored as PyTorch's modules hold them: U as
//! `Linear(r_U, d_W).weight` [d_W, r_U], V as `Linear(d_H, r_V).weight` [r_V, d_H], M as
//! `Linear(r_U·r_V, r_T)` [r_T, r_U·r_V] + bias, T as `Linear(r_T, d_Y)` [d_Y, r_T] + bias; all
//! row-major, PyTorch's default init U(±1/√fan_in).
//!
//! The per-model products (X U, Vᵀ Z and their gradients) run in parallel over the batch's
//! models; gradients are summed in fixed groups of models in index order, so a run gives the
//! same numbers on any number of threads.

use crate::layers::{Layer, LayerSet};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Models per gradient group: their U and V gradients are accumulated in place, groups are
/// then summed in order (the same result on any thread count).
const GROUP: usize = 8;

/// A meta-model that maps one layer of a batch of models to d_Y logits.
pub trait Expert: Clone + Send + Sync {
    type Cache: Send;
    fn params(&self) -> &[Vec<f32>];
    fn params_mut(&mut self) -> &mut Vec<Vec<f32>>;
    /// Logits (one row per model of `idx`) and what the backward pass needs.
    fn forward(&self, data: &LayerSet, idx: &[usize]) -> (Mat<f32>, Self::Cache);
    /// Gradients of Σ d_logits ⊙ logits, laid out as `params`.
    fn backward(&self, data: &LayerSet, idx: &[usize], cache: Self::Cache, d_logits: &Mat<f32>) -> Vec<Vec<f32>>;

    fn n_params(&self) -> usize {
        self.params().iter().map(Vec::len).sum()
    }
}

/// ProbeX's ranks (the paper: r_U = r_V = r_T = 128; the synthetic tree world: 32/32/64 at
/// 128²).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranks {
    pub probes: usize,
    pub proj: usize,
    pub rep: usize,
}

#[derive(Clone, Debug)]
pub struct Probex {
    pub d_h: usize,
    pub d_w: usize,
    pub d_y: usize,
    pub ranks: Ranks,
    /// ReLU after the shared projection (false: linear ProbeX, the ablation).
    pub relu: bool,
    /// [U, V, M, b_M, T, b_T] in PyTorch layout (module docs).
    pub params: Vec<Vec<f32>>,
}

pub struct ProbexCache {
    /// Per model Z = X U, column-major d_H × r_U.
    z: Vec<Mat<f32>>,
    /// Column-major r_U·r_V × n: column b is model b's H (after the ReLU) in the probe-major
    /// flatten, i.e. Hᵀ column-major.
    h: Vec<f32>,
    /// The representation e of every model (rows).
    e: Mat<f32>,
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, fan_in: usize) -> Vec<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// A GEMM over the whole batch: threads pay once a product is large enough to split.
fn par_for(flops: usize) -> Par {
    if flops > 1 << 22 {
        Par::rayon(0)
    } else {
        Par::Seq
    }
}

impl Probex {
    pub fn new(d_h: usize, d_w: usize, d_y: usize, ranks: Ranks, relu: bool, seed: u64) -> Probex {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let Ranks { probes: ru, proj: rv, rep: rt } = ranks;
        let params = vec![
            uniform(&mut rng, d_w * ru, ru),
            uniform(&mut rng, rv * d_h, d_h),
            uniform(&mut rng, rt * ru * rv, ru * rv),
            uniform(&mut rng, rt, ru * rv),
            uniform(&mut rng, d_y * rt, rt),
            uniform(&mut rng, d_y, rt),
        ];
        Probex { d_h, d_w, d_y, ranks, relu, params }
    }

    fn u(&self) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.params[0], self.d_w, self.ranks.probes)
    }

    /// Vᵀ (r_V × d_H), the stored weight.
    fn vt(&self) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.params[1], self.ranks.proj, self.d_h)
    }

    fn m(&self) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.params[2], self.ranks.rep, self.ranks.probes * self.ranks.proj)
    }

    fn t(&self) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.params[4], self.d_y, self.ranks.rep)
    }

    /// Z = X U of one model (d_H × r_U); a LoRA pair as B (A U).
    fn probe(&self, layer: &Layer) -> Mat<f32> {
        let mut z = Mat::zeros(self.d_h, self.ranks.probes);
        match layer {
            Layer::Dense(x) => {
                let x = MatRef::from_row_major_slice(x, self.d_h, self.d_w);
                matmul(z.as_mut(), Accum::Replace, x, self.u(), 1.0, Par::Seq);
            }
            Layer::LowRank { b, a, rank } => {
                let mut au = Mat::zeros(*rank, self.ranks.probes);
                matmul(au.as_mut(), Accum::Replace, MatRef::from_row_major_slice(a, *rank, self.d_w), self.u(), 1.0, Par::Seq);
                matmul(z.as_mut(), Accum::Replace, MatRef::from_row_major_slice(b, self.d_h, *rank), au.as_ref(), 1.0, Par::Seq);
            }
        }
        z
    }

    /// The representation e (rows) of the models of `idx`, with the cache.
    fn represent(&self, data: &LayerSet, idx: &[usize]) -> ProbexCache {
        let Ranks { probes: ru, proj: rv, rep: rt } = self.ranks;
        let z: Vec<Mat<f32>> = idx.par_iter().map(|&i| self.probe(&data.layers[i])).collect();
        let mut h = vec![0f32; ru * rv * idx.len()];
        h.par_chunks_mut(ru * rv).zip(z.par_iter()).for_each(|(col, z)| {
            // Aᵀ = Vᵀ Z (r_V × r_U, column-major) is H's probe-major flatten.
            let at = MatMut::from_column_major_slice_mut(col, rv, ru);
            matmul(at, Accum::Replace, self.vt(), z.as_ref(), 1.0, Par::Seq);
            if self.relu {
                for v in col.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        });
        let hm = MatRef::from_column_major_slice(&h, ru * rv, idx.len());
        let e = linear(hm.transpose(), self.m(), &self.params[3], par_for(idx.len() * ru * rv * rt));
        ProbexCache { z, h, e }
    }

    /// The representations e of the models of `idx` (rows of r_T) and the backward cache.
    pub fn represent_with_cache(&self, data: &LayerSet, idx: &[usize]) -> (Mat<f32>, ProbexCache) {
        let cache = self.represent(data, idx);
        (cache.e.clone(), cache)
    }
}

/// A linear layer x Wᵀ + b (PyTorch's `Linear`): rows of x in, rows out; W is [out, in].
pub(crate) fn linear(x: MatRef<'_, f32>, w: MatRef<'_, f32>, bias: &[f32], par: Par) -> Mat<f32> {
    let mut y = Mat::<f32>::zeros(x.nrows(), w.nrows());
    matmul(y.as_mut(), Accum::Replace, x, w.transpose(), 1.0, par);
    for (j, &bj) in bias.iter().enumerate() {
        for v in y.col_as_slice_mut(j) {
            *v += bj;
        }
    }
    y
}

/// Column sums of g (a bias gradient).
pub(crate) fn col_sums(g: &Mat<f32>) -> Vec<f32> {
    (0..g.ncols()).map(|j| g.col_as_slice(j).iter().sum()).collect()
}

/// The column-major buffer of an m × n product, i.e. the row-major buffer of its transpose.
pub(crate) fn col_major(m: &Mat<f32>) -> Vec<f32> {
    (0..m.ncols()).flat_map(|j| m.col_as_slice(j).iter().copied()).collect()
}

impl Expert for Probex {
    type Cache = ProbexCache;

    fn params(&self) -> &[Vec<f32>] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut Vec<Vec<f32>> {
        &mut self.params
    }

    fn forward(&self, data: &LayerSet, idx: &[usize]) -> (Mat<f32>, ProbexCache) {
        let cache = self.represent(data, idx);
        (linear(cache.e.as_ref(), self.t(), &self.params[5], Par::Seq), cache)
    }

    fn backward(&self, data: &LayerSet, idx: &[usize], cache: ProbexCache, dy: &Mat<f32>) -> Vec<Vec<f32>> {
        // Head: dT (row-major d_Y × r_T) = column-major eᵀ dy; de = dy T.
        let mut dt = Mat::<f32>::zeros(self.ranks.rep, self.d_y);
        matmul(dt.as_mut(), Accum::Replace, cache.e.transpose(), dy.as_ref(), 1.0, Par::Seq);
        let mut de = Mat::<f32>::zeros(idx.len(), self.ranks.rep);
        matmul(de.as_mut(), Accum::Replace, dy.as_ref(), self.t(), 1.0, Par::Seq);
        let mut grads = self.backward_representation(data, idx, &cache, &de);
        grads.extend([col_major(&dt), col_sums(dy)]);
        grads
    }
}

impl Probex {
    /// Gradients of U, V, M and b_M from the gradient of the representations e (rows).
    pub fn backward_representation(&self, data: &LayerSet, idx: &[usize], cache: &ProbexCache, de: &Mat<f32>) -> Vec<Vec<f32>> {
        let Ranks { probes: ru, proj: rv, rep: rt } = self.ranks;
        let (d_h, d_w, n) = (self.d_h, self.d_w, idx.len());
        // Encoder: dM (row-major r_T × r_U·r_V) = column-major H de; dH = Mᵀ deᵀ.
        let par = par_for(n * ru * rv * rt);
        let mut dm = Mat::<f32>::zeros(ru * rv, rt);
        let hm = MatRef::from_column_major_slice(&cache.h, ru * rv, n);
        matmul(dm.as_mut(), Accum::Replace, hm, de.as_ref(), 1.0, par);
        let mut dh = Mat::<f32>::zeros(ru * rv, n);
        matmul(dh.as_mut(), Accum::Replace, self.m().transpose(), de.transpose(), 1.0, par);
        // Per model: dAᵀ (masked by the ReLU), dVᵀ += dAᵀ Zᵀ, dZ = V dAᵀ... accumulated per group.
        let groups: Vec<(Vec<f32>, Vec<f32>)> = (0..n)
            .collect::<Vec<_>>()
            .par_chunks(GROUP)
            .map(|members| {
                // dU as column-major r_U × d_W (= row-major d_W × r_U), dVᵀ as column-major d_H × r_V
                // (= row-major r_V × d_H).
                let mut du = vec![0f32; ru * d_w];
                let mut dv = vec![0f32; d_h * rv];
                for &b in members {
                    let mut dat: Vec<f32> = dh.col_as_slice(b).to_vec();
                    if self.relu {
                        for (d, &h) in dat.iter_mut().zip(&cache.h[b * ru * rv..(b + 1) * ru * rv]) {
                            if h <= 0.0 {
                                *d = 0.0;
                            }
                        }
                    }
                    let dat = MatRef::from_column_major_slice(&dat, rv, ru);
                    let z = cache.z[b].as_ref();
                    // Aᵀ = Vᵀ Z: d(Vᵀ) = dAᵀ Zᵀ, stored transposed: Z dA.
                    matmul(MatMut::from_column_major_slice_mut(&mut dv, d_h, rv), Accum::Add, z, dat.transpose(), 1.0, Par::Seq);
                    let mut dz = Mat::<f32>::zeros(d_h, ru);
                    matmul(dz.as_mut(), Accum::Replace, self.vt().transpose(), dat, 1.0, Par::Seq);
                    // dU = Xᵀ dZ, stored transposed: dZᵀ X (a LoRA pair: (dZᵀ B) A).
                    let du_t = MatMut::from_column_major_slice_mut(&mut du, ru, d_w);
                    match &data.layers[idx[b]] {
                        Layer::Dense(x) => {
                            matmul(du_t, Accum::Add, dz.transpose(), MatRef::from_row_major_slice(x, d_h, d_w), 1.0, Par::Seq);
                        }
                        Layer::LowRank { b: bf, a, rank } => {
                            let mut p = Mat::<f32>::zeros(ru, *rank);
                            matmul(p.as_mut(), Accum::Replace, dz.transpose(), MatRef::from_row_major_slice(bf, d_h, *rank), 1.0, Par::Seq);
                            matmul(du_t, Accum::Add, p.as_ref(), MatRef::from_row_major_slice(a, *rank, d_w), 1.0, Par::Seq);
                        }
                    }
                }
                (du, dv)
            })
            .collect();
        let (mut du, mut dv) = (vec![0f32; ru * d_w], vec![0f32; d_h * rv]);
        for (gu, gv) in &groups {
            du.iter_mut().zip(gu).for_each(|(a, b)| *a += b);
            dv.iter_mut().zip(gv).for_each(|(a, b)| *a += b);
        }
        // du is column-major r_U × d_W: row-major d_W × r_U, U's layout. dv is column-major
        // d_H × r_V: row-major r_V × d_H, the stored weight's layout.
        vec![du, dv, col_major(&dm), col_sums(de)]
    }
}

/// Logistic regression on the flattened layer (the ProbeX paper's dense linear expert; with a
/// 1 × k "layer" of features it is StatNN's classifier): y = W vec(X) + b.
#[derive(Clone, Debug)]
pub struct DenseExpert {
    pub d_in: usize,
    pub d_y: usize,
    /// [W row-major d_Y × d_in, b].
    pub params: Vec<Vec<f32>>,
}

impl DenseExpert {
    pub fn new(d_in: usize, d_y: usize, seed: u64) -> DenseExpert {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        DenseExpert { d_in, d_y, params: vec![uniform(&mut rng, d_y * d_in, d_in), uniform(&mut rng, d_y, d_in)] }
    }
}

impl Expert for DenseExpert {
    /// The inputs, column-major d_in × n.
    type Cache = Vec<f32>;

    fn params(&self) -> &[Vec<f32>] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut Vec<Vec<f32>> {
        &mut self.params
    }

    fn forward(&self, data: &LayerSet, idx: &[usize]) -> (Mat<f32>, Vec<f32>) {
        let buf = data.columns(idx);
        let x = MatRef::from_column_major_slice(&buf, self.d_in, idx.len());
        let w = MatRef::from_row_major_slice(&self.params[0], self.d_y, self.d_in);
        let y = linear(x.transpose(), w, &self.params[1], par_for(idx.len() * self.d_in * self.d_y));
        (y, buf)
    }

    fn backward(&self, _data: &LayerSet, idx: &[usize], buf: Vec<f32>, dy: &Mat<f32>) -> Vec<Vec<f32>> {
        let x = MatRef::from_column_major_slice(&buf, self.d_in, idx.len());
        // dW (row-major d_Y × d_in) = column-major x dy.
        let mut dw = Mat::<f32>::zeros(self.d_in, self.d_y);
        matmul(dw.as_mut(), Accum::Replace, x, dy.as_ref(), 1.0, par_for(idx.len() * self.d_in * self.d_y));
        vec![col_major(&dw), col_sums(dy)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Σ g ⊙ logits, the scalar whose gradient `backward` returns for d_logits = g.
    fn scalar<E: Expert>(e: &E, data: &LayerSet, idx: &[usize], g: &Mat<f32>) -> f64 {
        let (y, _) = e.forward(data, idx);
        (0..y.nrows()).flat_map(|r| (0..y.ncols()).map(move |c| (r, c))).map(|(r, c)| y[(r, c)] as f64 * g[(r, c)] as f64).sum()
    }

    fn check_gradients<E: Expert>(e: &E, data: &LayerSet, idx: &[usize]) {
        let (y, cache) = e.forward(data, idx);
        let g = Mat::from_fn(y.nrows(), y.ncols(), |r, c| ((r * 7 + c * 3) as f32 * 0.41).sin());
        let grads = e.backward(data, idx, cache, &g);
        let h = 1e-2f32;
        for (t, gt) in grads.iter().enumerate() {
            assert_eq!(gt.len(), e.params()[t].len(), "tensor {t}");
            for i in [0, gt.len() / 3, gt.len() / 2, gt.len() - 1] {
                let (mut up, mut down) = (e.clone(), e.clone());
                up.params_mut()[t][i] += h;
                down.params_mut()[t][i] -= h;
                let fd = (scalar(&up, data, idx, &g) - scalar(&down, data, idx, &g)) / (2.0 * h as f64);
                assert!((fd - gt[i] as f64).abs() < 2e-3 + 1e-2 * fd.abs(), "tensor {t} entry {i}: {} vs {fd}", gt[i]);
            }
        }
    }

    fn layers(n: usize, d_h: usize, d_w: usize) -> LayerSet {
        let mats = (0..n).map(|m| (0..d_h * d_w).map(|k| ((m * 31 + k) as f32 * 0.37).sin()).collect()).collect();
        LayerSet::dense("x", d_h, d_w, mats).unwrap()
    }

    #[test]
    fn probex_gradients_match_finite_differences() {
        let data = layers(11, 5, 4);
        for relu in [true, false] {
            let p = Probex::new(5, 4, 3, Ranks { probes: 3, proj: 2, rep: 4 }, relu, 7);
            check_gradients(&p, &data, &[0, 3, 4, 7, 8, 9, 10, 1, 2, 5]);
        }
        let d = DenseExpert::new(20, 3, 1);
        check_gradients(&d, &data, &[2, 5, 6]);
    }

    #[test]
    fn probex_matches_a_naive_forward() {
        let data = layers(2, 3, 4);
        let p = Probex::new(3, 4, 2, Ranks { probes: 2, proj: 3, rep: 2 }, true, 3);
        let (y, _) = p.forward(&data, &[1]);
        let x = data.dense_of(1);
        let [u, vt, m, bm, t, bt] = [0, 1, 2, 3, 4, 5].map(|k| &p.params[k]);
        // The paper's layers: z_l = X u_l; h_l = ReLU(Vᵀ z_l); e = Σ_l M_l h_l + b_M;
        // y = T e + b_T.
        let mut e = bm.clone();
        for l in 0..2 {
            let z: Vec<f32> = (0..3).map(|r| (0..4).map(|c| x[r * 4 + c] * u[c * 2 + l]).sum()).collect();
            let h: Vec<f32> = (0..3).map(|j| (0..3).map(|r| vt[j * 3 + r] * z[r]).sum::<f32>().max(0.0)).collect();
            for (o, eo) in e.iter_mut().enumerate() {
                *eo += (0..3).map(|j| m[o * 6 + l * 3 + j] * h[j]).sum::<f32>();
            }
        }
        for k in 0..2 {
            let want = bt[k] + (0..2).map(|o| t[k * 2 + o] * e[o]).sum::<f32>();
            assert!((y[(0, k)] - want).abs() < 1e-5, "{} vs {want}", y[(0, k)]);
        }
    }

    #[test]
    fn low_rank_input_gives_the_dense_results() {
        let (b, a) = (vec![0.3f32, -1.0, 0.5, 2.0, 0.1, -0.7], vec![1.0f32, 0.2, -0.4, 0.9, -1.2, 0.6, 0.3, 0.8]);
        let lora = LayerSet { name: "x".into(), d_h: 3, d_w: 4, layers: vec![Layer::LowRank { b, a, rank: 2 }] };
        let dense = LayerSet::dense("x", 3, 4, vec![lora.dense_of(0)]).unwrap();
        let p = Probex::new(3, 4, 2, Ranks { probes: 2, proj: 2, rep: 3 }, true, 5);
        let (y1, c1) = p.forward(&lora, &[0]);
        let (y2, c2) = p.forward(&dense, &[0]);
        let g = Mat::from_fn(1, 2, |_, c| c as f32 + 0.5);
        let (g1, g2) = (p.backward(&lora, &[0], c1, &g), p.backward(&dense, &[0], c2, &g));
        assert!((y1[(0, 0)] - y2[(0, 0)]).abs() < 1e-5 && (y1[(0, 1)] - y2[(0, 1)]).abs() < 1e-5);
        for (a, b) in g1.iter().flatten().zip(g2.iter().flatten()) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn the_papers_768_layer_has_2_3m_parameters() {
        // The paper's 2.3M: 98,304 + 98,304 + 2,097,280 + 12,900.
        let p = Probex::new(768, 768, 100, Ranks { probes: 128, proj: 128, rep: 128 }, true, 0);
        assert_eq!(p.n_params(), 2_306_788);
        // The synthetic tree world's setting: r 32/32/64 on 128² with 20 outputs.
        assert_eq!(Probex::new(128, 128, 20, Ranks { probes: 32, proj: 32, rep: 64 }, true, 0).n_params(), 75_092);
    }
}
