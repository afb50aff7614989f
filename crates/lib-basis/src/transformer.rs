//! The sections of a one-layer transformer read at its last position, in f64 with folded
//! biases: attention (residual stream over all positions → residual stream after attention at
//! the last position) and the MLP with its residual connection. The unembedding is an ordinary
//! linear [`Section`].
//!
//! Node layers of a transformer have positions: a node layer's activations hold P rows per
//! sample (sample-major), and every statistic treats positions as extra samples (the LIB
//! paper's convention). Jacobians are per sample and input position, in closed form.

use crate::network::{Gate, Input, Module, Network, Section};
use crate::{Error, Result};
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use glassbox_core::model::{Readout, TransformerConfig};
use rayon::prelude::*;

/// One attention head with folded weights: W_Q, W_K, W_V (D × d_head, zero row for the
/// constant coordinate) and W_O (d_head × D, zero column for the constant).
#[derive(Clone, Debug)]
pub struct Head {
    pub w_q: Mat<f64>,
    pub w_k: Mat<f64>,
    pub w_v: Mat<f64>,
    pub w_o: Mat<f64>,
}

/// Causal attention without biases at the last position, plus the residual:
/// y = x_{P-1} + Σ_h Σ_u softmax_u(q_h·k_{h,u} / √d_head) v_{h,u} W_O^h.
#[derive(Clone, Debug)]
pub struct Attention {
    pub positions: usize,
    pub heads: Vec<Head>,
}

impl Attention {
    fn scale(&self) -> f64 {
        1.0 / (self.heads[0].w_q.ncols() as f64).sqrt()
    }

    pub fn width(&self) -> usize {
        self.heads[0].w_q.nrows()
    }

    /// Attention probabilities of one head for one sample x (P × D), p_u over key positions u,
    /// with its query (d_head × 1) and keys (P × d_head).
    fn pattern(&self, head: &Head, x: MatRef<'_, f64>) -> (Vec<f64>, Mat<f64>, Mat<f64>) {
        let p = self.positions;
        let q = x.row(p - 1) * &head.w_q;
        let k = x * &head.w_k;
        let scale = self.scale();
        let mut probs: Vec<f64> = (0..p).map(|u| (0..q.ncols()).map(|c| q[c] * k[(u, c)]).sum::<f64>() * scale).collect();
        softmax(&mut probs);
        let q = Mat::from_fn(q.ncols(), 1, |c, _| q[c]);
        (probs, q, k)
    }

    /// Rows N·P (sample-major) to rows N. Queries, keys and values are whole-batch products;
    /// only the P-wide softmax runs per sample.
    pub fn forward(&self, f: &Mat<f64>) -> Mat<f64> {
        let (p, d) = (self.positions, f.ncols());
        let n = f.nrows() / p;
        let last = Mat::from_fn(n, d, |r, c| f[(r * p + p - 1, c)]);
        let mut out = last.clone();
        let scale = self.scale();
        for head in &self.heads {
            let (q, k, v) = (&last * &head.w_q, f * &head.w_k, f * &head.w_v);
            let dh = q.ncols();
            let mut z = Mat::<f64>::zeros(n, dh);
            let mut probs = vec![0.0; p];
            for r in 0..n {
                for (u, s) in probs.iter_mut().enumerate() {
                    *s = (0..dh).map(|c| q[(r, c)] * k[(r * p + u, c)]).sum::<f64>() * scale;
                }
                softmax(&mut probs);
                for (u, &pu) in probs.iter().enumerate() {
                    for c in 0..dh {
                        z[(r, c)] += pu * v[(r * p + u, c)];
                    }
                }
            }
            matmul(out.as_mut(), Accum::Add, z.as_ref(), head.w_o.as_ref(), 1.0, Par::rayon(0));
        }
        out
    }

    /// ∂(y · C)/∂x_s for one sample x (P × D): one D × k matrix per input position s (row
    /// form: d(y C) = dx_s · J_s). With p the attention pattern, o_u = v_u W_O C, ō = Σ p_u o_u,
    /// r = Σ p_u k_u:
    ///   J_s = [s = P-1] C + Σ_h p_s W_V W_O C + p_s/√d (W_K q) ⊗ (o_s − ō)
    ///         + [s = P-1] W_Q Σ_u p_u (k_u − r) ⊗ o_u / √d.
    pub fn sample_jacobians(&self, x: MatRef<'_, f64>, prepared: &PreparedAttention) -> Vec<Mat<f64>> {
        let (p, c) = (self.positions, &prepared.c);
        let k_out = c.ncols();
        let mut js: Vec<Mat<f64>> = (0..p).map(|_| Mat::zeros(c.nrows(), k_out)).collect();
        js[p - 1] += c;
        let scale = self.scale();
        for (h, head) in self.heads.iter().enumerate() {
            let (probs, q, k) = self.pattern(head, x);
            let o = (x * &head.w_v) * &prepared.o_c[h]; // P × k
            let o_bar = Mat::from_fn(1, k_out, |_, i| (0..p).map(|u| probs[u] * o[(u, i)]).sum::<f64>());
            let wkq = &head.w_k * &q; // D × 1
            let dh = k.ncols();
            let r: Vec<f64> = (0..dh).map(|a| (0..p).map(|u| probs[u] * k[(u, a)]).sum()).collect();
            for (s, j) in js.iter_mut().enumerate() {
                *j += &prepared.vo_c[h] * faer::Scale(probs[s]);
                let diff = Mat::from_fn(1, k_out, |_, i| o[(s, i)] - o_bar[(0, i)]);
                matmul(j.as_mut(), Accum::Add, wkq.as_ref(), diff.as_ref(), probs[s] * scale, Par::Seq);
            }
            let m = Mat::from_fn(dh, k_out, |a, i| (0..p).map(|u| probs[u] * (k[(u, a)] - r[a]) * o[(u, i)]).sum::<f64>());
            matmul(js[p - 1].as_mut(), Accum::Add, head.w_q.as_ref(), m.as_ref(), scale, Par::Seq);
        }
        js
    }

    /// The per-call products of the Jacobian: W_V W_O C and W_O C per head.
    pub fn prepare(&self, c: &Mat<f64>) -> PreparedAttention {
        let o_c: Vec<Mat<f64>> = self.heads.iter().map(|h| &h.w_o * c).collect();
        let vo_c = self.heads.iter().zip(&o_c).map(|(h, oc)| &h.w_v * oc).collect();
        PreparedAttention { c: c.clone(), o_c, vo_c }
    }
}

/// Scores to probabilities in place.
fn softmax(x: &mut [f64]) {
    let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    x.iter_mut().for_each(|v| *v = (*v - max).exp());
    let total: f64 = x.iter().sum();
    x.iter_mut().for_each(|v| *v /= total);
}

pub struct PreparedAttention {
    c: Mat<f64>,
    o_c: Vec<Mat<f64>>,
    vo_c: Vec<Mat<f64>>,
}

/// y = x + relu(x W_in) W_out with folded biases: `inner` maps x (D) to the hidden layer plus
/// its constant, `w_out` ((H + 1) × D) carries b_out on the constant row and nothing into the
/// output's constant column, which the residual already holds.
#[derive(Clone, Debug)]
pub struct ResidualMlp {
    pub inner: Section,
    pub w_out: Mat<f64>,
}

impl ResidualMlp {
    pub fn forward(&self, f: &Mat<f64>) -> Mat<f64> {
        let mut y = f.clone();
        matmul(y.as_mut(), Accum::Add, self.inner.forward(f).as_ref(), self.w_out.as_ref(), 1.0, Par::rayon(0));
        y
    }

    /// ∂(y · C)/∂x for one sample (1 × D): C + W_in diag(s) W_out C with s the ReLU gates.
    pub fn sample_jacobian(&self, x: MatRef<'_, f64>, c: &Mat<f64>, out_c: &Mat<f64>) -> Mat<f64> {
        debug_assert_eq!(self.inner.gate, Gate::Relu);
        let pre = x * &self.inner.weight;
        let live: Vec<usize> = (0..pre.ncols()).filter(|&h| pre[(0, h)] > 0.0).collect();
        let w = Mat::from_fn(self.inner.weight.nrows(), live.len(), |r, h| self.inner.weight[(r, live[h])]);
        let k = Mat::from_fn(live.len(), c.ncols(), |h, i| out_c[(live[h], i)]);
        let mut j = c.clone();
        matmul(j.as_mut(), Accum::Add, w.as_ref(), k.as_ref(), 1.0, Par::Seq);
        j
    }
}

/// The folded network of a one-layer transformer read at its last position: node layers
/// `blocks.0.hook_resid_pre` (P rows per sample), `blocks.0.hook_resid_mid`,
/// `blocks.0.hook_resid_post` (without an MLP these two are one) and `logits`.
pub(crate) fn network<'a>(t: &TransformerConfig, get: &dyn Fn(&str) -> Result<&'a [f32]>, _opt: &dyn Fn(&str) -> Option<&'a [f32]>) -> Result<Network> {
    if t.n_layers != 1 {
        return Err(Error::invalid(format!("LIB reads one-layer transformers; this one has {} layers", t.n_layers)));
    }
    if t.readout != Readout::LastPosition {
        return Err(Error::invalid("LIB reads transformers that classify at their last position, not language models scored at every position"));
    }
    let plain = TransformerConfig { n_layers: 1, d_model: t.d_model, n_heads: t.n_heads, d_head: t.d_head, d_mlp: t.d_mlp, d_vocab: t.d_vocab, d_vocab_out: t.d_vocab_out, n_ctx: t.n_ctx, init: t.init, ..TransformerConfig::modular_addition(1) };
    if *t != plain {
        return Err(Error::invalid("LIB folds transformers without normalisation, with learned positions, a ReLU MLP with biases, no attention biases and an untied unembedding (Nanda et al.'s model)"));
    }
    let (d, h, dh, dm, v) = (t.d_model, t.n_heads, t.d_head, t.d_mlp, t.d_vocab_out);
    let head_weights = |name: &str| get(&format!("blocks.0.attn.{name}"));
    let (wq, wk, wv, wo) = (head_weights("W_Q")?, head_weights("W_K")?, head_weights("W_V")?, head_weights("W_O")?);
    // [h, d, dh] per head as (d + 1) × dh, the constant's row zero.
    let input_side = |w: &[f32], hh: usize| Mat::from_fn(d + 1, dh, |j, a| if j < d { w[hh * d * dh + j * dh + a] as f64 } else { 0.0 });
    let heads = (0..h)
        .map(|hh| Head {
            w_q: input_side(wq, hh),
            w_k: input_side(wk, hh),
            w_v: input_side(wv, hh),
            w_o: Mat::from_fn(dh, d + 1, |a, c| if c < d { wo[hh * dh * d + a * d + c] as f64 } else { 0.0 }),
        })
        .collect();
    let mut sections = vec![Module::Attention(Attention { positions: t.n_ctx, heads })];
    let mut names = vec!["blocks.0.hook_resid_pre".to_string()];
    if dm > 0 {
        let (w_in, b_in, w_out, b_out) = (get("blocks.0.mlp.W_in")?, get("blocks.0.mlp.b_in")?, get("blocks.0.mlp.W_out")?, get("blocks.0.mlp.b_out")?);
        // The hidden constant: the input's constant maps to pre-activation 1, relu(1) = 1.
        let weight = Mat::from_fn(d + 1, dm + 1, |j, c| match (j < d, c < dm) {
            (true, true) => w_in[j * dm + c] as f64,
            (false, true) => b_in[c] as f64,
            (true, false) => 0.0,
            (false, false) => 1.0,
        });
        let w_out = Mat::from_fn(dm + 1, d + 1, |r, c| match (r < dm, c < d) {
            (true, true) => w_out[r * d + c] as f64,
            (false, true) => b_out[c] as f64,
            _ => 0.0,
        });
        sections.push(Module::ResidualMlp(ResidualMlp { inner: Section { name: "blocks.0.mlp".into(), weight, gate: Gate::Relu }, w_out }));
        names.push("blocks.0.hook_resid_mid".into());
    }
    names.push("blocks.0.hook_resid_post".into());
    let w_u = get("unembed.W_U")?;
    let weight = Mat::from_fn(d + 1, v, |j, c| if j < d { w_u[j * v + c] as f64 } else { 0.0 });
    sections.push(Module::Dense(Section { name: "unembed".into(), weight, gate: Gate::Identity }));
    names.push("logits".into());
    let (w_e, w_pos) = (get("embed.W_E")?, get("pos_embed.W_pos")?);
    let input = Input::Tokens {
        embed: Mat::from_fn(t.d_vocab, d, |r, c| w_e[r * d + c] as f64),
        positions: Mat::from_fn(t.n_ctx, d, |r, c| w_pos[r * d + c] as f64),
    };
    Ok(Network { sections, node_names: names, input })
}

/// Per-sample Jacobians of a module into output coordinates C, ready for many samples.
pub(crate) enum SampleJacobians<'a> {
    Attention(&'a Attention, PreparedAttention),
    ResidualMlp { mlp: &'a ResidualMlp, c: Mat<f64>, out_c: Mat<f64> },
}

impl<'a> SampleJacobians<'a> {
    /// None for dense sections, whose Jacobians have closed forms over all samples at once.
    pub(crate) fn new(module: &'a Module, c: &Mat<f64>) -> Option<Self> {
        match module {
            Module::Dense(_) => None,
            Module::Attention(a) => Some(SampleJacobians::Attention(a, a.prepare(c))),
            Module::ResidualMlp(m) => Some(SampleJacobians::ResidualMlp { mlp: m, c: c.clone(), out_c: &m.w_out * c }),
        }
    }

    /// One D × k matrix per input position of sample x (P_in × D).
    pub(crate) fn of(&self, x: MatRef<'_, f64>) -> Vec<Mat<f64>> {
        match self {
            SampleJacobians::Attention(a, prepared) => a.sample_jacobians(x, prepared),
            SampleJacobians::ResidualMlp { mlp, c, out_c } => vec![mlp.sample_jacobian(x, c, out_c)],
        }
    }
}

/// E\[JᵀJ] in row form, (1/(N·P_in)) Σ_x Σ_s J_s J_sᵀ (D × D): input positions are not
/// cross-multiplied, as in the reference code. Samples are summed in parallel blocks.
pub(crate) fn sample_moment(module: &Module, f: &Mat<f64>, c_out: &Mat<f64>) -> Mat<f64> {
    let jac = SampleJacobians::new(module, c_out).expect("a module with per-sample Jacobians");
    let (p, d) = (module.positions_in(), f.ncols());
    let n = f.nrows() / p;
    let block = 64;
    let partial: Vec<Mat<f64>> = (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let mut m = Mat::<f64>::zeros(d, d);
            for r in b * block..((b + 1) * block).min(n) {
                for j in jac.of(f.subrows(r * p, p)) {
                    matmul(m.as_mut(), Accum::Add, j.as_ref(), j.transpose(), 1.0, Par::Seq);
                }
            }
            m
        })
        .collect();
    let mut m = Mat::<f64>::zeros(d, d);
    for part in partial {
        m += part;
    }
    m * faer::Scale(1.0 / f.nrows() as f64)
}

/// Squared gradient-times-activation edges from per-sample Jacobians, evaluated on
/// the reconstruction f̂ C⁺: A_ij = Σ_s (C⁺ J_s)_{j,i} f̂_{s,j}, E_ij = Σ_x A_ij² / (N·P_in).
pub(crate) fn sample_edges(module: &Module, c_plus_in: &Mat<f64>, c_out: &Mat<f64>, f_hat: &Mat<f64>) -> Mat<f64> {
    let jac = SampleJacobians::new(module, c_out).expect("a module with per-sample Jacobians");
    let p = module.positions_in();
    let (n, k_in, k_out) = (f_hat.nrows() / p, f_hat.ncols(), c_out.ncols());
    let x = f_hat * c_plus_in;
    let block = 64;
    let partial: Vec<Mat<f64>> = (0..n.div_ceil(block))
        .into_par_iter()
        .map(|b| {
            let mut e = Mat::<f64>::zeros(k_out, k_in);
            for r in b * block..((b + 1) * block).min(n) {
                let mut a = Mat::<f64>::zeros(k_in, k_out);
                for (s, j) in jac.of(x.subrows(r * p, p)).iter().enumerate() {
                    let jt = c_plus_in * j; // k_in × k_out
                    for jj in 0..k_in {
                        let act = f_hat[(r * p + s, jj)];
                        for i in 0..k_out {
                            a[(jj, i)] += jt[(jj, i)] * act;
                        }
                    }
                }
                for i in 0..k_out {
                    for jj in 0..k_in {
                        e[(i, jj)] += a[(jj, i)] * a[(jj, i)];
                    }
                }
            }
            e
        })
        .collect();
    let mut e = Mat::<f64>::zeros(k_out, k_in);
    for part in partial {
        e += part;
    }
    e * faer::Scale(1.0 / f_hat.nrows() as f64)
}

/// Central differences of x ↦ module(x) · C for one sample x (P × D), step h: one D × k matrix
/// per input position, to check [`SampleJacobians`] against.
pub fn finite_difference_jacobians(module: &Module, x: &Mat<f64>, c: &Mat<f64>, h: f64) -> Vec<Mat<f64>> {
    (0..x.nrows())
        .map(|s| {
            let mut j = Mat::<f64>::zeros(x.ncols(), c.ncols());
            for d in 0..x.ncols() {
                let (mut up, mut down) = (x.clone(), x.clone());
                up[(s, d)] += h;
                down[(s, d)] -= h;
                let diff = (&module.forward(&up) - &module.forward(&down)) * c * faer::Scale(0.5 / h);
                for i in 0..c.ncols() {
                    j[(d, i)] = diff[(0, i)];
                }
            }
            j
        })
        .collect()
}

/// The closed-form Jacobians of `module` into C for one sample x (P × D), one per position.
pub fn sample_jacobians(module: &Module, x: &Mat<f64>, c: &Mat<f64>) -> Vec<Mat<f64>> {
    SampleJacobians::new(module, c).expect("a transformer section").of(x.as_ref())
}
